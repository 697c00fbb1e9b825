/**
 * The pure-TypeScript CPU backend: executes a program's ops eagerly each time it runs.
 *
 * Hot kernels (matmul, attention) run as WebAssembly SIMD code emitted from this package's source
 * (`wasm/`), with scalar JavaScript kernels (`kernels.ts`) as the fallback. To keep the per-token
 * loop free of allocation and copies:
 * - weights used by `linear` are copied once into the WebAssembly memory, the first time a program
 *   uses them, and shared by every program of the backend (one extra copy at most);
 * - KV caches are {@link HostKvCache}s whose layers live in that memory, so attention reads them in
 *   place;
 * - each program keeps a pool of intermediate buffers: the i-th op of a run writes into the i-th
 *   buffer, reused by later runs (`build` is deterministic, so the sequence of ops repeats; a
 *   buffer grows when a run has more rows). Outputs are copied out, so results stay valid after
 *   later runs.
 *
 * Not a graph compiler: `compile` only binds the weights; `build` runs on every `run`.
 */
import {
  BackendUnavailableError,
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
import { WasmRuntime } from './wasm/runtime.js';

/** A tensor held by the CPU backend. */
class CpuTensor implements TensorRef {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: Float32Array | Int32Array,
  ) {}
}

class CpuWeight extends CpuTensor implements WeightRef {
  /** The copy `linear` reads (in WebAssembly memory when possible), made on first use. */
  packed: Float32Array | undefined;
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
    throw new GumihoError(`${what}: the tensor does not belong to the cpu backend.`, {
      fix: 'pass only tensors created by the ops of the same run (and weights from its build context).',
    });
  }
  return ref;
}

interface Floats {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

function floats(ref: TensorRef, what: string): Floats {
  const tensor = asCpu(ref, what);
  if (tensor.dtype !== 'float32') throw new DTypeError(what, 'float32', tensor.dtype);
  if (tensor.shape.length !== 2) throw new ShapeMismatchError(what, ['rows', 'cols'], tensor.shape);
  return { data: tensor.data as Float32Array, rows: tensor.shape[0]!, cols: tensor.shape[1]! };
}

function vectorOf(ref: TensorRef, what: string, length: number): Float32Array {
  const tensor = asCpu(ref, what);
  if (tensor.dtype !== 'float32') throw new DTypeError(what, 'float32', tensor.dtype);
  if (tensor.data.length !== length) throw new ShapeMismatchError(what, [length], tensor.shape);
  return tensor.data as Float32Array;
}

function ints(ref: TensorRef, what: string): Int32Array {
  const tensor = asCpu(ref, what);
  if (tensor.dtype !== 'int32') throw new DTypeError(what, 'int32', tensor.dtype);
  if (tensor.shape.length !== 1) throw new ShapeMismatchError(what, ['n'], tensor.shape);
  return tensor.data as Int32Array;
}

/** Memory shared by all programs of one backend: the WebAssembly runtime (if any) and packed weights. */
class CpuMemory {
  private readonly packedWeights = new WeakMap<Float32Array, Float32Array>();
  /** Frees a packed weight's block when its source array is collected. */
  private readonly weightFinalizer: FinalizationRegistry<number>;
  /** Frees a KV cache's layer blocks when the cache is collected. */
  private readonly cacheFinalizer: FinalizationRegistry<number[]>;
  private readonly ropeTables = new Map<string, kernels.RopeTable>();

  constructor(readonly runtime: WasmRuntime | undefined) {
    this.weightFinalizer = new FinalizationRegistry((ptr) => runtime?.releasePointer(ptr));
    this.cacheFinalizer = new FinalizationRegistry((ptrs) => {
      for (const ptr of ptrs) runtime?.releasePointer(ptr);
    });
  }

  /** A zeroed float buffer, in WebAssembly memory when there is room. */
  allocate(length: number): Float32Array {
    return this.runtime?.allocate(length) ?? new Float32Array(length);
  }

