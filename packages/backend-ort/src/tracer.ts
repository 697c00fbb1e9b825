/**
 * The tracer: runs a program's `build(ops, inputs, context)` once with symbolic tensors and
 * records an ONNX graph.
 *
 * Lowering choices (see docs/parts/backend-ort.md):
 * - Float activations are `[1, rows, cols]` inside the graph (the program sees `[rows, cols]`):
 *   ONNX Runtime's fused kernels (`Attention`, `RotaryEmbedding`) want a batch axis, and keeping
 *   one everywhere costs no reshape kernels. Graph inputs and outputs carry the leading 1, which
 *   is free for callers (an `ort.Tensor`'s dims are metadata over the same typed array).
 * - `linear` is `com.microsoft.FusedMatMul` with `transB = 1`, so weights stay in their
 *   Hugging Face `[out, in]` layout (one initializer per weight, shared with `embedding` when the
 *   LM head is tied) and ONNX Runtime pre-packs them.
 * - `rmsNorm` is `SimplifiedLayerNormalization`; a later pass fuses `add → rmsNorm` into
 *   `com.microsoft.SkipSimplifiedLayerNormalization` (see rewrite.ts).
 * - `rope` is ONNX `RotaryEmbedding` (opset 23) with per-token cos/sin computed once per positions
 *   tensor inside the graph, so there is no position limit baked into the graph.
 * - `attention` concatenates the cache's existing rows (a graph input) with the new rows and runs
 *   ONNX `Attention` (opset 23, grouped-query heads, additive float mask). The new rows are graph
 *   outputs, written by ONNX Runtime straight into the cache.
 * - `silu` is `com.microsoft.QuickGelu` with `alpha = 1` (`x·sigmoid(x)`).
 *
 * Not an optimiser: ONNX Runtime (optimisation level `all`) does the rest.
 */
import {
  DTypeError,
  InvalidArgumentError,
  ModelLoadError,
  NotImplementedError,
  ShapeMismatchError,
  type AttentionOptions,
  type BuildContext,
  type Dim,
  type DType,
  type KvCacheSpec,
  type KvLayerRef,
  type Ops,
  type ProgramDefinition,
  type RopeOptions,
  type TensorRef,
  type WeightRef,
  type WeightStore,
} from '@gumiho/core';
import { GraphBuilder, MS_DOMAIN, type OnnxDim } from './onnx-graph.js';

/** A value in the traced graph. Float tensors are rank 3 (`[1, ...shape]`) in the graph. */
export class OrtTensor implements TensorRef {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly Dim[],
    /** The ONNX value name. */
    readonly value: string,
  ) {}
}

class OrtWeight extends OrtTensor implements WeightRef {
  constructor(
    readonly name: string,
    shape: readonly Dim[],
    value: string,
    /** The weight's float32 values (for quantized copies in draft-precision programs). */
    readonly data?: Float32Array,
  ) {
    super('float32', shape, value);
  }
}

/** One KV cache layer the graph reads and appends to. */
export interface CacheBinding {
  readonly cache: string;
  readonly layer: number;
  /** Graph input `[1, past, rowSize]`: the cache's existing rows. */
  readonly pastKey: string;
  readonly pastValue: string;
  /** Values `[1, rows, rowSize]` of the new rows (stacked into the cache's outputs). */
  readonly newKey: string;
  readonly newValue: string;
  /** Number of new rows (a number, or an input dimension's symbol). */
  readonly rows: Dim;
  readonly rowSize: number;
  /** The mask, when it is a program input (checked against the cache length at run time). */
  readonly maskInput: string | undefined;
}

/**
 * The new rows of one cache, as two graph outputs `[layers.length, rows, rowSize]` (keys and
 * values): slot `i` holds the rows of layer `layers[i]`. One output per cache instead of one per
 * layer: each graph output costs a few microseconds of binding per run.
 */
export interface CacheOutput {
  readonly cache: string;
  readonly keys: string;
  readonly values: string;
  readonly layers: readonly number[];
  readonly rowSize: number;
}

/** A program input as the graph declares it. */
export interface TracedInput {
  readonly name: string;
  readonly dtype: DType;
  /** The program's shape (without the graph's leading 1 for float tensors). */
  readonly shape: readonly Dim[];
}

/** A program output: its name in the program and its ONNX value name. */
export interface TracedOutput {
  readonly name: string;
  readonly value: string;
  readonly shape: readonly Dim[];
}

