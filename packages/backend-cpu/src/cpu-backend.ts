/**
 * The pure-TypeScript CPU backend: executes a program's ops eagerly on typed arrays each time it
 * runs. Not a graph compiler: `compile` only validates the definition and binds the weights.
 */
import {
  DTypeError,
  GumihoError,
  HostKvCache,
  InvalidArgumentError,
  ModelLoadError,
  ShapeMismatchError,
  type AttentionOptions,
  type BuildContext,
  type Dim,
  type DType,
  type HostTensor,
  type KvCache,
  type KvCacheSpec,
  type KvLayerRef,
  type Ops,
  type Program,
  type ProgramDefinition,
  type RopeOptions,
  type TensorBackend,
  type TensorRef,
  type WeightRef,
  type WeightStore,
} from '@gumiho/core';
import * as kernels from './kernels.js';

/** A tensor held by the CPU backend. */
class CpuTensor implements TensorRef {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: Float32Array | Int32Array,
  ) {}
}

class CpuWeight extends CpuTensor implements WeightRef {
  constructor(
    readonly name: string,
    shape: readonly number[],
    data: Float32Array,
  ) {
    super('float32', shape, data);
  }
}

function asCpu(ref: TensorRef, what: string): CpuTensor {
  if (!(ref instanceof CpuTensor)) {
    throw new GumihoError(`${what}: the tensor does not belong to the cpu backend.`);
  }
  return ref;
}

function floats(ref: TensorRef, what: string): { data: Float32Array; rows: number; cols: number } {
  const tensor = asCpu(ref, what);
  if (tensor.dtype !== 'float32') throw new DTypeError(what, 'float32', tensor.dtype);
  if (tensor.shape.length !== 2) throw new ShapeMismatchError(what, ['rows', 'cols'], tensor.shape);
  return { data: tensor.data as Float32Array, rows: tensor.shape[0]!, cols: tensor.shape[1]! };
}

function ints(ref: TensorRef, what: string): Int32Array {
  const tensor = asCpu(ref, what);
  if (tensor.dtype !== 'int32') throw new DTypeError(what, 'int32', tensor.dtype);
  if (tensor.shape.length !== 1) throw new ShapeMismatchError(what, ['n'], tensor.shape);
  return tensor.data as Int32Array;
}

function f32(rows: number, cols: number, data = new Float32Array(rows * cols)): CpuTensor {
  return new CpuTensor('float32', [rows, cols], data);
}

/** Per-run state: the caches bound to the run and how many rows each run appended. */
interface RunState {
  readonly caches: Readonly<Record<string, KvCache>>;
  readonly appended: Map<string, number>;
}

class CpuOps implements Ops {
  constructor(private readonly state: RunState) {}

  embedding(table: WeightRef, ids: TensorRef): TensorRef {
    const weight = floats(table, 'embedding table');
    const idArray = ints(ids, 'embedding ids');
    const out = new Float32Array(idArray.length * weight.cols);
    for (let i = 0; i < idArray.length; i++) {
      const id = idArray[i]!;
      if (id < 0 || id >= weight.rows) {
        throw new InvalidArgumentError('ids', `Token id ${id} is outside the embedding table (0..${weight.rows - 1}).`);
      }
      out.set(weight.data.subarray(id * weight.cols, (id + 1) * weight.cols), i * weight.cols);
    }
    return f32(idArray.length, weight.cols, out);
  }

  linear(x: TensorRef, weight: WeightRef, bias?: WeightRef): TensorRef {
    const input = floats(x, 'linear input');
    const w = floats(weight, `linear weight ${weight.name}`);
    if (w.cols !== input.cols) throw new ShapeMismatchError(`linear ${weight.name}`, [w.rows, input.cols], [w.rows, w.cols]);
    const b = bias ? asCpu(bias, 'linear bias').data as Float32Array : undefined;
    const out = new Float32Array(input.rows * w.rows);
    kernels.linear(input.data, input.rows, input.cols, w.data, w.rows, b, out);
    return f32(input.rows, w.rows, out);
  }

  add(a: TensorRef, b: TensorRef): TensorRef {
    const x = floats(a, 'add');
    const y = floats(b, 'add');
    if (x.data.length !== y.data.length) throw new ShapeMismatchError('add', a.shape, b.shape);
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = x.data[i]! + y.data[i]!;
    return f32(x.rows, x.cols, out);
  }

  mul(a: TensorRef, b: TensorRef): TensorRef {
    const x = floats(a, 'mul');
    const y = floats(b, 'mul');
    if (x.data.length !== y.data.length) throw new ShapeMismatchError('mul', a.shape, b.shape);
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = x.data[i]! * y.data[i]!;
    return f32(x.rows, x.cols, out);
  }

