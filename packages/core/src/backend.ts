/**
 * The tensor backend contract: the small op set that models and draft heads are written against
 * once, and that every backend runs.
 *
 * Model code is a *program*: a `build(ops, inputs, context)` function that calls {@link Ops} on
 * opaque {@link TensorRef}s and returns named outputs. A backend either executes the ops eagerly
 * each time the program runs (`cpu`) or traces `build` once into a graph and runs that graph
 * (`ort-*`: an ONNX graph run by onnxruntime-node). The same program text therefore runs on every
 * backend, and so does a user's custom head written with these ops.
 *
 * Conventions (batch 1 everywhere):
 * - activations are 2-D `[rows, columns]` float32 tensors; a row is a token position;
 * - token ids and positions are 1-D int32 tensors `[rows]`;
 * - weights follow Hugging Face's `nn.Linear` layout `[outFeatures, inFeatures]`;
 * - dimensions may be symbolic (strings such as `'n'`) in program input specs; at run time every
 *   dimension is a number.
 *
 * This module holds types only, plus {@link HostKvCache} (in `kv-cache.ts`), the host-memory KV
 * cache that the CPU and ONNX Runtime CPU backends share.
 */

/** Element types the op set uses. */
export type DType = 'float32' | 'int32';

/** Typed array for each {@link DType}. */
export interface DataTypeMap {
  float32: Float32Array;
  int32: Int32Array;
}

/** A dimension: a number, or a symbolic name in a program input spec. */
export type Dim = number | string;

/** A tensor in host memory: data plus shape. Row-major. */
export interface HostTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DataTypeMap[D];
}

/**
 * An opaque handle to a value inside a program. Eager backends hold data behind it; tracing
 * backends hold a graph value name. Model code only reads `dtype` and `shape`.
 */
export interface TensorRef {
  readonly dtype: DType;
  /** Shape; symbolic dimensions appear as strings while tracing. */
  readonly shape: readonly Dim[];
}

/** A handle to a named weight (a constant of the program). */
export interface WeightRef extends TensorRef {
  /** The weight's name in its {@link WeightStore}. */
  readonly name: string;
}

/** A handle to one layer of a KV cache bound to a program. */
export interface KvLayerRef {
  /** The cache's name in {@link ProgramDefinition.caches}. */
  readonly cache: string;
  /** Layer index, `0 <= layer < spec.layers`. */
  readonly layer: number;
}

/** Options of {@link Ops.rope}. */
export interface RopeOptions {
  /** Number of heads packed along the columns of `x`. */
  readonly heads: number;
  /** Size of each head; rotation uses the rotate-half convention of Hugging Face Llama. */
  readonly headDim: number;
  /** Base of the rotary frequencies (`rope_theta`). */
  readonly theta: number;
}

/** Options of {@link Ops.attention}. */
export interface AttentionOptions {
  /** The KV cache layer to append to and attend over. */
  readonly kv: KvLayerRef;
  /**
   * Additive mask `[rows, keys]` where `keys = cacheRowsBefore + rows`: 0 where a query may attend
   * to a key, a large negative number (use {@link MASK_MIN}) where it may not.
   */
  readonly mask: TensorRef;
  /** Query heads. */
  readonly heads: number;
  /** Key/value heads (grouped-query attention when fewer than `heads`). */
  readonly kvHeads: number;
  /** Size of one head. */
  readonly headDim: number;
  /** Softmax scale; defaults to `1 / sqrt(headDim)`. */
  readonly scale?: number;
}

/** The value used for "may not attend" in additive masks. */
export const MASK_MIN = -1e30;

/**
 * The op set. All ops are pure except {@link Ops.attention}, which appends its new key/value rows
 * to the bound KV cache layer.
 */
export interface Ops {
  /** Rows of `table` `[vocab, hidden]` picked by `ids` `[n]` → `[n, hidden]`. */
  embedding(table: WeightRef, ids: TensorRef): TensorRef;
  /** `x [n, in] · weightᵀ [in, out] (+ bias [out])` → `[n, out]`; `weight` is `[out, in]`. */
  linear(x: TensorRef, weight: WeightRef, bias?: WeightRef): TensorRef;
  /** Elementwise sum of two tensors of the same shape. */
  add(a: TensorRef, b: TensorRef): TensorRef;
  /** Elementwise product of two tensors of the same shape. */
  mul(a: TensorRef, b: TensorRef): TensorRef;
  /** Elementwise `x * sigmoid(x)`. */
  silu(x: TensorRef): TensorRef;
  /** RMSNorm over the last axis: `x / sqrt(mean(x²) + eps) * weight`. */
  rmsNorm(x: TensorRef, weight: WeightRef, eps: number): TensorRef;
  /** Rotary position embedding of `x [n, heads*headDim]` at `positions [n]` (int32). */
  rope(x: TensorRef, positions: TensorRef, options: RopeOptions): TensorRef;
  /**
   * Scaled dot-product attention of `q [n, heads*headDim]` over the cache layer's existing rows
   * followed by the new rows `k, v [n, kvHeads*headDim]`, which are appended to the cache.
   * Returns `[n, heads*headDim]`.
   */
  attention(q: TensorRef, k: TensorRef, v: TensorRef, options: AttentionOptions): TensorRef;
  /** Concatenation along `axis` (0: rows, 1: columns). */
  concat(parts: readonly TensorRef[], axis: 0 | 1): TensorRef;
  /** Columns `[start, end)` of `x [n, c]` → `[n, end - start]`. */
  sliceColumns(x: TensorRef, start: number, end: number): TensorRef;
  /** Rows of `x [n, c]` picked by `rows [m]` (int32) → `[m, c]`. */
  gatherRows(x: TensorRef, rows: TensorRef): TensorRef;
}

