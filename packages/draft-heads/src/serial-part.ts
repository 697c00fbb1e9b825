/**
 * The serial part of Gumiho and EAGLE-2 heads: a small Llama decoder over `(feature, token)`
 * pairs with its own KV cache, plus the node-handle bookkeeping of core's `DraftHead` protocol.
 *
 * Draft rows and positions (digest 1.2, 3.2): committed row `p` holds the pair `(f_p, x_{p+1})`
 * at position `p`. After `observe`, the root is the last committed row (position `L - 1`, where
 * `L` is the number of committed rows); a speculative node's row sits at its parent's position
 * plus one (depth-1 nodes at `L`, depth-2 at `L + 1`, ...) and consumes
 * `(out(parent), token)`. Speculative rows are pending on the draft cache until `endRound`
 * rolls them back.
 *
 * Not a `DraftHead` by itself: the Gumiho and EAGLE-2 heads wrap it.
 */
import {
  ContextOverflowError,
  InvalidArgumentError,
  MASK_MIN,
  ROOT_HANDLE,
  type Expansion,
  type KvCache,
  type Program,
  type TargetModel,
  type WeightStore,
} from '@gumiho/core';
import { candidatesFromLogits, checkTopK, emptyCandidates } from './candidates.js';
import type { DraftHeadsConfig } from './config.js';
import { serialStepProgram, DRAFT_CACHE, type SerialInput, type SerialOutput, type SharedWeightNames } from './programs.js';

/**
 * What a weight-based head needs from its target: the backend to compile on, the weights holding
 * the shared embedding and LM head, and the configuration. A full {@link TargetModel} fits.
 */
export type DraftTarget = Pick<TargetModel, 'backend' | 'weights' | 'config' | 'embeddingWeight' | 'lmHeadWeight'> & {
  /** For messages. */
  readonly name?: string;
  /** When present, its capacity is the default committed-context limit of the draft cache. */
  readonly cache?: { readonly spec: { readonly capacity: number } };
};

/** Options shared by the serial part's users. */
export interface SerialPartOptions {
  readonly target: DraftTarget;
  /** The layered store (head weights over the target's). */
  readonly store: WeightStore;
  readonly config: DraftHeadsConfig;
  readonly names: SharedWeightNames;
  /** Committed rows the draft cache holds (default: the target cache's capacity, else `maxPositions`). */
  readonly maxContext?: number;
  /** Speculative rows one round may add (default 512). */
  readonly maxSpeculativeRows?: number;
}

/** Per-handle state of the serial part in the current round. */
interface NodeState {
  readonly parent: number;
  readonly depth: number;
  readonly position: number;
  /** Pending row of the draft cache (relative to the first pending row); -1 for the root. */
  readonly slot: number;
  readonly token: number;
  /** The `fc` output the row consumed `[H]`. */
  readonly fused: Float32Array;
  /** The last layer's output of the row `[H]`. */
  readonly out: Float32Array;
}

/** The serial part with its draft KV cache and node handles. */
export class SerialPart {
  readonly hiddenSize: number;
  readonly vocabSize: number;
  /** The draft KV cache (committed rows = observed context; pending rows = this round's nodes). */
  readonly cache: KvCache;
  /** Committed-row limit (the cache holds this plus the speculative budget). */
  readonly maxContext: number;
  private program: Promise<Program<SerialInput, SerialOutput>> | undefined;
  private readonly target: DraftTarget;
  private readonly store: WeightStore;
  private readonly config: DraftHeadsConfig;
  private readonly names: SharedWeightNames;
  private nodes: NodeState[] = [];

