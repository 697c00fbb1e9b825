/**
 * Test helpers (not exported): a tiny random target shaped like a `TargetModel` for draft heads,
 * and a float64 reference of the serial part and the MLP heads written directly from the method
 * digest (sections 1.2 and 1.3), independent of the op-set programs.
 */
import type { HostTensor, ModelConfig, WeightStore } from '@gumiho/core';
import { createCpuBackend } from '@gumiho/backend-cpu';
import { MapWeightStore } from '@gumiho/safetensors';
import type { DraftHeadsConfig } from './config.js';
import type { DraftTarget } from './serial-part.js';

/** splitmix32 floats in [0, 1). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** A random float32 tensor uniform in ±scale. */
export function randomTensor(shape: number[], random: () => number, scale = 1): HostTensor<'float32'> {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = scale * 2 * (random() - 0.5);
  return { dtype: 'float32', shape, data };
}

/** The tiny target configuration used by the tests (H=32, 2 heads / 1 kv head, vocab 64). */
export const TINY_CONFIG: ModelConfig = {
  modelType: 'llama',
  vocabSize: 64,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 16,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxPositions: 256,
  tieWordEmbeddings: false,
  bosTokenId: 0,
  eosTokenIds: [0],
};

/** A target-shaped object with random untied embedding and LM head on the CPU backend. */
export function tinyTarget(seed = 7, config: ModelConfig = TINY_CONFIG): DraftTarget & { readonly name: string } {
  const random = seeded(seed);
  const weights = new MapWeightStore();
  weights.set('model.embed_tokens.weight', randomTensor([config.vocabSize, config.hiddenSize], random, 1));
  weights.set('lm_head.weight', randomTensor([config.vocabSize, config.hiddenSize], random, 0.5));
  return {
    name: 'tiny-random',
    backend: createCpuBackend(),
    weights,
    config,
    embeddingWeight: 'model.embed_tokens.weight',
    lmHeadWeight: 'lm_head.weight',
    cache: { spec: { capacity: 128 } },
  };
}

/** Random target hidden states `[rows, H]`. */
export function randomHidden(rows: number, hiddenSize: number, seed: number): Float32Array {
  return randomTensor([rows, hiddenSize], seeded(seed), 1.5).data;
}

type F64 = Float64Array;

function get(store: WeightStore, name: string): Float32Array {
  const tensor = store.get(name);
  if (!tensor) throw new Error(`reference: missing ${name}`);
  return tensor.data;
}

/** `x [in] · Wᵀ` with `W [out, in]`, float64. */
function matvec(x: ArrayLike<number>, w: Float32Array, outFeatures: number, bias?: Float32Array): F64 {
  const inFeatures = x.length;
  const out = new Float64Array(outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    let sum = bias ? bias[o]! : 0;
    for (let i = 0; i < inFeatures; i++) sum += x[i]! * w[o * inFeatures + i]!;
    out[o] = sum;
  }
  return out;
}

function rms(x: F64, w: Float32Array, eps: number): F64 {
  let sum = 0;
  for (const v of x) sum += v * v;
  const scale = 1 / Math.sqrt(sum / x.length + eps);
  return x.map((v, i) => v * scale * w[i]!);
}

const silu = (v: number): number => v / (1 + Math.exp(-v));