/** A `sliceColumns` call as recorded for the split-merging pass. */
export interface SliceRecord {
  readonly input: string;
  readonly start: number;
  readonly end: number;
  /** Columns of the input. */
  readonly cols: number;
  readonly output: string;
}

/** The result of tracing a program. */
export interface TraceResult {
  readonly graph: GraphBuilder;
  readonly inputs: readonly TracedInput[];
  readonly outputs: readonly TracedOutput[];
  readonly caches: readonly CacheBinding[];
  /** The stacked new-row outputs, one entry per cache. */
  readonly cacheOutputs: readonly CacheOutput[];
  /** Cache names and the symbol of their existing-row dimension. */
  readonly pastSymbols: ReadonlyMap<string, string>;
  /** See {@link SliceRecord}; used by the rewrite passes. */
  readonly slices: readonly SliceRecord[];
  /** Values of same-shape `add`s; used by the rewrite passes. */
  readonly adds: ReadonlySet<string>;
  /** Program inputs used as embedding ids, with the largest valid id + 1. */
  readonly idInputs: ReadonlyMap<string, number>;
}

/** Graph name of the cache's existing-row dimension. */
function pastSymbol(cache: string): string {
  return `past_${cache}`;
}

function sumDims(dims: readonly Dim[]): Dim {
  if (dims.every((dim) => typeof dim === 'number')) return (dims as number[]).reduce((a, b) => a + b, 0);
  return dims.join('+');
}

class Tracer implements Ops {
  readonly caches: CacheBinding[] = [];
  /** Values produced by `add` of two same-shaped tensors (candidates for the skip-norm fusion). */
  readonly adds = new Set<string>();
  /** Column slices, for the split-merging pass. */
  readonly slices: SliceRecord[] = [];
  /** Program inputs used as embedding ids, with the table's row count (checked at run time). */
  readonly idInputs = new Map<string, number>();
  private readonly ropeTables = new Map<string, { cos: string; sin: string }>();
  private readonly bound = new Set<string>();

  constructor(
    private readonly graph: GraphBuilder,
    private readonly programName: string,
    private readonly cacheSpecs: Readonly<Record<string, KvCacheSpec>>,
    private readonly programInputs: ReadonlyMap<string, string>,
    private readonly quantizeLinears: boolean,
  ) {}

  /** int8 copies of weights made for quantized linears, by weight name. */
  private readonly quantized = new Map<string, { weights: string; scales: string; zeros: string }>();

  private floatRows(ref: TensorRef, what: string): { tensor: OrtTensor; rows: Dim; cols: number } {
    const tensor = this.own(ref, what);
    if (tensor.dtype !== 'float32') throw new DTypeError(what, 'float32', tensor.dtype);
    if (tensor.shape.length !== 2) throw new ShapeMismatchError(what, ['rows', 'cols'], tensor.shape);
    const cols = tensor.shape[1]!;
    if (typeof cols !== 'number') {
      throw new ShapeMismatchError(`${what} (columns must be static for the ort backend)`, ['rows', 'number'], tensor.shape);
    }
    return { tensor, rows: tensor.shape[0]!, cols };
  }

  private ints(ref: TensorRef, what: string): OrtTensor {
    const tensor = this.own(ref, what);
    if (tensor.dtype !== 'int32') throw new DTypeError(what, 'int32', tensor.dtype);
    if (tensor.shape.length !== 1) throw new ShapeMismatchError(what, ['n'], tensor.shape);
    return tensor;
  }

  private own(ref: TensorRef, what: string): OrtTensor {
    if (!(ref instanceof OrtTensor)) {
      throw new InvalidArgumentError('tensor', `${what}: the tensor does not belong to this ort program (mixed backends or programs?).`);
    }
    return ref;
  }

  private f32(rows: Dim, cols: number, value: string): OrtTensor {
    return new OrtTensor('float32', [rows, cols], value);
  }

  embedding(table: WeightRef, ids: TensorRef): TensorRef {
    const weight = this.floatRows(table, 'embedding table');
    const idTensor = this.ints(ids, 'embedding ids');
    const input = this.programInputs.get(idTensor.value);
    // ONNX Gather would wrap negative ids around; the op set rejects them (as the cpu backend does).
    if (input !== undefined) this.idInputs.set(input, Math.min(this.idInputs.get(input) ?? Infinity, weight.rows as number));
    // Gather over a [1, n] index tensor yields [1, n, hidden] directly.
    const ids2d = this.graph.op('Unsqueeze', [idTensor.value, this.graph.int64([0])]);
    return this.f32(idTensor.shape[0]!, weight.cols, this.graph.op('Gather', [weight.tensor.value, ids2d], { axis: 0 }));
  }

