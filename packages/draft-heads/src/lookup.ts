/**
 * Prompt n-gram lookup (no weights): a node's children are the tokens that followed earlier
 * occurrences of the trailing n-gram of (committed context + the node's path). The longest
 * `n` in `maxNgram .. minNgram` with at least one earlier occurrence wins; its distinct
 * continuations are ranked by how often they followed (ties: the most recent first) and get the
 * log of their share as draft log-probability.
 *
 * Not a suffix-automaton index: a linear scan per node, which is cheap next to a target forward
 * for the context lengths this library serves.
 */
import {
  InvalidArgumentError,
  ROOT_HANDLE,
  type Candidates,
  type DraftHead,
  type DraftHeadInfo,
  type Expansion,
  type ExpandOptions,
  type ObserveOptions,
  type ParallelExpansion,
  type ParallelOptions,
} from '@gumiho/core';
import { checkTopK, emptyCandidates } from './candidates.js';

/** Options of {@link createLookupHead}. */
export interface LookupHeadOptions {
  /** Longest n-gram to match (default 3). */
  readonly maxNgram?: number;
  /** Shortest n-gram to match (default 1). */
  readonly minNgram?: number;
  /** Only the last `window` tokens of the sequence are searched (default: all). */
  readonly window?: number;
}

/** Ranked continuations of the trailing n-gram of a token sequence. */
export interface LookupContinuations {
  /** The n-gram length that matched (0 when none did). */
  readonly ngram: number;
  /** Distinct continuation tokens, best first. */
  readonly tokens: number[];
  /** How often each followed the n-gram. */
  readonly counts: number[];
  /** Number of occurrences found. */
  readonly total: number;
}

/**
 * The continuations of the trailing n-gram of `sequence[0 .. length)` (read through `at`), for the
 * longest `n` from `maxNgram` down to `minNgram` that occurs earlier. Occurrences may overlap the
 * trailing n-gram but must be followed by a token inside the sequence.
 */
export function findContinuations(
  at: (index: number) => number,
  length: number,
  maxNgram: number,
  minNgram: number,
  window = length,
): LookupContinuations {
  const start = Math.max(0, length - window);
  for (let n = Math.min(maxNgram, length - 1); n >= minNgram; n--) {
    const counts = new Map<number, { count: number; last: number }>();
    let total = 0;
    // Occurrence [s, s + n) followed by the token at s + n, which must precede the end.
    for (let s = length - n - 1; s >= start; s--) {
      let match = true;
      for (let j = 0; j < n; j++) {
        if (at(s + j) !== at(length - n + j)) {
          match = false;
          break;
        }
      }
      if (!match) continue;
      const next = at(s + n);
      const entry = counts.get(next);
      if (entry) entry.count++;
      else counts.set(next, { count: 1, last: s });
      total++;
    }
    if (total > 0) {
      const ranked = [...counts.entries()].sort((a, b) => b[1].count - a[1].count || b[1].last - a[1].last);
      return { ngram: n, tokens: ranked.map(([token]) => token), counts: ranked.map(([, e]) => e.count), total };
    }
  }
  return { ngram: 0, tokens: [], counts: [], total: 0 };
}

/** The prompt-lookup head; see the module comment. */
export class LookupDraftHead implements DraftHead {
  readonly specificationVersion = 'v1' as const;
  readonly id = 'lookup';
  readonly info: DraftHeadInfo = { serialDepth: Infinity, parallelHeads: 0, parallelBranchDepth: 0 };
  readonly maxNgram: number;
  readonly minNgram: number;
  readonly window: number | undefined;
  private context: Int32Array = new Int32Array(0);
  private observed = false;
  /** Per handle of the round: parent handle and token (root: -1 and the context's last token). */
  private parents: number[] = [];
  private tokens: number[] = [];

