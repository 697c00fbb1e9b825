/**
 * The Llama target: its forward pass as one {@link ProgramDefinition} written against core's
 * {@link Ops} (so the same text runs eagerly on `cpu` and traced on `ort-*`), and
 * {@link createLlamaTarget}, the {@link TargetModel} that runs it over a KV cache with tree masks.
 *
 * The program fuses projections that share an input: per layer, `q_proj`/`k_proj`/`v_proj` become
 * one `qkv_proj` weight and `gate_proj`/`up_proj` one `gate_up_proj` weight (concatenated along the
 * output rows at load, split with `sliceColumns`). One matmul instead of three is faster on every
 * backend, and the results are bit-identical to the separate projections.
 */
import {
  InvalidArgumentError,
  MASK_MIN,
  type HostTensor,
  type KvCacheSpec,
  type ModelConfig,
  type Program,
  type ProgramDefinition,
  type TargetForwardOptions,
  type TargetForwardResult,
  type TargetModel,
  type TensorBackend,
  type WeightStore,
} from '@gumiho/core';
import { MapWeightStore } from '@gumiho/safetensors';
import { loadModelFolder, type LoadedModel } from './load.js';

/** Name of the KV cache the Llama program attends over. */
export const LLAMA_CACHE = 'target';

/** Inputs of the Llama forward program. */
export type LlamaInput = 'ids' | 'positions' | 'mask' | 'logitRows';
/** Outputs of the Llama forward program. */
export type LlamaOutput = 'hidden' | 'logits';

/** Name of the embedding weight. */
export const EMBED_WEIGHT = 'model.embed_tokens.weight';
/** Name of the untied LM head weight. */
export const LM_HEAD_WEIGHT = 'lm_head.weight';

/** Name of layer `layer`'s fused q/k/v projection weight (`[(heads + 2·kvHeads)·headDim, hidden]`). */
export function qkvWeightName(layer: number): string {
  return `model.layers.${layer}.self_attn.qkv_proj.weight`;
}

/** Name of layer `layer`'s fused gate/up projection weight (`[2·intermediate, hidden]`). */
export function gateUpWeightName(layer: number): string {
  return `model.layers.${layer}.mlp.gate_up_proj.weight`;
}

function concatRows(parts: readonly HostTensor<'float32'>[]): HostTensor<'float32'> {
  const cols = parts[0]!.shape[1]!;
  let rows = 0;
  for (const part of parts) rows += part.shape[0]!;
  const data = new Float32Array(rows * cols);
  let offset = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    offset += part.data.length;
  }
  return { dtype: 'float32', shape: [rows, cols], data };
}

/**
 * A weight store for the Llama program: the checkpoint's tensors under their Hugging Face names,
 * with each layer's q/k/v and gate/up projections replaced by the fused weights
 * ({@link qkvWeightName}, {@link gateUpWeightName}). Other tensors are shared, not copied.
 */
export function fuseLlamaWeights(weights: WeightStore, config: ModelConfig): MapWeightStore {
  const fused = new MapWeightStore();
  const replaced = new Set<string>();
  for (let layer = 0; layer < config.numLayers; layer++) {
    const attn = `model.layers.${layer}.self_attn`;
    const mlp = `model.layers.${layer}.mlp`;
    const qkv = [`${attn}.q_proj.weight`, `${attn}.k_proj.weight`, `${attn}.v_proj.weight`];
    const gateUp = [`${mlp}.gate_proj.weight`, `${mlp}.up_proj.weight`];
    for (const [target, names] of [
      [qkvWeightName(layer), qkv],
      [gateUpWeightName(layer), gateUp],
    ] as const) {
      const parts = names.map((name) => {
        const tensor = weights.get(name);
        if (!tensor) throw new InvalidArgumentError('weights', `The weight store lacks "${name}".`, { fix: 'load the model with loadModelFolder, which validates the checkpoint.' });
        return tensor;
      });
      fused.set(target, concatRows(parts));
      for (const name of names) replaced.add(name);
    }
  }
  for (const name of weights.names()) {
    if (!replaced.has(name)) fused.set(name, weights.get(name)!);
  }
  return fused;
}

/**
 * The Llama forward pass as a program. Inputs: `ids [n]`, `positions [n]` (int32), `mask [n, t]`
 * (additive, `t` = cache rows before the run + `n`), `logitRows [r]` (int32). Outputs: `hidden
 * [n, hiddenSize]` (final post-norm states of all rows) and `logits [r, vocab]` (only the rows
 * named by `logitRows`). Weights: a store made by {@link fuseLlamaWeights}. Attends over the cache
 * {@link LLAMA_CACHE}.
 */