  linear(x: TensorRef, weight: WeightRef, bias?: WeightRef): TensorRef {
    const input = this.floatRows(x, 'linear input');
    const w = this.floatRows(weight, `linear weight ${weight.name}`);
    if (w.cols !== input.cols) throw new ShapeMismatchError(`linear ${weight.name}`, [w.rows, input.cols], [w.rows, w.cols]);
    const outFeatures = w.rows as number;
    const source = weight instanceof OrtWeight ? weight.data : undefined;
    if (this.quantizeLinears && source && outFeatures * w.cols >= QUANTIZE_MIN_ELEMENTS) {
      let q = this.quantized.get(weight.name);
      if (!q) {
        const { weights, scales } = quantizeWeightInt8(source, outFeatures, w.cols);
        q = {
          weights: this.graph.embeddedInt8(`q8.${weight.name}`, weights, [w.cols, outFeatures]),
          scales: this.graph.embeddedFloat32(`q8s.${weight.name}`, scales, [outFeatures]),
          zeros: this.graph.embeddedInt8(`q8z.${weight.name}`, new Int8Array(outFeatures), [outFeatures]),
        };
        this.quantized.set(weight.name, q);
      }
      const inputs = [input.tensor.value, q.weights, q.scales, q.zeros];
      if (bias) inputs.push(this.own(bias, 'linear bias').value);
      return this.f32(input.rows, outFeatures, this.graph.op('DynamicQuantizeMatMul', inputs, {}, MS_DOMAIN));
    }
    let value = this.graph.op('FusedMatMul', [input.tensor.value, w.tensor.value], { transB: 1, alpha: { float: 1 } }, MS_DOMAIN);
    if (bias) {
      const b = this.own(bias, 'linear bias');
      if (b.shape.length !== 1 || b.shape[0] !== outFeatures) throw new ShapeMismatchError(`linear bias ${bias.name}`, [outFeatures], b.shape);
      value = this.graph.op('Add', [value, b.value]);
    }
    return this.f32(input.rows, outFeatures, value);
  }

  private sameShape(a: TensorRef, b: TensorRef, what: string): { x: OrtTensor; y: OrtTensor; rows: Dim; cols: number } {
    const x = this.floatRows(a, what);
    const y = this.floatRows(b, what);
    const rowsDiffer = typeof x.rows === 'number' && typeof y.rows === 'number' && x.rows !== y.rows;
    if (x.cols !== y.cols || rowsDiffer) throw new ShapeMismatchError(what, a.shape, b.shape);
    return { x: x.tensor, y: y.tensor, rows: x.rows, cols: x.cols };
  }

  add(a: TensorRef, b: TensorRef): TensorRef {
    const { x, y, rows, cols } = this.sameShape(a, b, 'add');
    const value = this.graph.op('Add', [x.value, y.value]);
    this.adds.add(value);
    return this.f32(rows, cols, value);
  }

  mul(a: TensorRef, b: TensorRef): TensorRef {
    const { x, y, rows, cols } = this.sameShape(a, b, 'mul');
    return this.f32(rows, cols, this.graph.op('Mul', [x.value, y.value]));
  }

  silu(x: TensorRef): TensorRef {
    const input = this.floatRows(x, 'silu');
    return this.f32(input.rows, input.cols, this.graph.op('QuickGelu', [input.tensor.value], { alpha: { float: 1 } }, MS_DOMAIN));
  }

  rmsNorm(x: TensorRef, weight: WeightRef, eps: number): TensorRef {
    const input = this.floatRows(x, 'rmsNorm');
    const w = this.own(weight, 'rmsNorm weight');
    if (w.shape.length !== 1 || w.shape[0] !== input.cols) throw new ShapeMismatchError(`rmsNorm ${weight.name}`, [input.cols], weight.shape);
    const value = this.graph.op('SimplifiedLayerNormalization', [input.tensor.value, w.value], { axis: -1, epsilon: { float: eps }, stash_type: 1 });
    return this.f32(input.rows, input.cols, value);
  }

