/**
 * Logits processors, each a {@link LogitsProcessor} that rewrites one row of logits in place.
 * They follow Hugging Face `transformers` (`RepetitionPenaltyLogitsProcessor`,
 * `TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`, `MinPLogitsWarper`) with
 * `min_tokens_to_keep = 1`. Removed tokens get `-Infinity`. No processor allocates per call: each
 * keeps scratch buffers that grow to the vocabulary size once.
 */
import { InvalidArgumentError, type LogitsProcessor, type TokenHistory } from '@gumiho/core';

/** Checks `temperature`: finite and > 0 for the processor (0 means greedy at the sampler level). */
function checkPositiveTemperature(temperature: number): void {
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature <= 0) {
    throw new InvalidArgumentError('temperature', `The temperature processor needs a finite temperature > 0, got ${String(temperature)}.`, {
      fix: 'use a value such as 0.7 or 1; for greedy decoding create the sampler with temperature 0 instead.',
    });
  }
}

/** Checks `topK`: an integer >= 1. */
export function checkTopK(k: unknown): asserts k is number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) {
    throw new InvalidArgumentError('topK', `topK must be an integer >= 1, got ${String(k)}.`, {
      fix: 'use a value such as 40, or omit topK to keep every token.',
    });
  }
}

/** Checks `topP`: in (0, 1]. */
export function checkTopP(p: unknown): asserts p is number {
  if (typeof p !== 'number' || !(p > 0 && p <= 1)) {
    throw new InvalidArgumentError('topP', `topP must be in (0, 1], got ${String(p)}.`, {
      fix: 'use a value such as 0.9, or omit topP (same as 1) to keep every token.',
    });
  }
}

/** Checks `minP`: in [0, 1). */
export function checkMinP(p: unknown): asserts p is number {
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) {
    throw new InvalidArgumentError('minP', `minP must be in [0, 1), got ${String(p)}.`, {
      fix: 'use a value such as 0.05, or omit minP (same as 0) to keep every token.',
    });
  }
}

/** Checks `repetitionPenalty`: finite and > 0. */
export function checkRepetitionPenalty(penalty: unknown): asserts penalty is number {
  if (typeof penalty !== 'number' || !Number.isFinite(penalty) || penalty <= 0) {
    throw new InvalidArgumentError('repetitionPenalty', `repetitionPenalty must be a finite number > 0, got ${String(penalty)}.`, {
      fix: 'use a value such as 1.1 (1 = no penalty; values below 1 favour repetition).',
    });
  }
}

/** True when token `a` ranks above token `b`: larger logit, or the same logit and a smaller id. */
function ranksAbove(logits: Float32Array, a: number, b: number): boolean {
  const la = logits[a]!;
  const lb = logits[b]!;
  return la > lb || (la === lb && a < b);
}

function siftDown(heap: Int32Array, logits: Float32Array, start: number, size: number): void {
  let node = start;
  for (;;) {
    const left = 2 * node + 1;
    if (left >= size) return;
    let child = left;
    if (left + 1 < size && ranksAbove(logits, heap[left + 1]!, heap[left]!)) child = left + 1;
    if (!ranksAbove(logits, heap[child]!, heap[node]!)) return;
    const swap = heap[child]!;
    heap[child] = heap[node]!;
    heap[node] = swap;
    node = child;
  }
}

/** Fills `heap[0..n)` with token ids arranged as a max-heap by rank (O(n)). */
function buildHeap(heap: Int32Array, logits: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) heap[i] = i;
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(heap, logits, i, n);
}

/** Removes the best token from a heap of `size` entries; returns it. */
function popHeap(heap: Int32Array, logits: Float32Array, size: number): number {
  const top = heap[0]!;
  heap[0] = heap[size - 1]!;
  siftDown(heap, logits, 0, size - 1);
  return top;
}

/**
 * Divides every logit by `temperature` (> 0), as Hugging Face's `TemperatureLogitsWarper`.
 */
export function createTemperatureProcessor(temperature: number): LogitsProcessor {
  checkPositiveTemperature(temperature);
  return {
    id: `temperature(${temperature})`,
    process(logits: Float32Array): void {
      if (temperature === 1) return;
      for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / temperature;
    },
  };
}

/**
 * Keeps the `k` largest logits and sets the others to `-Infinity`. Tokens tied with the k-th
 * largest value are kept too (Hugging Face's `TopKLogitsWarper` compares against the k-th value).
 */