export function createLlamaProgram(config: ModelConfig, capacity: number): ProgramDefinition<LlamaInput, LlamaOutput> {
  const { numHeads: heads, numKvHeads: kvHeads, headDim, rmsNormEps: eps, ropeTheta: theta } = config;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  const m = config.intermediateSize;
  const lmHead = config.tieWordEmbeddings ? EMBED_WEIGHT : LM_HEAD_WEIGHT;
  return {
    name: 'llama-forward',
    inputs: {
      ids: { dtype: 'int32', shape: ['n'] },
      positions: { dtype: 'int32', shape: ['n'] },
      mask: { dtype: 'float32', shape: ['n', 't'] },
      logitRows: { dtype: 'int32', shape: ['r'] },
    },
    caches: { [LLAMA_CACHE]: llamaCacheSpec(config, capacity) },
    build(ops, inputs, context) {
      let x = ops.embedding(context.weight(EMBED_WEIGHT), inputs.ids);
      for (let layer = 0; layer < config.numLayers; layer++) {
        const prefix = `model.layers.${layer}`;
        const normed = ops.rmsNorm(x, context.weight(`${prefix}.input_layernorm.weight`), eps);
        const qkv = ops.linear(normed, context.weight(qkvWeightName(layer)));
        const q = ops.rope(ops.sliceColumns(qkv, 0, qDim), inputs.positions, { heads, headDim, theta });
        const k = ops.rope(ops.sliceColumns(qkv, qDim, qDim + kvDim), inputs.positions, { heads: kvHeads, headDim, theta });
        const v = ops.sliceColumns(qkv, qDim + kvDim, qDim + 2 * kvDim);
        const attended = ops.attention(q, k, v, {
          kv: context.kv(LLAMA_CACHE, layer),
          mask: inputs.mask,
          heads,
          kvHeads,
          headDim,
        });
        x = ops.add(x, ops.linear(attended, context.weight(`${prefix}.self_attn.o_proj.weight`)));
        const normed2 = ops.rmsNorm(x, context.weight(`${prefix}.post_attention_layernorm.weight`), eps);
        const gateUp = ops.linear(normed2, context.weight(gateUpWeightName(layer)));
        const activated = ops.mul(ops.silu(ops.sliceColumns(gateUp, 0, m)), ops.sliceColumns(gateUp, m, 2 * m));
        x = ops.add(x, ops.linear(activated, context.weight(`${prefix}.mlp.down_proj.weight`)));
      }
      const hidden = ops.rmsNorm(x, context.weight('model.norm.weight'), eps);
      const logits = ops.linear(ops.gatherRows(hidden, inputs.logitRows), context.weight(lmHead));
      return { hidden, logits };
    },
  };
}

/** The KV cache spec of a Llama target with `capacity` rows. */
export function llamaCacheSpec(config: ModelConfig, capacity: number): KvCacheSpec {
  return { layers: config.numLayers, kvHeads: config.numKvHeads, headDim: config.headDim, capacity };
}

/**
 * Builds the additive attention mask `[n, past + n]` of a forward: the `committed` rows are
 * visible, the `pending` rows after them are not, and the block of new rows follows `treeMask`
 * (`[n * n]`, 1 = visible) or is causal when it is absent.
 */
export function buildAttentionMask(n: number, committed: number, pending: number, treeMask?: Uint8Array): Float32Array {
  const past = committed + pending;
  const width = past + n;
  const mask = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    const row = i * width;
    if (pending > 0) mask.fill(MASK_MIN, row + committed, row + past);
    for (let j = 0; j < n; j++) {
      const visible = treeMask ? treeMask[i * n + j] !== 0 : j <= i;
      if (!visible) mask[row + past + j] = MASK_MIN;
    }
  }
  return mask;
}

/** Options of {@link createLlamaTarget}. */
export interface LlamaTargetOptions {
  /** The backend that compiles and runs the program. */
  readonly backend: TensorBackend;
  /** A Hugging Face Llama folder to load (give this or `model`). */
  readonly folder?: string;
  /** A model already loaded with {@link loadModelFolder} (give this or `folder`). */
  readonly model?: LoadedModel;
  /** KV cache rows: the longest prompt plus generation. Default and maximum: `max_position_embeddings`. */
  readonly maxContext?: number;
  /**
   * Keep every float32 weight in `target.weights` after compiling (default false). On a backend
   * whose programs copy the weights (`capabilities.copiesWeights`, e.g. ONNX Runtime) the target
   * otherwise keeps only the embedding and LM head, which draft heads share.
   */
  readonly retainWeights?: boolean;
  /**
   * On such a backend, also delete every tensor but the embedding and LM head from
   * `model.weights` after compiling (about 100 MB of float32 for py-llama-28m). Default: true when
   * the target loads `folder` itself, false for a `model` you pass in (which may serve another
   * target); pass true when nothing else needs that model's weights. Ignored with `retainWeights`.
   */
  readonly releaseModelWeights?: boolean;
}