  rope(x: TensorRef, positions: TensorRef, options: RopeOptions): TensorRef {
    const input = this.floatRows(x, 'rope');
    const pos = this.ints(positions, 'rope positions');
    const { heads, headDim, theta } = options;
    if (input.cols !== heads * headDim) throw new ShapeMismatchError('rope', [input.rows, heads * headDim], x.shape);
    if (headDim % 2 !== 0) throw new InvalidArgumentError('headDim', `rope needs an even head size, got ${headDim}.`);
    const { cos, sin } = this.ropeTable(pos, headDim, theta);
    const value = this.graph.op('RotaryEmbedding', [input.tensor.value, cos, sin], { num_heads: heads, interleaved: 0 });
    return this.f32(input.rows, input.cols, value);
  }

  /** cos/sin `[1, n, headDim/2]` for `positions`, computed once per positions tensor. */
  private ropeTable(positions: OrtTensor, headDim: number, theta: number): { cos: string; sin: string } {
    const key = `${positions.value}|${headDim}|${theta}`;
    let table = this.ropeTables.get(key);
    if (!table) {
      const half = headDim / 2;
      // Same float32 inverse frequencies as the CPU reference kernel.
      const inverse = Array.from({ length: half }, (_, f) => Math.fround(1 / Math.pow(theta, (2 * f) / headDim)));
      const asFloat = this.graph.op('Cast', [positions.value], { to: 1 });
      const column = this.graph.op('Unsqueeze', [asFloat, this.graph.int64([0, 2])]);
      const angles = this.graph.op('Mul', [column, this.graph.float32(inverse, [half])]);
      table = { cos: this.graph.op('Cos', [angles]), sin: this.graph.op('Sin', [angles]) };
      this.ropeTables.set(key, table);
    }
    return table;
  }

  attention(q: TensorRef, k: TensorRef, v: TensorRef, options: AttentionOptions): TensorRef {
    const { heads, kvHeads, headDim } = options;
    const query = this.floatRows(q, 'attention q');
    const key = this.floatRows(k, 'attention k');
    const value = this.floatRows(v, 'attention v');
    if (query.cols !== heads * headDim) throw new ShapeMismatchError('attention q', [query.rows, heads * headDim], q.shape);
    if (key.cols !== kvHeads * headDim) throw new ShapeMismatchError('attention k', [query.rows, kvHeads * headDim], k.shape);
    if (value.cols !== kvHeads * headDim) throw new ShapeMismatchError('attention v', [query.rows, kvHeads * headDim], v.shape);
    if (!Number.isInteger(heads / kvHeads)) throw new InvalidArgumentError('kvHeads', `heads (${heads}) must be a multiple of kvHeads (${kvHeads}).`);
    const mask = this.own(options.mask, 'attention mask');
    if (mask.dtype !== 'float32' || mask.shape.length !== 2) throw new ShapeMismatchError('attention mask', ['rows', 'keys'], mask.shape);
    const binding = this.bindCache(options.kv, key.rows, kvHeads * headDim, mask, key.tensor.value, value.tensor.value);
    const keys = this.graph.op('Concat', [binding.pastKey, key.tensor.value], { axis: 1 });
    const values = this.graph.op('Concat', [binding.pastValue, value.tensor.value], { axis: 1 });
    const attributes: Record<string, number | { float: number }> = { q_num_heads: heads, kv_num_heads: kvHeads };
    if (options.scale !== undefined) attributes['scale'] = { float: options.scale };
    // The mask is [rows, keys] (or [1, rows, keys] when computed in the graph); both broadcast
    // against [batch, heads, rows, keys].
    const out = this.graph.op('Attention', [query.tensor.value, keys, values, mask.value], attributes);
    return this.f32(query.rows, heads * headDim, out);
  }

  private bindCache(ref: KvLayerRef, rows: Dim, rowSize: number, mask: OrtTensor, newKey: string, newValue: string): CacheBinding {
    const spec = this.cacheSpecs[ref.cache];
    if (!spec) {
      throw new InvalidArgumentError('caches', `Program "${this.programName}" attends over KV cache "${ref.cache}", which its definition does not declare in \`caches\`.`);
    }
    if (!Number.isInteger(ref.layer) || ref.layer < 0 || ref.layer >= spec.layers) {
      throw new InvalidArgumentError('layer', `KV layer ${ref.layer} is outside 0..${spec.layers - 1}.`);
    }
    if (spec.kvHeads * spec.headDim !== rowSize) throw new ShapeMismatchError(`KV cache ${ref.cache}`, [rowSize], [spec.kvHeads * spec.headDim]);
    const id = `${ref.cache}.${ref.layer}`;
    if (this.bound.has(id)) {
      throw new NotImplementedError(`Attending twice over the same KV layer (${id}) in one program`, 'ort');
    }
    const previous = this.caches.find((binding) => binding.cache === ref.cache);
    if (previous && String(previous.rows) !== String(rows)) {
      throw new InvalidArgumentError('kv', `All attention layers of one run must append the same number of rows to cache "${ref.cache}".`);
    }
    this.bound.add(id);
    const past = pastSymbol(ref.cache);
    const binding: CacheBinding = {
      cache: ref.cache,
      layer: ref.layer,
      pastKey: this.graph.input(`past_key.${id}`, 'float32', [1, past, rowSize]),
      pastValue: this.graph.input(`past_value.${id}`, 'float32', [1, past, rowSize]),
      newKey,
      newValue,
      rows,
      rowSize,
      maskInput: this.programInputs.get(mask.value),
    };
    this.caches.push(binding);
    return binding;
  }

