/**
 * A KV cache in host memory, preallocated to its capacity. Rows are positions; for each layer
 * there is one `Float32Array` of keys and one of values, each `[capacity, kvHeads * headDim]`,
 * so the first `n` rows of a layer are one contiguous block (a zero-copy view for backends that
 * hand the cache to native code).
 *
 * Not a general tensor store: only what the {@link KvCache} contract needs, plus the raw views
 * that backends read and write.
 */
import type { KvCache, KvCacheSpec } from './backend.js';
import { InvalidArgumentError, assert } from './errors.js';

/** Options of the {@link HostKvCache} constructor. */
export interface HostKvCacheOptions {
  /**
   * Allocates one zeroed layer buffer (keys or values) of `length` floats. Default:
   * `new Float32Array(length)`. Backends whose kernels run in their own memory (the CPU backend's
   * WebAssembly memory) pass their allocator, so that attention reads the cache in place.
   */
  readonly allocate?: (length: number) => Float32Array;
}

/** The host-memory {@link KvCache} shared by the CPU backends. */
export class HostKvCache implements KvCache {
  readonly spec: KvCacheSpec;
  /** Floats per row: `kvHeads * headDim`. */
  readonly rowSize: number;
  private readonly keyData: Float32Array[];
  private readonly valueData: Float32Array[];
  private committed = 0;
  private pendingRows = 0;

  constructor(spec: KvCacheSpec, options: HostKvCacheOptions = {}) {
    for (const key of ['layers', 'kvHeads', 'headDim', 'capacity'] as const) {
      const value = spec[key];
      if (!Number.isInteger(value) || value <= 0) {
        throw new InvalidArgumentError(key, `KV cache ${key} must be a positive integer, got ${value}.`);
      }
    }
    this.spec = { ...spec };
    this.rowSize = spec.kvHeads * spec.headDim;
    this.keyData = [];
    this.valueData = [];
    const allocate = options.allocate ?? ((length: number) => new Float32Array(length));
    const length = spec.capacity * this.rowSize;
    for (let layer = 0; layer < spec.layers; layer++) {
      this.keyData.push(allocate(length));
      this.valueData.push(allocate(length));
    }
  }

  get length(): number {
    return this.committed;
  }

  get pending(): number {
    return this.pendingRows;
  }

  /** Total rows in use (committed plus pending): where the next appended row goes. */
  get used(): number {
    return this.committed + this.pendingRows;
  }

  /** Keys of `layer`, `[capacity, rowSize]`; rows past {@link used} are garbage. */
  keys(layer: number): Float32Array {
    const data = this.keyData[layer];
    assert(data !== undefined, () => `KV layer ${layer} out of range (${this.spec.layers} layers)`);
    return data;
  }

  /** Values of `layer`, `[capacity, rowSize]`. */
  values(layer: number): Float32Array {
    const data = this.valueData[layer];
    assert(data !== undefined, () => `KV layer ${layer} out of range (${this.spec.layers} layers)`);
    return data;
  }

  /**
   * Checks that `rows` more rows fit. Backends call this before a run, so that a run never
   * writes half of its layers.
   */
  ensureRoom(rows: number): void {
    if (this.used + rows > this.spec.capacity) {
      throw new InvalidArgumentError(
        'rows',
        `KV cache overflow: ${this.used} rows in use plus ${rows} new rows exceed the capacity of ${this.spec.capacity}.`,
        { fix: 'shorten the prompt or the generation, or create the cache with a larger capacity.' },
      );
    }
  }

  /** Marks `rows` rows, already written after the used rows, as pending. Called by backends after a run. */
  appendPending(rows: number): void {
    this.ensureRoom(rows);
    this.pendingRows += rows;
  }

  commit(count: number = this.pendingRows): void {
    if (!Number.isInteger(count) || count < 0 || count > this.pendingRows) {
      throw new InvalidArgumentError('count', `commit(${count}): only ${this.pendingRows} rows are pending.`);
    }
    this.committed += count;
    this.pendingRows = 0;
  }

  compact(slots: ArrayLike<number>): void {
    const count = slots.length;
    let inPlace = true;
    for (let i = 0; i < count; i++) {
      const slot = slots[i]!;
      if (!Number.isInteger(slot) || slot < 0 || slot >= this.pendingRows) {
        throw new InvalidArgumentError('slots', `compact: slot ${slot} is not a pending row (0..${this.pendingRows - 1}).`);
      }
      if (i > 0 && slot <= slots[i - 1]!) {
        throw new InvalidArgumentError('slots', 'compact: slots must be strictly increasing (an accepted path in tree order).');
      }
      if (slot !== i) inPlace = false;
    }
    if (!inPlace) {
      const size = this.rowSize;
      for (let layer = 0; layer < this.spec.layers; layer++) {
        const keys = this.keyData[layer]!;
        const values = this.valueData[layer]!;
        for (let i = 0; i < count; i++) {
          const from = (this.committed + slots[i]!) * size;
          const to = (this.committed + i) * size;
          if (from !== to) {
            keys.copyWithin(to, from, from + size);
            values.copyWithin(to, from, from + size);
          }
        }
      }
    }
    this.committed += count;
    this.pendingRows = 0;
  }

  rollback(): void {
    this.pendingRows = 0;
  }

  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.committed) {
      throw new InvalidArgumentError('length', `truncate(${length}): the cache holds ${this.committed} committed rows.`);
    }
    this.committed = length;
    this.pendingRows = 0;
  }

  reset(): void {
    this.committed = 0;
    this.pendingRows = 0;
  }
}
