/**
 * The WebAssembly side of the CPU backend at run time: one shared memory, a small first-fit
 * allocator over it, and typed wrappers around the SIMD kernels of `kernel-module.ts`.
 *
 * The memory is *shared* (backed by a `SharedArrayBuffer`) so that growing it never detaches the
 * `Float32Array` views that the backend hands out: buffers allocated before a growth stay valid.
 * A view's `byteOffset` is its pointer in the kernels' address space.
 */
import { GumihoError } from '@gumiho/core';
import { isExactBf16, kernelModuleBinary, packBf16, type KernelExports } from './kernel-module.js';

/** A weight copied into the kernels' memory: float32, or packed bfloat16 (half the bytes, exact). */
export interface PackedWeight {
  readonly format: 'f32' | 'bf16';
  /** Byte address in the kernels' memory. */
  readonly ptr: number;
}

const PAGE_BYTES = 65536;
/** Scratch of each helper thread (the bf16 kernel's converted weight panel), in floats. */
const HELPER_SCRATCH_FLOATS = 65536;
/** 2 GiB: pointers stay positive as signed i32, which the kernels' loop comparisons rely on. */
const MAX_PAGES = 32768;
const ALIGN = 64;

/** The parts of the WebAssembly JavaScript API used here (not in the ES lib typings). */
interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array<ArrayBuffer>) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { readonly exports: unknown };
  validate(bytes: Uint8Array<ArrayBuffer>): boolean;
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let cachedModule: object | null | undefined;

/** Compiles the kernel module once per process; `null` when this engine lacks SIMD or shared memory. */
function kernelModule(): object | null {
  if (cachedModule !== undefined) return cachedModule;
  try {
    const binary = kernelModuleBinary({ initial: 1, maximum: MAX_PAGES, shared: true });
    cachedModule = wasm && wasm.validate(binary) ? new wasm.Module(binary) : null;
  } catch {
    cachedModule = null;
  }
  return cachedModule;
}

/** True when this JavaScript engine can run the SIMD kernels. */
export function wasmSimdAvailable(): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && kernelModule() !== null;
}

interface FreeBlock {
  ptr: number;
  size: number;
}

/** The kernels' memory and allocator. Create with {@link WasmRuntime.create}. */
export class WasmRuntime {
  private readonly memory: WasmMemory;
  private readonly kernels: KernelExports;
  /** Every `SharedArrayBuffer` object this memory has exposed (one per growth). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private readonly sizes = new Map<number, number>();
  private readonly free: FreeBlock[] = [];
  private top = ALIGN;
  private highWater = ALIGN;
  private scratchPtr = 0;
  private scratchBytes = 0;
  private panelPtr = 0;
  private panelBytes = 0;
  private disposed = false;
  private heapView: Float32Array;

  private helpers: Helper[] | undefined;
  private threadMinRows = 4;

  private constructor(
    api: WasmApi,
    private readonly module: object,
  ) {
    this.memory = new api.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const instance = new api.Instance(module, { env: { memory: this.memory } });
    this.kernels = instance.exports as unknown as KernelExports;
    this.heapView = new Float32Array(this.currentBuffer());
  }

  /**
   * The memory's current `SharedArrayBuffer`, remembered as ours. Views are always created on a
   * buffer object obtained here, so {@link owns} recognises them whatever object the engine
   * returns for `memory.buffer` on later reads.
   */
  private currentBuffer(): ArrayBufferLike {
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    return buffer;
  }

  /** A view of the whole memory, refreshed after growth. */
  private heap(): Float32Array {
    const buffer = this.currentBuffer();
    if (this.heapView.buffer !== buffer || this.heapView.length * 4 !== buffer.byteLength) this.heapView = new Float32Array(buffer);
    return this.heapView;
  }

  /** A runtime, or `undefined` where SIMD WebAssembly or shared memory is unavailable. */
  static create(): WasmRuntime | undefined {
    if (typeof SharedArrayBuffer === 'undefined') return undefined;
    const module = kernelModule();
    return wasm && module ? new WasmRuntime(wasm, module) : undefined;
  }

  /** Bytes of memory reserved so far (allocated or free). */
  get reservedBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** True when `array` lives in this runtime's memory (its `byteOffset` is then its pointer). */
  owns(array: Float32Array): boolean {
    return this.buffers.has(array.buffer);
  }

