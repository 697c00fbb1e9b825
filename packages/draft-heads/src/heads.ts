/**
 * The weight-based draft heads: Gumiho (serial Transformer for depths 1-2 plus parallel MLP heads),
 * EAGLE-2 (the serial part alone, run autoregressively) and Medusa (parallel heads on the target's
 * last hidden state). Each implements core's {@link DraftHead} protocol and shares the target's
 * embedding and LM head through a layered weight store.
 *
 * Not a tree builder: which nodes to expand is decided in `@gumiho/tree`.
 */
import {
  InvalidArgumentError,
  ModelLoadError,
  type Candidates,
  type DraftHead,
  type DraftHeadInfo,
  type Expansion,
  type ExpandOptions,
  type ObserveOptions,
  type ParallelExpansion,
  type ParallelOptions,
  type Program,
  type WeightStore,
} from '@gumiho/core';
import { LayeredWeightStore } from '@gumiho/safetensors';
import { candidatesFromLogits, checkTopK, emptyCandidates } from './candidates.js';
import { checkHeadsMatchTarget, type DraftHeadKind, type DraftHeadsConfig } from './config.js';
import { gumihoMlpProgram, medusaProgram, type GumihoMlpInput, type SharedWeightNames } from './programs.js';
import { SerialPart, type DraftTarget } from './serial-part.js';
import { PrefixedWeightStore, checkDraftHeadWeights } from './weights.js';

export type { DraftTarget } from './serial-part.js';

/** Options of {@link createGumihoHead}, {@link createEagleHead} and {@link createMedusaHead}. */
export interface WeightedHeadOptions {
  /** The target model (or the parts of it a head needs). */
  readonly target: DraftTarget;
  /** The head's own weights, in the checkpoint's key layout (see `weights.ts`). */
  readonly weights: WeightStore;
  readonly config: DraftHeadsConfig;
  /** Committed rows the draft KV cache holds (default: the target cache's capacity). */
  readonly maxContext?: number;
  /** Speculative draft rows one round may add (default 512). */
  readonly maxSpeculativeRows?: number;
  /**
   * Gumiho and Medusa: run only the first `parallelHeads` MLP heads (default: all of
   * `config.mlpHeads`). Deep levels rarely make it into a small tree, so a small verification
   * budget can skip their cost; `info.parallelHeads` reports the number used.
   */
  readonly parallelHeads?: number;
}

/** The number of parallel heads to run: `options.parallelHeads`, checked, or all. */
function usedParallelHeads(options: WeightedHeadOptions): number {
  const available = options.config.mlpHeads;
  const wanted = options.parallelHeads ?? available;
  if (!Number.isInteger(wanted) || wanted < 1 || wanted > available) {
    throw new InvalidArgumentError('parallelHeads', `parallelHeads must be an integer in 1..${available} (the heads in the checkpoint), got ${wanted}.`);
  }
  return wanted;
}

/** Prefix under which a head's own weights appear in its layered store. */
const PREFIX = 'draft-head.';

interface Prepared {
  readonly store: WeightStore;
  readonly names: SharedWeightNames;
}

function prepare(options: WeightedHeadOptions, kinds: readonly DraftHeadKind[], factory: string): Prepared {
  const { target, weights, config } = options;
  if (!kinds.includes(config.kind)) {
    throw new InvalidArgumentError('config', `${factory}() cannot run heads of kind "${config.kind}" (it takes ${kinds.map((k) => `"${k}"`).join(' or ')}).`, {
      fix: 'use createDraftHead() or loadDraftHeads(), which pick the factory from config.kind.',
    });
  }
  checkHeadsMatchTarget(config, target);
  checkDraftHeadWeights(config, weights);
  const H = config.hiddenSize;
  const V = config.vocabSize;
  for (const name of [target.lmHeadWeight, ...(weights.has('embed_tokens.weight') || config.kind === 'medusa' ? [] : [target.embeddingWeight])]) {
    const tensor = target.weights.get(name);
    if (!tensor || tensor.shape.length !== 2 || tensor.shape[0] !== V || tensor.shape[1] !== H) {
      throw new ModelLoadError(
        tensor
          ? `The target's weight "${name}" has shape [${tensor.shape.join(', ')}], expected [${V}, ${H}] for the draft head to share it.`
          : `The target's weights lack "${name}", which the draft head shares (embedding or LM head).`,
        { fix: 'pass the TargetModel the heads were trained for.' },
      );
    }
  }
  return {
    store: new LayeredWeightStore([new PrefixedWeightStore(weights, PREFIX), target.weights]),
    names: {
      prefix: PREFIX,
      embedding: weights.has('embed_tokens.weight') ? `${PREFIX}embed_tokens.weight` : target.embeddingWeight,
      lmHead: target.lmHeadWeight,
    },
  };
}

/**
 * A head with a serial part: EAGLE-2 (`id: 'eagle2'`) or Gumiho (`id: 'gumiho'`, which adds the
 * parallel MLP heads). Handles are per round: {@link ROOT_HANDLE} after `observe`, then one per
 * expanded node; `endRound` invalidates all but the root.
 */
