/**
 * The draft heads' programs, written once against core's {@link Ops} (symbolic shapes; `build`
 * never reads input values, so a tracing backend compiles each program once):
 *
 * - {@link serialStepProgram}: the serial part (Gumiho 1.2 / EAGLE): `fc` over
 *   `[e(token) ; feature]`, N Llama decoder layers over the draft KV cache (layer 0 without input
 *   norm, no final norm), and the target's LM head on chosen rows. One program for observing
 *   committed pairs and for expanding speculative nodes: only the rows and the mask differ.
 * - {@link gumihoMlpProgram}: Gumiho's parallel MLP heads (1.3) for `r` branches at once.
 * - {@link medusaProgram}: Medusa heads (residual SiLU blocks) on target hidden states.
 *
 * Not the head logic: handles, masks and top-k live in the head classes.
 */
import type { Ops, ProgramDefinition, TensorRef, WeightRef } from '@gumiho/core';
import { mlpWeightName } from './weights.js';

/** Sizes of a serial part. */
export interface SerialShape {
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly fcBias: boolean;
}

/** Names of the shared weights a head reads from its (layered) weight store. */
export interface SharedWeightNames {
  /** Token embedding `[V, H]` (the head's own `embed_tokens.weight`, or the target's). */
  readonly embedding: string;
  /** The target's LM head `[V, H]`. */
  readonly lmHead: string;
  /** Prefix of the head's own weights in the store (`fc.weight` is read as `${prefix}fc.weight`). */
  readonly prefix: string;
}

/** Name of the draft KV cache in {@link serialStepProgram}'s `caches`. */
export const DRAFT_CACHE = 'draft';

/** Inputs of {@link serialStepProgram}. */
export type SerialInput = 'hidden' | 'tokens' | 'positions' | 'mask' | 'logitRows';
/** Outputs of {@link serialStepProgram}. */
export type SerialOutput = 'fused' | 'out' | 'logits';

/**
 * One serial step over `n` rows: row `i` consumes the pair (`hidden[i]`, `tokens[i]`) at position
 * `positions[i]`, attends over the draft cache's existing rows and the new rows under the additive
 * `mask [n, keys]` (`keys = cache rows + n`), and appends its keys/values to the cache.
 * Outputs: `fused [n, H]` (the `fc` output, which the MLP heads reuse), `out [n, H]` (the last
 * layer's output, ≈ the target's next hidden state) and `logits [m, V]` for `logitRows [m]`.
 */
export function serialStepProgram(
  shape: SerialShape,
  names: SharedWeightNames,
  cacheCapacity: number,
): ProgramDefinition<SerialInput, SerialOutput> {
  const { hiddenSize: H, layers, heads, kvHeads, headDim, rmsNormEps: eps, ropeTheta: theta } = shape;
  return {
    name: `draft-serial-${layers}l`,
    // Drafts are only proposals the target verifies: backends may use reduced precision.
    precision: 'draft',
    inputs: {
      hidden: { dtype: 'float32', shape: ['n', H] },
      tokens: { dtype: 'int32', shape: ['n'] },
      positions: { dtype: 'int32', shape: ['n'] },
      mask: { dtype: 'float32', shape: ['n', 'keys'] },
      logitRows: { dtype: 'int32', shape: ['m'] },
    },
    caches: { [DRAFT_CACHE]: { layers, kvHeads, headDim, capacity: cacheCapacity } },
    build(ops, inputs, context) {
      const w = (name: string) => context.weight(names.prefix + name);
      const embedded = ops.embedding(context.weight(names.embedding), inputs.tokens);
      // Embedding FIRST, then the feature (digest 1.1 step 1).
      const fused = ops.linear(ops.concat([embedded, inputs.hidden], 1), w('fc.weight'), shape.fcBias ? w('fc.bias') : undefined);
      let h = fused;
      for (let layer = 0; layer < layers; layer++) {
        const p = `layers.${layer}.`;
        // EAGLE's quirk: layer 0 has no input RMSNorm.
        const x = layer === 0 ? h : ops.rmsNorm(h, w(`${p}input_layernorm.weight`), eps);
        const q = ops.rope(ops.linear(x, w(`${p}self_attn.q_proj.weight`)), inputs.positions, { heads, headDim, theta });
        const k = ops.rope(ops.linear(x, w(`${p}self_attn.k_proj.weight`)), inputs.positions, { heads: kvHeads, headDim, theta });
        const v = ops.linear(x, w(`${p}self_attn.v_proj.weight`));
        const attended = ops.attention(q, k, v, { kv: context.kv(DRAFT_CACHE, layer), mask: inputs.mask, heads, kvHeads, headDim });
        h = ops.add(h, ops.linear(attended, w(`${p}self_attn.o_proj.weight`)));
        const m = ops.rmsNorm(h, w(`${p}post_attention_layernorm.weight`), eps);
        const gate = ops.silu(ops.linear(m, w(`${p}mlp.gate_proj.weight`)));
        const up = ops.linear(m, w(`${p}mlp.up_proj.weight`));
        h = ops.add(h, ops.linear(ops.mul(gate, up), w(`${p}mlp.down_proj.weight`)));
      }
      // No final norm: the last layer's output goes straight into the target's LM head.
      const logits = ops.linear(ops.gatherRows(h, inputs.logitRows), context.weight(names.lmHead));
      return { fused, out: h, logits };
    },
  };
}

