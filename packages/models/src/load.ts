/**
 * Loading a Hugging Face model folder: `config.json`, the safetensors weights (one
 * `model.safetensors`, or `model.safetensors.index.json` plus shards) and, when present, the
 * tokenizer. Every expected tensor is checked for presence, shape and dtype before anything runs,
 * and every failure names the file or tensor, what was expected, what was found and the fix.
 *
 * Not a downloader: the folder must already be on disk (see `resolveModel` for the model store).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { DTypeError, ModelLoadError, ShapeMismatchError, type ModelConfig, type Tokenizer } from '@gumiho/core';
import { MapWeightStore, readSafetensors } from '@gumiho/safetensors';
import { expectedLlamaWeights, parseModelConfig } from './config.js';
import { loadTokenizer } from './tokenizer.js';

/** The safetensors dtypes a checkpoint's floating-point weights may use. */
export const SUPPORTED_WEIGHT_DTYPES: readonly string[] = ['BF16', 'F16', 'F32'];

/** A model folder read into memory. */
export interface LoadedModel {
  /** Absolute path of the folder. */
  readonly path: string;
  /** The folder's name, used in reports. */
  readonly name: string;
  readonly config: ModelConfig;
  /** All tensors of the checkpoint, as float32, under their Hugging Face names. */
  readonly weights: MapWeightStore;
  /** The tokenizer, when the folder has a `tokenizer.json`. */
  readonly tokenizer: Tokenizer | undefined;
}

/** Options of {@link loadModelFolder}. */
export interface LoadModelOptions {
  /** Load `tokenizer.json` when present (default true). */
  readonly tokenizer?: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads and parses a JSON file; also returns its raw bytes (read once). */
async function readJson(path: string, what: string): Promise<{ json: unknown; bytes: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ModelLoadError(`Cannot read the ${what} ${path}: ${(error as Error).message}.`, {
      path,
      cause: error,
      fix: 'check that the file exists and is readable.',
    });
  }
  try {
    return { json: JSON.parse(bytes.toString('utf8')) as unknown, bytes };
  } catch (error) {
    throw new ModelLoadError(`The ${what} ${path} is not valid JSON: ${(error as Error).message}.`, {
      path,
      cause: error,
      fix: 're-download the model folder; the file may be truncated.',
    });
  }
}

/** Lists the safetensors files of `folder` and, for sharded checkpoints, which tensor lives where. */
async function weightFiles(folder: string): Promise<{ files: string[]; weightMap: Map<string, string> | undefined }> {
  const indexPath = join(folder, 'model.safetensors.index.json');
  if (await exists(indexPath)) {
    const index = (await readJson(indexPath, 'safetensors index')).json as { weight_map?: unknown };
    if (typeof index !== 'object' || index === null || typeof index.weight_map !== 'object' || index.weight_map === null) {
      throw new ModelLoadError(`${indexPath} has no "weight_map" object.`, {
        path: indexPath,
        fix: 're-download the model folder; the index is malformed.',
      });
    }
    const weightMap = new Map<string, string>();
    for (const [tensor, file] of Object.entries(index.weight_map as Record<string, unknown>)) {
      if (typeof file !== 'string') {
        throw new ModelLoadError(`${indexPath}: the shard of tensor "${tensor}" is not a file name.`, { path: indexPath });
      }
      weightMap.set(tensor, file);
    }
    const files = [...new Set(weightMap.values())].sort();
    for (const file of files) {
      const shard = join(folder, file);
      if (!(await exists(shard))) {
        throw new ModelLoadError(
          `The shard ${file} named in model.safetensors.index.json is missing from ${folder}.`,
          { path: shard, fix: `copy or re-download ${file} into the model folder (the download may be incomplete).` },
        );
      }
    }
    return { files, weightMap };
  }
  if (await exists(join(folder, 'model.safetensors'))) return { files: ['model.safetensors'], weightMap: undefined };
  throw new ModelLoadError(`${folder} has neither model.safetensors nor model.safetensors.index.json.`, {
    path: folder,
    fix: 'point to a Hugging Face model folder with safetensors weights (PyTorch .bin checkpoints are not supported; convert them to safetensors).',
  });
}

