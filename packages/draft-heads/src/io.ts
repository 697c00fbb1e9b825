/**
 * Reading and writing draft-head folders: `config.json` (see {@link DraftHeadsConfig}) plus
 * `model.safetensors` in the official Gumiho key layout. The Python training tooling
 * (`tooling/train-heads`) writes the same format.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelLoadError, type HostTensor, type WeightStore } from '@gumiho/core';
import { MapWeightStore, readSafetensors, writeSafetensors } from '@gumiho/safetensors';
import { checkHeadsMatchTarget, parseDraftHeadsConfig, type DraftHeadsConfig } from './config.js';
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
 * reconciles `mlpBlocks` with the tensors present and checks every tensor's shape.
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
  let config = parseDraftHeadsConfig(json, configPath);
  const weightsPath = join(dir, DRAFT_HEADS_FILES.weights);
  const weights = await readSafetensors(weightsPath);
  normaliseDraftHeadNames(weights);
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

/** Options of {@link loadDraftHeads}. */
export interface LoadDraftHeadsOptions {
  /** Committed rows the draft KV cache holds (default: the target cache's capacity). */
  readonly maxContext?: number;
  /** Speculative rows one round may add (default 512). */
  readonly maxSpeculativeRows?: number;
}

/**
 * Loads the draft heads in `dir` for `target` and returns the head `config.kind` names
 * (`GumihoDraftHead`, EAGLE-2 `SerialDraftHead`, or `MedusaDraftHead`). Throws
 * {@link IncompatibleHeadsError} when the heads were trained for a target with another hidden
 * size or vocabulary, {@link ModelLoadError} for missing or malformed files and tensors.
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