  release(array: Float32Array): void {
    this.runtime?.release(array);
  }

  inWasm(array: Float32Array): boolean {
    return this.runtime !== undefined && this.runtime.owns(array);
  }

  /** The copy of `source` that kernels read: packed once into WebAssembly memory, else `source`. */
  pack(source: Float32Array): Float32Array {
    if (!this.runtime) return source;
    let packed = this.packedWeights.get(source);
    if (!packed) {
      packed = this.runtime.allocate(source.length);
      if (!packed) return source;
      packed.set(source);
      this.packedWeights.set(source, packed);
      this.weightFinalizer.register(source, packed.byteOffset);
    }
    return packed;
  }

  createKvCache(spec: KvCacheSpec): HostKvCache {
    const pointers: number[] = [];
    const cache = new HostKvCache(spec, {
      allocate: (length) => {
        const buffer = this.allocate(length);
        if (this.inWasm(buffer)) pointers.push(buffer.byteOffset);
        return buffer;
      },
    });
    if (pointers.length > 0) this.cacheFinalizer.register(cache, pointers);
    return cache;
  }

  ropeTable(theta: number, headDim: number): kernels.RopeTable {
    const key = `${theta}:${headDim}`;
    let table = this.ropeTables.get(key);
    if (!table) {
      table = new kernels.RopeTable(theta, headDim);
      this.ropeTables.set(key, table);
    }
    return table;
  }
}

interface Slot {
  buffer: Float32Array;
  tensor: CpuTensor | undefined;
}

/**
 * The intermediate buffers of one program: the i-th allocation of a run gets slot i. A slot is
 * reallocated only when a run needs more floats than it holds.
 */
class BufferPool {
  private readonly slots: Slot[] = [];
  private cursor = 0;
  /** Scratch for the scalar attention kernel's scores. */
  scores = new Float32Array(0);

  constructor(private readonly memory: CpuMemory) {}

  begin(): void {
    this.cursor = 0;
  }

  /** A `[rows, cols]` float32 tensor whose contents are garbage (ops overwrite every element). */
  take(rows: number, cols: number): CpuTensor {
    const length = rows * cols;
    let slot = this.slots[this.cursor];
    if (!slot) {
      slot = { buffer: this.memory.allocate(length), tensor: undefined };
      this.slots.push(slot);
    } else if (slot.buffer.length < length) {
      this.memory.release(slot.buffer);
      slot.buffer = this.memory.allocate(length);
      slot.tensor = undefined;
    }
    this.cursor++;
    const cached = slot.tensor;
    if (cached && cached.shape[0] === rows && cached.shape[1] === cols) return cached;
    const data = slot.buffer.length === length ? slot.buffer : slot.buffer.subarray(0, length);
    slot.tensor = new CpuTensor('float32', [rows, cols], data);
    return slot.tensor;
  }

  dispose(): void {
    for (const slot of this.slots) this.memory.release(slot.buffer);
    this.slots.length = 0;
  }
}

/** Per-run state: the caches bound to the run and how many rows each run appended. */
interface RunState {
  readonly caches: Readonly<Record<string, KvCache>>;
  readonly appended: Map<string, number>;
}

class CpuOps implements Ops {
  constructor(
    private readonly memory: CpuMemory,
    private readonly pool: BufferPool,
    private readonly state: RunState,
  ) {}

  embedding(table: WeightRef, ids: TensorRef): TensorRef {
    const weight = floats(table, 'embedding table');
    const idArray = ints(ids, 'embedding ids');
    const cols = weight.cols;
    const result = this.pool.take(idArray.length, cols);
    const out = result.data as Float32Array;
    for (let i = 0; i < idArray.length; i++) {
      const id = idArray[i]!;
      if (!(id >= 0 && id < weight.rows)) {
        throw new InvalidArgumentError('ids', `Token id ${id} is outside the embedding table (0..${weight.rows - 1}).`);
      }
      copy(weight.data, id * cols, out, i * cols, cols);
    }
    return result;
  }