/**
 * Checks that `weights` holds every tensor of a Llama checkpoint described by `config`, with the
 * right shape and a supported dtype. `sourceDTypes` gives each tensor's on-disk dtype.
 *
 * @throws ModelLoadError naming a missing tensor; ShapeMismatchError or DTypeError naming a bad one.
 */
export function validateLlamaWeights(weights: MapWeightStore, config: ModelConfig, folder = '<weights>'): void {
  for (const [name, shape] of expectedLlamaWeights(config)) {
    const tensor = weights.get(name);
    if (!tensor) {
      throw new ModelLoadError(`The checkpoint in ${folder} lacks the tensor "${name}" (expected shape [${shape.join(', ')}]).`, {
        path: folder,
        fix: 'check that all safetensors shards are present and that config.json matches the weights.',
      });
    }
    const sameShape = tensor.shape.length === shape.length && tensor.shape.every((dim, axis) => dim === shape[axis]);
    if (!sameShape) {
      throw new ShapeMismatchError(`Tensor "${name}" in ${folder}`, shape, tensor.shape, {
        fix: 'the weights do not match config.json (hidden size, heads, vocabulary or layer count); use the config.json that came with the checkpoint.',
      });
    }
    const dtype = weights.sourceDTypes.get(name);
    if (dtype !== undefined && !SUPPORTED_WEIGHT_DTYPES.includes(dtype)) {
      throw new DTypeError(`Tensor "${name}" in ${folder}`, SUPPORTED_WEIGHT_DTYPES.join(' or '), dtype, {
        fix: 'store the weights as bf16, fp16 or fp32 safetensors (quantised or integer weights are not supported).',
      });
    }
  }
}

/**
 * Reads a Hugging Face Llama folder: `config.json`, all safetensors weights (validated against the
 * config) and the tokenizer when present.
 *
 * @throws ModelLoadError for a missing or unreadable folder, file or shard, or a missing tensor;
 *   UnsupportedModelError for another architecture; ShapeMismatchError / DTypeError for bad tensors.
 */
export async function loadModelFolder(path: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const folder = resolve(path);
  let info;
  try {
    info = await stat(folder);
  } catch (error) {
    throw new ModelLoadError(`The model folder ${folder} does not exist or cannot be read.`, {
      path: folder,
      cause: error,
      fix: 'pass the path of a Hugging Face model folder (with config.json and safetensors weights), or a model name such as py-llama-28m.',
    });
  }
  if (!info.isDirectory()) {
    throw new ModelLoadError(`${folder} is not a folder.`, {
      path: folder,
      fix: 'pass the folder that holds config.json, not a file inside it.',
    });
  }
  const configPath = join(folder, 'config.json');
  const { json: configJson, bytes: configBytes } = await readJson(configPath, 'model config');
  const config: ModelConfig = { ...parseModelConfig(configJson, configPath), configSha256: createHash('sha256').update(configBytes).digest('hex') };
  const { files, weightMap } = await weightFiles(folder);
  const weights = new MapWeightStore();
  for (const file of files) {
    const before = new Set(weights.names());
    await readSafetensors(join(folder, file), weights);
    if (weightMap) {
      for (const [tensor, shard] of weightMap) {
        if (shard === file && (before.has(tensor) || !weights.has(tensor))) {
          throw new ModelLoadError(`model.safetensors.index.json places "${tensor}" in ${file}, but that shard does not hold it.`, {
            path: join(folder, file),
            fix: 're-download the shard; it does not match the index.',
          });
        }
      }
    }
  }
  validateLlamaWeights(weights, config, folder);
  const tokenizerPath = join(folder, 'tokenizer.json');
  const tokenizer = options.tokenizer !== false && (await exists(tokenizerPath)) ? await loadTokenizer(folder) : undefined;
  return { path: folder, name: basename(folder), config, weights, tokenizer };
}
