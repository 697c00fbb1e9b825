/**
 * The op conformance suite: every op of core's {@link Ops} run through a backend's
 * `compile`/`run` on seeded random inputs, checked against float64 references computed here.
 *
 * Cases cover odd sizes, grouped-query attention, additive masks with {@link MASK_MIN} entries,
 * rotary embedding at large positions, attention over committed and pending cache rows, KV cache
 * commit/compact/rollback/truncate as seen by later attention, a two-layer Llama-shaped program
 * over prefill, tree and decode steps, and the errors every backend must raise.
 *
 * Programs only use symbolic row counts and never read input values in `build`, so tracing
 * backends run the same cases as eager ones. Tolerances come from the backend's declared
 * precision (`capabilities.precision`) and scale with each output's magnitude (the sum of the
 * absolute values of the terms that produced it).
 */
import {
  GumihoError,
  MASK_MIN,
  type HostTensor,
  type KvCache,
  type KvCacheSpec,
  type Ops,
  type ProgramDefinition,
  type ProgramInputSpec,
  type TensorBackend,
  type TensorRef,
  type WeightRef,
  type WeightStore,
} from '@gumiho/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Tolerances: an output passes when `|actual - expected| <= atol + rtol * magnitude`. */
export interface Tolerance {
  readonly rtol: number;
  readonly atol: number;
}

/** Options of {@link describeOpsConformance}. */
export interface OpsConformanceOptions {
  /** Cases to skip, by case name (as printed by the suite), each with the reason. */
  readonly skip?: Readonly<Record<string, string>>;
  /** Overrides of the tolerances derived from the backend's precision. */
  readonly tolerance?: Partial<Tolerance>;
  /** Seed of the random inputs (default 1). */
  readonly seed?: number;
}

/** Default tolerances per declared precision. */
export const PRECISION_TOLERANCE: Readonly<Record<'float32' | 'float16', Tolerance>> = {
  float32: { rtol: 1e-5, atol: 1e-6 },
  float16: { rtol: 5e-3, atol: 1e-3 },
};

/** Deterministic uniform random numbers (mulberry32). */
class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** `length` floats uniform in `[-scale, scale)`. */
  floats(length: number, scale = 1): Float32Array {
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) out[i] = (this.next() * 2 - 1) * scale;
    return out;
  }
  int(limit: number): number {
    return Math.floor(this.next() * limit);
  }
}