  constructor(options: SerialPartOptions) {
    const { config, target } = options;
    this.target = target;
    this.store = options.store;
    this.config = config;
    this.names = options.names;
    this.hiddenSize = config.hiddenSize;
    this.vocabSize = config.vocabSize;
    const maxContext = options.maxContext ?? target.cache?.spec.capacity ?? target.config.maxPositions;
    const speculative = options.maxSpeculativeRows ?? 512;
    for (const [name, value] of [['maxContext', maxContext], ['maxSpeculativeRows', speculative]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(name, `${name} must be a positive integer, got ${value}.`);
    }
    this.maxContext = maxContext;
    this.cache = target.backend.createKvCache({
      layers: config.serialLayers,
      kvHeads: config.numKeyValueHeads,
      headDim: config.headDim,
      capacity: maxContext + speculative,
    });
  }

  /** Number of handles in this round (root included); valid handles are `0 .. count - 1`. */
  get handleCount(): number {
    return this.nodes.length;
  }

  /** The `fc` output consumed by node `handle` `[H]` (the head's own copy: do not modify). */
  fused(handle: number, what = 'handle'): Float32Array {
    return this.node(handle, what).fused;
  }

  /** The output state of node `handle` `[H]` (the head's own copy: do not modify). */
  out(handle: number, what = 'handle'): Float32Array {
    return this.node(handle, what).out;
  }

  /** Depth of node `handle` (root 0). */
  depth(handle: number): number {
    return this.node(handle, 'handle').depth;
  }

  /** Parent handle of node `handle` (-1 for the root). */
  parent(handle: number): number {
    return this.node(handle, 'handle').parent;
  }

  /** Position id of node `handle`'s draft row. */
  position(handle: number): number {
    return this.node(handle, 'handle').position;
  }

  private node(handle: number, what: string): NodeState {
    if (this.nodes.length === 0) {
      throw new InvalidArgumentError(what, 'The draft head has no root yet.', { fix: 'call observe() at the start of each round, before expand() or parallel().' });
    }
    const node = Number.isInteger(handle) ? this.nodes[handle] : undefined;
    if (!node) {
      throw new InvalidArgumentError(what, `${what} ${handle} is not a node of this round (valid handles: 0..${this.nodes.length - 1}).`, {
        fix: 'pass handles returned by observe()/expand() since the last endRound().',
      });
    }
    return node;
  }

  private compiled(): Promise<Program<SerialInput, SerialOutput>> {
    this.program ??= this.target.backend.compile(serialStepProgram(
      {
        hiddenSize: this.config.hiddenSize,
        vocabSize: this.config.vocabSize,
        layers: this.config.serialLayers,
        heads: this.config.numAttentionHeads,
        kvHeads: this.config.numKeyValueHeads,
        headDim: this.config.headDim,
        rmsNormEps: this.config.rmsNormEps,
        ropeTheta: this.config.ropeTheta,
        fcBias: this.config.fcBias,
      },
      this.names,
      this.cache.spec.capacity,
    ), this.store);
    return this.program;
  }

  private checkTokens(tokens: Int32Array, what: string): void {
    for (const token of tokens) {
      if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize) {
        throw new InvalidArgumentError(what, `Token id ${token} is outside the vocabulary (0..${this.vocabSize - 1}).`);
      }
    }
  }

  private async run(hidden: Float32Array, tokens: Int32Array, positions: Int32Array, mask: Float32Array, logitRows: Int32Array) {
    const n = tokens.length;
    const program = await this.compiled();
    return program.run(
      {
        hidden: { dtype: 'float32', shape: [n, this.hiddenSize], data: hidden },
        tokens: { dtype: 'int32', shape: [n], data: tokens },
        positions: { dtype: 'int32', shape: [n], data: positions },
        mask: { dtype: 'float32', shape: [n, mask.length / n], data: mask },
        logitRows: { dtype: 'int32', shape: [logitRows.length], data: logitRows },
      },
      { [DRAFT_CACHE]: this.cache },
    );
  }

  /**
   * Consumes committed pairs `(hidden[i], tokens[i])`, commits them to the draft cache and makes
   * the last one the root; returns the root's top-`topK` children.
   */
  async observe(hidden: Float32Array, tokens: Int32Array, topK: number): Promise<Expansion> {
    checkTopK(topK);
    const H = this.hiddenSize;
    const m = tokens.length;
    if (m < 1) throw new InvalidArgumentError('tokens', 'observe() needs at least one new (hidden state, token) pair.');
    if (hidden.length !== m * H) {
      throw new InvalidArgumentError('hidden', `observe(): hidden has ${hidden.length} values, expected ${m} rows of ${H} (one per token).`);
    }
    this.checkTokens(tokens, 'tokens');
    this.endRound();
    const committed = this.cache.length;
    if (committed + m > this.maxContext) {
      throw new ContextOverflowError(`The draft head's cache holds ${this.maxContext} committed rows; ${committed} are used and ${m} more were observed.`, {
        fix: 'create the head with a larger maxContext (at least the target cache capacity).',
      });
    }
    const keys = committed + m;
    const positions = new Int32Array(m);
    const mask = new Float32Array(m * keys).fill(MASK_MIN);
    for (let i = 0; i < m; i++) {
      positions[i] = committed + i;
      mask.fill(0, i * keys, i * keys + committed + i + 1);
    }
    const result = await this.run(hidden, tokens, positions, mask, Int32Array.of(m - 1));
    this.cache.commit();
    const fused = result.fused.data;
    const out = result.out.data;
    this.nodes = [{
      parent: -1,
      depth: 0,
      position: committed + m - 1,
      slot: -1,
      token: tokens[m - 1]!,
      // Copies: program outputs need not outlive the next run on every backend.
      fused: fused.slice((m - 1) * H, m * H),
      out: out.slice((m - 1) * H, m * H),
    }];
    return { handles: Int32Array.of(ROOT_HANDLE), candidates: candidatesFromLogits(result.logits.data, this.vocabSize, topK) };
  }