export class SerialDraftHead implements DraftHead {
  readonly specificationVersion = 'v1' as const;
  readonly id: string;
  readonly info: DraftHeadInfo;
  readonly config: DraftHeadsConfig;
  /** The serial part (draft KV cache and node states), for inspection and tests. */
  readonly serial: SerialPart;
  protected readonly target: DraftTarget;
  protected readonly store: WeightStore;
  protected readonly names: SharedWeightNames;

  constructor(id: string, info: DraftHeadInfo, options: WeightedHeadOptions, prepared: Prepared) {
    this.id = id;
    this.info = info;
    this.config = options.config;
    this.target = options.target;
    this.store = prepared.store;
    this.names = prepared.names;
    this.serial = new SerialPart({
      target: options.target,
      store: prepared.store,
      config: options.config,
      names: prepared.names,
      ...(options.maxContext !== undefined ? { maxContext: options.maxContext } : {}),
      ...(options.maxSpeculativeRows !== undefined ? { maxSpeculativeRows: options.maxSpeculativeRows } : {}),
    });
  }

  reset(): void {
    this.serial.reset();
  }

  observe(options: ObserveOptions): Promise<Expansion> {
    return this.serial.observe(options.hidden, options.tokens, options.topK);
  }

  expand(options: ExpandOptions): Promise<Expansion> {
    return this.serial.expand(options.parents, options.tokens, options.topK, options.maskMode);
  }

  parallel(_options: ParallelOptions): Promise<ParallelExpansion> {
    return Promise.reject(
      new InvalidArgumentError('parallel', `The ${this.id} draft head has no parallel heads (info.parallelHeads is 0).`, {
        fix: 'use a tree builder that only calls expand() with this head (for example the EAGLE-2 dynamic tree).',
      }),
    );
  }

  endRound(): void {
    this.serial.endRound();
  }

  dispose(): void {
    this.serial.dispose();
  }
}

/**
 * Gumiho: the serial part drafts depths 1-2, then the MLP heads draft depths 3.. in one program
 * run for all branches (`parallel`). Branch `r` feeds
 * `z = [fused(first[r]) ; fc([e(tokens[r]) ; out(parents[r])])]` to every head (digest 1.1, 1.3).
 */
export class GumihoDraftHead extends SerialDraftHead {
  private mlp: Promise<Program<GumihoMlpInput, 'logits'>> | undefined;

  override async parallel(options: ParallelOptions): Promise<ParallelExpansion> {
    checkTopK(options.topK);
    const { first, parents, tokens } = options;
    if (!first || !parents || !tokens) {
      throw new InvalidArgumentError('parallel', 'Gumiho parallel() needs `first`, `parents` and `tokens` (one entry per branch).', {
        fix: 'pass the depth-2 branch tokens, their parents (depth-1 handles) and the depth-1 handles whose fused input fills the first half of z.',
      });
    }
    const r = tokens.length;
    if (first.length !== r || parents.length !== r) {
      throw new InvalidArgumentError('parallel', `Gumiho parallel(): first (${first.length}), parents (${parents.length}) and tokens (${r}) must have one entry per branch.`);
    }
    const heads = this.info.parallelHeads;
    if (r === 0) return { heads: Array.from({ length: heads }, () => emptyCandidates(0, options.topK)) };
    const H = this.config.hiddenSize;
    const V = this.config.vocabSize;
    const firstRows = new Float32Array(r * H);
    const hidden = new Float32Array(r * H);
    for (let i = 0; i < r; i++) {
      const token = tokens[i]!;
      if (!Number.isInteger(token) || token < 0 || token >= V) {
        throw new InvalidArgumentError('tokens', `Token id ${token} is outside the vocabulary (0..${V - 1}).`);
      }
      firstRows.set(this.serial.fused(first[i]!, 'first handle'), i * H);
      hidden.set(this.serial.out(parents[i]!, 'parent handle'), i * H);
    }
    this.mlp ??= this.target.backend.compile(
      gumihoMlpProgram({ hiddenSize: H, heads, blocks: this.config.mlpBlocks, fcBias: this.config.fcBias }, this.names),
      this.store,
    );
    const program = await this.mlp;
    const result = await program.run({
      first: { dtype: 'float32', shape: [r, H], data: firstRows },
      hidden: { dtype: 'float32', shape: [r, H], data: hidden },
      tokens: { dtype: 'int32', shape: [r], data: tokens },
    });
    const logits = result.logits.data;
    return { heads: Array.from({ length: heads }, (_, head) => candidatesFromLogits(logits, V, options.topK, head * r, r)) };
  }

  override dispose(): void {
    super.dispose();
    const mlp = this.mlp;
    this.mlp = undefined;
    void mlp?.then((p) => p.dispose(), () => undefined);
  }
}

/**
 * Creates a Gumiho head (`config.kind === 'gumiho'`): `info.serialDepth` 2,
 * `info.parallelHeads` = `options.parallelHeads ?? config.mlpHeads`, `info.parallelBranchDepth` 2. Programs compile on
 * the target's backend at first use.
 */
