/**
 * Reading and writing draft-head folders: `config.json` (see {@link DraftHeadsConfig}) plus
 * `model.safetensors` in the official Gumiho key layout. The Python training tooling
 * (`tooling/train-heads`) writes the same format.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelLoadError, type HostTensor, type WeightStore } from '@gumiho/core';
import { MapWeightStore, readSafetensors, writeSafetensors } from '@gumiho/safetensors';
import { checkHeadsMatchTarget, otherTargetWarning, parseDraftHeadsConfig, type DraftHeadsConfig } from './config.js';
import { createDraftHead, type DraftTarget, type GumihoDraftHead, type MedusaDraftHead, type SerialDraftHead } from './heads.js';
import { checkDraftHeadWeights, countMlpBlocks, expectedDraftHeadTensors, normaliseDraftHeadNames } from './weights.js';

/** File names inside a draft-head folder. */
export const DRAFT_HEADS_FILES = { config: 'config.json', weights: 'model.safetensors' } as const;

/** A draft-head folder read into memory. */
export interface DraftHeadsFiles {
  readonly config: DraftHeadsConfig;
  /** The head's tensors (float32), `mlp.mlp.*` already renamed to `mlp.*`. */
  readonly weights: MapWeightStore;
}

/**
 * Reads `dir/config.json` and `dir/model.safetensors`, renames the official `ParallelMLPs` keys,
 * reconciles `mlpBlocks` with the tensors present and checks every tensor's shape. Also reads
 * official EAGLE/Gumiho draft folders, whose `config.json` is a Hugging Face Llama config (see
 * {@link officialDraftHeadsConfig}), when their weights are in `model.safetensors`.
 * Throws {@link ModelLoadError} for a missing file, a bad config or a missing/ill-shaped tensor.
 */
export async function readDraftHeads(dir: string): Promise<DraftHeadsFiles> {
  const configPath = join(dir, DRAFT_HEADS_FILES.config);
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    throw new ModelLoadError(`Cannot read the draft-head config ${configPath}: ${(error as Error).message}.`, {
      path: configPath,
      cause: error,
      fix: 'point at a folder written by `python -m train_heads export` or writeDraftHeads() (config.json + model.safetensors).',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(`The draft-head config ${configPath} is not valid JSON (${(error as Error).message}).`, { path: configPath, cause: error });
  }
  const weightsPath = join(dir, DRAFT_HEADS_FILES.weights);
  if (!existsSync(weightsPath) && existsSync(join(dir, 'pytorch_model.bin'))) {
    throw new ModelLoadError(`${dir} holds pytorch_model.bin (a PyTorch pickle), which this library does not read.`, {
      path: weightsPath,
      fix: 'convert it once to model.safetensors with the Python `safetensors` package: save_file(torch.load("pytorch_model.bin"), "model.safetensors").',
    });
  }
  const weights = await readSafetensors(weightsPath);
  normaliseDraftHeadNames(weights);
  let config = isOfficialDraftConfig(json) ? officialDraftHeadsConfig(json, weights, configPath) : parseDraftHeadsConfig(json, configPath);
  if (config.kind !== 'eagle2') {
    const blocks = countMlpBlocks(weights);
    // Gumiho's mlpBlocks may count all blocks (6) or only the residual ones (5).
    const accepted = config.kind === 'gumiho' ? [blocks, blocks - 1] : [blocks];
    if (!accepted.includes(config.mlpBlocks)) {
      throw new ModelLoadError(
        `${configPath} says mlpBlocks = ${config.mlpBlocks}, but ${weightsPath} has ${blocks} blocks per MLP head (mlp.0.0 .. mlp.0.${blocks - 1}).`,
        { path: weightsPath, fix: 're-export the heads so that config.json and the tensors agree.' },
      );
    }
    config = { ...config, mlpBlocks: blocks };
  }
  checkDraftHeadWeights(config, weights, weightsPath);
  return { config, weights };
}

/** True when `json` is an official EAGLE/Gumiho draft config (Hugging Face Llama fields, no `format`). */
export function isOfficialDraftConfig(json: unknown): json is Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return false;
  const raw = json as Record<string, unknown>;
  return raw.format === undefined && typeof raw.hidden_size === 'number' && typeof raw.num_hidden_layers === 'number';
}

/**
 * A {@link DraftHeadsConfig} for an official EAGLE/Gumiho draft checkpoint, whose `config.json` is
 * a Hugging Face Llama config of the draft (e.g. `Gumiho-LLaMA3-Instruct-8B.json`): sizes from the
 * config, the kind and the MLP head/block counts from the tensors (`mlp.*` present: Gumiho, else
 * EAGLE-2), `fcBias` from the presence of `fc.bias` (the official code always has one, whatever
 * the config's `bias` says).
 */
