import { describe, expect, it } from 'vitest';
import { argmax, bf16ToF32, f16ToF32, logSoftmax, softmax, topK } from './math.js';

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('math helpers', () => {
  it('topK equals a full sort, best first, lower index on ties', () => {
    const next = random(7);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(next() * 300);
      const k = 1 + Math.floor(next() * 40);
      const values = Float32Array.from({ length: n }, () => Math.round(next() * 20) / 4);
      const indices = new Int32Array(k);
      const out = new Float32Array(k);
      const count = topK(values, k, indices, out);
      const expected = [...values.keys()].sort((a, b) => values[b]! - values[a]! || a - b).slice(0, k);
      expect(count).toBe(Math.min(k, n));
      expect([...indices.subarray(0, count)]).toEqual(expected);
      expect([...out.subarray(0, count)]).toEqual(expected.map((i) => values[i]));
    }
  });

  it('topK honours offset and length', () => {
    const values = Float32Array.of(9, 1, 5, 3, 7, 9);
    const indices = new Int32Array(2);
    const out = new Float32Array(2);
    topK(values, 2, indices, out, 1, 4);
    expect([...indices]).toEqual([3, 1]);
    expect([...out]).toEqual([7, 5]);
  });

  it('softmax and logSoftmax agree and normalise', () => {
    const logits = Float32Array.of(1000, 999, -5, 0);
    const p = softmax(logits, new Float32Array(4));
    const lp = logSoftmax(logits, new Float32Array(4));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    for (let i = 0; i < 4; i++) expect(Math.exp(lp[i]!)).toBeCloseTo(p[i]!, 6);
    expect(argmax(logits)).toBe(0);
    expect(argmax(Float32Array.of(1, 3, 3))).toBe(1);
  });

  it('converts bf16 and f16', () => {
    expect([...bf16ToF32(Uint16Array.of(0x3f80, 0xc000, 0x0000))]).toEqual([1, -2, 0]);
    expect([...f16ToF32(Uint16Array.of(0x3c00, 0xc000, 0x3555, 0x7c00, 0x0001))]).toEqual([1, -2, 0.333251953125, Infinity, 2 ** -24]);
  });
});
