/**
 * Exports a Llama target as a *standard* decoder ONNX model, the layout that transformers.js,
 * Optimum and onnxruntime-genai-style loops expect:
 *
 * - inputs `input_ids` int64 `[batch, sequence_length]`, `attention_mask` int64
 *   `[batch, total_sequence_length]` (1 = real token, 0 = padding), `position_ids` int64
 *   `[batch, sequence_length]`, and per layer `past_key_values.{i}.key` / `.value` float32
 *   `[batch, num_key_value_heads, past_sequence_length, head_dim]`;
 * - outputs `logits` `[batch, sequence_length, vocab]` and `present.{i}.key` / `.value`
 *   `[batch, num_key_value_heads, total_sequence_length, head_dim]`.
 *
 * The graph uses only standard ONNX operators at opset 17 (no contrib ops), so any ONNX Runtime
 * build, on any execution provider, can load it. Weights are embedded as float32 (the proto
 * stays well under protobuf's 2 GB limit for models of this size; larger models are refused).
 * The folder also receives `config.json`, `generation_config.json` and the tokenizer files, and
 * the model is written to `onnx/model.onnx`, where transformers.js looks for the fp32 variant.
 *
 * Not the backend's runtime graph: that one is traced from the program with fused kernels and
 * a row-major host cache; this one is for interoperability.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvalidArgumentError, ModelLoadError, UnsupportedModelError, type ModelConfig, type WeightStore } from '@gumiho/core';
import { MapWeightStore, readSafetensors } from '@gumiho/safetensors';
import { GraphBuilder } from './onnx-graph.js';

/** Options of {@link exportDecoderOnnx}: a Hugging Face folder, or weights plus config. */
export interface ExportDecoderOptions {
  /** A Hugging Face Llama folder (`config.json`, safetensors, tokenizer files). */
  readonly folder?: string;
  /** Weights under Hugging Face names (or the fused `qkv_proj`/`gate_up_proj` names of `@gumiho/models`). */
  readonly weights?: WeightStore;
  /** The model configuration, required with `weights`. */
  readonly config?: ModelConfig;
  /** Output folder; created if missing. */
  readonly outDir: string;
}

/** What {@link exportDecoderOnnx} wrote. */
export interface ExportDecoderResult {
  /** Path of the ONNX model (`<outDir>/onnx/model.onnx`). */
  readonly modelPath: string;
  /** Every file written, model included. */
  readonly files: readonly string[];
  /** Nodes in the exported graph. */
  readonly nodes: number;
}

const COPIED_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
/** Largest float32 weight payload embedded in one proto (protobuf's limit is 2 GiB). */
const MAX_EMBEDDED_BYTES = 1.8e9;

function asNumber(value: unknown, name: string, fallback?: number): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (fallback !== undefined) return fallback;
  throw new ModelLoadError(`config.json lacks a numeric "${name}".`, { fix: 'export a complete Hugging Face Llama folder.' });
}

/** Reads the Llama fields of a Hugging Face `config.json`. */
async function readConfig(folder: string): Promise<ModelConfig> {
  const path = join(folder, 'config.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new ModelLoadError(`Cannot read ${path}.`, { cause: error, path, fix: 'pass the folder of a Hugging Face Llama checkpoint.' });
  }
  const modelType = String(raw['model_type'] ?? '');
  if (modelType !== 'llama') throw new UnsupportedModelError(`exportDecoderOnnx supports model_type "llama", got "${modelType}".`);
  const hiddenSize = asNumber(raw['hidden_size'], 'hidden_size');
  const numHeads = asNumber(raw['num_attention_heads'], 'num_attention_heads');
  const rope = raw['rope_parameters'] as Record<string, unknown> | undefined;
  const eos = raw['eos_token_id'];
  return {
    modelType,
    vocabSize: asNumber(raw['vocab_size'], 'vocab_size'),
    hiddenSize,
    intermediateSize: asNumber(raw['intermediate_size'], 'intermediate_size'),
    numLayers: asNumber(raw['num_hidden_layers'], 'num_hidden_layers'),
    numHeads,
    numKvHeads: asNumber(raw['num_key_value_heads'], 'num_key_value_heads', numHeads),
    headDim: asNumber(raw['head_dim'], 'head_dim', hiddenSize / numHeads),
    rmsNormEps: asNumber(raw['rms_norm_eps'], 'rms_norm_eps', 1e-6),
    ropeTheta: asNumber(raw['rope_theta'] ?? rope?.['rope_theta'], 'rope_theta', 10000),
    maxPositions: asNumber(raw['max_position_embeddings'], 'max_position_embeddings', 2048),
    tieWordEmbeddings: raw['tie_word_embeddings'] === true,
    bosTokenId: typeof raw['bos_token_id'] === 'number' ? raw['bos_token_id'] : undefined,
    eosTokenIds: Array.isArray(eos) ? (eos as number[]) : typeof eos === 'number' ? [eos] : [],
  };
}

