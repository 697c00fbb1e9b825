/**
 * Test helpers: a deterministic fake {@link DraftHead} that implements the handle protocol
 * without any model, so builders (and decoder-level tests) can run in microseconds.
 *
 * Its draft distribution for a node depends only on the node's token path (and, for parallel
 * heads, on the branch's `first` node too, so quirk Q2 is observable): logits are hashes of
 * (path, token), turned into log-probabilities. It records every call for protocol assertions.
 */
import {
  InvalidArgumentError,
  ROOT_HANDLE,
  topK as topKOf,
  logSoftmax,
  type Candidates,
  type DraftHead,
  type DraftHeadInfo,
  type ExpandOptions,
  type Expansion,
  type ObserveOptions,
  type ParallelExpansion,
  type ParallelOptions,
} from '@gumiho/core';

/** Options of {@link createMockDraftHead}. */
export interface MockDraftHeadOptions {
  /** Vocabulary size of the fake distributions. */
  readonly vocabSize: number;
  /** Serial levels per round (default Infinity: an autoregressive head). */
  readonly serialDepth?: number;
  /** Parallel heads (default 0). */
  readonly parallelHeads?: number;
  /** Depth of the branches `parallel` expects (default 2 when there are parallel heads and serialDepth >= 2, else 0). */
  readonly parallelBranchDepth?: number;
  /** Changes every distribution (default 0). */
  readonly seed?: number;
  /** Sharpness of the fake logits (default 4): larger makes the top candidates more dominant. */
  readonly scale?: number;
  /**
   * Custom draft logits instead of the hashed ones: called with the node's token path (context,
   * root included, then drafts), the parallel head index (undefined for the serial part) and, for
   * parallel heads, the `first` node's path. Lets tests build heads that guess a fake target well.
   */
  readonly logits?: (path: readonly number[], parallelHead: number | undefined, firstPath: readonly number[] | undefined) => ArrayLike<number>;
  /** Identifier (default `mock`). */
  readonly id?: string;
}

/** One recorded call of the mock head. */
export type MockDraftHeadCall =
  | { readonly method: 'observe'; readonly topK: number; readonly contextLength: number }
  | { readonly method: 'expand'; readonly parents: Int32Array; readonly tokens: Int32Array; readonly topK: number; readonly maskMode: 'tree' | 'causal' }
  | {
      readonly method: 'parallel';
      readonly first: Int32Array | undefined;
      readonly parents: Int32Array | undefined;
      readonly tokens: Int32Array | undefined;
      readonly topK: number;
    }
  | { readonly method: 'endRound' }
  | { readonly method: 'reset' };

/** The fake head, with its call log and direct access to its distributions. */
export interface MockDraftHead extends DraftHead {
  /** Every call since creation (or since `calls.length = 0`). */
  readonly calls: MockDraftHeadCall[];
  /** The log-probabilities the head uses after the token path `path` (root token last of the context). */
  serialLogProbs(path: readonly number[]): Float32Array;
  /** The log-probabilities of parallel head `head` for a branch given by its key path and `first` path. */
  parallelLogProbs(branchPath: readonly number[], firstPath: readonly number[] | undefined, head: number): Float32Array;
  /** The token path (context then drafts) of a live handle. */
  pathOf(handle: number): readonly number[];
}