  linear(x: TensorRef, weight: WeightRef, bias?: WeightRef): TensorRef {
    const input = floats(x, 'linear input');
    const w = floats(weight, `linear weight ${weight.name}`);
    if (w.cols !== input.cols) {
      throw new ShapeMismatchError(`linear ${weight.name} (input has ${input.cols} columns)`, [w.rows, input.cols], [w.rows, w.cols]);
    }
    const b = bias ? vectorOf(bias, `linear bias ${bias.name}`, w.rows) : undefined;
    const result = this.pool.take(input.rows, w.rows);
    const out = result.data as Float32Array;
    if (input.rows === 0) return result;
    const packed = this.packed(weight as CpuWeight);
    const runtime = this.memory.runtime;
    if (runtime && runtime.owns(packed) && runtime.owns(out)) {
      runtime.linear(input.data, input.rows, input.cols, packed, w.rows, b && this.packed(bias as CpuWeight), out);
    } else {
      kernels.linear(input.data, input.rows, input.cols, w.data, w.rows, b, out);
    }
    return result;
  }

  add(a: TensorRef, b: TensorRef): TensorRef {
    const x = floats(a, 'add');
    const y = floats(b, 'add');
    if (x.rows !== y.rows || x.cols !== y.cols) throw new ShapeMismatchError('add', a.shape, b.shape);
    const result = this.pool.take(x.rows, x.cols);
    const out = result.data as Float32Array;
    const xd = x.data;
    const yd = y.data;
    for (let i = 0; i < out.length; i++) out[i] = xd[i]! + yd[i]!;
    return result;
  }

  mul(a: TensorRef, b: TensorRef): TensorRef {
    const x = floats(a, 'mul');
    const y = floats(b, 'mul');
    if (x.rows !== y.rows || x.cols !== y.cols) throw new ShapeMismatchError('mul', a.shape, b.shape);
    const result = this.pool.take(x.rows, x.cols);
    const out = result.data as Float32Array;
    const xd = x.data;
    const yd = y.data;
    for (let i = 0; i < out.length; i++) out[i] = xd[i]! * yd[i]!;
    return result;
  }

  silu(input: TensorRef): TensorRef {
    const x = floats(input, 'silu');
    const result = this.pool.take(x.rows, x.cols);
    const out = result.data as Float32Array;
    const xd = x.data;
    for (let i = 0; i < out.length; i++) {
      const v = xd[i]!;
      out[i] = v / (1 + Math.exp(-v));
    }
    return result;
  }

  rmsNorm(input: TensorRef, weight: WeightRef, eps: number): TensorRef {
    const x = floats(input, 'rmsNorm');
    const w = asCpu(weight, 'rmsNorm weight').data as Float32Array;
    if (w.length !== x.cols) throw new ShapeMismatchError(`rmsNorm ${weight.name}`, [x.cols], weight.shape);
    const result = this.pool.take(x.rows, x.cols);
    kernels.rmsNorm(x.data, x.rows, x.cols, w, eps, result.data as Float32Array);
    return result;
  }

  rope(input: TensorRef, positions: TensorRef, options: RopeOptions): TensorRef {
    const x = floats(input, 'rope');
    const pos = ints(positions, 'rope positions');
    const { heads, headDim, theta } = options;
    if (headDim % 2 !== 0) throw new InvalidArgumentError('headDim', `rope needs an even headDim, got ${headDim}.`);
    if (x.cols !== heads * headDim) throw new ShapeMismatchError('rope', [x.rows, heads * headDim], input.shape);
    if (pos.length !== x.rows) throw new ShapeMismatchError('rope positions', [x.rows], positions.shape);
    const result = this.pool.take(x.rows, x.cols);
    kernels.rope(x.data, x.rows, heads, headDim, pos, this.memory.ropeTable(theta, headDim), result.data as Float32Array);
    return result;
  }

