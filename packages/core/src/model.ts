/**
 * Contracts of the target model runner and the tokenizer.
 *
 * The target is the model whose output speculative decoding must reproduce exactly. Its runner
 * owns a KV cache and answers one question: given new tokens at given positions, under a mask,
 * what are the logits (for chosen rows) and the final post-norm hidden states (for all rows)?
 */
import type { KvCache, TensorBackend, WeightStore } from './backend.js';

/** The parts of a Llama-family configuration the runtime uses. */
export interface ModelConfig {
  /** `model_type` from `config.json`, e.g. `llama`. */
  readonly modelType: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  /** Context limit (`max_position_embeddings`). */
  readonly maxPositions: number;
  readonly tieWordEmbeddings: boolean;
  readonly bosTokenId: number | undefined;
  /** Tokens that end generation. */
  readonly eosTokenIds: readonly number[];
  /**
   * SHA-256 (hex) of the `config.json` bytes this configuration was read from, when it was read
   * from a file. Draft heads record it to tell which target they were trained for.
   */
  readonly configSha256?: string;
}

/** Input of {@link TargetModel.forward}. */
export interface TargetForwardOptions {
  /** New tokens `[n]`, appended after the cache's committed rows. */
  readonly tokenIds: Int32Array;
  /** Position id of each new token `[n]` (committed length + depth for a tree). */
  readonly positions: Int32Array;
  /**
   * Visibility among the new tokens, `[n * n]` row-major, 1 where query row `i` may attend to key
   * row `j`. All committed rows are always visible. Default: causal.
   */
  readonly treeMask?: Uint8Array;
  /** Rows whose logits to return (default: the last row only). */
  readonly logitRows?: Int32Array;
}

/** Output of {@link TargetModel.forward}. */
export interface TargetForwardResult {
  /** Logits `[logitRows.length, vocabSize]`. */
  readonly logits: Float32Array;
  /** Final post-norm hidden states `[n, hiddenSize]` of all new rows (what drafters consume). */
  readonly hidden: Float32Array;
}

/**
 * A target model runner. After `forward`, the new rows are *pending* on {@link cache}; the caller
 * commits them (`cache.commit()`), keeps an accepted path (`cache.compact(slots)`) or drops them.
 */
export interface TargetModel {
  readonly specificationVersion: 'v1';
  /** A short name for reports (the model folder name). */
  readonly name: string;
  readonly config: ModelConfig;
  /** The backend the model runs on; draft heads compile their programs on the same one. */
  readonly backend: TensorBackend;
  /** The model's weights (draft heads reuse `embed_tokens` and the LM head). */
  readonly weights: WeightStore;
  /** Name of the token embedding weight in {@link weights}. */
  readonly embeddingWeight: string;
  /** Name of the LM head weight in {@link weights} (equal to {@link embeddingWeight} when tied). */
  readonly lmHeadWeight: string;
  /** The target's KV cache. */
  readonly cache: KvCache;
  /** Runs the new tokens; see {@link TargetForwardOptions}. */
  forward(options: TargetForwardOptions): Promise<TargetForwardResult>;
  /** Frees the compiled programs. */
  dispose(): void;
}

/** A tokenizer: text to ids and back. */
export interface Tokenizer {
  /** Token ids of `text`, without special tokens added. */
  encode(text: string): Int32Array;
  /** Text of `ids`; special tokens are skipped unless asked. */
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
}