  concat(parts: readonly TensorRef[], axis: 0 | 1): TensorRef {
    if (parts.length === 0) throw new InvalidArgumentError('parts', 'concat needs at least one tensor.');
    const tensors = parts.map((part, index) => this.floatRows(part, `concat part ${index}`));
    if (axis === 0) {
      const cols = tensors[0]!.cols;
      for (const t of tensors) if (t.cols !== cols) throw new ShapeMismatchError('concat rows', [t.rows, cols], [t.rows, t.cols]);
      if (tensors.length === 1) return tensors[0]!.tensor;
      const value = this.graph.op('Concat', tensors.map((t) => t.tensor.value), { axis: 1 });
      return this.f32(sumDims(tensors.map((t) => t.rows)), cols, value);
    }
    if (axis !== 1) throw new InvalidArgumentError('axis', `concat axis must be 0 or 1, got ${String(axis)}.`);
    const rows = tensors[0]!.rows;
    for (const t of tensors) {
      if (typeof t.rows === 'number' && typeof rows === 'number' && t.rows !== rows) {
        throw new ShapeMismatchError('concat columns', [rows, t.cols], [t.rows, t.cols]);
      }
    }
    if (tensors.length === 1) return tensors[0]!.tensor;
    const value = this.graph.op('Concat', tensors.map((t) => t.tensor.value), { axis: 2 });
    return this.f32(rows, tensors.reduce((sum, t) => sum + t.cols, 0), value);
  }

  sliceColumns(x: TensorRef, start: number, end: number): TensorRef {
    const input = this.floatRows(x, 'sliceColumns');
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= input.cols)) {
      throw new InvalidArgumentError('range', `sliceColumns [${start}, ${end}) is outside 0..${input.cols}.`);
    }
    if (start === 0 && end === input.cols) return input.tensor;
    const g = this.graph;
    const value = g.op('Slice', [input.tensor.value, g.int64([start]), g.int64([end]), g.int64([2])]);
    this.slices.push({ input: input.tensor.value, start, end, cols: input.cols, output: value });
    return this.f32(input.rows, end - start, value);
  }

  gatherRows(x: TensorRef, rows: TensorRef): TensorRef {
    const input = this.floatRows(x, 'gatherRows');
    const index = this.ints(rows, 'gatherRows rows');
    return this.f32(index.shape[0]!, input.cols, this.graph.op('Gather', [input.tensor.value, index.value], { axis: 1 }));
  }
}

/** Options of {@link traceProgram}. */
export interface TraceOptions {
  /**
   * Lower `linear` with int8 weights (per-output-channel symmetric scales) as
   * `com.microsoft.DynamicQuantizeMatMul`. Only for programs whose outputs need not be exact.
   */
  readonly quantizeLinears?: boolean;
}

/** Smallest weight (elements) worth quantizing; smaller ones stay float32. */
const QUANTIZE_MIN_ELEMENTS = 4096;

/**
 * int8 copy of a `[out, in]` float32 weight in the `[in, out]` layout DynamicQuantizeMatMul
 * takes, with one symmetric scale per output channel.
 */
export function quantizeWeightInt8(data: Float32Array, outFeatures: number, inFeatures: number): { weights: Int8Array; scales: Float32Array } {
  const weights = new Int8Array(outFeatures * inFeatures);
  const scales = new Float32Array(outFeatures);
  for (let j = 0; j < outFeatures; j++) {
    let max = 0;
    for (let k = 0; k < inFeatures; k++) max = Math.max(max, Math.abs(data[j * inFeatures + k]!));
    const scale = max > 0 ? max / 127 : 1;
    scales[j] = scale;
    for (let k = 0; k < inFeatures; k++) weights[k * outFeatures + j] = Math.round(data[j * inFeatures + k]! / scale);
  }
  return { weights, scales };
}