export function officialDraftHeadsConfig(json: Record<string, unknown>, weights: WeightStore, path = 'config.json'): DraftHeadsConfig {
  const int = (key: string, fallback?: number): number => {
    const value = json[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new ModelLoadError(`Official draft config ${path}: "${key}" must be a positive integer, got ${JSON.stringify(json[key])}.`, { path });
    }
    return value;
  };
  const hiddenSize = int('hidden_size');
  const heads = int('num_attention_heads');
  let mlpHeads = 0;
  while (weights.has(`mlp.${mlpHeads}.0.linear.weight`)) mlpHeads++;
  const ropeTheta = typeof json.rope_theta === 'number' ? json.rope_theta : ((json.rope_parameters as { rope_theta?: number } | undefined)?.rope_theta ?? 10000);
  const vocabSize = int('vocab_size');
  return {
    format: 'gumiho-heads',
    formatVersion: 1,
    kind: mlpHeads > 0 ? 'gumiho' : 'eagle2',
    hiddenSize,
    vocabSize,
    intermediateSize: int('intermediate_size'),
    numAttentionHeads: heads,
    numKeyValueHeads: int('num_key_value_heads', heads),
    headDim: int('head_dim', Math.floor(hiddenSize / heads)),
    rmsNormEps: typeof json.rms_norm_eps === 'number' ? json.rms_norm_eps : 1e-6,
    ropeTheta,
    serialLayers: int('num_hidden_layers'),
    mlpHeads,
    mlpBlocks: mlpHeads > 0 ? countMlpBlocks(weights) : 0,
    fcBias: weights.has('fc.bias'),
    target: { name: 'unknown (official draft checkpoint)', hiddenSize, vocabSize, numHiddenLayers: 0, configSha256: '' },
  };
}

/** Options of {@link loadDraftHeads}. */
export interface LoadDraftHeadsOptions {
  /** Committed rows the draft KV cache holds (default: the target cache's capacity). */
  readonly maxContext?: number;
  /** Speculative rows one round may add (default 512). */
  readonly maxSpeculativeRows?: number;
  /** Gumiho and Medusa: run only the first `parallelHeads` MLP heads (default: all). */
  readonly parallelHeads?: number;
}

/**
 * Loads the draft heads in `dir` for `target` and returns the head `config.kind` names
 * (`GumihoDraftHead`, EAGLE-2 `SerialDraftHead`, or `MedusaDraftHead`). Throws
 * {@link IncompatibleHeadsError} when the heads were trained for a target with another hidden
 * size or vocabulary, {@link ModelLoadError} for missing or malformed files and tensors. Emits a
 * process warning (code `GUMIHO_HEADS_OTHER_TARGET`) when both sides carry a `config.json` hash
 * and they differ: the heads fit but were trained for another checkpoint.
 */
export async function loadDraftHeads(
  dir: string,
  target: DraftTarget,
  options: LoadDraftHeadsOptions = {},
): Promise<GumihoDraftHead | SerialDraftHead | MedusaDraftHead> {
  const configPath = join(dir, DRAFT_HEADS_FILES.config);
  // Check compatibility before reading the (possibly large) weights.
  let early: DraftHeadsConfig | undefined;
  try {
    early = parseDraftHeadsConfig(JSON.parse(await readFile(configPath, 'utf8')), configPath);
  } catch {
    early = undefined; // readDraftHeads reports the problem with full detail.
  }
  if (early) checkHeadsMatchTarget(early, target);
  const { config, weights } = await readDraftHeads(dir);
  const warning = otherTargetWarning(config, target);
  if (warning !== undefined) process.emitWarning(warning, { code: 'GUMIHO_HEADS_OTHER_TARGET' });
  return createDraftHead({ target, weights, config, ...options });
}

/** Options of {@link writeDraftHeads}. */
export interface WriteDraftHeadsOptions {
  /** Tensor dtype on disk (default `F32`; the Python exporter writes `BF16`). */
  readonly dtype?: 'F32' | 'BF16';
}

/**
 * Writes `config` and the tensors it needs from `weights` (plus `embed_tokens.weight` when
 * present) to `dir/config.json` and `dir/model.safetensors`, creating `dir`. Checks the weights
 * first; files are written under temporary names and renamed.
 */
export async function writeDraftHeads(
  dir: string,
  config: DraftHeadsConfig,
  weights: WeightStore,
  options: WriteDraftHeadsOptions = {},
): Promise<void> {
  checkDraftHeadWeights(config, weights);
  const names = expectedDraftHeadTensors(config).map((entry) => entry.name);
  if (weights.has('embed_tokens.weight')) names.push('embed_tokens.weight');
  const tensors: [string, HostTensor<'float32'>][] = names.map((name) => [name, weights.get(name)!]);
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, DRAFT_HEADS_FILES.weights), tensors, {
    dtype: options.dtype ?? 'F32',
    metadata: { format: 'gumiho-heads', kind: config.kind },
  });
  const configPath = join(dir, DRAFT_HEADS_FILES.config);
  const temporary = `${configPath}.tmp-${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(config, null, 2)}\n`);
  await rename(temporary, configPath);
}
