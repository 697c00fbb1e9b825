/**
 * Turning LM-head logits into draft candidates: log-softmax per row (no temperature, as EAGLE-2
 * and Gumiho draft), then the top-k, best first. Host-side, with core's math helpers.
 */
import { InvalidArgumentError, logSoftmax, topK, type Candidates } from '@gumiho/core';

/** Candidates with `rows` rows of `k` entries, all "no candidate" (-1, -Infinity). */
export function emptyCandidates(rows: number, k: number): Candidates {
  const size = rows * k;
  return { rows, k, tokens: new Int32Array(size).fill(-1), logProbs: new Float32Array(size).fill(-Infinity) };
}

/**
 * Top-`k` tokens and draft log-probabilities of rows `first .. first + rows - 1` of
 * `logits [*, vocab]`. Rows with fewer than `k` entries (k > vocab) are padded with -1.
 */
export function candidatesFromLogits(logits: Float32Array, vocab: number, k: number, first = 0, rows = logits.length / vocab - first): Candidates {
  const out = emptyCandidates(rows, k);
  const scratch = new Float32Array(vocab);
  const indices = new Int32Array(Math.min(k, vocab));
  const values = new Float32Array(Math.min(k, vocab));
  for (let r = 0; r < rows; r++) {
    logSoftmax(logits, scratch, (first + r) * vocab, vocab);
    const count = topK(scratch, k, indices, values);
    out.tokens.set(indices.subarray(0, count), r * k);
    out.logProbs.set(values.subarray(0, count), r * k);
  }
  return out;
}

/** Checks the `topK` option of a head call. */
export function checkTopK(k: number): void {
  if (!Number.isInteger(k) || k < 1) {
    throw new InvalidArgumentError('topK', `topK must be a positive integer, got ${k}.`, { fix: 'ask for at least one candidate per node.' });
  }
}
