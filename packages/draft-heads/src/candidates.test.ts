import { describe, expect, it } from 'vitest';
import { logSoftmax, topK } from '@gumiho/core';
import { candidatesFromLogits } from './candidates.js';

describe('candidatesFromLogits', () => {
  it('equals log-softmax followed by top-k, row by row, padding with -1', () => {
    const vocab = 50;
    const logits = Float32Array.from({ length: 3 * vocab }, (_, i) => Math.sin(i * 12.9898) * 8);
    logits[vocab + 7] = logits[vocab + 9]!; // a tie: the lower index comes first
    const candidates = candidatesFromLogits(logits, vocab, 6, 1, 2);
    expect(candidates.rows).toBe(2);
    for (let r = 0; r < 2; r++) {
      const full = logSoftmax(logits, new Float32Array(vocab), (r + 1) * vocab, vocab);
      const indices = new Int32Array(6);
      const values = new Float32Array(6);
      topK(full, 6, indices, values);
      expect(Array.from(candidates.tokens.subarray(r * 6, r * 6 + 6))).toEqual(Array.from(indices));
      for (let j = 0; j < 6; j++) expect(candidates.logProbs[r * 6 + j]!).toBeCloseTo(values[j]!, 5);
    }
    const padded = candidatesFromLogits(Float32Array.of(0, Math.log(3)), 2, 3);
    expect(Array.from(padded.tokens)).toEqual([1, 0, -1]);
    expect(padded.logProbs[0]).toBeCloseTo(Math.log(0.75), 6);
    expect(padded.logProbs[2]).toBe(-Infinity);
  });
});