  attention(q: TensorRef, k: TensorRef, v: TensorRef, options: AttentionOptions): TensorRef {
    const query = floats(q, 'attention q');
    const key = floats(k, 'attention k');
    const value = floats(v, 'attention v');
    const { heads, kvHeads, headDim } = options;
    const n = query.rows;
    if (!(kvHeads > 0 && heads % kvHeads === 0)) {
      throw new InvalidArgumentError('kvHeads', `heads (${heads}) must be a positive multiple of kvHeads (${kvHeads}).`);
    }
    if (query.cols !== heads * headDim) throw new ShapeMismatchError('attention q', [n, heads * headDim], q.shape);
    if (key.cols !== kvHeads * headDim || key.rows !== n) throw new ShapeMismatchError('attention k', [n, kvHeads * headDim], k.shape);
    if (value.cols !== kvHeads * headDim || value.rows !== n) throw new ShapeMismatchError('attention v', [n, kvHeads * headDim], v.shape);
    const cache = this.cacheFor(options.kv, n);
    if (cache.rowSize !== kvHeads * headDim) {
      throw new ShapeMismatchError(`KV cache "${options.kv.cache}" row`, [kvHeads * headDim], [cache.rowSize]);
    }
    const start = cache.used;
    const total = start + n;
    const mask = floats(options.mask, 'attention mask');
    if (mask.rows !== n || mask.cols !== total) {
      throw new ShapeMismatchError(`attention mask (${start} cache rows before the run + ${n} new rows)`, [n, total], options.mask.shape);
    }
    const keys = cache.keys(options.kv.layer);
    const values = cache.values(options.kv.layer);
    keys.set(key.data, start * cache.rowSize);
    values.set(value.data, start * cache.rowSize);
    const result = this.pool.take(n, heads * headDim);
    const out = result.data as Float32Array;
    const scale = options.scale ?? 1 / Math.sqrt(headDim);
    const runtime = this.memory.runtime;
    if (runtime && headDim % 4 === 0 && runtime.owns(keys) && runtime.owns(values) && runtime.owns(out)) {
      runtime.attention(query.data, n, heads, kvHeads, headDim, keys, values, total, mask.data, scale, out);
    } else {
      if (this.pool.scores.length < total) this.pool.scores = new Float32Array(Math.max(total, 2 * this.pool.scores.length));
      kernels.attention(query.data, n, heads, kvHeads, headDim, keys, values, total, mask.data, scale, this.pool.scores, out);
    }
    return result;
  }

  concat(parts: readonly TensorRef[], axis: 0 | 1): TensorRef {
    if (parts.length === 0) throw new InvalidArgumentError('parts', 'concat needs at least one tensor.');
    const tensors = parts.map((part, index) => floats(part, `concat part ${index}`));
    if (axis === 0) {
      const cols = tensors[0]!.cols;
      let rows = 0;
      for (const t of tensors) {
        if (t.cols !== cols) throw new ShapeMismatchError('concat along rows', [t.rows, cols], [t.rows, t.cols]);
        rows += t.rows;
      }
      const result = this.pool.take(rows, cols);
      const out = result.data as Float32Array;
      let offset = 0;
      for (const t of tensors) {
        copy(t.data, 0, out, offset, t.data.length);
        offset += t.data.length;
      }
      return result;
    }
    if (axis !== 1) throw new InvalidArgumentError('axis', `concat axis must be 0 or 1, got ${String(axis)}.`);
    const rows = tensors[0]!.rows;
    let cols = 0;
    for (const t of tensors) {
      if (t.rows !== rows) throw new ShapeMismatchError('concat along columns', [rows, t.cols], [t.rows, t.cols]);
      cols += t.cols;
    }
    const result = this.pool.take(rows, cols);
    const out = result.data as Float32Array;
    for (let i = 0; i < rows; i++) {
      let offset = i * cols;
      for (const t of tensors) {
        copy(t.data, i * t.cols, out, offset, t.cols);
        offset += t.cols;
      }
    }
    return result;
  }

