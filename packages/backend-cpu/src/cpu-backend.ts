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
import { WasmRuntime, type PackedWeight } from './wasm/runtime.js';

/** A tensor held by the CPU backend. */
class CpuTensor implements TensorRef {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: Float32Array | Int32Array,
    /** The pool that owns the buffer, for op outputs; undefined for inputs and weights. */
    readonly pool?: BufferPool,
    /** Index of the op that produced it within its run (its virtual slot). */
    readonly slot = -1,
  ) {}
}

class CpuWeight extends CpuTensor implements WeightRef {
  /** The copy `linear` reads in WebAssembly memory, made on first use (null: none possible). */
  packed: PackedWeight | null | undefined;
  /** The float32 copy in WebAssembly memory of a bias, made on first use. */
  packedBias: Float32Array | undefined;
  constructor(
    readonly name: string,
    shape: readonly number[],
    data: Float32Array,
  ) {
    super('float32', shape, data);
  }
}

function asCpu(ref: TensorRef, what: string): CpuTensor {
  if (ref instanceof CpuTensor) {
    ref.pool?.use(ref);
    return ref;
  }
  if (ref instanceof ShapeTensor) throw new PlanMismatch();
  throw new GumihoError(`${what}: the tensor does not belong to the cpu backend.`, {
    fix: 'pass only tensors created by the ops of the same run (and weights from its build context).',
  });
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
  private readonly packedWeights = new WeakMap<Float32Array, PackedWeight>();
  private readonly packedBiases = new WeakMap<Float32Array, Float32Array>();
  /** Frees a packed weight's block when its source array is collected. */
  private readonly weightFinalizer: FinalizationRegistry<number>;
  /** Frees a KV cache's layer blocks when the cache is collected. */
  private readonly cacheFinalizer: FinalizationRegistry<number[]>;
  private readonly ropeTables = new Map<string, kernels.RopeTable>();

  constructor(
    readonly runtime: WasmRuntime | undefined,
    private readonly bf16: boolean,
  ) {
    this.weightFinalizer = new FinalizationRegistry((ptr) => runtime?.releasePointer(ptr));
    this.cacheFinalizer = new FinalizationRegistry((ptrs) => {
      for (const ptr of ptrs) runtime?.releasePointer(ptr);
    });
  }

  /** A float buffer, in WebAssembly memory when there is room; zeroed unless `zero` is false. */
  allocate(length: number, zero = true): Float32Array {
    return this.runtime?.allocate(length, zero) ?? new Float32Array(length);
  }

  release(array: Float32Array): void {
    this.runtime?.release(array);
  }

  inWasm(array: Float32Array): boolean {
    return this.runtime !== undefined && this.runtime.owns(array);
  }

  /** The copy of the weight `source [rows, cols]` that the matmul kernel reads, packed once per backend; null without room. */
  pack(source: Float32Array, rows: number, cols: number): PackedWeight | null {
    if (!this.runtime) return null;
    let packed = this.packedWeights.get(source);
    if (!packed) {
      packed = this.runtime.packWeight(source, rows, cols, this.bf16);
      if (!packed) return null;
      this.packedWeights.set(source, packed);
      this.weightFinalizer.register(source, packed.ptr);
    }
    return packed;
  }

  /** A float32 copy of `source` in WebAssembly memory (for biases), made once; `source` without room. */
  packVector(source: Float32Array): Float32Array {
    if (!this.runtime) return source;
    let packed = this.packedBiases.get(source);
    if (!packed) {
      packed = this.runtime.allocate(source.length, false);
      if (!packed) return source;
      packed.set(source);
      this.packedBiases.set(source, packed);
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

/** Thrown inside a run when the op sequence departs from the buffer plan; the run is redone. */
class PlanMismatch extends Error {}

/**
 * Which virtual slots (op outputs) share physical buffers, from a shape-only run of `build`; or
 * `separate`: every op output gets its own buffer (no reuse, no checks).
 */
type BufferPlan = LivenessPlan | 'separate';

interface LivenessPlan {
  /** Physical buffer of each virtual slot. */
  readonly assignment: Int32Array;
  /** Index of the last op that reads each slot; `Infinity` for program outputs. */
  readonly lastUse: Float64Array;
}

/**
 * Assigns physical buffers to virtual slots so that slots whose lifetimes do not overlap share a
 * buffer (greedy interval colouring, best fit by size). A slot defined by op `i` may reuse a
 * buffer whose previous slot was last read before op `i`, never by op `i` itself, so an op's
 * output never aliases its inputs.
 */
function planBuffers(lastUse: Float64Array, sizes: Float64Array): LivenessPlan {
  const count = lastUse.length;
  const assignment = new Int32Array(count);
  const capacity: number[] = [];
  const free: number[] = [];
  const active: { end: number; buffer: number }[] = [];
  for (let slot = 0; slot < count; slot++) {
    for (let a = active.length - 1; a >= 0; a--) {
      if (active[a]!.end < slot) {
        free.push(active[a]!.buffer);
        active.splice(a, 1);
      }
    }
    const size = sizes[slot]!;
    let pick = -1;
    for (let f = 0; f < free.length; f++) {
      const candidate = free[f]!;
      if (pick < 0) pick = f;
      else {
        const best = capacity[free[pick]!]!;
        const have = capacity[candidate]!;
        // Prefer the smallest buffer that fits, else the largest (it grows least).
        if ((have >= size && (best < size || have < best)) || (best < size && have > best)) pick = f;
      }
    }
    let buffer: number;
    if (pick >= 0) {
      buffer = free[pick]!;
      free.splice(pick, 1);
      capacity[buffer] = Math.max(capacity[buffer]!, size);
    } else {
      buffer = capacity.length;
      capacity.push(size);
    }
    assignment[slot] = buffer;
    active.push({ end: lastUse[slot]!, buffer });
  }
  return { assignment, lastUse };
}

/** A tensor of the shape-only run: a shape and the op that produced it. */
class ShapeTensor implements TensorRef {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly slot = -1,
  ) {}
}

/**
 * The op set on shapes only: runs `build` to learn the dataflow of a run (which op output is read
 * by which later op) and the size of each output, without computing anything or touching caches.
 */
class ShapeOps implements Ops {
  readonly lastUse: number[] = [];
  readonly sizes: number[] = [];

  constructor(private readonly cacheRows: (ref: KvLayerRef) => number) {}

  private use(...refs: (TensorRef | undefined)[]): void {
    for (const ref of refs) {
      if (ref instanceof ShapeTensor && ref.slot >= 0) this.lastUse[ref.slot] = this.sizes.length;
    }
  }
  private out(rows: unknown, cols: unknown): ShapeTensor {
    const r = typeof rows === 'number' && rows >= 0 ? rows : 0;
    const c = typeof cols === 'number' && cols >= 0 ? cols : 0;
    const slot = this.sizes.length;
    this.sizes.push(r * c);
    this.lastUse.push(-1);
    return new ShapeTensor('float32', [r, c], slot);
  }
  /** Marks program outputs as live to the end of the run. */
  outputs(refs: Iterable<TensorRef>): void {
    for (const ref of refs) if (ref instanceof ShapeTensor && ref.slot >= 0) this.lastUse[ref.slot] = Infinity;
  }

  embedding(table: WeightRef, ids: TensorRef): TensorRef {
    this.use(table, ids);
    return this.out(ids.shape[0], table.shape[1]);
  }
  linear(x: TensorRef, weight: WeightRef, bias?: WeightRef): TensorRef {
    this.use(x, weight, bias);
    return this.out(x.shape[0], weight.shape[0]);
  }
  add(a: TensorRef, b: TensorRef): TensorRef {
    this.use(a, b);
    return this.out(a.shape[0], a.shape[1]);
  }
  mul(a: TensorRef, b: TensorRef): TensorRef {
    this.use(a, b);
    return this.out(a.shape[0], a.shape[1]);
  }
  silu(x: TensorRef): TensorRef {
    this.use(x);
    return this.out(x.shape[0], x.shape[1]);
  }
  rmsNorm(x: TensorRef, weight: WeightRef): TensorRef {
    this.use(x, weight);
    return this.out(x.shape[0], x.shape[1]);
  }
  rope(x: TensorRef, positions: TensorRef): TensorRef {
    this.use(x, positions);
    return this.out(x.shape[0], x.shape[1]);
  }
  attention(q: TensorRef, k: TensorRef, v: TensorRef, options: AttentionOptions): TensorRef {
    this.use(q, k, v, options.mask);
    this.cacheRows(options.kv);
    return this.out(q.shape[0], options.heads * options.headDim);
  }
  concat(parts: readonly TensorRef[], axis: 0 | 1): TensorRef {
    this.use(...parts);
    let rows = 0;
    let cols = 0;
    for (const part of parts) {
      const r = Number(part.shape[0]);
      const c = Number(part.shape[1]);
      if (axis === 0) {
        rows += r;
        cols = c;
      } else {
        rows = r;
        cols += c;
      }
    }
    return this.out(rows, cols);
  }
  sliceColumns(x: TensorRef, start: number, end: number): TensorRef {
    this.use(x);
    return this.out(x.shape[0], end - start);
  }
  gatherRows(x: TensorRef, rows: TensorRef): TensorRef {
    this.use(x, rows);
    return this.out(rows.shape[0], x.shape[1]);
  }
}

interface VirtualSlot {
  tensor: CpuTensor | undefined;
  buffer: Float32Array | undefined;
}

/**
 * The intermediate buffers of one program. A plan (from a shape-only run) maps the i-th op output
 * of a run to a physical buffer shared with outputs whose lifetimes do not overlap; buffers grow
 * when a run has more rows. Every read of an op output is checked against the plan, and a run
 * that departs from it is redone under a fresh plan, so a `build` that branches on shapes stays
 * correct.
 */
class BufferPool {
  private plan: BufferPlan | undefined;
  private physical: Float32Array[] = [];
  private virtual: VirtualSlot[] = [];
  private cursor = 0;
  /** Scratch for the scalar attention kernel's scores. */
  scores = new Float32Array(0);

  constructor(private readonly memory: CpuMemory) {}

  get planned(): boolean {
    return this.plan !== undefined;
  }

  /** Installs a plan (buffers are kept and reassigned). */
  setPlan(plan: BufferPlan): void {
    this.plan = plan;
    this.virtual = [];
  }

  begin(): void {
    this.cursor = 0;
  }

  /** A `[rows, cols]` float32 tensor whose contents are garbage (ops overwrite every element). */
  take(rows: number, cols: number): CpuTensor {
    const plan = this.plan;
    const slot = this.cursor++;
    let index = slot;
    if (plan !== 'separate') {
      if (!plan || slot >= plan.assignment.length) throw new PlanMismatch();
      index = plan.assignment[slot]!;
    }
    const length = rows * cols;
    let buffer = this.physical[index];
    if (!buffer || buffer.length < length) {
      if (buffer) this.memory.release(buffer);
      buffer = this.memory.allocate(Math.max(length, 16), false);
      this.physical[index] = buffer;
    }
    let entry = this.virtual[slot];
    if (!entry) {
      entry = { tensor: undefined, buffer: undefined };
      this.virtual[slot] = entry;
    }
    const cached = entry.tensor;
    if (cached && entry.buffer === buffer && cached.shape[0] === rows && cached.shape[1] === cols) return cached;
    const data = buffer.length === length ? buffer : buffer.subarray(0, length);
    entry.buffer = buffer;
    entry.tensor = new CpuTensor('float32', [rows, cols], data, this, slot);
    return entry.tensor;
  }

  /** Checks a read of `tensor` by the current op against the plan. */
  use(tensor: CpuTensor): void {
    const plan = this.plan;
    if (tensor.slot >= 0 && plan && plan !== 'separate' && this.cursor > plan.lastUse[tensor.slot]!) throw new PlanMismatch();
  }

  /** Checks that `tensor`, a program output, was planned to live to the end. */
  output(tensor: CpuTensor): void {
    const plan = this.plan;
    if (tensor.pool === this && plan && plan !== 'separate' && plan.lastUse[tensor.slot] !== Infinity) throw new PlanMismatch();
  }

  dispose(): void {
    for (const buffer of this.physical) this.memory.release(buffer);
    this.physical = [];
    this.virtual = [];
    this.plan = undefined;
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
    const packed = this.packed(weight as CpuWeight, w.rows, w.cols);
    const runtime = this.memory.runtime;
    if (runtime && packed && runtime.owns(out)) {
      let packedBias: Float32Array | undefined;
      if (b) {
        const biasRef = bias as CpuWeight;
        packedBias = biasRef.packedBias ??= this.memory.packVector(b);
      }
      runtime.linear(input.data, input.rows, input.cols, packed, w.rows, packedBias, out);
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
    const runtime = this.memory.runtime;
    if (runtime && runtime.owns(xd) && runtime.owns(out)) {
      runtime.silu(xd, out);
      return result;
    }
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

  private packed(weight: CpuWeight, rows: number, cols: number): PackedWeight | null {
    if (weight.packed === undefined) weight.packed = this.memory.pack(weight.data as Float32Array, rows, cols);
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
    for (let attempt = 0; ; attempt++) {
      if (!this.pool.planned || attempt > 0) this.pool.setPlan(this.planFor(refs, caches, attempt > 1));
      try {
        return this.execute(refs, caches);
      } catch (error) {
        // Attention writes its rows past the cache's used rows but marks them pending only at the
        // end of a run, so redoing a run is safe.
        if (!(error instanceof PlanMismatch) || attempt > 2) throw error;
      }
    }
  }

  private execute(refs: Readonly<Record<I, TensorRef>>, caches: Readonly<Record<string, KvCache>>): Record<O, HostTensor<'float32'>> {
    const state: RunState = { caches, appended: new Map() };
    this.pool.begin();
    const outputs = this.definition.build(new CpuOps(this.memory, this.pool, state), refs, this.context);
    const result = {} as Record<O, HostTensor<'float32'>>;
    for (const name of Object.keys(outputs) as O[]) {
      const tensor = asCpu(outputs[name], `output ${name}`);
      if (tensor.dtype !== 'float32') throw new DTypeError(`output "${name}"`, 'float32', tensor.dtype);
      this.pool.output(tensor);
      // Copied out of the pool (and out of WebAssembly memory) so it survives later runs.
      result[name] = { dtype: 'float32', shape: [...tensor.shape], data: (tensor.data as Float32Array).slice() };
    }
    for (const [name, rows] of state.appended) (caches[name] as HostKvCache).appendPending(rows);
    return result;
  }

  /**
   * Plans the pool from a shape-only run of `build`. Without a usable shape-only run (or when
   * `separate`), every op output gets its own buffer: correct, but without reuse.
   */
  private planFor(refs: Readonly<Record<I, TensorRef>>, caches: Readonly<Record<string, KvCache>>, separate: boolean): BufferPlan {
    let lastUse: Float64Array | undefined;
    let sizes: Float64Array | undefined;
    if (!separate) {
      try {
        const shapes = new ShapeOps((ref) => (caches[ref.cache] instanceof HostKvCache ? (caches[ref.cache] as HostKvCache).used : 0));
        const shapeRefs = {} as Record<I, TensorRef>;
        for (const name of Object.keys(refs) as I[]) shapeRefs[name] = new ShapeTensor(refs[name].dtype, refs[name].shape as number[]);
        const outputs = this.definition.build(shapes, shapeRefs, this.context);
        shapes.outputs(Object.values(outputs) as TensorRef[]);
        lastUse = Float64Array.from(shapes.lastUse);
        sizes = Float64Array.from(shapes.sizes);
      } catch {
        lastUse = undefined;
      }
    }
    return lastUse && sizes ? planBuffers(lastUse, sizes) : 'separate';
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
  /**
   * Store matmul weights whose values are all exactly bfloat16 (the weights of bf16 checkpoints)
   * as bfloat16 in WebAssembly memory: half the memory and memory traffic, bit-identical results.
   * Default true; false keeps float32 copies (for comparisons).
   */
  readonly bf16Weights?: boolean;
  /**
   * Threads for matmuls (default 1). With `n > 1`, `n - 1` worker threads share the WebAssembly
   * memory and each matmul of at least 4 rows is split by output columns (the single-row matmuls
   * of plain decoding are memory-bound and stay on one thread). Needs `node:worker_threads`;
   * ignored with the scalar kernels.
   */
  readonly threads?: number;
}

/** The CPU backend: a {@link TensorBackend} that also says which kernels it runs. */
export interface CpuBackend extends TensorBackend {
  readonly id: 'cpu';
  /** The kernels in use. */
  readonly kernels: CpuKernels;
  /**
   * Bytes of WebAssembly memory reserved so far (packed weights, KV caches, op buffers, free
   * blocks); 0 with the scalar kernels. Memory is reused, never returned to the system.
   */
  readonly memoryBytes: number;
  /** Threads that run matmuls (the `threads` option where helper threads could start, else 1). */
  readonly threads: number;
  /** False until helper threads have started (meanwhile the calling thread does all the work). */
  readonly threadsReady: boolean;
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
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new InvalidArgumentError('threads', `threads must be an integer from 1 to 64, got ${String(threads)}.`);
  }
  const helpers = runtime && threads > 1 ? runtime.startHelpers(threads - 1, 4) : 0;
  let memory: CpuMemory | undefined = new CpuMemory(runtime, options.bf16Weights ?? true);
  const live = (): CpuMemory => {
    if (!memory) throw new GumihoError('The cpu backend was disposed.', { fix: 'create a new backend with createCpuBackend().' });
    return memory;
  };
  return {
    specificationVersion: 'v1',
    id: 'cpu',
    kernels: runtime ? 'wasm-simd' : 'scalar',
    get memoryBytes() {
      return runtime?.reservedBytes ?? 0;
    },
    threads: helpers + 1,
    get threadsReady() {
      return helpers === 0 || runtime!.helpersReady;
    },
    capabilities: { precision: 'float32', traced: false, copiesWeights: false },
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
