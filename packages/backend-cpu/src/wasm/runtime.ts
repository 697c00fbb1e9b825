/**
 * The WebAssembly side of the CPU backend at run time: one shared memory, a small first-fit
 * allocator over it, and typed wrappers around the SIMD kernels of `kernel-module.ts`.
 *
 * The memory is *shared* (backed by a `SharedArrayBuffer`) so that growing it never detaches the
 * `Float32Array` views that the backend hands out: buffers allocated before a growth stay valid.
 * A view's `byteOffset` is its pointer in the kernels' address space.
 */
import { isExactBf16, kernelModuleBinary, packBf16, type KernelExports } from './kernel-module.js';

/** A weight copied into the kernels' memory: float32, or packed bfloat16 (half the bytes, exact). */
export interface PackedWeight {
  readonly format: 'f32' | 'bf16';
  /** Byte address in the kernels' memory. */
  readonly ptr: number;
}

const PAGE_BYTES = 65536;
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

  private constructor(api: WasmApi, module: object) {
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
    if (w.format === 'bf16') this.kernels.linearBf16(xPtr, n, k, w.ptr, m, biasPtr, out.byteOffset, panel, this.panelScratch(panel * k * 4));
    else this.kernels.linear(xPtr, n, k, w.ptr, m, biasPtr, out.byteOffset, panel, 0);
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

  /** Drops the memory; later allocations return `undefined`. */
  dispose(): void {
    this.disposed = true;
    this.free.length = 0;
    this.sizes.clear();
  }
}

function align(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}