  /**
   * A buffer of `length` floats in the kernels' memory (zeroed unless `zero` is false), or
   * `undefined` when the memory cannot grow that far (callers then fall back to ordinary arrays
   * and scalar kernels).
   */
  allocate(length: number, zero = true): Float32Array | undefined {
    if (this.disposed) return undefined;
    const size = Math.max(ALIGN, Math.ceil((length * 4) / ALIGN) * ALIGN);
    let ptr = -1;
    for (let index = 0; index < this.free.length; index++) {
      const block = this.free[index]!;
      if (block.size >= size) {
        ptr = block.ptr;
        if (block.size === size) this.free.splice(index, 1);
        else {
          block.ptr += size;
          block.size -= size;
        }
        break;
      }
    }
    if (ptr < 0) {
      const end = this.top + size;
      const have = this.memory.buffer.byteLength;
      if (end > have) {
        const pages = Math.ceil((end - have) / PAGE_BYTES);
        if (have / PAGE_BYTES + pages > MAX_PAGES) return undefined;
        try {
          this.memory.grow(pages);
        } catch {
          return undefined;
        }
      }
      ptr = this.top;
      this.top = end;
    }
    this.sizes.set(ptr, size);
    const view = new Float32Array(this.currentBuffer(), ptr, length);
    // Memory past the high-water mark was never written: it is still zero (and untouched pages
    // are costly to touch twice).
    if (zero && ptr < this.highWater) view.fill(0);
    this.highWater = Math.max(this.highWater, ptr + size);
    return view;
  }

  /** Returns `array` (from {@link allocate}) to the allocator. Unknown arrays are ignored. */
  release(array: Float32Array): void {
    if (this.disposed || !this.owns(array)) return;
    this.releasePointer(array.byteOffset);
  }

  /** Returns the block at `ptr` to the allocator (used by finalizers, which hold no views). */
  releasePointer(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    // Insert sorted by address, merging with neighbours.
    let index = 0;
    while (index < this.free.length && this.free[index]!.ptr < ptr) index++;
    this.free.splice(index, 0, { ptr, size });
    const next = this.free[index + 1];
    const block = this.free[index]!;
    if (next && block.ptr + block.size === next.ptr) {
      block.size += next.size;
      this.free.splice(index + 1, 1);
    }
    const previous = this.free[index - 1];
    if (previous && previous.ptr + previous.size === block.ptr) {
      previous.size += block.size;
      this.free.splice(index, 1);
    }
    const last = this.free[this.free.length - 1];
    if (last && last.ptr + last.size === this.top) {
      this.top = last.ptr;
      this.free.pop();
    }
  }

  /**
   * Copies the weight `source [rows, cols]` into memory for {@link linear}: as packed bfloat16
   * when `bf16` is allowed, `cols` is a multiple of 8 and every value is exactly a bfloat16 (then
   * results are bit-identical to float32 weights, at half the memory traffic), else as float32.
   * `undefined` when memory is exhausted.
   */
  packWeight(source: Float32Array, rows: number, cols: number, bf16: boolean): PackedWeight | undefined {
    if (bf16 && cols % 8 === 0 && rows * cols === source.length && isExactBf16(source)) {
      const view = this.allocate(source.length / 2, false);
      if (!view) return undefined;
      packBf16(source, new Uint32Array(view.buffer, view.byteOffset, source.length / 2));
      return { format: 'bf16', ptr: view.byteOffset };
    }
    const view = this.allocate(source.length, false);
    if (!view) return undefined;
    view.set(source);
    return { format: 'f32', ptr: view.byteOffset };
  }

  /** Scratch space of at least `bytes` bytes, valid until the next call (pointer). */
  private scratch(bytes: number): number {
    if (this.scratchBytes < bytes) {
      if (this.scratchPtr) this.releasePointer(this.scratchPtr);
      const view = this.allocate(Math.max(bytes, 65536) / 4);
      if (!view) throw new RangeError('the WebAssembly memory is exhausted');
      this.scratchPtr = view.byteOffset;
      this.scratchBytes = view.byteLength;
    }
    return this.scratchPtr;
  }

  /** A second scratch area (the bf16 kernel's converted weight panel) of at least `bytes` bytes. */
  private panelScratch(bytes: number): number {
    if (this.panelBytes < bytes) {
      if (this.panelPtr) this.releasePointer(this.panelPtr);
      const view = this.allocate(Math.max(bytes, 65536) / 4, false);
      if (!view) throw new RangeError('the WebAssembly memory is exhausted');
      this.panelPtr = view.byteOffset;
      this.panelBytes = view.byteLength;
    }
    return this.panelPtr;
  }

  /** Copies `array` into scratch at byte `offset` unless it is already in memory; returns its pointer. */
  private pointerOf(array: Float32Array, base: number, offset: number): number {
    if (this.owns(array)) return array.byteOffset;
    const ptr = base + offset;
    this.heap().set(array, ptr >>> 2);
    return ptr;
  }

