/**
 * Tensor names and shapes of draft-head checkpoints (the official Gumiho key layout), their
 * validation, and seeded random weights for tests.
 *
 * Keys: `fc.weight [H, 2H]`, `fc.bias [H]`; `layers.{i}.self_attn.{q,k,v,o}_proj.weight`,
 * `layers.{i}.mlp.{gate,up,down}_proj.weight`, `layers.{i}.input_layernorm.weight` (only for
 * `i >= 1`: layer 0 has no input norm), `layers.{i}.post_attention_layernorm.weight`;
 * `mlp.{i}.{k}.linear.{weight,bias}`; optional `embed_tokens.weight [V, H]`.
 */
import { ModelLoadError, type HostTensor, type WeightStore } from '@gumiho/core';
import { MapWeightStore } from '@gumiho/safetensors';
import type { DraftHeadKind, DraftHeadsConfig } from './config.js';

/** A tensor a head needs: its name and expected shape. */
export interface ExpectedTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Name of the `k`-th block's weight (or bias) of MLP head `head`. */
export function mlpWeightName(head: number, block: number, part: 'weight' | 'bias'): string {
  return `mlp.${head}.${block}.linear.${part}`;
}

/** Every tensor that heads configured by `config` need, with its shape (optional ones excluded). */
export function expectedDraftHeadTensors(config: DraftHeadsConfig): ExpectedTensor[] {
  const H = config.hiddenSize;
  const out: ExpectedTensor[] = [];
  if (config.kind !== 'medusa') {
    const q = config.numAttentionHeads * config.headDim;
    const kv = config.numKeyValueHeads * config.headDim;
    const I = config.intermediateSize;
    out.push({ name: 'fc.weight', shape: [H, 2 * H] });
    if (config.fcBias) out.push({ name: 'fc.bias', shape: [H] });
    for (let i = 0; i < config.serialLayers; i++) {
      const p = `layers.${i}.`;
      out.push(
        { name: `${p}self_attn.q_proj.weight`, shape: [q, H] },
        { name: `${p}self_attn.k_proj.weight`, shape: [kv, H] },
        { name: `${p}self_attn.v_proj.weight`, shape: [kv, H] },
        { name: `${p}self_attn.o_proj.weight`, shape: [H, q] },
        { name: `${p}mlp.gate_proj.weight`, shape: [I, H] },
        { name: `${p}mlp.up_proj.weight`, shape: [I, H] },
        { name: `${p}mlp.down_proj.weight`, shape: [H, I] },
        { name: `${p}post_attention_layernorm.weight`, shape: [H] },
      );
      if (i >= 1) out.push({ name: `${p}input_layernorm.weight`, shape: [H] });
    }
  }
  if (config.kind !== 'eagle2') {
    for (let head = 0; head < config.mlpHeads; head++) {
      for (let block = 0; block < config.mlpBlocks; block++) {
        const inputs = config.kind === 'gumiho' && block === 0 ? 2 * H : H;
        out.push({ name: mlpWeightName(head, block, 'weight'), shape: [H, inputs] });
        out.push({ name: mlpWeightName(head, block, 'bias'), shape: [H] });
      }
    }
  }
  return out;
}

/**
 * Renames the official `ParallelMLPs` layout (`mlp.mlp.{i}.{k}...`) to the plain one
 * (`mlp.{i}.{k}...`) in place; returns how many tensors were renamed.
 */
export function normaliseDraftHeadNames(store: MapWeightStore): number {
  let renamed = 0;
  for (const name of [...store.tensors.keys()]) {
    if (name.startsWith('mlp.mlp.')) {
      const tensor = store.tensors.get(name)!;
      store.tensors.delete(name);
      store.tensors.set(name.slice('mlp.'.length), tensor);
      const dtype = store.sourceDTypes.get(name);
      if (dtype !== undefined) {
        store.sourceDTypes.delete(name);
        store.sourceDTypes.set(name.slice('mlp.'.length), dtype);
      }
      renamed++;
    }
  }
  return renamed;
}

/** Number of MLP blocks per head present in `store` (the count of consecutive `mlp.0.{k}` indices). */
export function countMlpBlocks(store: WeightStore): number {
  let blocks = 0;
  while (store.has(mlpWeightName(0, blocks, 'weight'))) blocks++;
  return blocks;
}

/**
 * Checks that `weights` holds every tensor `config` needs, with the right shapes, and (when
 * present) that `embed_tokens.weight` is `[V, H]`. Throws {@link ModelLoadError} naming the
 * tensor, the expected and the received shape.
 */