  sliceColumns(input: TensorRef, start: number, end: number): TensorRef {
    const x = floats(input, 'sliceColumns');
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= x.cols)) {
      throw new InvalidArgumentError('range', `sliceColumns [${start}, ${end}) is not a non-empty range inside 0..${x.cols}.`);
    }
    const width = end - start;
    const result = this.pool.take(x.rows, width);
    const out = result.data as Float32Array;
    for (let i = 0; i < x.rows; i++) copy(x.data, i * x.cols + start, out, i * width, width);
    return result;
  }

  gatherRows(input: TensorRef, rows: TensorRef): TensorRef {
    const x = floats(input, 'gatherRows');
    const index = ints(rows, 'gatherRows rows');
    const result = this.pool.take(index.length, x.cols);
    const out = result.data as Float32Array;
    for (let i = 0; i < index.length; i++) {
      const row = index[i]!;
      if (!(row >= 0 && row < x.rows)) throw new InvalidArgumentError('rows', `gatherRows: row ${row} is outside 0..${x.rows - 1}.`);
      copy(x.data, row * x.cols, out, i * x.cols, x.cols);
    }
    return result;
  }

  private packed(weight: CpuWeight): Float32Array {
    if (!weight.packed) weight.packed = this.memory.pack(weight.data as Float32Array);
    return weight.packed;
  }

  private cacheFor(ref: KvLayerRef, rows: number): HostKvCache {
    const cache = this.state.caches[ref.cache];
    if (!cache) {
      throw new InvalidArgumentError('caches', `The program attends over KV cache "${ref.cache}", but no such cache was passed to run().`, {
        fix: `pass { ${ref.cache}: backend.createKvCache(spec) } as the second argument of run().`,
      });
    }
    if (!(cache instanceof HostKvCache)) {
      throw new InvalidArgumentError('caches', `KV cache "${ref.cache}" was not created by a CPU backend.`, {
        fix: 'create caches with the createKvCache of the backend that compiled the program.',
      });
    }
    if (!Number.isInteger(ref.layer) || ref.layer < 0 || ref.layer >= cache.spec.layers) {
      throw new InvalidArgumentError('layer', `KV layer ${ref.layer} is outside 0..${cache.spec.layers - 1}.`);
    }
    const previous = this.state.appended.get(ref.cache);
    if (previous === undefined) {
      cache.ensureRoom(rows);
      this.state.appended.set(ref.cache, rows);
    } else if (previous !== rows) {
      throw new InvalidArgumentError('k', `All attention layers of one run must append the same number of rows to cache "${ref.cache}" (${previous} and ${rows}).`);
    }
    return cache;
  }
}

