/**
 * @packageDocumentation
 * `@gumiho/models`: Llama-family target models for Gumiho-TS: loading and validating Hugging Face
 * folders, the Llama forward program and its {@link TargetModel} runner, the tokenizer, and the
 * local model store that the CLI fills on first use.
 */
export { SUPPORTED_MODEL_TYPES, expectedLlamaWeights, parseModelConfig } from './config.js';
export { SUPPORTED_WEIGHT_DTYPES, loadModelFolder, validateLlamaWeights } from './load.js';
export type { LoadModelOptions, LoadedModel } from './load.js';
export {
  EMBED_WEIGHT,
  LLAMA_CACHE,
  LM_HEAD_WEIGHT,
  buildAttentionMask,
  createLlamaProgram,
  createLlamaTarget,
  fuseLlamaWeights,
  gateUpWeightName,
  llamaCacheSpec,
  qkvWeightName,
} from './llama.js';
export type { LlamaInput, LlamaOutput, LlamaTarget, LlamaTargetOptions } from './llama.js';
export { HuggingFaceTokenizer, loadTokenizer } from './tokenizer.js';
export {
  BUILTIN_MANIFESTS,
  DEFAULT_MODEL,
  createManifest,
  createProgressBar,
  fillStore,
  findRepositoryRoot,
  isModelPath,
  resolveModel,
} from './store.js';
export type { ManifestFile, ModelManifest, ResolveModelOptions, StoreProgress } from './store.js';
export { randomLlamaTensors, writeRandomLlama } from './random.js';
export type { RandomLlamaOptions } from './random.js';