/** Reads `model.safetensors` or the shards named by `model.safetensors.index.json`. */
async function readFolderWeights(folder: string): Promise<MapWeightStore> {
  const store = new MapWeightStore();
  let shards: string[];
  try {
    const index = JSON.parse(await readFile(join(folder, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    shards = [...new Set(Object.values(index.weight_map))];
  } catch {
    shards = ['model.safetensors'];
  }
  for (const shard of shards) await readSafetensors(join(folder, shard), store);
  return store;
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/**
 * Writes `<outDir>/onnx/model.onnx` (a standard decoder with KV cache inputs/outputs; see the
 * module comment) and copies the folder's config and tokenizer files into `outDir`.
 *
 * @throws InvalidArgumentError when neither (or both) of `folder` and `weights` are given;
 *   ModelLoadError / UnsupportedModelError for unreadable or non-Llama checkpoints.
 */
export async function exportDecoderOnnx(options: ExportDecoderOptions): Promise<ExportDecoderResult> {
  if ((options.folder === undefined) === (options.weights === undefined)) {
    throw new InvalidArgumentError('folder', 'exportDecoderOnnx needs exactly one of `folder` and `weights`.', {
      fix: 'pass a Hugging Face Llama folder as `folder`, or `weights` together with `config`.',
    });
  }
  if (options.weights && !options.config) throw new InvalidArgumentError('config', '`weights` needs `config`.');
  const config = options.config ?? (await readConfig(options.folder!));
  const weights = options.weights ?? (await readFolderWeights(options.folder!));
  const graph = buildDecoderGraph(config, weights);
  const model = graph.encode('gumiho-llama-decoder', { '': 17 }, 8);
  const outDir = options.outDir;
  const modelPath = join(outDir, 'onnx', 'model.onnx');
  await mkdir(dirname(modelPath), { recursive: true });
  await writeFile(modelPath, model);
  const files = [modelPath];
  if (options.folder) {
    for (const name of COPIED_FILES) {
      try {
        // Read and write rather than copy: copies keep read-only modes of shared model folders.
        await writeFile(join(outDir, name), await readFile(join(options.folder, name)));
        files.push(join(outDir, name));
      } catch {
        // Optional files: tokenizers and generation configs are not in every folder.
      }
    }
  } else {
    await writeFile(join(outDir, 'config.json'), `${JSON.stringify(hfConfig(config), null, 2)}\n`);
    files.push(join(outDir, 'config.json'));
  }
  return { modelPath, files, nodes: graph.nodeCount };
}

/** A minimal Hugging Face `config.json` for a config given in code. */
function hfConfig(config: ModelConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    max_position_embeddings: config.maxPositions,
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: config.bosTokenId ?? null,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    hidden_act: 'silu',
    use_cache: true,
  };
}

/** Builds the decoder graph (exported for tests). */
export function buildDecoderGraph(config: ModelConfig, weights: WeightStore): GraphBuilder {
  const { hiddenSize: h, numHeads: heads, numKvHeads: kvHeads, headDim: d, intermediateSize: m, vocabSize: vocab } = config;
  if (heads % kvHeads !== 0) throw new UnsupportedModelError(`num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads}).`);
  const group = heads / kvHeads;
  const g = new GraphBuilder();
  let embeddedBytes = 0;

  const tensor = (name: string): { data: Float32Array; shape: readonly number[] } => {
    const found = weights.get(name);
    if (found) return found;
    // The fused weights of @gumiho/models: slice the rows back out.
    const fused: [RegExp, string, number[]][] = [
      [/^(model\.layers\.\d+)\.self_attn\.(q|k|v)_proj\.weight$/, 'self_attn.qkv_proj.weight', [heads * d, kvHeads * d, kvHeads * d]],
      [/^(model\.layers\.\d+)\.mlp\.(gate|up)_proj\.weight$/, 'mlp.gate_up_proj.weight', [m, m]],
    ];
    for (const [pattern, suffix, sizes] of fused) {
      const match = pattern.exec(name);
      const whole = match ? weights.get(`${match[1]}.${suffix}`) : undefined;
      if (match && whole) {
        const part = ['q', 'gate'].includes(match[2]!) ? 0 : ['k', 'up'].includes(match[2]!) ? 1 : 2;
        const start = sizes.slice(0, part).reduce((a, b) => a + b, 0);
        const cols = whole.shape[1]!;
        return { data: whole.data.subarray(start * cols, (start + sizes[part]!) * cols), shape: [sizes[part]!, cols] };
      }
    }
    throw new ModelLoadError(`The weights lack "${name}".`, { fix: 'export a complete Llama checkpoint.' });
  };
  const embed = (name: string, data: Float32Array, shape: readonly number[]): string => {
    embeddedBytes += data.byteLength;
    if (embeddedBytes > MAX_EMBEDDED_BYTES) {
      throw new UnsupportedModelError('The model is too large to embed its float32 weights in one ONNX file (protobuf limit 2 GiB).');
    }
    return g.embeddedFloat32(name, data, shape);
  };
  /** `x [B, S, in] · Wᵀ`: the weight is stored transposed `[in, out]` for MatMul. */
  const linear = (x: string, name: string): string => {
    const w = tensor(name);
    const [rows, cols] = [w.shape[0]!, w.shape[1]!];
    return g.op('MatMul', [x, embed(`${name}.T`, transpose(w.data, rows, cols), [cols, rows])]);
  };
  const rmsNorm = (x: string, name: string): string => {
    const w = tensor(name);
    const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const inverse = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.float32([config.rmsNormEps], [])])])]);
    return g.op('Mul', [g.op('Mul', [x, inverse]), embed(name, w.data, w.shape)]);
  };

  const inputIds = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);

  // Additive mask [B, 1, G·S, T]: causal over absolute positions, padding from attention_mask.
  const total = g.op('Gather', [g.op('Shape', [attentionMask]), g.int64([1], [])], { axis: 0 });
  const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.int64([1], [])], { axis: 0 });
  const keyIndex = g.op('Range', [g.int64([0], []), total, g.int64([1], [])]); // [T]
  const queryIndex = g.op('Add', [g.op('Range', [g.int64([0], []), seq, g.int64([1], [])]), g.op('Sub', [total, seq])]); // [S]
  const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [keyIndex, g.int64([0])]), g.op('Unsqueeze', [queryIndex, g.int64([1])])]); // [S, T]
  const notPadding = g.op('Cast', [g.op('Unsqueeze', [attentionMask, g.int64([1, 2])])], { to: 9 }); // [B, 1, 1, T] bool
  const visible = g.op('And', [g.op('Unsqueeze', [causal, g.int64([0, 1])]), notPadding]); // [B, 1, S, T]
  const additive = g.op('Where', [visible, g.float32([0], []), g.float32([-3.4028234663852886e38], [])]);
  const mask = group === 1 ? additive : g.op('Tile', [additive, g.int64([1, 1, group, 1])]);

  // Rotary tables [B, 1, S, D] from position_ids (rotate-half convention).
  const inverseFrequency = Array.from({ length: d / 2 }, (_, f) => Math.fround(1 / Math.pow(config.ropeTheta, (2 * f) / d)));
  const angles = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: 1 }), g.int64([2])]), g.float32(inverseFrequency)]); // [B, S, D/2]
  const doubled = g.op('Unsqueeze', [g.op('Concat', [angles, angles], { axis: -1 }), g.int64([1])]);
  const cos = g.op('Cos', [doubled]);
  const sin = g.op('Sin', [doubled]);
  const rope = (x: string): string => {
    const [first, second] = g.node('Split', [x, g.int64([d / 2, d / 2])], 2, { axis: -1 });
    const rotated = g.op('Concat', [g.op('Neg', [second!]), first!], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };
  /** `[B, S, n·D]` → `[B, n, S, D]`. */
  const toHeads = (x: string, n: number): string => g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, n, d])])], { perm: [0, 2, 1, 3] });

  let x = g.op('Gather', [embed('model.embed_tokens.weight', tensor('model.embed_tokens.weight').data, [vocab, h]), inputIds], { axis: 0 });
  const scale = g.float32([1 / Math.sqrt(d)], []);
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    const normed = rmsNorm(x, `${p}.input_layernorm.weight`);
    const q = rope(toHeads(linear(normed, `${p}.self_attn.q_proj.weight`), heads));
    const k = rope(toHeads(linear(normed, `${p}.self_attn.k_proj.weight`), kvHeads));
    const v = toHeads(linear(normed, `${p}.self_attn.v_proj.weight`), kvHeads);
    const pastKey = g.input(`past_key_values.${layer}.key`, 'float32', ['batch_size', kvHeads, 'past_sequence_length', d]);
    const pastValue = g.input(`past_key_values.${layer}.value`, 'float32', ['batch_size', kvHeads, 'past_sequence_length', d]);
    const presentKey = g.reserve(`present.${layer}.key`);
    const presentValue = g.reserve(`present.${layer}.value`);
    g.node('Concat', [pastKey, k], [presentKey], { axis: 2 });
    g.node('Concat', [pastValue, v], [presentValue], { axis: 2 });
    g.output(presentKey, 'float32', ['batch_size', kvHeads, 'total_sequence_length', d]);
    g.output(presentValue, 'float32', ['batch_size', kvHeads, 'total_sequence_length', d]);
    // Grouped-query attention without repeating K/V: the G query heads of one KV head are
    // stacked along the rows ([B, kvHeads, G·S, D]), the mask was tiled to match.
    const grouped = g.op('Reshape', [g.op('Mul', [q, scale]), g.int64([0, kvHeads, -1, d])]);
    const scores = g.op('Add', [g.op('MatMul', [grouped, g.op('Transpose', [presentKey], { perm: [0, 1, 3, 2] })]), mask]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), presentValue]); // [B, kvHeads, G·S, D]
    const merged = g.op('Reshape', [g.op('Transpose', [g.op('Reshape', [context, g.int64([0, heads, -1, d])])], { perm: [0, 2, 1, 3] }), g.int64([0, 0, heads * d])]);
    x = g.op('Add', [x, linear(merged, `${p}.self_attn.o_proj.weight`)]);
    const normed2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const gate = linear(normed2, `${p}.mlp.gate_proj.weight`);
    const up = linear(normed2, `${p}.mlp.up_proj.weight`);
    x = g.op('Add', [x, linear(g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]), `${p}.mlp.down_proj.weight`)]);
  }
  const final = rmsNorm(x, 'model.norm.weight');
  const headName = config.tieWordEmbeddings || !weights.has('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const head = tensor(headName);
  g.node('MatMul', [final, embed(`lm_head.weight.T`, transpose(head.data, vocab, h), [h, vocab])], [g.reserve('logits')]);
  g.output('logits', 'float32', ['batch_size', 'sequence_length', vocab]);
  return g;
}