export function createTopKProcessor(k: number): LogitsProcessor {
  checkTopK(k);
  let heap = new Int32Array(0);
  return {
    id: `top-k(${k})`,
    process(logits: Float32Array): void {
      const n = logits.length;
      if (k >= n) return;
      if (heap.length < n) heap = new Int32Array(n);
      buildHeap(heap, logits, n);
      let kth = 0;
      for (let i = 0; i < k; i++) kth = popHeap(heap, logits, n - i);
      const threshold = logits[kth]!;
      for (let i = 0; i < n; i++) if (logits[i]! < threshold) logits[i] = -Infinity;
    },
  };
}

/**
 * Nucleus sampling: keeps the smallest set of most likely tokens whose probability mass reaches
 * `p`, as Hugging Face's `TopPLogitsWarper` (a token is removed when the mass of the tokens ranked
 * above it is already >= `p`; at least one token is kept; ties rank the lower token id first).
 * `p = 1` keeps every token. Uses a binary max-heap over token ids, popped only until the mass is
 * reached: O(V + kept · log V), no allocation after the first call.
 */
export function createTopPProcessor(p: number): LogitsProcessor {
  checkTopP(p);
  let heap = new Int32Array(0);
  return {
    id: `top-p(${p})`,
    process(logits: Float32Array): void {
      if (p >= 1) return;
      const n = logits.length;
      if (heap.length < n) heap = new Int32Array(n);
      let max = -Infinity;
      for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
      if (max === -Infinity) return;
      let total = 0;
      for (let i = 0; i < n; i++) total += Math.exp(logits[i]! - max);
      buildHeap(heap, logits, n);
      let size = n;
      let mass = 0;
      while (size > 0 && mass < p) {
        const top = popHeap(heap, logits, size);
        size--;
        mass += Math.exp(logits[top]! - max) / total;
      }
      for (let i = 0; i < size; i++) logits[heap[i]!] = -Infinity;
    },
  };
}

/**
 * Min-p sampling: removes tokens whose probability is below `minP` times the top token's
 * probability, as Hugging Face's `MinPLogitsWarper`. Computed in logit space
 * (`logit < max + ln(minP)`), which needs no softmax. `minP = 0` keeps every token.
 */
export function createMinPProcessor(minP: number): LogitsProcessor {
  checkMinP(minP);
  const logMinP = Math.log(minP);
  return {
    id: `min-p(${minP})`,
    process(logits: Float32Array): void {
      if (minP === 0) return;
      let max = -Infinity;
      for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
      if (max === -Infinity) return;
      const threshold = max + logMinP;
      for (let i = 0; i < logits.length; i++) if (logits[i]! < threshold) logits[i] = -Infinity;
    },
  };
}

/**
 * Repetition penalty (Keskar et al. 2019, Hugging Face's `RepetitionPenaltyLogitsProcessor`): for
 * every distinct token of the history, a positive logit is divided by `penalty` and a negative one
 * multiplied by it. Each token is penalised once, however often it occurs. Token ids outside the
 * vocabulary are ignored.
 */
export function createRepetitionPenaltyProcessor(penalty: number): LogitsProcessor {
  checkRepetitionPenalty(penalty);
  let stamps = new Uint32Array(0);
  let stamp = 0;
  return {
    id: `repetition-penalty(${penalty})`,
    process(logits: Float32Array, history: TokenHistory): void {
      if (penalty === 1) return;
      const n = logits.length;
      if (stamps.length < n) {
        stamps = new Uint32Array(n);
        stamp = 0;
      }
      stamp++;
      if (stamp === 0xffffffff) {
        stamps.fill(0);
        stamp = 1;
      }
      const tokens = history.tokens;
      for (let i = 0; i < history.length; i++) {
        const token = tokens[i]!;
        if (token < 0 || token >= n || stamps[token] === stamp) continue;
        stamps[token] = stamp;
        const value = logits[token]!;
        logits[token] = value < 0 ? value * penalty : value / penalty;
      }
    },
  };
}

/** Runs `processors` on `logits` in order, in place. */
export function applyLogitsProcessors(
  processors: readonly LogitsProcessor[],
  logits: Float32Array,
  history: TokenHistory,
): void {
  for (let i = 0; i < processors.length; i++) processors[i]!.process(logits, history);
}