/** `y = y + SiLU(W y + b)` for blocks `first..blocks-1` of MLP head `head`. */
function residualBlocks(ops: Ops, y: TensorRef, head: number, first: number, blocks: number, w: (name: string) => WeightRef): TensorRef {
  let out = y;
  for (let block = first; block < blocks; block++) {
    out = ops.add(out, ops.silu(ops.linear(out, w(mlpWeightName(head, block, 'weight')), w(mlpWeightName(head, block, 'bias')))));
  }
  return out;
}

/** Sizes of a set of parallel MLP heads. */
export interface MlpShape {
  readonly hiddenSize: number;
  readonly heads: number;
  readonly blocks: number;
  readonly fcBias: boolean;
}

/** Inputs of {@link gumihoMlpProgram}. */
export type GumihoMlpInput = 'first' | 'hidden' | 'tokens';

/**
 * Gumiho's parallel heads for `r` branches: `z = [first ; fc([e(tokens) ; hidden])]` (`2H`), then
 * per head block 0 `y = SiLU(W0 z + b0)` and blocks `1..` `y = y + SiLU(Wk y + bk)`, then the LM
 * head. Output `logits [heads * r, V]`, head-major (rows `i*r .. i*r + r - 1` are head `i`).
 */
export function gumihoMlpProgram(shape: MlpShape, names: SharedWeightNames): ProgramDefinition<GumihoMlpInput, 'logits'> {
  const H = shape.hiddenSize;
  return {
    name: `gumiho-mlp-${shape.heads}x${shape.blocks}`,
    // Drafts are only proposals the target verifies: backends may use reduced precision.
    precision: 'draft',
    inputs: {
      first: { dtype: 'float32', shape: ['r', H] },
      hidden: { dtype: 'float32', shape: ['r', H] },
      tokens: { dtype: 'int32', shape: ['r'] },
    },
    build(ops, inputs, context) {
      const w = (name: string) => context.weight(names.prefix + name);
      const embedded = ops.embedding(context.weight(names.embedding), inputs.tokens);
      const second = ops.linear(ops.concat([embedded, inputs.hidden], 1), w('fc.weight'), shape.fcBias ? w('fc.bias') : undefined);
      const z = ops.concat([inputs.first, second], 1);
      return { logits: gumihoMlpHeads(ops, z, shape, (name) => context.weight(name), names) };
    },
  };
}

/**
 * Gumiho's MLP heads on `z [r, 2H]`, then the LM head: logits `[heads * r, V]`, head-major.
 * The body of {@link gumihoMlpProgram}, for programs that build `z` differently.
 */
export function gumihoMlpHeads(
  ops: Ops,
  z: TensorRef,
  shape: MlpShape,
  weight: (name: string) => WeightRef,
  names: Pick<SharedWeightNames, 'lmHead' | 'prefix'>,
): TensorRef {
  const w = (name: string) => weight(names.prefix + name);
  const states: TensorRef[] = [];
  for (let head = 0; head < shape.heads; head++) {
    const y = ops.silu(ops.linear(z, w(mlpWeightName(head, 0, 'weight')), w(mlpWeightName(head, 0, 'bias'))));
    states.push(residualBlocks(ops, y, head, 1, shape.blocks, w));
  }
  const stacked = states.length === 1 ? states[0]! : ops.concat(states, 0);
  return ops.linear(stacked, weight(names.lmHead));
}

/**
 * Medusa heads on target hidden states `hidden [r, H]`: per head `y = y + SiLU(Wk y + bk)` for
 * every block, then the LM head. Output `logits [heads * r, V]`, head-major.
 */
export function medusaProgram(shape: MlpShape, names: Pick<SharedWeightNames, 'lmHead' | 'prefix'>): ProgramDefinition<'hidden', 'logits'> {
  return {
    name: `medusa-${shape.heads}x${shape.blocks}`,
    // Drafts are only proposals the target verifies: backends may use reduced precision.
    precision: 'draft',
    inputs: { hidden: { dtype: 'float32', shape: ['r', shape.hiddenSize] } },
    build(ops, inputs, context) {
      const w = (name: string) => context.weight(names.prefix + name);
      const states: TensorRef[] = [];
      for (let head = 0; head < shape.heads; head++) states.push(residualBlocks(ops, inputs.hidden, head, 0, shape.blocks, w));
      const stacked = states.length === 1 ? states[0]! : ops.concat(states, 0);
      return { logits: ops.linear(stacked, context.weight(names.lmHead)) };
    },
  };
}
