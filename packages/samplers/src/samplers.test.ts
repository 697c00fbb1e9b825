import { GumihoError, InvalidArgumentError, type TokenHistory } from '@gumiho/core';
import { describe, expect, it } from 'vitest';
import {
  createLogitsProcessors,
  createMinPProcessor,
  createRepetitionPenaltyProcessor,
  createRng,
  createSampler,
  createTemperatureProcessor,
  createTopKProcessor,
  createTopPProcessor,
} from './index.js';

const EMPTY: TokenHistory = { tokens: new Int32Array(0), length: 0 };

function history(...tokens: number[]): TokenHistory {
  return { tokens: Int32Array.from(tokens), length: tokens.length };
}

function softmaxOf(values: number[]): number[] {
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

describe('createRng', () => {
  it('reproduces the same stream for the same seed and differs across seeds', () => {
    const a = createRng(1234);
    const b = createRng(1234);
    const c = createRng(1235);
    const d = createRng(-1234);
    const sa = Array.from({ length: 8 }, () => a.nextUint32());
    const sb = Array.from({ length: 8 }, () => b.nextUint32());
    const sc = Array.from({ length: 8 }, () => c.nextUint32());
    const sd = Array.from({ length: 8 }, () => d.nextUint32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(sa).not.toEqual(sd);
    // Seeds that differ only in the high 32 bits give different streams.
    expect(createRng(2 ** 32 + 5).nextUint32()).not.toBe(createRng(5).nextUint32());
  });

  it('gives uniform floats in [0, 1) and clones its state', () => {
    const rng = createRng(7);
    let sum = 0;
    const buckets = new Array<number>(10).fill(0);
    const n = 50_000;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.nextFloat();
      if (!(x >= 0 && x < 1)) outside++;
      sum += x;
      buckets[Math.floor(x * 10)]!++;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
    for (const count of buckets) expect(Math.abs(count / n - 0.1)).toBeLessThan(0.01);
    const copy = rng.clone();
    expect(copy.nextFloat()).toBe(rng.nextFloat());
  });

  it('rejects seeds that are not safe integers', () => {
    expect(() => createRng(1.5)).toThrow(InvalidArgumentError);
    expect(() => createRng(Number.NaN)).toThrow(/safe integer/);
  });
});

describe('option validation', () => {
  const bad: [Record<string, number>, string][] = [
    [{ temperature: -1 }, 'temperature'],
    [{ temperature: Infinity }, 'temperature'],
    [{ topK: 0 }, 'topK'],
    [{ topK: 2.5 }, 'topK'],
    [{ topP: 0 }, 'topP'],
    [{ topP: 1.01 }, 'topP'],
    [{ minP: 1 }, 'minP'],
    [{ minP: -0.1 }, 'minP'],
    [{ repetitionPenalty: 0 }, 'repetitionPenalty'],
    [{ seed: 0.5 }, 'seed'],
  ];
  it.each(bad)('rejects %o with an InvalidArgumentError naming %s and a fix', (options, argument) => {
    try {
      createSampler(options);
      expect.unreachable();
    } catch (error) {
      expect(GumihoError.isInstance(error)).toBe(true);
      expect((error as InvalidArgumentError).argument).toBe(argument);
      expect((error as InvalidArgumentError).fix).toBeTruthy();
    }
  });

  it('accepts the boundary values', () => {
    expect(() => createSampler({ temperature: 0, topK: 1, topP: 1, minP: 0, repetitionPenalty: 0.5, seed: -3 })).not.toThrow();
  });
});

describe('logits processors', () => {
  it('temperature divides the logits', () => {
    const logits = Float32Array.of(1, -2, 4);
    createTemperatureProcessor(2).process(logits, EMPTY);
    expect(Array.from(logits)).toEqual([0.5, -1, 2]);
    expect(() => createTemperatureProcessor(0)).toThrow(InvalidArgumentError);
  });

  it('top-k keeps the k largest and ties with the k-th', () => {
    const logits = Float32Array.of(3, 1, 2, 2, 0);
    createTopKProcessor(2).process(logits, EMPTY);
    expect(Array.from(logits)).toEqual([3, -Infinity, 2, 2, -Infinity]);
    const all = Float32Array.of(1, 2);
    createTopKProcessor(5).process(all, EMPTY);
    expect(Array.from(all)).toEqual([1, 2]);
  });

  it('top-p keeps the smallest prefix whose mass reaches p', () => {
    // probabilities 0.5, 0.25, 0.125, 0.125 (logits are log-probs)
    const base = [Math.log(0.5), Math.log(0.25), Math.log(0.125), Math.log(0.125)];
    const a = Float32Array.from(base);
    createTopPProcessor(0.6).process(a, EMPTY);
    expect(Array.from(a).map(Number.isFinite)).toEqual([true, true, false, false]);
    const b = Float32Array.from(base);
    createTopPProcessor(0.5).process(b, EMPTY);
    expect(Array.from(b).map(Number.isFinite)).toEqual([true, false, false, false]);
    const c = Float32Array.from(base);
    createTopPProcessor(0.8).process(c, EMPTY);
    expect(Array.from(c).map(Number.isFinite)).toEqual([true, true, true, false]);
    // A tiny p still keeps the top token.
    const d = Float32Array.from([0, 5, 1]);
    createTopPProcessor(1e-9).process(d, EMPTY);
    expect(Array.from(d).map(Number.isFinite)).toEqual([false, true, false]);
  });

  it('property: top-k and top-p agree with sort-based reference implementations (ties included)', () => {
    const rng = createRng(8);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + (rng.nextUint32() % 40);
      // Rounded values create ties; some -Infinity entries too.
      const raw = Array.from({ length: n }, () => (rng.nextFloat() < 0.1 ? -Infinity : Math.round(rng.nextFloat() * 8) / 2));
      if (raw.every((v) => v === -Infinity)) raw[0] = 0;
      const k = 1 + (rng.nextUint32() % (n + 2));
      const p = Math.max(1e-6, rng.nextFloat());
      const order = raw.map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v || a.i - b.i);
      // top-k: keep every value >= the k-th largest.
      const kth = k >= n ? -Infinity : order[k - 1]!.v;
      const expectedK = raw.map((v) => (k >= n || v >= kth ? v : -Infinity));
      const topk = Float32Array.from(raw);
      createTopKProcessor(k).process(topk, EMPTY);
      expect(Array.from(topk)).toEqual(Array.from(Float32Array.from(expectedK)));
      // top-p: walk the sorted order, keep while the mass above is < p.
      const max = order[0]!.v;
      const total = raw.reduce((sum, v) => sum + Math.exp(v - max), 0);
      const keep = new Set<number>();
      let above = 0;
      for (const { v, i } of order) {
        if (above >= p) break;
        keep.add(i);
        above += Math.exp(v - max) / total;
      }
      const topp = Float32Array.from(raw);
      createTopPProcessor(p).process(topp, EMPTY);
      const kept = new Set(Array.from(topp).flatMap((v, i) => (v === -Infinity ? [] : [i])));
      expect([...kept].sort((a, b) => a - b)).toEqual([...keep].filter((i) => raw[i] !== -Infinity).sort((a, b) => a - b));
    }
  });

  it('min-p removes tokens below minP times the top probability', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const logits = Float32Array.from(probs.map(Math.log));
    createMinPProcessor(0.2).process(logits, EMPTY); // threshold 0.1
    expect(Array.from(logits).map(Number.isFinite)).toEqual([true, true, true, false]);
  });

  it('repetition penalty divides positive and multiplies negative logits, once per distinct token', () => {
    const logits = Float32Array.of(2, -2, 3, 1);
    createRepetitionPenaltyProcessor(2).process(logits, history(0, 1, 1, 0, 9, -1));
    expect(Array.from(logits)).toEqual([1, -4, 3, 1]);
  });

  it('come in Hugging Face order and skip no-ops', () => {
    expect(createLogitsProcessors({ temperature: 0.5, topK: 3, topP: 0.9, minP: 0.1, repetitionPenalty: 1.2 }).map((p) => p.id)).toEqual([
      'repetition-penalty(1.2)',
      'temperature(0.5)',
      'top-k(3)',
      'top-p(0.9)',
      'min-p(0.1)',
    ]);
    expect(createLogitsProcessors({ temperature: 1 })).toEqual([]);
    expect(createLogitsProcessors({ temperature: 0, topK: 3, repetitionPenalty: 1.3 }).map((p) => p.id)).toEqual(['repetition-penalty(1.3)']);
  });
});