  /**
   * `out[n, m] = x[n, k] · w[m, k]ᵀ (+ bias)`. `w` comes from {@link packWeight}; `out` must be
   * in memory; `x` and `bias` are copied to scratch when they are not.
   */
  linear(x: Float32Array, n: number, k: number, w: PackedWeight, m: number, bias: Float32Array | undefined, out: Float32Array): void {
    let xPtr = x.byteOffset;
    let biasPtr = bias && this.owns(bias) ? bias.byteOffset : 0;
    const copyX = !this.owns(x);
    const copyBias = bias !== undefined && biasPtr === 0;
    if (copyX || copyBias) {
      const xBytes = copyX ? align(n * k * 4) : 0;
      const base = this.scratch(xBytes + (copyBias ? m * 4 : 0));
      if (copyX) xPtr = this.pointerOf(x, base, 0);
      if (copyBias) biasPtr = this.pointerOf(bias!, base, xBytes);
    }
    // A panel of w of about 64 KiB stays in L2 while all rows pass over it.
    const panel = Math.max(4, Math.floor(16384 / Math.max(1, k)) & ~3);
    const bf16 = w.format === 'bf16';
    const scratch = bf16 ? this.panelScratch(panel * k * 4) : 0;
    const helpers = this.helpers;
    if (helpers && n >= this.threadMinRows && m >= 16 * (helpers.length + 1) && panel * k * 4 <= HELPER_SCRATCH_FLOATS * 4) {
      // Split the output columns: helper t computes a block, this thread the first one.
      const parts = helpers.length + 1;
      const share = Math.floor(m / parts / 4) * 4;
      const rowBytes = bf16 ? k * 2 : k * 4;
      let start = share;
      const started: Helper[] = [];
      for (const helper of helpers) {
        const end = helper === helpers[helpers.length - 1] ? m : start + share;
        if (helper.start(bf16, xPtr, n, k, w.ptr + start * rowBytes, end - start, biasPtr ? biasPtr + start * 4 : 0, out.byteOffset + start * 4, panel, m)) started.push(helper);
        else {
          // Not ready yet: compute its block here.
          this.kernelLinear(bf16, xPtr, n, k, w.ptr + start * rowBytes, end - start, biasPtr ? biasPtr + start * 4 : 0, out.byteOffset + start * 4, panel, scratch, m);
        }
        start = end;
      }
      this.kernelLinear(bf16, xPtr, n, k, w.ptr, share, biasPtr, out.byteOffset, panel, scratch, m);
      for (const helper of started) helper.finish();
      return;
    }
    this.kernelLinear(bf16, xPtr, n, k, w.ptr, m, biasPtr, out.byteOffset, panel, scratch, m);
  }

  private kernelLinear(bf16: boolean, x: number, n: number, k: number, w: number, m: number, bias: number, out: number, panel: number, scratch: number, outStride: number): void {
    if (bf16) this.kernels.linearBf16(x, n, k, w, m, bias, out, panel, scratch, outStride);
    else this.kernels.linear(x, n, k, w, m, bias, out, panel, 0, outStride);
  }

  /**
   * Starts `count` helper threads (worker threads sharing this memory) that take a share of the
   * output columns of every matmul with at least `minRows` rows. Returns how many started (0 where
   * `node:worker_threads` is unavailable). Helpers become ready asynchronously; until then this
   * thread does their share.
   */
  startHelpers(count: number, minRows: number): number {
    const threads = workerThreads();
    if (!threads || count <= 0 || this.helpers) return 0;
    this.threadMinRows = minRows;
    const helpers: Helper[] = [];
    for (let index = 0; index < count; index++) {
      const control = this.allocate(16);
      const scratch = this.allocate(HELPER_SCRATCH_FLOATS);
      if (!control || !scratch) break;
      helpers.push(new Helper(threads, this.module, this.memory, control, scratch.byteOffset));
    }
    this.helpers = helpers.length > 0 ? helpers : undefined;
    return helpers.length;
  }

  /**
   * SiLU of `x` into `out` (both in memory, same length): the first `length & ~3` floats in
   * WebAssembly, the rest here.
   */
  silu(x: Float32Array, out: Float32Array): void {
    const vectorized = x.length & ~3;
    this.kernels.silu(x.byteOffset, out.byteOffset, vectorized);
    for (let i = vectorized; i < x.length; i++) {
      const v = x[i]!;
      out[i] = v / (1 + Math.exp(-v));
    }
  }