function mix(hash: number, value: number): number {
  let h = Math.imul(hash ^ (value + 0x9e3779b9), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Creates a deterministic fake draft head. Handles are issued per round; `endRound` forgets all
 * but the root. Throws {@link InvalidArgumentError} on unknown handles, like a real head should.
 */
export function createMockDraftHead(options: MockDraftHeadOptions): MockDraftHead {
  const vocab = options.vocabSize;
  if (!Number.isInteger(vocab) || vocab < 2) {
    throw new InvalidArgumentError('vocabSize', `vocabSize must be an integer >= 2, got ${vocab}.`, { fix: 'use e.g. 16.' });
  }
  const parallelHeads = options.parallelHeads ?? 0;
  const serialDepth = options.serialDepth ?? Infinity;
  const info: DraftHeadInfo = {
    serialDepth,
    parallelHeads,
    parallelBranchDepth: options.parallelBranchDepth ?? (parallelHeads > 0 && serialDepth >= 2 ? 2 : 0),
  };
  const seed = options.seed ?? 0;
  const scale = options.scale ?? 4;
  const calls: MockDraftHeadCall[] = [];
  let paths = new Map<number, readonly number[]>();
  let nextHandle = 1;
  let rootPath: readonly number[] = [];

  const logits = new Float32Array(vocab);
  const distribution = (key: number): Float32Array => {
    for (let v = 0; v < vocab; v++) logits[v] = (mix(key, v) / 4294967296) * scale;
    return logSoftmax(logits, new Float32Array(vocab));
  };
  const keyOf = (path: readonly number[], salt: number): number => path.reduce((h, t) => mix(h, t), mix(seed, salt));
  const custom = options.logits;
  const fromCustom = (values: ArrayLike<number>): Float32Array => {
    if (values.length !== vocab) {
      throw new InvalidArgumentError('logits', `The mock head's logits function returned ${values.length} values, expected ${vocab}.`, {
        fix: 'return one logit per vocabulary token.',
      });
    }
    return logSoftmax(values, new Float32Array(vocab));
  };
  const serialLogProbs = (path: readonly number[]): Float32Array =>
    custom ? fromCustom(custom(path, undefined, undefined)) : distribution(keyOf(path, 1));
  const parallelLogProbs = (branchPath: readonly number[], firstPath: readonly number[] | undefined, head: number): Float32Array =>
    custom ? fromCustom(custom(branchPath, head, firstPath)) : distribution(mix(keyOf(branchPath, 2 + head), firstPath ? keyOf(firstPath, 99) : 0));

  const candidatesOf = (rows: Float32Array[], k: number): Candidates => {
    const kk = Math.min(k, vocab);
    const tokens = new Int32Array(rows.length * kk);
    const logProbs = new Float32Array(rows.length * kk);
    const indices = new Int32Array(kk);
    const values = new Float32Array(kk);
    rows.forEach((row, r) => {
      topKOf(row, kk, indices, values);
      tokens.set(indices, r * kk);
      logProbs.set(values, r * kk);
    });
    return { rows: rows.length, k: kk, tokens, logProbs };
  };
  const pathOf = (handle: number): readonly number[] => {
    const path = paths.get(handle);
    if (!path) {
      throw new InvalidArgumentError('parents', `Unknown draft handle ${handle} (handles live for one round).`, {
        fix: 'pass handles returned by observe/expand in this round.',
      });
    }
    return path;
  };

  return {
    specificationVersion: 'v1',
    id: options.id ?? 'mock',
    info,
    calls,
    serialLogProbs,
    parallelLogProbs,
    pathOf,
    reset() {
      calls.push({ method: 'reset' });
      paths = new Map();
      rootPath = [];
    },
    async observe(observeOptions: ObserveOptions): Promise<Expansion> {
      calls.push({ method: 'observe', topK: observeOptions.topK, contextLength: observeOptions.context.length });
      rootPath = Array.from(observeOptions.context);
      paths = new Map([[ROOT_HANDLE, rootPath]]);
      nextHandle = 1;
      return { handles: Int32Array.of(ROOT_HANDLE), candidates: candidatesOf([serialLogProbs(rootPath)], observeOptions.topK) };
    },
    async expand(expandOptions: ExpandOptions): Promise<Expansion> {
      calls.push({
        method: 'expand',
        parents: expandOptions.parents.slice(),
        tokens: expandOptions.tokens.slice(),
        topK: expandOptions.topK,
        maskMode: expandOptions.maskMode ?? 'tree',
      });
      const handles = new Int32Array(expandOptions.tokens.length);
      const rows: Float32Array[] = [];
      expandOptions.tokens.forEach((token, i) => {
        const path = [...pathOf(expandOptions.parents[i]!), token];
        const handle = nextHandle++;
        paths.set(handle, path);
        handles[i] = handle;
        rows.push(serialLogProbs(path));
      });
      return { handles, candidates: candidatesOf(rows, expandOptions.topK) };
    },
    async parallel(parallelOptions: ParallelOptions): Promise<ParallelExpansion> {
      calls.push({
        method: 'parallel',
        first: parallelOptions.first?.slice(),
        parents: parallelOptions.parents?.slice(),
        tokens: parallelOptions.tokens?.slice(),
        topK: parallelOptions.topK,
      });
      const branches = info.parallelBranchDepth === 0 ? 1 : (parallelOptions.tokens?.length ?? 0);
      const heads: Candidates[] = [];
      for (let h = 0; h < parallelHeads; h++) {
        const rows: Float32Array[] = [];
        for (let r = 0; r < branches; r++) {
          if (info.parallelBranchDepth === 0) {
            rows.push(parallelLogProbs(rootPath, undefined, h));
          } else {
            const branchPath = [...pathOf(parallelOptions.parents![r]!), parallelOptions.tokens![r]!];
            const first = parallelOptions.first ? pathOf(parallelOptions.first[r]!) : undefined;
            rows.push(parallelLogProbs(branchPath, first, h));
          }
        }
        heads.push(candidatesOf(rows, parallelOptions.topK));
      }
      return { heads };
    },
    endRound() {
      calls.push({ method: 'endRound' });
      paths = new Map([[ROOT_HANDLE, rootPath]]);
    },
    dispose() {},
  };
}