  silu(input: TensorRef): TensorRef {
    const x = floats(input, 'silu');
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) {
      const v = x.data[i]!;
      out[i] = v / (1 + Math.exp(-v));
    }
    return f32(x.rows, x.cols, out);
  }

  rmsNorm(input: TensorRef, weight: WeightRef, eps: number): TensorRef {
    const x = floats(input, 'rmsNorm');
    const w = asCpu(weight, 'rmsNorm weight').data as Float32Array;
    if (w.length !== x.cols) throw new ShapeMismatchError(`rmsNorm ${weight.name}`, [x.cols], weight.shape);
    const out = new Float32Array(x.data.length);
    kernels.rmsNorm(x.data, x.rows, x.cols, w, eps, out);
    return f32(x.rows, x.cols, out);
  }

  rope(input: TensorRef, positions: TensorRef, options: RopeOptions): TensorRef {
    const x = floats(input, 'rope');
    const pos = ints(positions, 'rope positions');
    if (x.cols !== options.heads * options.headDim) {
      throw new ShapeMismatchError('rope', [x.rows, options.heads * options.headDim], input.shape);
    }
    if (pos.length !== x.rows) throw new ShapeMismatchError('rope positions', [x.rows], positions.shape);
    const out = new Float32Array(x.data.length);
    kernels.rope(x.data, x.rows, options.heads, options.headDim, pos, options.theta, out);
    return f32(x.rows, x.cols, out);
  }

  attention(q: TensorRef, k: TensorRef, v: TensorRef, options: AttentionOptions): TensorRef {
    const query = floats(q, 'attention q');
    const key = floats(k, 'attention k');
    const value = floats(v, 'attention v');
    const { heads, kvHeads, headDim } = options;
    const n = query.rows;
    if (query.cols !== heads * headDim) throw new ShapeMismatchError('attention q', [n, heads * headDim], q.shape);
    if (key.cols !== kvHeads * headDim || key.rows !== n) throw new ShapeMismatchError('attention k', [n, kvHeads * headDim], k.shape);
    if (value.cols !== kvHeads * headDim || value.rows !== n) throw new ShapeMismatchError('attention v', [n, kvHeads * headDim], v.shape);
    if (heads % kvHeads !== 0) throw new InvalidArgumentError('kvHeads', `heads (${heads}) must be a multiple of kvHeads (${kvHeads}).`);
    const cache = this.cacheFor(options.kv, n);
    if (cache.rowSize !== kvHeads * headDim) {
      throw new ShapeMismatchError(`KV cache ${options.kv.cache}`, [kvHeads * headDim], [cache.rowSize]);
    }
    const start = cache.used;
    const total = start + n;
    const mask = floats(options.mask, 'attention mask');
    if (mask.rows !== n || mask.cols !== total) throw new ShapeMismatchError('attention mask', [n, total], options.mask.shape);
    const keys = cache.keys(options.kv.layer);
    const values = cache.values(options.kv.layer);
    keys.set(key.data, start * cache.rowSize);
    values.set(value.data, start * cache.rowSize);
    const out = new Float32Array(n * heads * headDim);
    const scale = options.scale ?? 1 / Math.sqrt(headDim);
    kernels.attention(query.data, n, heads, kvHeads, headDim, keys, values, total, mask.data, scale, new Float32Array(total), out);
    return f32(n, heads * headDim, out);
  }

  concat(parts: readonly TensorRef[], axis: 0 | 1): TensorRef {
    const tensors = parts.map((part, index) => floats(part, `concat part ${index}`));
    if (tensors.length === 0) throw new InvalidArgumentError('parts', 'concat needs at least one tensor.');
    if (axis === 0) {
      const cols = tensors[0]!.cols;
      let rows = 0;
      for (const t of tensors) {
        if (t.cols !== cols) throw new ShapeMismatchError('concat rows', [t.rows, cols], [t.rows, t.cols]);
        rows += t.rows;
      }
      const out = new Float32Array(rows * cols);
      let offset = 0;
      for (const t of tensors) {
        out.set(t.data, offset);
        offset += t.data.length;
      }
      return f32(rows, cols, out);
    }
    const rows = tensors[0]!.rows;
    let cols = 0;
    for (const t of tensors) {
      if (t.rows !== rows) throw new ShapeMismatchError('concat columns', [rows, t.cols], [t.rows, t.cols]);
      cols += t.cols;
    }
    const out = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      let offset = i * cols;
      for (const t of tensors) {
        out.set(t.data.subarray(i * t.cols, (i + 1) * t.cols), offset);
        offset += t.cols;
      }
    }
    return f32(rows, cols, out);
  }

  sliceColumns(input: TensorRef, start: number, end: number): TensorRef {
    const x = floats(input, 'sliceColumns');
    if (!(0 <= start && start < end && end <= x.cols)) {
      throw new InvalidArgumentError('range', `sliceColumns [${start}, ${end}) is outside 0..${x.cols}.`);
    }
    const width = end - start;
    const out = new Float32Array(x.rows * width);
    for (let i = 0; i < x.rows; i++) out.set(x.data.subarray(i * x.cols + start, i * x.cols + end), i * width);
    return f32(x.rows, width, out);
  }

  gatherRows(input: TensorRef, rows: TensorRef): TensorRef {
    const x = floats(input, 'gatherRows');
    const index = ints(rows, 'gatherRows rows');
    const out = new Float32Array(index.length * x.cols);
    for (let i = 0; i < index.length; i++) {
      const row = index[i]!;
      if (row < 0 || row >= x.rows) throw new InvalidArgumentError('rows', `gatherRows: row ${row} is outside 0..${x.rows - 1}.`);
      out.set(x.data.subarray(row * x.cols, (row + 1) * x.cols), i * x.cols);
    }
    return f32(index.length, x.cols, out);
  }

  private cacheFor(ref: KvLayerRef, rows: number): HostKvCache {
    const cache = this.state.caches[ref.cache];
    if (!cache) throw new InvalidArgumentError('caches', `The program attends over KV cache "${ref.cache}", but no such cache was passed to run().`);
    if (!(cache instanceof HostKvCache)) throw new GumihoError(`KV cache "${ref.cache}" was not created by the cpu backend.`);
    const previous = this.state.appended.get(ref.cache);
    if (previous === undefined) {
      cache.ensureRoom(rows);
      this.state.appended.set(ref.cache, rows);
    } else if (previous !== rows) {
      throw new GumihoError(`All attention layers of one run must append the same number of rows to cache "${ref.cache}".`);
    }
    if (ref.layer < 0 || ref.layer >= cache.spec.layers) {
      throw new InvalidArgumentError('layer', `KV layer ${ref.layer} is outside 0..${cache.spec.layers - 1}.`);
    }
    return cache;
  }
}