export function createGumihoHead(options: WeightedHeadOptions): GumihoDraftHead {
  const prepared = prepare(options, ['gumiho'], 'createGumihoHead');
  return new GumihoDraftHead(
    'gumiho',
    { serialDepth: 2, parallelHeads: usedParallelHeads(options), parallelBranchDepth: 2 },
    options,
    prepared,
  );
}

/**
 * Creates an EAGLE-2 head (`config.kind === 'eagle2'`; a Gumiho config also works and uses
 * Gumiho's serial part alone): `info.serialDepth` Infinity, no parallel heads.
 */
export function createEagleHead(options: WeightedHeadOptions): SerialDraftHead {
  const prepared = prepare(options, ['eagle2', 'gumiho'], 'createEagleHead');
  return new SerialDraftHead('eagle2', { serialDepth: Infinity, parallelHeads: 0, parallelBranchDepth: 0 }, options, prepared);
}

/**
 * Medusa: `config.mlpHeads` heads on the root's target hidden state; head `i` predicts the token
 * `i + 1` levels below the root. `observe` runs all heads once and returns head 0's candidates as
 * the root's children; `parallel` returns every head's candidates (one row per branch asked for,
 * all equal, since the heads only see the root); there is no serial part.
 */
export class MedusaDraftHead implements DraftHead {
  readonly specificationVersion = 'v1' as const;
  readonly id = 'medusa';
  readonly info: DraftHeadInfo;
  readonly config: DraftHeadsConfig;
  private readonly target: DraftTarget;
  private readonly store: WeightStore;
  private readonly names: SharedWeightNames;
  private program: Promise<Program<'hidden', 'logits'>> | undefined;
  /** Logits `[heads, V]` of the current root, or undefined before `observe`. */
  private logits: Float32Array | undefined;

  constructor(options: WeightedHeadOptions, prepared: Prepared) {
    this.config = options.config;
    this.target = options.target;
    this.store = prepared.store;
    this.names = prepared.names;
    this.info = { serialDepth: 0, parallelHeads: usedParallelHeads(options), parallelBranchDepth: 0 };
  }

  reset(): void {
    this.logits = undefined;
  }

  async observe(options: ObserveOptions): Promise<Expansion> {
    checkTopK(options.topK);
    const H = this.config.hiddenSize;
    const m = options.tokens.length;
    if (m < 1 || options.hidden.length !== m * H) {
      throw new InvalidArgumentError('hidden', `observe(): expected ${Math.max(m, 1)} hidden rows of ${H} values (one per token), got ${options.hidden.length} values.`);
    }
    this.program ??= this.target.backend.compile(
      medusaProgram({ hiddenSize: H, heads: this.info.parallelHeads, blocks: this.config.mlpBlocks, fcBias: false }, this.names),
      this.store,
    );
    const program = await this.program;
    const result = await program.run({ hidden: { dtype: 'float32', shape: [1, H], data: options.hidden.slice((m - 1) * H, m * H) } });
    this.logits = result.logits.data;
    return { handles: Int32Array.of(0), candidates: candidatesFromLogits(this.logits, this.config.vocabSize, options.topK, 0, 1) };
  }

  expand(_options: ExpandOptions): Promise<Expansion> {
    return Promise.reject(
      new InvalidArgumentError('expand', 'The medusa draft head has no serial part (info.serialDepth is 0).', {
        fix: 'call parallel() on the root branch instead.',
      }),
    );
  }

  async parallel(options: ParallelOptions): Promise<ParallelExpansion> {
    checkTopK(options.topK);
    const logits = this.logits;
    if (!logits) {
      throw new InvalidArgumentError('parallel', 'The medusa draft head has no root yet.', { fix: 'call observe() at the start of each round.' });
    }
    const rows = options.tokens?.length ?? options.parents?.length ?? options.first?.length ?? 1;
    const V = this.config.vocabSize;
    const heads: Candidates[] = [];
    for (let head = 0; head < this.info.parallelHeads; head++) {
      const one = candidatesFromLogits(logits, V, options.topK, head, 1);
      const all = emptyCandidates(rows, options.topK);
      for (let r = 0; r < rows; r++) {
        all.tokens.set(one.tokens, r * options.topK);
        all.logProbs.set(one.logProbs, r * options.topK);
      }
      heads.push(all);
    }
    return { heads };
  }

  endRound(): void {}

  dispose(): void {
    const program = this.program;
    this.program = undefined;
    void program?.then((p) => p.dispose(), () => undefined);
  }
}

/** Creates a Medusa head (`config.kind === 'medusa'`). */
export function createMedusaHead(options: WeightedHeadOptions): MedusaDraftHead {
  return new MedusaDraftHead(options, prepare(options, ['medusa'], 'createMedusaHead'));
}

/** Creates the head `config.kind` names (Gumiho, EAGLE-2 or Medusa). */
export function createDraftHead(options: WeightedHeadOptions): GumihoDraftHead | SerialDraftHead | MedusaDraftHead {
  switch (options.config.kind) {
    case 'gumiho':
      return createGumihoHead(options);
    case 'eagle2':
      return createEagleHead(options);
    case 'medusa':
      return createMedusaHead(options);
  }
}