class MapStore implements WeightStore {
  private readonly map = new Map<string, HostTensor<'float32'>>();
  set(name: string, shape: number[], data: Float32Array): this {
    this.map.set(name, { dtype: 'float32', shape, data });
    return this;
  }
  get(name: string): HostTensor<'float32'> | undefined {
    return this.map.get(name);
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  names(): IterableIterator<string> {
    return this.map.keys();
  }
}

function f32(shape: number[], data: Float32Array): HostTensor<'float32'> {
  return { dtype: 'float32', shape, data };
}
function i32(values: ArrayLike<number>): HostTensor<'int32'> {
  return { dtype: 'int32', shape: [values.length], data: Int32Array.from(values as ArrayLike<number>) };
}

/** Expected values with the magnitude that bounds their rounding error. */
interface Reference {
  readonly values: Float64Array;
  readonly magnitude: Float64Array;
}

function reference(length: number): Reference {
  return { values: new Float64Array(length), magnitude: new Float64Array(length) };
}

/** Elementwise reference: magnitude is the absolute value. */
function elementwise(values: ArrayLike<number>): Reference {
  const ref = reference(values.length);
  for (let i = 0; i < values.length; i++) {
    ref.values[i] = values[i]!;
    ref.magnitude[i] = Math.abs(values[i]!);
  }
  return ref;
}

function expectClose(actual: Float32Array, expected: Reference, tolerance: Tolerance, what: string, extra?: Float64Array): void {
  expect(actual.length, `${what}: output length`).toBe(expected.values.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const allowed = tolerance.atol + tolerance.rtol * expected.magnitude[i]! + (extra ? extra[i]! : 0);
    const error = Math.abs(actual[i]! - expected.values[i]!);
    const excess = Number.isNaN(error) ? Infinity : error - allowed;
    if (excess > worstExcess || (worst < 0 && excess > 0)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    const allowed = tolerance.atol + tolerance.rtol * expected.magnitude[worst]! + (extra ? extra[worst]! : 0);
    expect.fail(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected.values[worst]} ± ${allowed.toExponential(2)} (error ${Math.abs(actual[worst]! - expected.values[worst]!).toExponential(2)}).`,
    );
  }
}

// ---------- float64 references ----------

function refLinear(x: Float32Array, n: number, k: number, w: Float32Array, m: number, bias?: Float32Array): Reference {
  const ref = reference(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let sum = bias ? bias[j]! : 0;
      let mag = bias ? Math.abs(bias[j]!) : 0;
      for (let c = 0; c < k; c++) {
        const term = x[i * k + c]! * w[j * k + c]!;
        sum += term;
        mag += Math.abs(term);
      }
      ref.values[i * m + j] = sum;
      ref.magnitude[i * m + j] = mag;
    }
  }
  return ref;
}

function refRmsNorm(x: Float32Array, n: number, d: number, w: Float32Array, eps: number): Reference {
  const ref = reference(n * d);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < d; c++) sum += x[i * d + c]! ** 2;
    const scale = 1 / Math.sqrt(sum / d + eps);
    for (let c = 0; c < d; c++) {
      const value = x[i * d + c]! * scale * w[c]!;
      ref.values[i * d + c] = value;
      ref.magnitude[i * d + c] = Math.abs(value) * 4;
    }
  }
  return ref;
}

/**
 * Rotary embedding as Hugging Face computes it: inverse frequencies and angles rounded to
 * float32, cos/sin of the rounded angle. `angleSlack` receives the extra tolerance for one ulp of
 * disagreement in the float32 angle (which grows with the position).
 */
function refRope(x: Float32Array, n: number, heads: number, headDim: number, positions: number[], theta: number, angleSlack: Float64Array): Reference {
  const ref = reference(x.length);
  const half = headDim / 2;
  const width = heads * headDim;
  for (let i = 0; i < n; i++) {
    const position = positions[i]!;
    for (let f = 0; f < half; f++) {
      const inverse = Math.fround(1 / Math.pow(theta, (2 * f) / headDim));
      const angle = Math.fround(position * inverse);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      const ulp = Math.max(Math.abs(angle), 1) * 2 ** -22;
      for (let h = 0; h < heads; h++) {
        const base = i * width + h * headDim;
        const a = x[base + f]!;
        const b = x[base + f + half]!;
        ref.values[base + f] = a * c - b * s;
        ref.values[base + f + half] = b * c + a * s;
        const mag = Math.abs(a) + Math.abs(b);
        ref.magnitude[base + f] = mag;
        ref.magnitude[base + f + half] = mag;
        angleSlack[base + f] = mag * ulp;
        angleSlack[base + f + half] = mag * ulp;
      }
    }
  }
  return ref;
}

/**
 * Attention of `q [n, heads*headDim]` over `keys/values [total, kvHeads*headDim]` with an additive
 * mask `[n, total]` (entries <= -1e29 hide their key).
 */
function refAttention(
  q: Float32Array,
  n: number,
  heads: number,
  kvHeads: number,
  headDim: number,
  keys: ArrayLike<number>,
  values: ArrayLike<number>,
  total: number,
  mask: Float32Array,
  scale = 1 / Math.sqrt(headDim),
): Reference {
  const ref = reference(n * heads * headDim);
  const group = heads / kvHeads;
  const kvWidth = kvHeads * headDim;
  const scores = new Float64Array(total);
  const scoreMagnitude = new Float64Array(total);
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < heads; h++) {
      const qBase = (i * heads + h) * headDim;
      const kvOffset = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let j = 0; j < total; j++) {
        const m = mask[i * total + j]!;
        if (m <= -1e29) {
          scores[j] = -Infinity;
          continue;
        }
        let dot = 0;
        let mag = 0;
        for (let d = 0; d < headDim; d++) {
          const term = q[qBase + d]! * keys[j * kvWidth + kvOffset + d]!;
          dot += term;
          mag += Math.abs(term);
        }
        scores[j] = dot * scale + m;
        scoreMagnitude[j] = mag * scale + Math.abs(m);
        if (scores[j]! > max) max = scores[j]!;
      }
      let sum = 0;
      for (let j = 0; j < total; j++) {
        scores[j] = scores[j] === -Infinity ? 0 : Math.exp(scores[j]! - max);
        sum += scores[j]!;
      }
      for (let d = 0; d < headDim; d++) {
        let value = 0;
        let mag = 0;
        for (let j = 0; j < total; j++) {
          const p = scores[j]! / sum;
          if (p === 0) continue;
          const v = values[j * kvWidth + kvOffset + d]!;
          value += p * v;
          // A relative error δ in a score moves the output by about p·δ·|v - out|.
          mag += p * Math.abs(v) * (1 + scoreMagnitude[j]!);
        }
        ref.values[qBase + d] = value;
        ref.magnitude[qBase + d] = mag;
      }
    }
  }
  return ref;
}

/** An additive mask `[n, past + n]`: `past` rows visible unless hidden, new rows as `visible(i, j)`. */
function additiveMask(n: number, past: number, visible: (row: number, key: number) => boolean): Float32Array {
  const total = past + n;
  const mask = new Float32Array(n * total);
  for (let i = 0; i < n; i++) for (let j = 0; j < total; j++) mask[i * total + j] = visible(i, j) ? 0 : MASK_MIN;
  return mask;
}

// ---------- the suite ----------

interface CaseContext {
  readonly backend: TensorBackend;
  readonly tolerance: Tolerance;
  readonly random: Random;
}

type Case = (context: CaseContext) => Promise<void>;

/** Compiles `build` with one output `y`, runs it once per input set, disposes it. */
async function runEach(
  backend: TensorBackend,
  inputs: Record<string, ProgramInputSpec>,
  build: (ops: Ops, inputs: Record<string, TensorRef>, weight: (name: string) => WeightRef) => TensorRef,
  weights: WeightStore,
  runs: readonly Record<string, HostTensor>[],
  caches?: { specs: Record<string, KvCacheSpec>; instances: Record<string, KvCache> },
): Promise<Float32Array[]> {
  const definition: ProgramDefinition = {
    name: 'conformance',
    inputs,
    ...(caches ? { caches: caches.specs } : {}),
    build: (ops, refs, context) => ({ y: build(ops, refs, (name) => context.weight(name)) }),
  };
  const program = await backend.compile(definition, weights);
  try {
    const results: Float32Array[] = [];
    for (const run of runs) {
      const outputs = await program.run(run, caches?.instances);
      const y = outputs.y!;
      expect(y.dtype).toBe('float32');
      results.push(y.data);
    }
    return results;
  } finally {
    program.dispose();
  }
}

const EMPTY = new MapStore();

const CASES: Record<string, Case> = {
  async embedding({ backend, tolerance, random }) {
    const vocab = 37;
    const hidden = 13;
    const table = random.floats(vocab * hidden);
    const ids = [0, 36, 5, 5, 12, 0, 20];
    const [y] = await runEach(backend, { ids: { dtype: 'int32', shape: ['n'] } }, (ops, x, w) => ops.embedding(w('table'), x.ids!), new MapStore().set('table', [vocab, hidden], table), [{ ids: i32(ids) }]);
    const expected: number[] = [];
    for (const id of ids) expected.push(...table.subarray(id * hidden, (id + 1) * hidden));
    expectClose(y!, elementwise(expected), tolerance, 'embedding');
  },

  async 'linear: odd sizes, several row counts per program'({ backend, tolerance, random }) {
    for (const [k, m, bias] of [
      [1, 1, false],
      [7, 5, true],
      [33, 19, false],
      [64, 8, true],
      [17, 130, false],
      [384, 67, true],
      [96, 33, false],
    ] as const) {
      const w = random.floats(m * k);
      const b = bias ? random.floats(m) : undefined;
      const store = new MapStore().set('w', [m, k], w);
      if (b) store.set('b', [m], b);
      const rowCounts = [1, 3, 17, 4, 64, 2];
      const xs = rowCounts.map((n) => random.floats(n * k));
      const results = await runEach(
        backend,
        { x: { dtype: 'float32', shape: ['n', k] } },
        (ops, x, weight) => ops.linear(x.x!, weight('w'), b ? weight('b') : undefined),
        store,
        xs.map((x, index) => ({ x: f32([rowCounts[index]!, k], x) })),
      );
      results.forEach((y, index) => {
        expectClose(y, refLinear(xs[index]!, rowCounts[index]!, k, w, m, b), tolerance, `linear n=${rowCounts[index]} k=${k} m=${m}${b ? ' +bias' : ''}`);
      });
    }
  },

  async 'linear: long reductions and mixed magnitudes'({ backend, tolerance, random }) {
    const [n, k, m] = [5, 1024, 41];
    const w = random.floats(m * k, 0.05);
    const x = random.floats(n * k, 3);
    for (let i = 0; i < x.length; i += 97) x[i] = x[i]! * 1000;
    const [y] = await runEach(backend, { x: { dtype: 'float32', shape: ['n', k] } }, (ops, input, weight) => ops.linear(input.x!, weight('w')), new MapStore().set('w', [m, k], w), [{ x: f32([n, k], x) }]);
    expectClose(y!, refLinear(x, n, k, w, m), tolerance, 'linear k=1024');
  },

  async 'linear: weights that are exactly bfloat16 (as from bf16 checkpoints)'({ backend, tolerance, random }) {
    // Backends may store such weights in 16 bits; results must not change.
    for (const [k, m] of [
      [8, 3],
      [384, 37],
      [1024, 20],
    ] as const) {
      const w = random.floats(m * k);
      const bits = new Uint32Array(w.buffer);
      for (let i = 0; i < bits.length; i++) bits[i] = bits[i]! & 0xffff0000;
      const rowCounts = [1, 2, 3, 4, 5, 9, 17];
      const xs = rowCounts.map((n) => random.floats(n * k));
      const results = await runEach(
        backend,
        { x: { dtype: 'float32', shape: ['n', k] } },
        (ops, x, weight) => ops.linear(x.x!, weight('w')),
        new MapStore().set('w', [m, k], w),
        xs.map((x, index) => ({ x: f32([rowCounts[index]!, k], x) })),
      );
      results.forEach((y, index) => {
        expectClose(y, refLinear(xs[index]!, rowCounts[index]!, k, w, m), tolerance, `bf16-exact linear n=${rowCounts[index]} k=${k} m=${m}`);
      });
    }
  },

  async 'add, mul, silu'({ backend, tolerance, random }) {
    const [n, c] = [3, 11];
    const a = random.floats(n * c, 4);
    const b = random.floats(n * c, 4);
    a.set([0, -0, 90, -90, 1e-8, -1e-8, 20, -20, 200, -200, 87.5]);
    b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const spec = { a: { dtype: 'float32', shape: ['n', c] }, b: { dtype: 'float32', shape: ['n', c] } } as const;
    const run = [{ a: f32([n, c], a), b: f32([n, c], b) }];
    const [sum] = await runEach(backend, spec, (ops, x) => ops.add(x.a!, x.b!), EMPTY, run);
    const [product] = await runEach(backend, spec, (ops, x) => ops.mul(x.a!, x.b!), EMPTY, run);
    const [silu] = await runEach(backend, spec, (ops, x) => ops.silu(x.a!), EMPTY, run);
    // The same on an op's output (backends may keep intermediates in their own memory).
    const [siluOfSum] = await runEach(backend, spec, (ops, x) => ops.silu(ops.add(x.a!, x.b!)), EMPTY, run);
    const sumRef = reference(n * c);
    for (let i = 0; i < n * c; i++) {
      sumRef.values[i] = a[i]! + b[i]!;
      sumRef.magnitude[i] = Math.abs(a[i]!) + Math.abs(b[i]!);
    }
    expectClose(sum!, sumRef, tolerance, 'add');
    expectClose(product!, elementwise(Array.from(a, (v, i) => v * b[i]!)), tolerance, 'mul');
    expectClose(silu!, elementwise(Array.from(a, (v) => v / (1 + Math.exp(-v)))), tolerance, 'silu');
    const sumSilu = reference(n * c);
    for (let i = 0; i < n * c; i++) {
      const v = Math.fround(a[i]! + b[i]!);
      sumSilu.values[i] = v / (1 + Math.exp(-v));
      sumSilu.magnitude[i] = Math.abs(sumSilu.values[i]!);
    }
    expectClose(siluOfSum!, sumSilu, tolerance, 'silu of an op output');
  },

  async rmsNorm({ backend, tolerance, random }) {
    const [n, d] = [4, 13];
    const x = random.floats(n * d, 3);
    x.fill(0, 2 * d, 3 * d); // a zero row: eps keeps it finite
    const w = random.floats(d, 2);
    for (const eps of [1e-5, 1e-2]) {
      const [y] = await runEach(backend, { x: { dtype: 'float32', shape: ['n', d] } }, (ops, input, weight) => ops.rmsNorm(input.x!, weight('w'), eps), new MapStore().set('w', [d], w), [{ x: f32([n, d], x) }]);
      expectClose(y!, refRmsNorm(x, n, d, w, eps), tolerance, `rmsNorm eps=${eps}`);
    }
  },

  async 'rope: several head sizes, large positions'({ backend, tolerance, random }) {
    for (const { heads, headDim, theta, positions } of [
      { heads: 3, headDim: 8, theta: 10000, positions: [0, 1, 2, 17, 100] },
      { heads: 2, headDim: 64, theta: 10000, positions: [0, 2047, 4095, 30000, 7] },
      { heads: 1, headDim: 2, theta: 500000, positions: [65535, 65536, 123456] },
      { heads: 5, headDim: 6, theta: 10000, positions: [3, 3, 9] },
    ]) {
      const n = positions.length;
      const x = random.floats(n * heads * headDim, 2);
      const [y] = await runEach(
        backend,
        { x: { dtype: 'float32', shape: ['n', heads * headDim] }, positions: { dtype: 'int32', shape: ['n'] } },
        (ops, input) => ops.rope(input.x!, input.positions!, { heads, headDim, theta }),
        EMPTY,
        [{ x: f32([n, heads * headDim], x), positions: i32(positions) }],
      );
      const slack = new Float64Array(x.length);
      expectClose(y!, refRope(x, n, heads, headDim, positions, theta, slack), tolerance, `rope heads=${heads} headDim=${headDim} positions=${positions.join(',')}`, slack);
    }
  },

  async 'attention: causal, grouped-query, several head sizes'({ backend, tolerance, random }) {
    for (const [heads, kvHeads, headDim, n] of [
      [6, 2, 8, 5],
      [4, 1, 6, 3],
      [2, 2, 16, 9],
      [3, 3, 20, 4],
      [6, 2, 64, 17],
      [4, 2, 128, 6],
      [2, 1, 96, 3],
      [1, 1, 2, 1],
    ] as const) {
      const { y, keys, values } = await attentionRun(backend, random, { heads, kvHeads, headDim, capacity: n + 3 }, [{ n, mask: additiveMask(n, 0, (i, j) => j <= i) }]);
      expectClose(y[0]!, refAttention(y.q[0]!, n, heads, kvHeads, headDim, keys, values, n, y.masks[0]!), tolerance, `attention heads=${heads} kvHeads=${kvHeads} headDim=${headDim} n=${n}`);
    }
  },

  async 'attention: committed rows, tree mask with MASK_MIN entries, custom scale'({ backend, tolerance, random }) {
    const [heads, kvHeads, headDim] = [6, 2, 64];
    // A tree of 6 nodes: parents [-1, 0, 0, 1, 1, 2]; each node sees its ancestors and itself.
    const parents = [-1, 0, 0, 1, 1, 2];
    const sees = (i: number, j: number): boolean => {
      for (let node = i; node >= 0; node = parents[node]!) if (node === j) return true;
      return false;
    };
    for (const scale of [undefined, 0.3]) {
      const prefill = 7;
      const { y, keys, values, cache } = await attentionRun(
        backend,
        random,
        { heads, kvHeads, headDim, capacity: 32, ...(scale === undefined ? {} : { scale }) },
        [
          { n: prefill, mask: additiveMask(prefill, 0, (i, j) => j <= i), after: (c) => c.commit() },
          { n: 6, mask: additiveMask(6, prefill, (i, j) => j < prefill || sees(i, j - prefill)) },
        ],
      );
      expect(cache.length).toBe(prefill);
      expect(cache.pending).toBe(6);
      expectClose(y[1]!, refAttention(y.q[1]!, 6, heads, kvHeads, headDim, keys, values, prefill + 6, y.masks[1]!, scale), tolerance, `tree attention scale=${scale ?? 'default'}`);
    }
  },

  async 'attention: over pending rows of an earlier run'({ backend, tolerance, random }) {
    const [heads, kvHeads, headDim] = [4, 2, 16];
    const { y, keys, values, cache } = await attentionRun(backend, random, { heads, kvHeads, headDim, capacity: 16 }, [
      { n: 4, mask: additiveMask(4, 0, (i, j) => j <= i), after: (c) => c.commit() },
      { n: 3, mask: additiveMask(3, 4, (i, j) => j < 4 || j - 4 <= i) },
      // Sees the committed rows and the first two pending rows, hides the third.
      { n: 2, mask: additiveMask(2, 7, (i, j) => j < 6 || (j >= 7 && j - 7 <= i)) },
    ]);
    expect(cache.length).toBe(4);
    expect(cache.pending).toBe(5);
    expectClose(y[2]!, refAttention(y.q[2]!, 2, heads, kvHeads, headDim, keys, values, 9, y.masks[2]!), tolerance, 'attention over pending rows');
  },

  async 'KV cache: compact, commit(count), rollback and truncate as seen by attention'({ backend, tolerance, random }) {
    const [heads, kvHeads, headDim] = [6, 2, 8];
    const kvWidth = kvHeads * headDim;
    let stepIndex = 0;
    // The rows the cache should hold, tracked independently of the backend.
    let rowsK: Float32Array[] = [];
    let rowsV: Float32Array[] = [];
    const steps: { n: number; past: number; after: (cache: KvCache) => void }[] = [
      { n: 4, past: 0, after: (c) => c.commit() }, // 4 committed
      { n: 5, past: 4, after: (c) => c.compact([0, 2, 4]) }, // keep slots 0, 2, 4 -> 7 committed
      { n: 3, past: 7, after: (c) => c.commit(1) }, // keep 1 -> 8
      { n: 2, past: 8, after: (c) => c.rollback() }, // drop -> 8
      { n: 1, past: 8, after: (c) => c.truncate(5) }, // pending dropped, 5 committed
      { n: 2, past: 5, after: () => {} },
    ];
    const spec: KvCacheSpec = { layers: 1, kvHeads, headDim, capacity: 12 };
    const definition = attentionProgram(heads, kvHeads, headDim, undefined, spec.capacity);
    const program = await backend.compile(definition, EMPTY);
    const cache = backend.createKvCache(spec);
    try {
      for (const step of steps) {
        const { n, past } = step;
        const q = random.floats(n * heads * headDim);
        const k = random.floats(n * kvWidth);
        const v = random.floats(n * kvWidth);
        const mask = additiveMask(n, past, (i, j) => j < past || j - past <= i);
        const out = await program.run(
          { q: f32([n, heads * headDim], q), k: f32([n, kvWidth], k), v: f32([n, kvWidth], v), mask: f32([n, past + n], mask) },
          { kv: cache },
        );
        const newK = Array.from({ length: n }, (_, r) => k.subarray(r * kvWidth, (r + 1) * kvWidth));
        const newV = Array.from({ length: n }, (_, r) => v.subarray(r * kvWidth, (r + 1) * kvWidth));
        const allK = concatRows([...rowsK, ...newK]);
        const allV = concatRows([...rowsV, ...newV]);
        expectClose(out.y!.data, refAttention(q, n, heads, kvHeads, headDim, allK, allV, past + n, mask), tolerance, `attention after ${stepIndex} cache operations`);
        stepIndex++;
        // Mirror the cache operation.
        const before = rowsK.length;
        step.after(cache);
        const committed = cache.length;
        if (committed <= before) {
          rowsK = rowsK.slice(0, committed);
          rowsV = rowsV.slice(0, committed);
        } else {
          const kept = committed - before;
          const slots = step.n === 5 ? [0, 2, 4] : Array.from({ length: kept }, (_, index) => index);
          rowsK = [...rowsK, ...slots.map((slot) => newK[slot]!)];
          rowsV = [...rowsV, ...slots.map((slot) => newV[slot]!)];
        }
        expect(cache.pending).toBe(0 + (step === steps[steps.length - 1] ? 2 : 0));
      }
      expect(cache.length).toBe(5);
    } finally {
      program.dispose();
    }
  },

  async 'attention: several layers and caches in one program'({ backend, tolerance, random }) {
    const [heads, kvHeads, headDim, n] = [2, 1, 8, 3];
    const width = heads * headDim;
    const kvWidth = kvHeads * headDim;
    const definition: ProgramDefinition<'q' | 'mask', 'y'> = {
      name: 'conformance-layers',
      inputs: { q: { dtype: 'float32', shape: ['n', width] }, mask: { dtype: 'float32', shape: ['n', 't'] } },
      caches: { a: { layers: 2, kvHeads, headDim, capacity: 8 }, b: { layers: 1, kvHeads, headDim, capacity: 8 } },
      build(ops, x, context) {
        const options = { mask: x.mask, heads, kvHeads, headDim };
        // Keys/values derived from q so that each layer appends different rows.
        const kv0 = ops.sliceColumns(x.q, 0, kvWidth);
        const kv1 = ops.sliceColumns(x.q, kvWidth, 2 * kvWidth);
        const a0 = ops.attention(x.q, kv0, kv1, { ...options, kv: context.kv('a', 0) });
        const a1 = ops.attention(a0, kv1, kv0, { ...options, kv: context.kv('a', 1) });
        const b0 = ops.attention(x.q, kv1, kv1, { ...options, kv: context.kv('b', 0) });
        return { y: ops.concat([a1, b0], 1) };
      },
    };
    const program = await backend.compile(definition, EMPTY);
    const caches = { a: backend.createKvCache(definition.caches!.a!), b: backend.createKvCache(definition.caches!.b!) };
    try {
      const q = random.floats(n * width);
      const mask = additiveMask(n, 0, (i, j) => j <= i);
      const out = await program.run({ q: f32([n, width], q), mask: f32([n, n], mask) }, caches);
      expect(caches.a.pending).toBe(n);
      expect(caches.b.pending).toBe(n);
      const cols = (x: ArrayLike<number>, from: number, to: number, stride: number): Float32Array => {
        const result = new Float32Array(n * (to - from));
        for (let i = 0; i < n; i++) for (let c = from; c < to; c++) result[i * (to - from) + c - from] = x[i * stride + c]!;
        return result;
      };
      const kv0 = cols(q, 0, kvWidth, width);
      const kv1 = cols(q, kvWidth, 2 * kvWidth, width);
      const a0 = refAttention(q, n, heads, kvHeads, headDim, kv0, kv1, n, mask);
      const a1 = refAttention(Float32Array.from(a0.values), n, heads, kvHeads, headDim, kv1, kv0, n, mask);
      const b0 = refAttention(q, n, heads, kvHeads, headDim, kv1, kv1, n, mask);
      const expected = reference(n * 2 * width);
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < width; c++) {
          expected.values[i * 2 * width + c] = a1.values[i * width + c]!;
          expected.magnitude[i * 2 * width + c] = a1.magnitude[i * width + c]! * 4;
          expected.values[i * 2 * width + width + c] = b0.values[i * width + c]!;
          expected.magnitude[i * 2 * width + width + c] = b0.magnitude[i * width + c]!;
        }
      }
      expectClose(out.y!.data, expected, tolerance, 'two caches, two layers');
    } finally {
      program.dispose();
    }
  },

  async 'concat, sliceColumns, gatherRows'({ backend, tolerance, random }) {
    const n = 5;
    const a = random.floats(n * 3);
    const b = random.floats(n * 13);
    const c = random.floats(2 * 3);
    const spec = {
      a: { dtype: 'float32', shape: ['n', 3] },
      b: { dtype: 'float32', shape: ['n', 13] },
      c: { dtype: 'float32', shape: ['m', 3] },
      rows: { dtype: 'int32', shape: ['r'] },
    } as const;
    const run = [{ a: f32([n, 3], a), b: f32([n, 13], b), c: f32([2, 3], c), rows: i32([4, 0, 0, 2]) }];
    const [columns] = await runEach(backend, spec, (ops, x) => ops.concat([x.a!, x.b!, x.a!], 1), EMPTY, run);
    const [rowsOut] = await runEach(backend, spec, (ops, x) => ops.concat([x.a!, x.c!], 0), EMPTY, run);
    const [slice] = await runEach(backend, spec, (ops, x) => ops.sliceColumns(x.b!, 2, 9), EMPTY, run);
    const [gathered] = await runEach(backend, spec, (ops, x) => ops.gatherRows(x.b!, x.rows!), EMPTY, run);
    const expectColumns: number[] = [];
    for (let i = 0; i < n; i++) expectColumns.push(...a.subarray(i * 3, i * 3 + 3), ...b.subarray(i * 13, i * 13 + 13), ...a.subarray(i * 3, i * 3 + 3));
    expectClose(columns!, elementwise(expectColumns), tolerance, 'concat axis 1');
    expectClose(rowsOut!, elementwise([...a, ...c]), tolerance, 'concat axis 0');
    const expectSlice: number[] = [];
    for (let i = 0; i < n; i++) expectSlice.push(...b.subarray(i * 13 + 2, i * 13 + 9));
    expectClose(slice!, elementwise(expectSlice), tolerance, 'sliceColumns [2, 9)');
    const expectGather: number[] = [];
    for (const row of [4, 0, 0, 2]) expectGather.push(...b.subarray(row * 13, row * 13 + 13));
    expectClose(gathered!, elementwise(expectGather), tolerance, 'gatherRows');
  },

  async 'outputs stay valid after later runs'({ backend, random }) {
    const [k, m] = [16, 24];
    const w = random.floats(m * k);
    const x1 = random.floats(3 * k);
    const x2 = random.floats(5 * k);
    const definition: ProgramDefinition<'x', 'y' | 'z'> = {
      name: 'conformance-outputs',
      inputs: { x: { dtype: 'float32', shape: ['n', k] } },
      build: (ops, x, context) => {
        const y = ops.linear(x.x, context.weight('w'));
        return { y, z: ops.silu(y) };
      },
    };
    const program = await backend.compile(definition, new MapStore().set('w', [m, k], w));
    try {
      const first = await program.run({ x: f32([3, k], x1) });
      const copyY = first.y.data.slice();
      const copyZ = first.z.data.slice();
      expect(first.y.shape).toEqual([3, m]);
      const second = await program.run({ x: f32([5, k], x2) });
      expect(second.y.shape).toEqual([5, m]);
      expect(Array.from(first.y.data)).toEqual(Array.from(copyY));
      expect(Array.from(first.z.data)).toEqual(Array.from(copyZ));
    } finally {
      program.dispose();
    }
  },

  async 'a two-layer Llama-shaped program over prefill, tree, compact and decode'({ backend, tolerance, random }) {
    await llamaScenario(backend, tolerance, random);
  },

  async 'errors: missing weight, missing cache, cache overflow, bad shapes'({ backend, random }) {
    const expectGumiho = async (promise: Promise<unknown>, code: string): Promise<void> => {
      let caught: unknown;
      try {
        await promise;
      } catch (error) {
        caught = error;
      }
      expect(GumihoError.isInstance(caught), `expected a GumihoError (${code}), got ${String(caught)}`).toBe(true);
      expect((caught as GumihoError).code).toBe(code);
    };
    const linear: ProgramDefinition<'x', 'y'> = {
      name: 'conformance-missing-weight',
      inputs: { x: { dtype: 'float32', shape: ['n', 4] } },
      build: (ops, x, context) => ({ y: ops.linear(x.x, context.weight('absent')) }),
    };
    await expectGumiho(
      (async () => {
        const program = await backend.compile(linear, EMPTY);
        await program.run({ x: f32([1, 4], random.floats(4)) });
      })(),
      'GUMIHO_MODEL_LOAD',
    );
    const attention = attentionProgram(2, 1, 4, undefined, 4);
    const program = await backend.compile(attention, EMPTY);
    try {
      const inputs = (n: number, past: number) => ({
        q: f32([n, 8], random.floats(n * 8)),
        k: f32([n, 4], random.floats(n * 4)),
        v: f32([n, 4], random.floats(n * 4)),
        mask: f32([n, past + n], additiveMask(n, past, (i, j) => j - past <= i)),
      });
      await expectGumiho(program.run(inputs(1, 0), {}), 'GUMIHO_INVALID_ARGUMENT');
      const cache = backend.createKvCache({ layers: 1, kvHeads: 1, headDim: 4, capacity: 4 });
      await expectGumiho(program.run(inputs(5, 0), { kv: cache }), 'GUMIHO_INVALID_ARGUMENT');
      expect(cache.length).toBe(0);
      expect(cache.pending).toBe(0);
      // Input whose fixed dimension is wrong.
      await expectGumiho(program.run({ ...inputs(1, 0), q: f32([1, 9], random.floats(9)) }, { kv: cache }), 'GUMIHO_SHAPE_MISMATCH');
    } finally {
      program.dispose();
    }
  },
};

function concatRows(rows: readonly Float32Array[]): Float32Array {
  const width = rows[0]?.length ?? 0;
  const out = new Float32Array(rows.length * width);
  rows.forEach((row, index) => out.set(row, index * width));
  return out;
}

function attentionProgram(heads: number, kvHeads: number, headDim: number, scale: number | undefined, capacity: number): ProgramDefinition<'q' | 'k' | 'v' | 'mask', 'y'> {
  return {
    name: 'conformance-attention',
    inputs: {
      q: { dtype: 'float32', shape: ['n', heads * headDim] },
      k: { dtype: 'float32', shape: ['n', kvHeads * headDim] },
      v: { dtype: 'float32', shape: ['n', kvHeads * headDim] },
      mask: { dtype: 'float32', shape: ['n', 't'] },
    },
    caches: { kv: { layers: 1, kvHeads, headDim, capacity } },
    build: (ops, x, context) => ({
      y: ops.attention(x.q, x.k, x.v, { kv: context.kv('kv', 0), mask: x.mask, heads, kvHeads, headDim, ...(scale === undefined ? {} : { scale }) }),
    }),
  };
}

interface AttentionStep {
  readonly n: number;
  readonly mask: Float32Array;
  readonly after?: (cache: KvCache) => void;
}

/** Runs attention steps on one cache; returns outputs, inputs and every key/value row appended (in order). */
async function attentionRun(
  backend: TensorBackend,
  random: Random,
  shape: { heads: number; kvHeads: number; headDim: number; capacity: number; scale?: number },
  steps: readonly AttentionStep[],
): Promise<{ y: Float32Array[] & { q: Float32Array[]; masks: Float32Array[] }; keys: Float32Array; values: Float32Array; cache: KvCache }> {
  const { heads, kvHeads, headDim, capacity } = shape;
  const kvWidth = kvHeads * headDim;
  const program = await backend.compile(attentionProgram(heads, kvHeads, headDim, shape.scale, capacity), EMPTY);
  const cache = backend.createKvCache({ layers: 1, kvHeads, headDim, capacity });
  const outputs = [] as unknown as Float32Array[] & { q: Float32Array[]; masks: Float32Array[] };
  outputs.q = [];
  outputs.masks = [];
  const keyRows: Float32Array[] = [];
  const valueRows: Float32Array[] = [];
  try {
    for (const step of steps) {
      const n = step.n;
      const q = random.floats(n * heads * headDim);
      const k = random.floats(n * kvWidth);
      const v = random.floats(n * kvWidth);
      const total = step.mask.length / n;
      const out = await program.run(
        { q: f32([n, heads * headDim], q), k: f32([n, kvWidth], k), v: f32([n, kvWidth], v), mask: f32([n, total], step.mask) },
        { kv: cache },
      );
      expect(out.y!.shape).toEqual([n, heads * headDim]);
      outputs.push(out.y!.data);
      outputs.q.push(q);
      outputs.masks.push(step.mask);
      keyRows.push(k);
      valueRows.push(v);
      step.after?.(cache);
    }
  } finally {
    program.dispose();
  }
  const join = (parts: Float32Array[]): Float32Array => {
    const all = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    return all;
  };
  return { y: outputs, keys: join(keyRows), values: join(valueRows), cache };
}

/**
 * A two-layer Llama-shaped program (embedding, RMSNorm, fused qkv, rope, GQA attention, SwiGLU MLP,
 * final norm, gathered LM head) run as prefill (6 tokens), a 4-node tree compacted to an accepted
 * path, then one decode step; every logit is compared with a float64 forward over the same cache
 * contents.
 */
async function llamaScenario(backend: TensorBackend, tolerance: Tolerance, random: Random): Promise<void> {
  const cfg = { vocab: 29, hidden: 24, heads: 3, kvHeads: 1, headDim: 8, inter: 20, layers: 2, eps: 1e-5, theta: 10000 };
  const qDim = cfg.heads * cfg.headDim;
  const kvDim = cfg.kvHeads * cfg.headDim;
  const store = new MapStore();
  const weights: Record<string, Float32Array> = {};
  const add = (name: string, shape: number[], scale: number, offset = 0): void => {
    const data = random.floats(shape.reduce((a, b) => a * b, 1), scale);
    if (offset) for (let i = 0; i < data.length; i++) data[i] = data[i]! + offset;
    weights[name] = data;
    store.set(name, shape, data);
  };
  add('embed', [cfg.vocab, cfg.hidden], 1);
  for (let l = 0; l < cfg.layers; l++) {
    add(`l${l}.norm1`, [cfg.hidden], 0.2, 1);
    add(`l${l}.qkv`, [qDim + 2 * kvDim, cfg.hidden], 0.3);
    add(`l${l}.o`, [cfg.hidden, qDim], 0.3);
    add(`l${l}.norm2`, [cfg.hidden], 0.2, 1);
    add(`l${l}.gateUp`, [2 * cfg.inter, cfg.hidden], 0.3);
    add(`l${l}.down`, [cfg.hidden, cfg.inter], 0.3);
  }
  add('norm', [cfg.hidden], 0.2, 1);
  const definition: ProgramDefinition<'ids' | 'positions' | 'mask' | 'rows', 'logits' | 'hidden'> = {
    name: 'conformance-llama',
    inputs: {
      ids: { dtype: 'int32', shape: ['n'] },
      positions: { dtype: 'int32', shape: ['n'] },
      mask: { dtype: 'float32', shape: ['n', 't'] },
      rows: { dtype: 'int32', shape: ['r'] },
    },
    caches: { kv: { layers: cfg.layers, kvHeads: cfg.kvHeads, headDim: cfg.headDim, capacity: 16 } },
    build(ops, x, context) {
      const w = (name: string) => context.weight(name);
      let h = ops.embedding(w('embed'), x.ids);
      for (let l = 0; l < cfg.layers; l++) {
        const qkv = ops.linear(ops.rmsNorm(h, w(`l${l}.norm1`), cfg.eps), w(`l${l}.qkv`));
        const q = ops.rope(ops.sliceColumns(qkv, 0, qDim), x.positions, { heads: cfg.heads, headDim: cfg.headDim, theta: cfg.theta });
        const k = ops.rope(ops.sliceColumns(qkv, qDim, qDim + kvDim), x.positions, { heads: cfg.kvHeads, headDim: cfg.headDim, theta: cfg.theta });
        const v = ops.sliceColumns(qkv, qDim + kvDim, qDim + 2 * kvDim);
        const a = ops.attention(q, k, v, { kv: context.kv('kv', l), mask: x.mask, heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.headDim });
        h = ops.add(h, ops.linear(a, w(`l${l}.o`)));
        const gateUp = ops.linear(ops.rmsNorm(h, w(`l${l}.norm2`), cfg.eps), w(`l${l}.gateUp`));
        const act = ops.mul(ops.silu(ops.sliceColumns(gateUp, 0, cfg.inter)), ops.sliceColumns(gateUp, cfg.inter, 2 * cfg.inter));
        h = ops.add(h, ops.linear(act, w(`l${l}.down`)));
      }
      const hidden = ops.rmsNorm(h, w('norm'), cfg.eps);
      return { hidden, logits: ops.linear(ops.gatherRows(hidden, x.rows), w('embed')) };
    },
  };

  // float64 reference with its own cache (per layer: rows of k and v).
  const refK: number[][][] = Array.from({ length: cfg.layers }, () => []);
  const refV: number[][][] = Array.from({ length: cfg.layers }, () => []);
  const matvec = (x: number[], name: string, out: number, inF: number): number[] => {
    const wt = weights[name]!;
    const y = new Array<number>(out).fill(0);
    for (let j = 0; j < out; j++) for (let c = 0; c < inF; c++) y[j]! += x[c]! * wt[j * inF + c]!;
    return y;
  };
  const norm = (x: number[], name: string): number[] => {
    const s = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + cfg.eps);
    return x.map((v, c) => v * s * weights[name]![c]!);
  };
  const rot = (x: number[], position: number, heads: number): number[] => {
    const y = x.slice();
    const half = cfg.headDim / 2;
    for (let hh = 0; hh < heads; hh++) {
      for (let f = 0; f < half; f++) {
        const angle = Math.fround(position * Math.fround(1 / Math.pow(cfg.theta, (2 * f) / cfg.headDim)));
        const a = x[hh * cfg.headDim + f]!;
        const b = x[hh * cfg.headDim + f + half]!;
        y[hh * cfg.headDim + f] = a * Math.cos(angle) - b * Math.sin(angle);
        y[hh * cfg.headDim + f + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
    return y;
  };
  /** Reference forward of `ids` at `positions`; row i sees committed rows plus new rows j with visible(i, j). Appends rows to refK/refV (pending = last n). */
  const refForward = (ids: number[], positions: number[], visible: (i: number, j: number) => boolean): number[][] => {
    const n = ids.length;
    const past = refK[0]!.length;
    let h = ids.map((id) => Array.from(weights.embed!.subarray(id * cfg.hidden, (id + 1) * cfg.hidden)));
    for (let l = 0; l < cfg.layers; l++) {
      const qs: number[][] = [];
      for (let i = 0; i < n; i++) {
        const qkv = matvec(norm(h[i]!, `l${l}.norm1`), `l${l}.qkv`, qDim + 2 * kvDim, cfg.hidden);
        qs.push(rot(qkv.slice(0, qDim), positions[i]!, cfg.heads));
        refK[l]!.push(rot(qkv.slice(qDim, qDim + kvDim), positions[i]!, cfg.kvHeads));
        refV[l]!.push(qkv.slice(qDim + kvDim));
      }
      const next: number[][] = [];
      for (let i = 0; i < n; i++) {
        const attended = new Array<number>(qDim).fill(0);
        for (let hh = 0; hh < cfg.heads; hh++) {
          const g = Math.floor(hh / (cfg.heads / cfg.kvHeads)) * cfg.headDim;
          const keys = refK[l]!.map((_, j) => j).filter((j) => j < past || visible(i, j - past));
          const scores = keys.map((j) => {
            let dot = 0;
            for (let d = 0; d < cfg.headDim; d++) dot += qs[i]![hh * cfg.headDim + d]! * refK[l]![j]![g + d]!;
            return dot / Math.sqrt(cfg.headDim);
          });
          const max = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - max));
          const sum = e.reduce((a, b) => a + b, 0);
          keys.forEach((j, index) => {
            for (let d = 0; d < cfg.headDim; d++) attended[hh * cfg.headDim + d]! += (e[index]! / sum) * refV[l]![j]![g + d]!;
          });
        }
        const o = matvec(attended, `l${l}.o`, cfg.hidden, qDim);
        const h1 = h[i]!.map((v, c) => v + o[c]!);
        const gu = matvec(norm(h1, `l${l}.norm2`), `l${l}.gateUp`, 2 * cfg.inter, cfg.hidden);
        const act = gu.slice(0, cfg.inter).map((g, c) => (g / (1 + Math.exp(-g))) * gu[cfg.inter + c]!);
        const down = matvec(act, `l${l}.down`, cfg.hidden, cfg.inter);
        next.push(h1.map((v, c) => v + down[c]!));
      }
      h = next;
    }
    return h.map((row) => matvec(norm(row, 'norm'), 'embed', cfg.vocab, cfg.hidden));
  };
  const compactRef = (past: number, slots: number[]): void => {
    for (let l = 0; l < cfg.layers; l++) {
      const keep = slots.map((s) => refK[l]![past + s]!);
      const keepV = slots.map((s) => refV[l]![past + s]!);
      refK[l] = [...refK[l]!.slice(0, past), ...keep];
      refV[l] = [...refV[l]!.slice(0, past), ...keepV];
    }
  };

  const program = await backend.compile(definition, store);
  const cache = backend.createKvCache(definition.caches!.kv!);
  const check = (actual: Float32Array, expected: number[][], what: string): void => {
    // Logit magnitudes are not tracked through the network: compare against a scale of the logits.
    const scale = Math.max(...expected.flat().map(Math.abs));
    const ref = reference(expected.length * cfg.vocab);
    expected.flat().forEach((v, index) => {
      ref.values[index] = v;
      ref.magnitude[index] = 50 * scale;
    });
    expectClose(actual, ref, tolerance, what);
  };
  try {
    const step = async (ids: number[], positions: number[], visible: (i: number, j: number) => boolean): Promise<Float32Array> => {
      const n = ids.length;
      const past = cache.length + cache.pending;
      const mask = additiveMask(n, past, (i, j) => (j < cache.length ? true : j < past ? false : visible(i, j - past)));
      const out = await program.run({ ids: i32(ids), positions: i32(positions), mask: f32([n, past + n], mask), rows: i32(ids.map((_, i) => i)) }, { kv: cache });
      expect(out.hidden.shape).toEqual([n, cfg.hidden]);
      return out.logits.data;
    };
    const prompt = [3, 17, 0, 28, 5, 5];
    const prefill = await step(prompt, [0, 1, 2, 3, 4, 5], (i, j) => j <= i);
    check(prefill, refForward(prompt, [0, 1, 2, 3, 4, 5], (i, j) => j <= i), 'prefill logits');
    cache.commit();
    // Tree: root 7, children 8 and 9, grandchild 10 under 9.
    const parents = [-1, 0, 0, 2];
    const sees = (i: number, j: number): boolean => {
      for (let node = i; node >= 0; node = parents[node]!) if (node === j) return true;
      return false;
    };
    const tree = await step([7, 8, 9, 10], [6, 7, 7, 8], sees);
    check(tree, refForward([7, 8, 9, 10], [6, 7, 7, 8], sees), 'tree logits');
    cache.compact([0, 2, 3]);
    compactRef(6, [0, 2, 3]);
    const decode = await step([11], [9], () => true);
    check(decode, refForward([11], [9], () => true), 'decode logits after compaction');
    expect(cache.length).toBe(9);
    expect(cache.pending).toBe(1);
  } finally {
    program.dispose();
  }
}

/**
 * Registers the op conformance suite for a backend with vitest: one `describe` block named after
 * `name`, one test per case. `createBackend` runs once before the cases; the backend is disposed
 * after them.
 *
 * @example
 * ```ts
 * describeOpsConformance('cpu', () => createCpuBackend());
 * describeOpsConformance('ort-cpu', () => createOrtBackend(), { skip: { 'some case': 'reason, issue link' } });
 * ```
 */
export function describeOpsConformance(name: string, createBackend: () => TensorBackend | Promise<TensorBackend>, options: OpsConformanceOptions = {}): void {
  describe(`ops conformance: ${name}`, () => {
    let backend: TensorBackend | undefined;
    let tolerance: Tolerance = PRECISION_TOLERANCE.float32;
    beforeAll(async () => {
      backend = await createBackend();
      tolerance = { ...PRECISION_TOLERANCE[backend.capabilities.precision], ...options.tolerance };
    });
    afterAll(() => backend?.dispose());
    let index = 0;
    for (const [caseName, run] of Object.entries(CASES)) {
      const seed = (options.seed ?? 1) * 1000 + index++;
      const reason = options.skip?.[caseName];
      if (reason !== undefined) {
        it.skip(`${caseName} (skipped: ${reason})`, () => {});
        continue;
      }
      it(caseName, async () => {
        if (!backend) throw new Error('the backend was not created');
        await run({ backend, tolerance, random: new Random(seed) });
      });
    }
  });
}

/** Names of the suite's cases, for `skip` lists. */
export const OPS_CONFORMANCE_CASES: readonly string[] = Object.keys(CASES);
