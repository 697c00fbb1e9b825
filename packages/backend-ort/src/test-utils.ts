/**
 * Helpers shared by this package's tests and benchmarks: deterministic random tensors, a small
 * map weight store, and a comparison of two backends on the same program and inputs.
 * Not exported from the package.
 */
import { HostKvCache, type HostTensor, type KvCacheSpec, type ProgramDefinition, type TensorBackend, type WeightStore } from '@gumiho/core';

/** A deterministic pseudo-random generator in [-1, 1). */
export function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state / 0x100000000) * 2 - 1;
  };
}

/** A float32 tensor of the given shape filled from `next`, times `scale`. */
export function randomTensor(shape: readonly number[], next: () => number, scale = 1): HostTensor<'float32'> {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = next() * scale;
  return { dtype: 'float32', shape, data };
}

/** An int32 tensor `[values.length]`. */
export function intTensor(values: readonly number[]): HostTensor<'int32'> {
  return { dtype: 'int32', shape: [values.length], data: Int32Array.from(values) };
}

/** A weight store over a map. */
export function mapStore(entries: Iterable<[string, HostTensor<'float32'>]>): WeightStore {
  const map = new Map(entries);
  return { get: (name) => map.get(name), has: (name) => map.has(name), names: () => map.keys() };
}

/** Largest absolute difference between two arrays (Infinity when lengths differ). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** One step of {@link compareBackends}: inputs, then what to do with the caches' pending rows. */
export interface CompareStep {
  readonly inputs: Readonly<Record<string, HostTensor>>;
  /** `commit` (default), `rollback`, or the pending slots to keep (`compact`). */
  readonly after?: 'commit' | 'rollback' | readonly number[];
}

/**
 * Runs `definition` on both backends over the same steps (caches created by each backend) and
 * returns the largest absolute difference over all outputs and all cache rows in use.
 */
export async function compareBackends(
  definition: ProgramDefinition,
  weights: WeightStore,
  reference: TensorBackend,
  candidate: TensorBackend,
  steps: readonly CompareStep[],
): Promise<{ maxOutputDiff: number; maxCacheDiff: number; outputs: Record<string, HostTensor<'float32'>>[] }> {
  const specs: Record<string, KvCacheSpec> = { ...(definition.caches ?? {}) };
  const programs = [await reference.compile(definition, weights), await candidate.compile(definition, weights)];
  const caches = [reference, candidate].map((backend) => Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, backend.createKvCache(spec)])));
  let maxOutputDiff = 0;
  let maxCacheDiff = 0;
  const outputs: Record<string, HostTensor<'float32'>>[] = [];
  for (const step of steps) {
    const [expected, actual] = await Promise.all([programs[0]!.run(step.inputs, caches[0]), programs[1]!.run(step.inputs, caches[1])]);
    outputs.push(actual);
    for (const name of Object.keys(expected)) {
      const e = expected[name]!;
      const a = actual[name];
      if (!a || a.shape.join('x') !== e.shape.join('x')) return { maxOutputDiff: Infinity, maxCacheDiff: Infinity, outputs };
      maxOutputDiff = Math.max(maxOutputDiff, maxAbsDiff(e.data, a.data));
    }
    for (const name of Object.keys(specs)) {
      const [ce, ca] = [caches[0]![name] as HostKvCache, caches[1]![name] as HostKvCache];
      if (ce.length !== ca.length || ce.pending !== ca.pending) return { maxOutputDiff, maxCacheDiff: Infinity, outputs };
      for (let layer = 0; layer < ce.spec.layers; layer++) {
        const end = ce.used * ce.rowSize;
        maxCacheDiff = Math.max(maxCacheDiff, maxAbsDiff(ce.keys(layer).subarray(0, end), ca.keys(layer).subarray(0, end)));
        maxCacheDiff = Math.max(maxCacheDiff, maxAbsDiff(ce.values(layer).subarray(0, end), ca.values(layer).subarray(0, end)));
      }
      for (const cache of [ce, ca]) {
        const after = step.after ?? 'commit';
        if (after === 'commit') cache.commit();
        else if (after === 'rollback') cache.rollback();
        else cache.compact(after);
      }
    }
  }
  for (const program of programs) program.dispose();
  return { maxOutputDiff, maxCacheDiff, outputs };
}