/** A {@link TargetModel} for a Llama checkpoint, with the loaded model it came from. */
export interface LlamaTarget extends TargetModel {
  /** The loaded folder (tokenizer included, when the folder has one). */
  readonly model: LoadedModel;
  /** The compiled forward program. */
  readonly program: Program<LlamaInput, LlamaOutput>;
}

/**
 * Compiles the forward program and returns the weights the target keeps: all (fused) weights, or
 * only `shared` when the backend copied them and `retainWeights` is off. A function of its own so
 * that no closure of the target (which lives as long as the target) can keep the fused store alive.
 */
async function compileLlama(
  backend: TensorBackend,
  model: LoadedModel,
  capacity: number,
  shared: readonly string[],
  options: LlamaTargetOptions,
): Promise<{ program: Program<LlamaInput, LlamaOutput>; weights: MapWeightStore }> {
  const fused = fuseLlamaWeights(model.weights, model.config);
  const program = await backend.compile(createLlamaProgram(model.config, capacity), fused);
  if (!backend.capabilities.copiesWeights || options.retainWeights) return { program, weights: fused };
  const weights = new MapWeightStore();
  for (const name of shared) weights.set(name, fused.get(name)!);
  if (options.releaseModelWeights ?? options.model === undefined) {
    for (const name of [...model.weights.names()]) if (!shared.includes(name)) model.weights.tensors.delete(name);
  }
  return { program, weights };
}

/**
 * Creates the Llama {@link TargetModel} on `backend`.
 *
 * @throws InvalidArgumentError for bad options; the errors of {@link loadModelFolder} for bad folders.
 */
export async function createLlamaTarget(options: LlamaTargetOptions): Promise<LlamaTarget> {
  if ((options.folder === undefined) === (options.model === undefined)) {
    throw new InvalidArgumentError('folder', 'createLlamaTarget needs exactly one of `folder` and `model`.', {
      fix: 'pass a model folder path as `folder`, or the result of loadModelFolder as `model`.',
    });
  }
  const model = options.model ?? (await loadModelFolder(options.folder!));
  const config = model.config;
  const capacity = options.maxContext ?? config.maxPositions;
  if (!Number.isInteger(capacity) || capacity < 2 || capacity > config.maxPositions) {
    throw new InvalidArgumentError('maxContext', `maxContext must be an integer in 2..${config.maxPositions} (max_position_embeddings), got ${capacity}.`, {
      fix: `pass a maxContext of at most ${config.maxPositions}.`,
    });
  }
  const backend = options.backend;
  const lmHeadWeight = config.tieWordEmbeddings ? EMBED_WEIGHT : LM_HEAD_WEIGHT;
  const { program, weights } = await compileLlama(backend, model, capacity, [EMBED_WEIGHT, lmHeadWeight], options);
  const cache = backend.createKvCache(llamaCacheSpec(config, capacity));
  const vocab = config.vocabSize;

  async function forward(forwardOptions: TargetForwardOptions): Promise<TargetForwardResult> {
    const { tokenIds, positions, treeMask } = forwardOptions;
    const n = tokenIds.length;
    if (n === 0) throw new InvalidArgumentError('tokenIds', 'forward needs at least one token.');
    if (positions.length !== n) {
      throw new InvalidArgumentError('positions', `forward got ${n} tokens but ${positions.length} positions.`, { fix: 'pass one position per token.' });
    }
    for (const id of tokenIds) {
      if (id < 0 || id >= vocab) {
        throw new InvalidArgumentError('tokenIds', `Token id ${id} is outside the vocabulary (0..${vocab - 1}).`);
      }
    }
    if (treeMask && treeMask.length !== n * n) {
      throw new InvalidArgumentError('treeMask', `treeMask must hold ${n}×${n} = ${n * n} entries, got ${treeMask.length}.`);
    }
    const logitRows = forwardOptions.logitRows ?? Int32Array.of(n - 1);
    for (const row of logitRows) {
      if (row < 0 || row >= n) throw new InvalidArgumentError('logitRows', `logit row ${row} is outside 0..${n - 1}.`);
    }
    const committed = cache.length;
    const pending = cache.pending;
    const width = committed + pending + n;
    const outputs = await program.run(
      {
        ids: { dtype: 'int32', shape: [n], data: tokenIds },
        positions: { dtype: 'int32', shape: [n], data: positions },
        mask: { dtype: 'float32', shape: [n, width], data: buildAttentionMask(n, committed, pending, treeMask) },
        logitRows: { dtype: 'int32', shape: [logitRows.length], data: logitRows },
      },
      { [LLAMA_CACHE]: cache },
    );
    return { logits: outputs.logits.data, hidden: outputs.hidden.data };
  }

  return {
    specificationVersion: 'v1',
    name: model.name,
    config,
    backend,
    weights,
    embeddingWeight: EMBED_WEIGHT,
    lmHeadWeight,
    cache,
    model,
    program,
    forward,
    dispose() {
      program.dispose();
    },
  };
}