  /**
   * Attention (see {@link KernelExports.attention}). `keys`, `values` and `out` must be in memory
   * and `headDim` a multiple of 4; `q` and `mask` are copied to scratch when they are not.
   */
  attention(
    q: Float32Array,
    n: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    keys: Float32Array,
    values: Float32Array,
    total: number,
    mask: Float32Array,
    scale: number,
    out: Float32Array,
  ): void {
    const scoreBytes = align((total + 4) * 4);
    const qBytes = this.owns(q) ? 0 : align(q.length * 4);
    const maskBytes = this.owns(mask) ? 0 : align(mask.length * 4);
    const base = this.scratch(scoreBytes + qBytes + maskBytes);
    const qPtr = this.pointerOf(q, base, scoreBytes);
    const maskPtr = this.pointerOf(mask, base, scoreBytes + qBytes);
    const kernel = headDim === 64 ? this.kernels.attention64 : headDim === 128 ? this.kernels.attention128 : this.kernels.attention;
    kernel(qPtr, n, heads, kvHeads, headDim, keys.byteOffset, values.byteOffset, total, maskPtr, scale, base, out.byteOffset);
  }

  /** True when helper threads were asked for and all of them are ready. */
  get helpersReady(): boolean {
    return this.helpers !== undefined && this.helpers.every((helper) => helper.ready);
  }

  /** Drops the memory and stops helper threads; later allocations return `undefined`. */
  dispose(): void {
    for (const helper of this.helpers ?? []) helper.stop();
    this.helpers = undefined;
    this.disposed = true;
    this.free.length = 0;
    this.sizes.clear();
  }
}

function align(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

/** The parts of `node:worker_threads` used here. */
interface WorkerThreads {
  Worker: new (source: string, options: { eval: true; workerData: unknown }) => {
    unref(): void;
    terminate(): Promise<number>;
    on(event: 'error', listener: (error: unknown) => void): void;
  };
}

/** `node:worker_threads`, loaded synchronously where the runtime has it (Node >= 20.16). */
function workerThreads(): WorkerThreads | undefined {
  const get = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } }).process?.getBuiltinModule;
  try {
    return get ? (get('node:worker_threads') as WorkerThreads) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Control block layout (Int32 words): 0 job sequence number (-1: exit), 1 format (1 = bf16),
 * 2-10 the kernel's arguments, 13 error flag, 14 sequence number of the last finished job, 15 ready.
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, scratch } = workerData;
const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
const c = new Int32Array(memory.buffer, control, 16);
Atomics.store(c, 15, 1);
let seen = 0;
for (;;) {
  Atomics.wait(c, 0, seen);
  const job = Atomics.load(c, 0);
  if (job < 0) break;
  seen = job;
  try {
    const f = c[1] === 1 ? kernels.linearBf16 : kernels.linear;
    f(c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], scratch, c[10]);
  } catch (error) {
    Atomics.store(c, 13, 1);
  }
  Atomics.store(c, 14, job);
  Atomics.notify(c, 14);
}
`;

/** One helper thread and its control block. */
class Helper {
  private readonly control: Int32Array;
  private readonly worker: InstanceType<WorkerThreads['Worker']>;
  private job = 0;
  private failed = false;

  constructor(threads: WorkerThreads, module: object, memory: WasmMemory, control: Float32Array, scratch: number) {
    this.control = new Int32Array(control.buffer, control.byteOffset, 16);
    this.worker = new threads.Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, control: control.byteOffset, scratch } });
    this.worker.on('error', () => {
      this.failed = true;
    });
    this.worker.unref();
  }

  get ready(): boolean {
    return !this.failed && Atomics.load(this.control, 15) === 1;
  }

  /** Hands a matmul block to the thread; false when it is not ready (or has failed). */
  start(bf16: boolean, x: number, n: number, k: number, w: number, m: number, bias: number, out: number, panel: number, outStride: number): boolean {
    const c = this.control;
    if (this.failed || Atomics.load(c, 15) !== 1) return false;
    c[1] = bf16 ? 1 : 0;
    c[2] = x;
    c[3] = n;
    c[4] = k;
    c[5] = w;
    c[6] = m;
    c[7] = bias;
    c[8] = out;
    c[9] = panel;
    c[10] = outStride;
    this.job = (this.job + 1) & 0x3fffffff || 1;
    Atomics.store(c, 0, this.job);
    Atomics.notify(c, 0);
    return true;
  }

  /** Waits until the thread has finished its block. */
  finish(): void {
    const c = this.control;
    for (;;) {
      const done = Atomics.load(c, 14);
      if (done === this.job) break;
      Atomics.wait(c, 14, done, 1000);
      if (this.failed) {
        throw new GumihoError('A helper thread of the cpu backend stopped.', { fix: 'create the backend with threads: 1.', code: 'GUMIHO_INTERNAL' });
      }
    }
    if (Atomics.load(c, 13) !== 0) {
      throw new GumihoError('A helper thread of the cpu backend failed in a matmul.', { fix: 'create the backend with threads: 1.', code: 'GUMIHO_INTERNAL' });
    }
  }

  stop(): void {
    Atomics.store(this.control, 0, -1);
    Atomics.notify(this.control, 0);
    void this.worker.terminate();
  }
}
