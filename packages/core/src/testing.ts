/**
 * Test doubles for code that drives a {@link TargetModel}: a target whose next-token logits are a
 * function of the tokens each row can *see* (the committed tokens plus the rows of the new block
 * its tree mask allows), over a KV cache that records token ids. A wrong tree mask, a wrong
 * accepted path or a wrong cache compaction therefore changes the output, which is what tests of
 * decoding loops, verifiers and tree builders need, without any real model.
 *
 * Import from `@gumiho/core/testing`; not part of the runtime API.
 */
import type { KvCache, KvCacheSpec, TensorBackend, WeightStore } from './backend.js';
import type { ModelConfig, TargetForwardOptions, TargetForwardResult, TargetModel } from './model.js';

/** A {@link KvCache} that stores the token id of each row instead of keys and values. */
export class TokenKvCache implements KvCache {
  readonly spec: KvCacheSpec;
  /** Committed rows, then pending rows. */
  tokens: number[] = [];
  private committed = 0;

  constructor(capacity: number) {
    this.spec = { layers: 1, kvHeads: 1, headDim: 1, capacity };
  }

  get length(): number {
    return this.committed;
  }

  get pending(): number {
    return this.tokens.length - this.committed;
  }

  commit(count = this.pending): void {
    this.committed += count;
    this.tokens.length = this.committed;
  }

  compact(slots: ArrayLike<number>): void {
    const kept = Array.from(slots, (slot) => this.tokens[this.committed + slot]!);
    this.tokens.length = this.committed;
    this.tokens.push(...kept);
    this.committed = this.tokens.length;
  }

  rollback(): void {
    this.tokens.length = this.committed;
  }

  truncate(length: number): void {
    this.committed = length;
    this.tokens.length = length;
  }

  reset(): void {
    this.truncate(0);
  }
}

/** Options of {@link createTokenRuleTarget}. */
export interface TokenRuleTargetOptions {
  readonly vocabSize: number;
  /** KV cache rows; a forward past them throws. */
  readonly capacity: number;
  /** The logits (length `vocabSize`) after a visible token sequence. */
  readonly logits: (visible: readonly number[]) => Float32Array;
  /** End-of-sequence ids of the config (default `[0]`). */
  readonly eosTokenIds?: readonly number[];
  /** Hidden state of one input row (length 2); default zeros. */
  readonly hidden?: (tokenId: number) => readonly [number, number];
}

/** A target made by {@link createTokenRuleTarget}; `forwards` counts calls of `forward`. */
export interface TokenRuleTarget extends TargetModel {
  readonly cache: TokenKvCache;
  readonly forwards: number;
}

/**
 * A fake {@link TargetModel} whose logits are `options.logits(visible)` for each requested row,
 * `visible` being the committed tokens followed by the rows of the new block that the row may
 * attend to (causal without a tree mask).
 */
export function createTokenRuleTarget(options: TokenRuleTargetOptions): TokenRuleTarget {
  const { vocabSize, capacity } = options;
  const cache = new TokenKvCache(capacity);
  const config: ModelConfig = {
    modelType: 'fake',
    vocabSize,
    hiddenSize: 2,
    intermediateSize: 2,
    numLayers: 1,
    numHeads: 1,
    numKvHeads: 1,
    headDim: 1,
    rmsNormEps: 1e-5,
    ropeTheta: 1e4,
    maxPositions: capacity,
    tieWordEmbeddings: true,
    bosTokenId: undefined,
    eosTokenIds: options.eosTokenIds ?? [0],
  };
  let forwards = 0;
  return {
    specificationVersion: 'v1',
    name: 'fake',
    config,
    backend: {} as TensorBackend,
    weights: {} as WeightStore,
    embeddingWeight: 'e',
    lmHeadWeight: 'e',
    cache,
    get forwards() {
      return forwards;
    },
    async forward(forward: TargetForwardOptions): Promise<TargetForwardResult> {
      forwards++;
      const n = forward.tokenIds.length;
      if (cache.tokens.length + n > capacity) throw new Error(`overflow: ${cache.tokens.length} + ${n} > ${capacity}`);
      const start = cache.tokens.length;
      cache.tokens.push(...forward.tokenIds);
      const rows = forward.logitRows ?? Int32Array.of(n - 1);
      const logits = new Float32Array(rows.length * vocabSize);
      rows.forEach((row, r) => {
        const visible = cache.tokens.slice(0, start);
        for (let j = 0; j < n; j++) {
          const seen = forward.treeMask ? forward.treeMask[row * n + j] === 1 : j <= row;
          if (seen) visible.push(forward.tokenIds[j]!);
        }
        logits.set(options.logits(visible), r * vocabSize);
      });
      const hidden = new Float32Array(n * 2);
      if (options.hidden) {
        for (let i = 0; i < n; i++) hidden.set(options.hidden(forward.tokenIds[i]!), i * 2);
      }
      return { logits, hidden };
    },
    dispose() {},
  };
}