describe('createSampler', () => {
  it('is greedy at temperature 0: argmax, with the repetition penalty applied', () => {
    const logits = Float32Array.of(0.1, 2, 1.5, -1);
    const greedy = createSampler();
    expect(greedy.greedy).toBe(true);
    expect(greedy.pick(logits, EMPTY)).toBe(1);
    const penalised = createSampler({ repetitionPenalty: 2 });
    expect(penalised.pick(logits, history(1))).toBe(2);
    const out = new Float32Array(4);
    penalised.distribution(logits, history(1), out);
    expect(Array.from(out)).toEqual([0, 0, 1, 0]);
    expect(Array.from(logits)).toEqual(Array.from(Float32Array.of(0.1, 2, 1.5, -1)));
  });

  it('forms softmax(logits / T) and leaves the logits untouched', () => {
    const raw = [0.3, -1, 2, 0.7, 0];
    const logits = Float32Array.from(raw);
    const sampler = createSampler({ temperature: 0.7, seed: 1 });
    const out = new Float32Array(5);
    sampler.distribution(logits, EMPTY, out);
    const expected = softmaxOf(raw.map((v) => v / 0.7));
    out.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
    expect(Array.from(logits)).toEqual(Array.from(Float32Array.from(raw)));
  });

  it('draws tokens with the processed probabilities (total variation < 0.01 over 40k draws)', () => {
    const raw = [0.3, -1, 2, 0.7, 0, 1.1];
    const logits = Float32Array.from(raw);
    const sampler = createSampler({ temperature: 1.3, topK: 4, seed: 99 });
    const expectedProbs = new Float32Array(6);
    sampler.distribution(logits, EMPTY, expectedProbs);
    expect(expectedProbs[1]).toBe(0);
    expect(expectedProbs[4]).toBe(0);
    const counts = new Array<number>(6).fill(0);
    const n = 40_000;
    for (let i = 0; i < n; i++) counts[sampler.pick(logits, EMPTY)]!++;
    let tv = 0;
    counts.forEach((c, i) => (tv += Math.abs(c / n - expectedProbs[i]!) / 2));
    expect(counts[1]).toBe(0);
    expect(counts[4]).toBe(0);
    expect(tv).toBeLessThan(0.01);
  });

  it('reproduces a run with the same seed', () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const run = (seed: number) => {
      const sampler = createSampler({ temperature: 1, topP: 0.9, seed });
      return Array.from({ length: 30 }, () => sampler.pick(logits, EMPTY));
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
    expect(createSampler({ temperature: 1 }).options.seed).toSatisfy(Number.isSafeInteger);
  });

  it('draw() works on unnormalised weights and rejects empty mass', () => {
    const sampler = createSampler({ temperature: 1, seed: 3 });
    const weights = Float32Array.of(0, 3, 0, 1);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) counts[sampler.draw(weights)]!++;
    expect(counts[0]).toBe(0);
    expect(counts[2]).toBe(0);
    expect(Math.abs(counts[1]! / 20_000 - 0.75)).toBeLessThan(0.015);
    expect(() => sampler.draw(new Float32Array(3))).toThrow(InvalidArgumentError);
  });

  it('runs extra processors after the built-in ones', () => {
    const banFirst = { id: 'ban-0', process: (l: Float32Array) => void (l[0] = -Infinity) };
    const sampler = createSampler({ temperature: 0 }, { processors: [banFirst] });
    expect(sampler.pick(Float32Array.of(5, 1, 2), EMPTY)).toBe(2);
  });
});