/** Shape and dtype of one program input. */
export interface ProgramInputSpec {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

/** Shape of a KV cache. Rows are positions; each row holds `kvHeads * headDim` keys (and values). */
export interface KvCacheSpec {
  /** Number of attention layers. */
  readonly layers: number;
  /** Key/value heads per layer. */
  readonly kvHeads: number;
  /** Size of one head. */
  readonly headDim: number;
  /** Maximum number of rows (committed plus pending). */
  readonly capacity: number;
}

/** What {@link ProgramDefinition.build} receives besides the ops and inputs. */
export interface BuildContext {
  /** The weight called `name`; throws a clear error if the weight store lacks it. */
  weight(name: string): WeightRef;
  /** True when the weight store has a weight called `name`. */
  hasWeight(name: string): boolean;
  /** A handle to layer `layer` of the program's cache `cache`. */
  kv(cache: string, layer: number): KvLayerRef;
}

/**
 * A model function written against {@link Ops}. `I` names its inputs, `O` its outputs.
 * `build` must be deterministic and must not read input *values*: tracing backends call it once
 * with symbolic tensors.
 */
export interface ProgramDefinition<I extends string = string, O extends string = string> {
  /** Name used in errors, profiles and cache keys, e.g. `llama-forward`. */
  readonly name: string;
  /** Inputs with their dtypes and (possibly symbolic) shapes. */
  readonly inputs: Readonly<Record<I, ProgramInputSpec>>;
  /** KV caches the program attends over, by name. */
  readonly caches?: Readonly<Record<string, KvCacheSpec>>;
  /**
   * `exact` (default): outputs must match float32 arithmetic. `draft`: the outputs only propose
   * tokens that the target verifies (draft heads), so a backend may compute them at reduced
   * precision, e.g. with int8 weights; the decoded output stays exactly the target's either way.
   * Honoured by the ort backend's `draftWeights` option; the cpu backend always computes exactly.
   */
  readonly precision?: 'exact' | 'draft';
  /** Emits the computation; returns the outputs (float32). */
  build(ops: Ops, inputs: Readonly<Record<I, TensorRef>>, context: BuildContext): Record<O, TensorRef>;
}

/** A compiled program, ready to run on its backend. */
export interface Program<I extends string = string, O extends string = string> {
  readonly definition: ProgramDefinition<I, O>;
  /**
   * Runs the program. Every cache named in the definition must be passed, created by the same
   * backend. Each attention layer appends its new rows after the cache's existing rows; when the
   * run completes, those rows are *pending* on the cache (see {@link KvCache}).
   */
  run(
    inputs: Readonly<Record<I, HostTensor>>,
    caches?: Readonly<Record<string, KvCache>>,
  ): Promise<Record<O, HostTensor<'float32'>>>;
  /** Frees what the program holds (native sessions, buffers). */
  dispose(): void;
}

/** Named float32 weights in host memory, as read from safetensors. */
export interface WeightStore {
  /** The tensor called `name`, or `undefined`. */
  get(name: string): HostTensor<'float32'> | undefined;
  /** True when there is a tensor called `name`. */
  has(name: string): boolean;
  /** All names. */
  names(): IterableIterator<string>;
}

/**
 * A KV cache: committed rows, followed by *pending* rows that the last program runs appended
 * (a draft tree being verified, or speculative draft steps).
 *
 * `compact(slots)` keeps the pending rows at `slots` (indices relative to the first pending row),
 * moves them in that order to the end of the committed prefix and commits them; the other pending
 * rows are dropped. Only the rows that move are touched.
 */
export interface KvCache {
  readonly spec: KvCacheSpec;
  /** Number of committed rows. */
  readonly length: number;
  /** Number of pending rows after the committed ones. */
  readonly pending: number;
  /** Commits the first `count` pending rows (default: all) and drops the rest. */
  commit(count?: number): void;
  /** Commits the pending rows at `slots` (relative to the first pending row), in that order. */
  compact(slots: ArrayLike<number>): void;
  /** Drops all pending rows. */
  rollback(): void;
  /** Drops committed rows past `length` (and all pending rows). */
  truncate(length: number): void;
  /** Empties the cache. */
  reset(): void;
}

/** Capabilities a backend declares, used by tests and tree budgeting. */
export interface BackendCapabilities {
  /** Floating-point precision of its arithmetic, for test tolerances. */
  readonly precision: 'float32' | 'float16';
  /** True when programs are traced once into a graph (shapes must not depend on values). */
  readonly traced: boolean;
  /**
   * True when a compiled program holds its own copy of the weights, so the caller may drop the
   * store's tensors after `compile` (ONNX Runtime copies initializers into its session; the cpu
   * backend binds the store's arrays and needs them for the program's lifetime). Absent = false.
   */
  readonly copiesWeights?: boolean;
}

/**
 * A tensor backend: compiles programs against a weight store and creates KV caches for them.
 * Backends are created by their packages' factories (`createCpuBackend`, `createOrtBackend`)
 * and injected; there is no global registry.
 */
export interface TensorBackend {
  readonly specificationVersion: 'v1';
  /** Identifier such as `cpu`, `ort-cpu`, `ort-webgpu`. */
  readonly id: string;
  readonly capabilities: BackendCapabilities;
  /** Compiles `definition`; weights are looked up in `weights` while building. */
  compile<I extends string, O extends string>(
    definition: ProgramDefinition<I, O>,
    weights: WeightStore,
  ): Promise<Program<I, O>>;
  /** Creates an empty KV cache usable by this backend's programs. */
  createKvCache(spec: KvCacheSpec): KvCache;
  /** Frees everything the backend holds. */
  dispose(): void;
}