function checkInput(name: string, spec: { dtype: DType; shape: readonly Dim[] }, tensor: HostTensor | undefined): CpuTensor {
  if (!tensor) throw new InvalidArgumentError(name, `Program input "${name}" is missing.`);
  if (tensor.dtype !== spec.dtype) throw new DTypeError(`input "${name}"`, spec.dtype, tensor.dtype);
  if (tensor.shape.length !== spec.shape.length) throw new ShapeMismatchError(`input "${name}"`, spec.shape, tensor.shape);
  let size = 1;
  spec.shape.forEach((dim, axis) => {
    if (typeof dim === 'number' && tensor.shape[axis] !== dim) throw new ShapeMismatchError(`input "${name}"`, spec.shape, tensor.shape);
    size *= tensor.shape[axis]!;
  });
  if (tensor.data.length !== size) {
    throw new ShapeMismatchError(`input "${name}" data length`, [size], [tensor.data.length]);
  }
  return new CpuTensor(tensor.dtype, tensor.shape, tensor.data);
}

class CpuProgram<I extends string, O extends string> implements Program<I, O> {
  private readonly weightRefs = new Map<string, CpuWeight>();

  constructor(
    readonly definition: ProgramDefinition<I, O>,
    private readonly weights: WeightStore,
  ) {}

  async run(inputs: Readonly<Record<I, HostTensor>>, caches: Readonly<Record<string, KvCache>> = {}): Promise<Record<O, HostTensor<'float32'>>> {
    const definition = this.definition;
    const refs = {} as Record<I, TensorRef>;
    for (const name of Object.keys(definition.inputs) as I[]) {
      refs[name] = checkInput(name, definition.inputs[name], inputs[name]);
    }
    const state: RunState = { caches, appended: new Map() };
    const context: BuildContext = {
      weight: (name) => this.weight(name),
      hasWeight: (name) => this.weights.has(name),
      kv: (cache, layer) => ({ cache, layer }),
    };
    const outputs = definition.build(new CpuOps(state), refs, context);
    for (const [name, rows] of state.appended) (caches[name] as HostKvCache).appendPending(rows);
    const result = {} as Record<O, HostTensor<'float32'>>;
    for (const name of Object.keys(outputs) as O[]) {
      const tensor = asCpu(outputs[name], `output ${name}`);
      result[name] = { dtype: 'float32', shape: tensor.shape, data: tensor.data as Float32Array };
    }
    return result;
  }

  dispose(): void {
    this.weightRefs.clear();
  }

  private weight(name: string): CpuWeight {
    let ref = this.weightRefs.get(name);
    if (!ref) {
      const tensor = this.weights.get(name);
      if (!tensor) {
        throw new ModelLoadError(`Program "${this.definition.name}" needs the weight "${name}", which the weight store does not have.`, {
          fix: 'check that the model or head files are complete and of the expected architecture.',
        });
      }
      ref = new CpuWeight(name, tensor.shape, tensor.data);
      this.weightRefs.set(name, ref);
    }
    return ref;
  }
}

/** Options of {@link createCpuBackend}. */
export interface CpuBackendOptions {
  /** Reserved for worker threads; 1 today. */
  readonly threads?: number;
}

/** Creates the pure-TypeScript CPU backend. */
export function createCpuBackend(_options: CpuBackendOptions = {}): TensorBackend {
  return {
    specificationVersion: 'v1',
    id: 'cpu',
    capabilities: { precision: 'float32', traced: false },
    async compile<I extends string, O extends string>(definition: ProgramDefinition<I, O>, weights: WeightStore): Promise<Program<I, O>> {
      return new CpuProgram(definition, weights);
    },
    createKvCache(spec: KvCacheSpec): KvCache {
      return new HostKvCache(spec);
    },
    dispose() {},
  };
}