/**
 * Traces `definition` into an ONNX graph. Weights become external float32 initializers named
 * after the weight (their bytes are views of the store's arrays: nothing is copied here).
 */
export function traceProgram(definition: ProgramDefinition, weights: WeightStore, options: TraceOptions = {}): TraceResult {
  const graph = new GraphBuilder();
  const inputs: TracedInput[] = [];
  const refs: Record<string, TensorRef> = {};
  const programInputs = new Map<string, string>();
  for (const [name, spec] of Object.entries(definition.inputs)) {
    if (spec.dtype === 'float32') {
      if (spec.shape.length !== 2) {
        throw new ShapeMismatchError(`input "${name}" (the ort backend takes 2-D float inputs)`, ['rows', 'cols'], spec.shape);
      }
      graph.input(name, 'float32', [1, ...spec.shape] as OnnxDim[]);
    } else {
      graph.input(name, 'int32', spec.shape as OnnxDim[]);
    }
    inputs.push({ name, dtype: spec.dtype, shape: spec.shape });
    refs[name] = new OrtTensor(spec.dtype, spec.shape, name);
    programInputs.set(name, name);
  }
  const weightRefs = new Map<string, OrtWeight>();
  const context: BuildContext = {
    weight(name) {
      let ref = weightRefs.get(name);
      if (!ref) {
        const tensor = weights.get(name);
        if (!tensor) {
          throw new ModelLoadError(`Program "${definition.name}" needs the weight "${name}", which the weight store does not have.`, {
            fix: 'check that the model or head files are complete and of the expected architecture.',
          });
        }
        if (tensor.dtype !== 'float32') throw new DTypeError(`weight ${name}`, 'float32', tensor.dtype);
        const value = graph.externalFloat32(`w.${name}`, tensor.data, tensor.shape, `w.${name}`);
        ref = new OrtWeight(name, tensor.shape, value, tensor.data);
        weightRefs.set(name, ref);
      }
      return ref;
    },
    hasWeight: (name) => weights.has(name),
    kv: (cache, layer) => ({ cache, layer }),
  };
  const tracer = new Tracer(graph, definition.name, definition.caches ?? {}, programInputs, options.quantizeLinears ?? false);
  const produced = definition.build(tracer, refs, context);
  const outputs: TracedOutput[] = [];
  for (const [name, ref] of Object.entries(produced)) {
    if (!(ref instanceof OrtTensor)) throw new InvalidArgumentError('outputs', `Output "${name}" of program "${definition.name}" is not a tensor of this program.`);
    if (ref.dtype !== 'float32' || ref.shape.length !== 2) {
      throw new ShapeMismatchError(`output "${name}" of program "${definition.name}"`, ['rows', 'cols'], ref.shape);
    }
    const value = `out.${name}`;
    graph.node('Identity', [ref.value], [graph.reserve(value)]);
    graph.output(value, 'float32', [1, ...ref.shape] as OnnxDim[]);
    outputs.push({ name, value, shape: ref.shape });
  }
  const pastSymbols = new Map<string, string>();
  const cacheOutputs: CacheOutput[] = [];
  for (const binding of tracer.caches) pastSymbols.set(binding.cache, pastSymbol(binding.cache));
  for (const cache of pastSymbols.keys()) {
    const bindings = tracer.caches.filter((binding) => binding.cache === cache);
    const rowSize = bindings[0]!.rowSize;
    const rows = bindings[0]!.rows;
    const stack = (sources: string[], name: string): string => {
      graph.node(sources.length === 1 ? 'Identity' : 'Concat', sources, [graph.reserve(name)], sources.length === 1 ? {} : { axis: 0 });
      graph.output(name, 'float32', [sources.length, rows, rowSize] as OnnxDim[]);
      return name;
    };
    cacheOutputs.push({
      cache,
      keys: stack(bindings.map((binding) => binding.newKey), `new_keys.${cache}`),
      values: stack(bindings.map((binding) => binding.newValue), `new_values.${cache}`),
      layers: bindings.map((binding) => binding.layer),
      rowSize,
    });
  }
  return { graph, inputs, outputs, caches: tracer.caches, cacheOutputs, pastSymbols, slices: tracer.slices, adds: tracer.adds, idInputs: tracer.idInputs };
}
