/**
 * Logits processors, each a {@link LogitsProcessor} that rewrites one row of logits in place.
 * They follow Hugging Face `transformers` (`RepetitionPenaltyLogitsProcessor`,
 * `TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`, `MinPLogitsWarper`) with
 * `min_tokens_to_keep = 1`. Removed tokens get `-Infinity`. No processor allocates per call: each
 * keeps scratch buffers that grow to the vocabulary size once.
 */
import { InvalidArgumentError, topK, type LogitsProcessor, type TokenHistory } from '@gumiho/core';

const EMPTY = new Float32Array(0);

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
  let indices = new Int32Array(0);
  let values = new Float32Array(0);
  return {
    id: `top-k(${k})`,
    process(logits: Float32Array): void {
      if (k >= logits.length) return;
      if (indices.length < k) {
        indices = new Int32Array(k);
        values = new Float32Array(k);
      }
      const found = topK(logits, k, indices, values);
      if (found < k) return;
      const threshold = values[k - 1]!;
      for (let i = 0; i < logits.length; i++) if (logits[i]! < threshold) logits[i] = -Infinity;
    },
  };
}

/**
 * Nucleus sampling: keeps the smallest set of most likely tokens whose probability mass reaches
 * `p`, as Hugging Face's `TopPLogitsWarper` (a token is removed when the mass of the tokens ranked
 * above it is already >= `p`; at least one token is kept). `p = 1` keeps every token.
 */
export function createTopPProcessor(p: number): LogitsProcessor {
  checkTopP(p);
  let order = new Int32Array(0);
  let current: Float32Array = EMPTY;
  const descending = (a: number, b: number): number => current[b]! - current[a]! || a - b;
  return {
    id: `top-p(${p})`,
    process(logits: Float32Array): void {
      if (p >= 1) return;
      const n = logits.length;
      if (order.length < n) order = new Int32Array(n);
      const view = order.subarray(0, n);
      for (let i = 0; i < n; i++) view[i] = i;
      current = logits;
      view.sort(descending);
      current = EMPTY;
      const max = logits[view[0]!]!;
      if (max === -Infinity) return;
      let total = 0;
      for (let i = 0; i < n; i++) total += Math.exp(logits[i]! - max);
      let above = 0;
      let i = 0;
      for (; i < n; i++) {
        if (above >= p) break;
        above += Math.exp(logits[view[i]!]! - max) / total;
      }
      for (; i < n; i++) logits[view[i]!] = -Infinity;
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
  for (const processor of processors) processor.process(logits, history);
}