function rope(x: F64, heads: number, headDim: number, position: number, theta: number): F64 {
  const out = new Float64Array(x.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let f = 0; f < half; f++) {
      const angle = position / Math.pow(theta, (2 * f) / headDim);
      const a = x[h * headDim + f]!;
      const b = x[h * headDim + f + half]!;
      out[h * headDim + f] = a * Math.cos(angle) - b * Math.sin(angle);
      out[h * headDim + f + half] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
  return out;
}

/** One row of the reference serial computation. */
export interface ReferenceRow {
  readonly feature: ArrayLike<number>;
  readonly token: number;
  readonly position: number;
}

/** Outputs of {@link referenceSerial}, per row. */
export interface ReferenceSerialResult {
  readonly fused: F64[];
  readonly out: F64[];
  readonly logits: F64[];
}

/**
 * The serial part in float64 over `rows`, row `i` attending to rows `j` with `visible(i, j)`.
 * `weights` maps head names (`fc.weight`, `layers.0...`) and the target's names.
 */
export function referenceSerial(
  config: DraftHeadsConfig,
  head: WeightStore,
  target: DraftTarget,
  rows: readonly ReferenceRow[],
  visible: (query: number, key: number) => boolean,
): ReferenceSerialResult {
  const H = config.hiddenSize;
  const embed = head.has('embed_tokens.weight') ? get(head, 'embed_tokens.weight') : get(target.weights, target.embeddingWeight);
  const lm = get(target.weights, target.lmHeadWeight);
  const { numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim, rmsNormEps: eps, ropeTheta: theta, intermediateSize: I } = config;
  const fused = rows.map((row) => {
    const x = new Float64Array(2 * H);
    for (let i = 0; i < H; i++) x[i] = embed[row.token * H + i]!;
    for (let i = 0; i < H; i++) x[H + i] = row.feature[i]!;
    return matvec(x, get(head, 'fc.weight'), H, config.fcBias ? get(head, 'fc.bias') : undefined);
  });
  let h = fused.map((x) => x.slice());
  for (let layer = 0; layer < config.serialLayers; layer++) {
    const p = `layers.${layer}.`;
    const a = h.map((x) => (layer === 0 ? x : rms(x, get(head, `${p}input_layernorm.weight`), eps)));
    const q = a.map((x, i) => rope(matvec(x, get(head, `${p}self_attn.q_proj.weight`), heads * headDim), heads, headDim, rows[i]!.position, theta));
    const k = a.map((x, i) => rope(matvec(x, get(head, `${p}self_attn.k_proj.weight`), kvHeads * headDim), kvHeads, headDim, rows[i]!.position, theta));
    const v = a.map((x) => matvec(x, get(head, `${p}self_attn.v_proj.weight`), kvHeads * headDim));
    const group = heads / kvHeads;
    h = h.map((x, i) => {
      const attended = new Float64Array(heads * headDim);
      for (let hh = 0; hh < heads; hh++) {
        const kvh = Math.floor(hh / group);
        const scores: number[] = [];
        const keys: number[] = [];
        for (let j = 0; j < rows.length; j++) {
          if (!visible(i, j)) continue;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[i]![hh * headDim + d]! * k[j]![kvh * headDim + d]!;
          scores.push(dot / Math.sqrt(headDim));
          keys.push(j);
        }
        const max = Math.max(...scores);
        const weights = scores.map((s) => Math.exp(s - max));
        const total = weights.reduce((s, w) => s + w, 0);
        keys.forEach((j, n) => {
          for (let d = 0; d < headDim; d++) attended[hh * headDim + d]! += (weights[n]! / total) * v[j]![kvh * headDim + d]!;
        });
      }
      const o = matvec(attended, get(head, `${p}self_attn.o_proj.weight`), H);
      const r = x.map((value, c) => value + o[c]!);
      const m = rms(r, get(head, `${p}post_attention_layernorm.weight`), eps);
      const gate = matvec(m, get(head, `${p}mlp.gate_proj.weight`), I);
      const up = matvec(m, get(head, `${p}mlp.up_proj.weight`), I);
      const down = matvec(gate.map((g, c) => silu(g) * up[c]!), get(head, `${p}mlp.down_proj.weight`), H);
      return r.map((value, c) => value + down[c]!);
    });
  }
  return { fused, out: h, logits: h.map((x) => matvec(x, lm, config.vocabSize)) };
}

/** Gumiho's MLP head `head` on `z [2H]` (block 0 without residual), then the LM head; float64. */
export function referenceGumihoMlp(config: DraftHeadsConfig, store: WeightStore, target: DraftTarget, head: number, z: ArrayLike<number>): F64 {
  const H = config.hiddenSize;
  let y = matvec(z, get(store, `mlp.${head}.0.linear.weight`), H, get(store, `mlp.${head}.0.linear.bias`)).map(silu);
  for (let block = 1; block < config.mlpBlocks; block++) {
    const t = matvec(y, get(store, `mlp.${head}.${block}.linear.weight`), H, get(store, `mlp.${head}.${block}.linear.bias`));
    y = y.map((value, i) => value + silu(t[i]!));
  }
  return matvec(y, get(target.weights, target.lmHeadWeight), config.vocabSize);
}

/** A Medusa head `head` on `x [H]` (all blocks residual), then the LM head; float64. */
export function referenceMedusa(config: DraftHeadsConfig, store: WeightStore, target: DraftTarget, head: number, x: ArrayLike<number>): F64 {
  const H = config.hiddenSize;
  let y = Float64Array.from(x);
  for (let block = 0; block < config.mlpBlocks; block++) {
    const t = matvec(y, get(store, `mlp.${head}.${block}.linear.weight`), H, get(store, `mlp.${head}.${block}.linear.bias`));
    y = y.map((value, i) => value + silu(t[i]!));
  }
  return matvec(y, get(target.weights, target.lmHeadWeight), config.vocabSize);
}

/** `fc([e(token) ; feature])` in float64. */
export function referenceFc(config: DraftHeadsConfig, store: WeightStore, target: DraftTarget, token: number, feature: ArrayLike<number>): F64 {
  return referenceSerial({ ...config, serialLayers: 0 }, store, target, [{ feature, token, position: 0 }], () => true).fused[0]!;
}

/** log_softmax of a float64 row. */
export function logSoftmax64(logits: F64): F64 {
  const max = Math.max(...logits);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const log = max + Math.log(sum);
  return logits.map((v) => v - log);
}

/** The `k` best indices of a float64 row, best first. */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  return Array.from(values, (value, index) => ({ value, index }))
    .sort((a, b) => b.value - a.value || a.index - b.index)
    .slice(0, k)
    .map((entry) => entry.index);
}
