/**
 * @packageDocumentation
 * `@gumiho/core`: the contracts every Gumiho-TS part implements (tensor backend op set, KV cache,
 * target model runner, draft heads, draft trees, tree builders, verifier, sampler), the error
 * classes, small host-side math helpers, and the speculative decoding loop that assembles them.
 */
export type {
  AttentionOptions,
  BackendCapabilities,
  BuildContext,
  DataTypeMap,
  Dim,
  DType,
  HostTensor,
  KvCache,
  KvCacheSpec,
  KvLayerRef,
  Ops,
  Program,
  ProgramDefinition,
  ProgramInputSpec,
  RopeOptions,
  TensorBackend,
  TensorRef,
  WeightRef,
  WeightStore,
} from './backend.js';
export { MASK_MIN } from './backend.js';
export { HostKvCache } from './kv-cache.js';
export type { HostKvCacheOptions } from './kv-cache.js';
export type { ModelConfig, TargetForwardOptions, TargetForwardResult, TargetModel, Tokenizer } from './model.js';
export type {
  BuildTreeOptions,
  Candidates,
  DraftHead,
  DraftHeadInfo,
  DraftTree,
  Expansion,
  ExpandOptions,
  ObserveOptions,
  ParallelExpansion,
  ParallelOptions,
  TreeBuilder,
} from './draft.js';
export { ROOT_HANDLE } from './draft.js';
export type {
  LogitsProcessor,
  Rng,
  Sampler,
  SamplingOptions,
  TokenHistory,
  Verifier,
  VerifyOptions,
  VerifyResult,
} from './sampling.js';
export type {
  DraftPolicy,
  GenerateOptions,
  GenerateResult,
  GenerationStats,
  SpeculativeDecoder,
  SpeculativeDecoderOptions,
  TokenEvent,
  TokenSource,
} from './decoder.js';
export { createSpeculativeDecoder, rootOnlyTree } from './decoder.js';
export {
  BackendUnavailableError,
  ContextOverflowError,
  DTypeError,
  GumihoError,
  IncompatibleHeadsError,
  InvalidArgumentError,
  ModelLoadError,
  NotImplementedError,
  ShapeMismatchError,
  UnsupportedModelError,
  assert,
} from './errors.js';
export type { BackendAttempt, GumihoErrorOptions } from './errors.js';
export { argmax, bf16ToF32, f16ToF32, logSoftmax, softmax, topK } from './math.js';