  constructor(options: LookupHeadOptions = {}) {
    const maxNgram = options.maxNgram ?? 3;
    const minNgram = options.minNgram ?? 1;
    if (!Number.isInteger(minNgram) || minNgram < 1) throw new InvalidArgumentError('minNgram', `minNgram must be a positive integer, got ${minNgram}.`);
    if (!Number.isInteger(maxNgram) || maxNgram < minNgram) {
      throw new InvalidArgumentError('maxNgram', `maxNgram must be an integer >= minNgram (${minNgram}), got ${maxNgram}.`);
    }
    if (options.window !== undefined && (!Number.isInteger(options.window) || options.window < 2)) {
      throw new InvalidArgumentError('window', `window must be an integer >= 2, got ${options.window}.`);
    }
    this.maxNgram = maxNgram;
    this.minNgram = minNgram;
    this.window = options.window;
  }

  reset(): void {
    this.context = new Int32Array(0);
    this.observed = false;
    this.parents = [];
    this.tokens = [];
  }

  async observe(options: ObserveOptions): Promise<Expansion> {
    checkTopK(options.topK);
    if (options.context.length < 1) {
      throw new InvalidArgumentError('context', 'observe(): the committed context (root included) is empty.');
    }
    this.context = options.context.slice();
    this.observed = true;
    this.parents = [-1];
    this.tokens = [this.context[this.context.length - 1]!];
    return { handles: Int32Array.of(ROOT_HANDLE), candidates: this.candidatesFor([ROOT_HANDLE], options.topK) };
  }

  async expand(options: ExpandOptions): Promise<Expansion> {
    checkTopK(options.topK);
    const n = options.parents.length;
    if (options.tokens.length !== n) {
      throw new InvalidArgumentError('tokens', `expand(): ${options.tokens.length} tokens for ${n} parents; pass one token per node.`);
    }
    if (!this.observed) throw new InvalidArgumentError('parents', 'The lookup head has no root yet.', { fix: 'call observe() at the start of each round.' });
    const handles = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const parent = options.parents[i]!;
      if (!Number.isInteger(parent) || parent < 0 || parent >= this.parents.length) {
        throw new InvalidArgumentError('parents', `parent handle ${parent} is not a node of this round (valid: 0..${this.parents.length - 1}).`);
      }
      handles[i] = this.parents.length;
      this.parents.push(parent);
      this.tokens.push(options.tokens[i]!);
    }
    return { handles, candidates: this.candidatesFor(Array.from(handles), options.topK) };
  }

  parallel(_options: ParallelOptions): Promise<ParallelExpansion> {
    return Promise.reject(new InvalidArgumentError('parallel', 'The lookup draft head has no parallel heads (info.parallelHeads is 0).'));
  }

  endRound(): void {
    this.parents.length = Math.min(this.parents.length, 1);
    this.tokens.length = this.parents.length;
  }

  dispose(): void {}

  private candidatesFor(handles: readonly number[], k: number): Candidates {
    const out = emptyCandidates(handles.length, k);
    const context = this.context;
    handles.forEach((handle, row) => {
      // The node's path below the root, root's child first.
      const path: number[] = [];
      for (let h = handle; h !== ROOT_HANDLE; h = this.parents[h]!) path.push(this.tokens[h]!);
      path.reverse();
      const length = context.length + path.length;
      const at = (index: number): number => (index < context.length ? context[index]! : path[index - context.length]!);
      const found = findContinuations(at, length, this.maxNgram, this.minNgram, this.window ?? length);
      const count = Math.min(k, found.tokens.length);
      for (let j = 0; j < count; j++) {
        out.tokens[row * k + j] = found.tokens[j]!;
        out.logProbs[row * k + j] = Math.log(found.counts[j]! / found.total);
      }
    });
    return out;
  }
}

/** Creates a prompt n-gram lookup head (`maxNgram` 3 and `minNgram` 1 by default). */
export function createLookupHead(options: LookupHeadOptions = {}): LookupDraftHead {
  return new LookupDraftHead(options);
}