export function checkDraftHeadWeights(config: DraftHeadsConfig, weights: WeightStore, where = 'the draft-head weights'): void {
  const check = (name: string, shape: readonly number[]): void => {
    const tensor = weights.get(name);
    if (!tensor) {
      throw new ModelLoadError(`${where} lack the tensor "${name}" (expected shape [${shape.join(', ')}]) that ${config.kind} heads with this config need.`, {
        fix: 'check that the checkpoint is complete and that config.json matches it (kind, serialLayers, mlpHeads, mlpBlocks).',
      });
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((dim, axis) => dim !== shape[axis])) {
      throw new ModelLoadError(`Tensor "${name}" in ${where} has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}].`, {
        fix: 'check that config.json (hiddenSize, intermediateSize, heads, headDim) matches the checkpoint, and that it was exported for this target.',
      });
    }
  };
  for (const { name, shape } of expectedDraftHeadTensors(config)) check(name, shape);
  if (weights.has('embed_tokens.weight')) check('embed_tokens.weight', [config.vocabSize, config.hiddenSize]);
}

/** A small seeded PRNG (splitmix32) returning floats in [0, 1). */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
}

/** Shape fields {@link randomDraftHeadWeights} reads from a config. */
export type DraftHeadShape = Pick<
  DraftHeadsConfig,
  | 'hiddenSize'
  | 'vocabSize'
  | 'intermediateSize'
  | 'numAttentionHeads'
  | 'numKeyValueHeads'
  | 'headDim'
  | 'serialLayers'
  | 'mlpHeads'
  | 'mlpBlocks'
  | 'fcBias'
>;

/**
 * Seeded random weights for heads of `kind` and `shape`, for tests and examples: linear weights
 * uniform in `±1/sqrt(fanIn)`, biases uniform in `±0.1`, norms `1 ± 0.1` (all non-zero, so the
 * heads produce varied candidates). Same `seed`, same weights. Pass `embedTokens: true` to add an
 * own `embed_tokens.weight` (as official checkpoints carry).
 */
export function randomDraftHeadWeights(
  kind: DraftHeadKind,
  shape: DraftHeadShape,
  seed = 1,
  options: { embedTokens?: boolean } = {},
): MapWeightStore {
  const random = createRandom(seed);
  const config: DraftHeadsConfig = {
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    target: { name: 'random', hiddenSize: shape.hiddenSize, vocabSize: shape.vocabSize, numHiddenLayers: 0, configSha256: '' },
    ...shape,
    format: 'gumiho-heads',
    formatVersion: 1,
    kind,
  };
  const store = new MapWeightStore();
  const tensor = (dims: readonly number[], fill: () => number): HostTensor<'float32'> => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = fill();
    return { dtype: 'float32', shape: [...dims], data };
  };
  const tensors = expectedDraftHeadTensors(config);
  if (options.embedTokens) tensors.push({ name: 'embed_tokens.weight', shape: [shape.vocabSize, shape.hiddenSize] });
  for (const { name, shape: dims } of tensors) {
    let fill: () => number;
    if (name.endsWith('layernorm.weight')) fill = () => 1 + 0.2 * (random() - 0.5);
    else if (name.endsWith('.bias')) fill = () => 0.2 * (random() - 0.5);
    else if (name === 'embed_tokens.weight') fill = () => 2 * (random() - 0.5);
    else {
      const bound = 1 / Math.sqrt(dims[1]!);
      fill = () => 2 * bound * (random() - 0.5);
    }
    store.set(name, tensor(dims, fill));
  }
  return store;
}

/**
 * A read-only view of `inner` in which every name carries `prefix` (`fc.weight` is visible as
 * `${prefix}fc.weight`). Heads use it so that their weights cannot collide with the target's in a
 * layered store.
 */
export class PrefixedWeightStore implements WeightStore {
  constructor(
    private readonly inner: WeightStore,
    readonly prefix: string,
  ) {}

  get(name: string): HostTensor<'float32'> | undefined {
    return name.startsWith(this.prefix) ? this.inner.get(name.slice(this.prefix.length)) : undefined;
  }

  has(name: string): boolean {
    return name.startsWith(this.prefix) && this.inner.has(name.slice(this.prefix.length));
  }

  *names(): IterableIterator<string> {
    for (const name of this.inner.names()) yield this.prefix + name;
  }
}
