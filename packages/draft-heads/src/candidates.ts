/**
 * Turning LM-head logits into draft candidates: log-softmax per row (no temperature, as EAGLE-2
 * and Gumiho draft), then the top-k, best first. Host-side, with core's `topK`.
 */
import { InvalidArgumentError, topK, type Candidates } from '@gumiho/core';

/** Candidates with `rows` rows of `k` entries, all "no candidate" (-1, -Infinity). */
export function emptyCandidates(rows: number, k: number): Candidates {
  const size = rows * k;
  return { rows, k, tokens: new Int32Array(size).fill(-1), logProbs: new Float32Array(size).fill(-Infinity) };
}

/**
 * Top-`k` tokens and draft log-probabilities of rows `first .. first + rows - 1` of
 * `logits [*, vocab]`. Rows with fewer than `k` entries (k > vocab) are padded with -1.
 * Log-softmax is monotonic, so the top-k runs on the raw logits and only the `k` winners are
 * shifted by the row's log-sum-exp (the same values `logSoftmax` would give them).
 */
export function candidatesFromLogits(logits: Float32Array, vocab: number, k: number, first = 0, rows = logits.length / vocab - first): Candidates {
  const out = emptyCandidates(rows, k);
  const indices = new Int32Array(Math.min(k, vocab));
  const values = new Float32Array(Math.min(k, vocab));
  for (let r = 0; r < rows; r++) {
    const offset = (first + r) * vocab;
    const count = topK(logits, k, indices, values, offset, vocab);
    const logSum = logSumExp(logits, offset, vocab);
    for (let j = 0; j < count; j++) {
      out.tokens[r * k + j] = indices[j]!;
      out.logProbs[r * k + j] = values[j]! - logSum;
    }
  }
  return out;
}

/** `log(sum(exp(values[offset .. offset + length))))`, computed stably (as core's `logSoftmax`). */
export function logSumExp(values: ArrayLike<number>, offset: number, length: number): number {
  let max = -Infinity;
  for (let i = 0; i < length; i++) {
    const value = values[offset + i]!;
    if (value > max) max = value;
  }
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(values[offset + i]! - max);
  return max + Math.log(sum);
}

/** Checks the `topK` option of a head call. */
export function checkTopK(k: number): void {
  if (!Number.isInteger(k) || k < 1) {
    throw new InvalidArgumentError('topK', `topK must be a positive integer, got ${k}.`, { fix: 'ask for at least one candidate per node.' });
  }
}