/** Copies `length` floats from `source[from..]` to `target[to..]` (no view allocation). */
function copy(source: Float32Array, from: number, target: Float32Array, to: number, length: number): void {
  for (let i = 0; i < length; i++) target[to + i] = source[from + i]!;
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
  private readonly pool: BufferPool;
  private readonly context: BuildContext;

  constructor(
    readonly definition: ProgramDefinition<I, O>,
    private readonly weights: WeightStore,
    private readonly memory: CpuMemory,
  ) {
    this.pool = new BufferPool(memory);
    this.context = {
      weight: (name) => this.weight(name),
      hasWeight: (name) => this.weights.has(name),
      kv: (cache, layer) => ({ cache, layer }),
    };
  }

  async run(inputs: Readonly<Record<I, HostTensor>>, caches: Readonly<Record<string, KvCache>> = {}): Promise<Record<O, HostTensor<'float32'>>> {
    const definition = this.definition;
    const refs = {} as Record<I, TensorRef>;
    for (const name of Object.keys(definition.inputs) as I[]) {
      refs[name] = checkInput(name, definition.inputs[name], inputs[name]);
    }
    const state: RunState = { caches, appended: new Map() };
    this.pool.begin();
    const outputs = definition.build(new CpuOps(this.memory, this.pool, state), refs, this.context);
    for (const [name, rows] of state.appended) (caches[name] as HostKvCache).appendPending(rows);
    const result = {} as Record<O, HostTensor<'float32'>>;
    for (const name of Object.keys(outputs) as O[]) {
      const tensor = asCpu(outputs[name], `output ${name}`);
      if (tensor.dtype !== 'float32') throw new DTypeError(`output "${name}"`, 'float32', tensor.dtype);
      // Copied out of the pool (and out of WebAssembly memory) so it survives later runs.
      result[name] = { dtype: 'float32', shape: [...tensor.shape], data: (tensor.data as Float32Array).slice() };
    }
    return result;
  }

  dispose(): void {
    this.weightRefs.clear();
    this.pool.dispose();
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
      if (tensor.dtype !== 'float32') throw new DTypeError(`weight "${name}"`, 'float32', tensor.dtype);
      ref = new CpuWeight(name, tensor.shape, tensor.data);
      this.weightRefs.set(name, ref);
    }
    return ref;
  }
}

/** Which kernels a CPU backend runs. */
export type CpuKernels = 'wasm-simd' | 'scalar';

/** Options of {@link createCpuBackend}. */
export interface CpuBackendOptions {
  /**
   * `auto` (default): WebAssembly SIMD kernels where the engine supports them, scalar JavaScript
   * otherwise. `wasm-simd`: fail with {@link BackendUnavailableError} when unsupported.
   * `scalar`: always the scalar JavaScript kernels (the reference; slow).
   */
  readonly kernels?: 'auto' | CpuKernels;
}

/** The CPU backend: a {@link TensorBackend} that also says which kernels it runs. */
export interface CpuBackend extends TensorBackend {
  readonly id: 'cpu';
  /** The kernels in use. */
  readonly kernels: CpuKernels;
}

/**
 * Creates the pure-TypeScript CPU backend.
 *
 * @throws BackendUnavailableError when `kernels: 'wasm-simd'` is asked for and this engine cannot
 *   run WebAssembly SIMD with shared memory.
 */
export function createCpuBackend(options: CpuBackendOptions = {}): CpuBackend {
  const wanted = options.kernels ?? 'auto';
  if (wanted !== 'auto' && wanted !== 'wasm-simd' && wanted !== 'scalar') {
    throw new InvalidArgumentError('kernels', `kernels must be 'auto', 'wasm-simd' or 'scalar', got ${String(wanted)}.`);
  }
  const runtime = wanted === 'scalar' ? undefined : WasmRuntime.create();
  if (wanted === 'wasm-simd' && !runtime) {
    throw new BackendUnavailableError([{ name: 'cpu (wasm-simd)', reason: 'this JavaScript engine lacks WebAssembly SIMD or SharedArrayBuffer' }], {
      fix: "use Node 20 or later, or create the backend with kernels: 'scalar'.",
    });
  }
  let memory: CpuMemory | undefined = new CpuMemory(runtime);
  const live = (): CpuMemory => {
    if (!memory) throw new GumihoError('The cpu backend was disposed.', { fix: 'create a new backend with createCpuBackend().' });
    return memory;
  };
  return {
    specificationVersion: 'v1',
    id: 'cpu',
    kernels: runtime ? 'wasm-simd' : 'scalar',
    capabilities: { precision: 'float32', traced: false },
    async compile<I extends string, O extends string>(definition: ProgramDefinition<I, O>, weights: WeightStore): Promise<Program<I, O>> {
      return new CpuProgram(definition, weights, live());
    },
    createKvCache(spec: KvCacheSpec): KvCache {
      return live().createKvCache(spec);
    },
    dispose() {
      runtime?.dispose();
      memory = undefined;
    },
  };
}
