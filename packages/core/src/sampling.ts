/**
 * Contracts of sampling and verification.
 *
 * A {@link Sampler} turns a row of logits into the target's *processed* distribution (logits
 * processors, then temperature, then softmax) and draws from it with a seeded RNG. The verifier
 * uses the same sampler for every distribution it forms, the bonus token's included, so that
 * speculative sampling draws from exactly the distribution plain sampling would.
 */
import type { DraftTree } from './draft.js';

/** A source of uniform random numbers in [0, 1). Seeded implementations make runs reproducible. */
export interface Rng {
  nextFloat(): number;
}

/** Tokens seen so far, for history-dependent processors such as repetition penalty. */
export interface TokenHistory {
  /** `tokens[0..length)` is the history (prompt, generated tokens, then the draft path). */
  readonly tokens: Int32Array;
  readonly length: number;
}

/** Rewrites one row of logits `[vocab]` in place (top-k, top-p, repetition penalty, ...). */
export interface LogitsProcessor {
  readonly id: string;
  process(logits: Float32Array, history: TokenHistory): void;
}

/** User-facing sampling settings. */
export interface SamplingOptions {
  /** 0 = greedy (the default). */
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  readonly minP?: number;
  readonly repetitionPenalty?: number;
  readonly seed?: number;
}

/** Forms the target's distribution and draws from it. */
export interface Sampler {
  /** True for greedy decoding (argmax; no randomness). */
  readonly greedy: boolean;
  /**
   * Writes the processed probabilities of `logits` into `out` (`[vocab]`, sums to 1).
   * `logits` is not modified.
   */
  distribution(logits: Float32Array, history: TokenHistory, out: Float32Array): void;
  /** Draws a token from probabilities `probs` (need not be normalised; must have positive mass). */
  draw(probs: Float32Array): number;
  /** The token for `logits`: argmax when greedy, otherwise a draw from the processed distribution. */
  pick(logits: Float32Array, history: TokenHistory): number;
}

/** Input of {@link Verifier.verify}. */
export interface VerifyOptions {
  readonly tree: DraftTree;
  /** The target's logits for every tree node, `[tree.size, vocabSize]`, in node order. */
  readonly logits: Float32Array;
  readonly vocabSize: number;
  readonly sampler: Sampler;
  /** Committed tokens up to and including the root, with room for the path after them. */
  readonly history: TokenHistory;
}

/** Output of {@link Verifier.verify}. */
export interface VerifyResult {
  /** Tree nodes of the root and the accepted drafts, root first (`[acceptedLength + 1]`). */
  readonly acceptedNodes: Int32Array;
  /** Number of accepted draft tokens `A` (the root not counted). */
  readonly acceptedLength: number;
  /** The next token, chosen by the target after the accepted path (the bonus token). */
  readonly nextToken: number;
}

/** Decides which drafted tokens the target accepts. */
export interface Verifier {
  readonly id: string;
  verify(options: VerifyOptions): VerifyResult;
}