  /**
   * Appends one speculative row per node (token `tokens[i]` under parent handle `parents[i]`),
   * returns the new handles and each node's top-`topK` children. `maskMode` `tree`: a row sees
   * the committed rows, its speculative ancestors and itself; `causal`: it also sees every
   * earlier speculative row (Gumiho's quirk Q1).
   */
  async expand(parents: Int32Array, tokens: Int32Array, topK: number, maskMode: 'tree' | 'causal' = 'tree'): Promise<Expansion> {
    checkTopK(topK);
    const n = parents.length;
    if (tokens.length !== n) {
      throw new InvalidArgumentError('tokens', `expand(): ${tokens.length} tokens for ${n} parents; pass one token per node.`);
    }
    if (maskMode !== 'tree' && maskMode !== 'causal') {
      throw new InvalidArgumentError('maskMode', `maskMode must be "tree" or "causal", got ${JSON.stringify(maskMode)}.`);
    }
    if (n === 0) return { handles: new Int32Array(0), candidates: emptyCandidates(0, topK) };
    this.checkTokens(tokens, 'tokens');
    const parentNodes = Array.from(parents, (parent) => this.node(parent, 'parent handle'));
    const H = this.hiddenSize;
    const committed = this.cache.length;
    const pending = this.cache.pending;
    const capacity = this.cache.spec.capacity;
    if (committed + pending + n > capacity) {
      throw new ContextOverflowError(`The draft cache has room for ${capacity - committed} speculative rows per round; ${pending} are used and ${n} more were asked for.`, {
        fix: 'draft smaller trees, or create the head with a larger maxSpeculativeRows.',
      });
    }
    const keys = committed + pending + n;
    const hidden = new Float32Array(n * H);
    const positions = new Int32Array(n);
    const mask = new Float32Array(n * keys).fill(MASK_MIN);
    const logitRows = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const parent = parentNodes[i]!;
      hidden.set(parent.out, i * H);
      positions[i] = parent.position + 1;
      logitRows[i] = i;
      const row = i * keys;
      mask.fill(0, row, row + committed);
      if (maskMode === 'causal') {
        mask.fill(0, row + committed, row + committed + pending + i + 1);
      } else {
        for (let a = parents[i]!; a !== ROOT_HANDLE; a = this.nodes[a]!.parent) mask[row + committed + this.nodes[a]!.slot] = 0;
        mask[row + committed + pending + i] = 0;
      }
    }
    const result = await this.run(hidden, tokens, positions, mask, logitRows);
    const fused = result.fused.data.slice();
    const out = result.out.data.slice();
    const handles = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const parent = parentNodes[i]!;
      handles[i] = this.nodes.length;
      this.nodes.push({
        parent: parents[i]!,
        depth: parent.depth + 1,
        position: parent.position + 1,
        slot: pending + i,
        token: tokens[i]!,
        fused: fused.subarray(i * H, (i + 1) * H),
        out: out.subarray(i * H, (i + 1) * H),
      });
    }
    return { handles, candidates: candidatesFromLogits(result.logits.data, this.vocabSize, topK) };
  }

  /** Drops the round's speculative rows and handles (the root stays valid until the next observe). */
  endRound(): void {
    this.cache.rollback();
    this.nodes.length = Math.min(this.nodes.length, 1);
  }

  /** Forgets all context. */
  reset(): void {
    this.cache.reset();
    this.nodes = [];
  }

  /** Frees the compiled program. */
  dispose(): void {
    const program = this.program;
    this.program = undefined;
    void program?.then((p) => p.dispose(), () => undefined);
  }
}
