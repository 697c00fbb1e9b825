/**
 * The default {@link Sampler}: Hugging Face's processor order (repetition penalty, temperature,
 * top-k, top-p, min-p), softmax, and draws from a seeded {@link createRng | xoshiro128**} stream.
 */
import {
  InvalidArgumentError,
  argmax,
  softmax,
  type LogitsProcessor,
  type Rng,
  type Sampler,
  type SamplingOptions,
  type TokenHistory,
} from '@gumiho/core';
import {
  applyLogitsProcessors,
  checkMinP,
  checkRepetitionPenalty,
  checkTopK,
  checkTopP,
  createMinPProcessor,
  createRepetitionPenaltyProcessor,
  createTemperatureProcessor,
  createTopKProcessor,
  createTopPProcessor,
} from './processors.js';
import { createRng, randomSeed, validateSeed } from './rng.js';

/** {@link SamplingOptions} with every field resolved to its default. */
export interface ResolvedSamplingOptions {
  readonly temperature: number;
  /** `Infinity` when no top-k cut applies. */
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly seed: number;
}

/**
 * Validates `options` and fills in defaults (temperature 0 = greedy, no top-k, topP 1, minP 0,
 * repetition penalty 1, a random seed when none is given). Throws {@link InvalidArgumentError}
 * naming the bad option and the fix.
 */
export function resolveSamplingOptions(options: SamplingOptions = {}): ResolvedSamplingOptions {
  const temperature = options.temperature ?? 0;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new InvalidArgumentError('temperature', `temperature must be a finite number >= 0, got ${String(temperature)}.`, {
      fix: 'use 0 for greedy decoding or a positive value such as 0.7 or 1 for sampling.',
    });
  }
  if (options.topK !== undefined) checkTopK(options.topK);
  const topP = options.topP ?? 1;
  checkTopP(topP);
  const minP = options.minP ?? 0;
  checkMinP(minP);
  const repetitionPenalty = options.repetitionPenalty ?? 1;
  checkRepetitionPenalty(repetitionPenalty);
  const seed = options.seed ?? randomSeed();
  validateSeed(seed);
  return { temperature, topK: options.topK ?? Infinity, topP, minP, repetitionPenalty, seed };
}

/**
 * The logits processors `options` call for, in Hugging Face's order: repetition penalty,
 * temperature, top-k, top-p, min-p. Processors that would do nothing (penalty 1, temperature 1,
 * no top-k, topP 1, minP 0) are left out. With temperature 0 (greedy) only the repetition penalty
 * is returned: the warpers do not change the argmax, and Hugging Face skips them at greedy too.
 */
export function createLogitsProcessors(options: SamplingOptions = {}): LogitsProcessor[] {
  return processorsFor(resolveSamplingOptions({ ...options, seed: options.seed ?? 0 }));
}

function processorsFor(resolved: ResolvedSamplingOptions): LogitsProcessor[] {
  const processors: LogitsProcessor[] = [];
  if (resolved.repetitionPenalty !== 1) processors.push(createRepetitionPenaltyProcessor(resolved.repetitionPenalty));
  if (resolved.temperature === 0) return processors;
  if (resolved.temperature !== 1) processors.push(createTemperatureProcessor(resolved.temperature));
  if (Number.isFinite(resolved.topK)) processors.push(createTopKProcessor(resolved.topK));
  if (resolved.topP < 1) processors.push(createTopPProcessor(resolved.topP));
  if (resolved.minP > 0) processors.push(createMinPProcessor(resolved.minP));
  return processors;
}

/** Extra parts of a sampler beyond {@link SamplingOptions}. */
export interface SamplerParts {
  /** Random source; default `createRng(options.seed)`. */
  readonly rng?: Rng;
  /** Processors run after the built-in ones (custom biasing, grammar masks, ...). */
  readonly processors?: readonly LogitsProcessor[];
}

/** A {@link Sampler} that also exposes its settings and processors. */
export interface ConfiguredSampler extends Sampler {
  /** The resolved options (the seed actually used included). */
  readonly options: ResolvedSamplingOptions;
  /** The processors applied to every row of logits, in order. */
  readonly processors: readonly LogitsProcessor[];
  /** Writes the processed logits (before softmax) of `logits` into `out`. */
  processLogits(logits: Float32Array, history: TokenHistory, out: Float32Array): void;
}

class DefaultSampler implements ConfiguredSampler {
  readonly greedy: boolean;
  private scratchLogits = new Float32Array(0);
  private scratchProbs = new Float32Array(0);

  constructor(
    readonly options: ResolvedSamplingOptions,
    readonly processors: readonly LogitsProcessor[],
    private readonly rng: Rng,
  ) {
    this.greedy = options.temperature === 0;
  }

  processLogits(logits: Float32Array, history: TokenHistory, out: Float32Array): void {
    checkOut(out, logits.length);
    const row = out.length === logits.length ? out : out.subarray(0, logits.length);
    row.set(logits);
    applyLogitsProcessors(this.processors, row, history);
  }

  private processed(logits: Float32Array, history: TokenHistory): Float32Array {
    if (this.scratchLogits.length !== logits.length) this.scratchLogits = new Float32Array(logits.length);
    const row = this.scratchLogits;
    row.set(logits);
    applyLogitsProcessors(this.processors, row, history);
    return row;
  }

  distribution(logits: Float32Array, history: TokenHistory, out: Float32Array): void {
    checkOut(out, logits.length);
    const vocab = logits.length;
    if (this.greedy) {
      const row = this.processors.length === 0 ? logits : this.processed(logits, history);
      out.fill(0, 0, vocab);
      out[argmax(row)] = 1;
      return;
    }
    const row = this.processed(logits, history);
    softmax(row, out, 0, vocab);
  }

  draw(probs: Float32Array): number {
    let total = 0;
    let last = -1;
    for (let i = 0; i < probs.length; i++) {
      const value = probs[i]!;
      if (value > 0) {
        total += value;
        last = i;
      }
    }
    if (!(total > 0) || !Number.isFinite(total)) {
      throw new InvalidArgumentError('probs', `Cannot draw from a distribution with total mass ${total}.`, {
        fix: 'pass non-negative, finite probabilities with at least one positive entry.',
      });
    }
    const target = this.rng.nextFloat() * total;
    let sum = 0;
    for (let i = 0; i < probs.length; i++) {
      const value = probs[i]!;
      if (value > 0) {
        sum += value;
        if (target < sum) return i;
      }
    }
    return last;
  }

  pick(logits: Float32Array, history: TokenHistory): number {
    if (this.greedy) {
      return argmax(this.processors.length === 0 ? logits : this.processed(logits, history));
    }
    if (this.scratchProbs.length !== logits.length) this.scratchProbs = new Float32Array(logits.length);
    this.distribution(logits, history, this.scratchProbs);
    return this.draw(this.scratchProbs);
  }
}

function checkOut(out: Float32Array, vocab: number): void {
  if (out.length < vocab) {
    throw new InvalidArgumentError('out', `The output buffer holds ${out.length} values but the logits have ${vocab}.`, {
      fix: 'pass a Float32Array with at least one entry per vocabulary token.',
    });
  }
}

/**
 * Creates the sampler for `options`: greedy (argmax of the processed logits) when temperature is
 * 0 or omitted, otherwise a draw from `softmax(processors(logits))`. Every distribution the
 * verifier forms goes through the same processors, so speculative sampling is lossless for every
 * setting. `distribution`, `draw` and `pick` allocate nothing after the first call.
 *
 * @throws InvalidArgumentError when an option is out of range (the error names it and the fix).
 * @example
 * const sampler = createSampler({ temperature: 0.8, topP: 0.95, seed: 1 });
 * const token = sampler.pick(logits, { tokens: history, length: historyLength });
 */
export function createSampler(options: SamplingOptions = {}, parts: SamplerParts = {}): ConfiguredSampler {
  const resolved = resolveSamplingOptions(options);
  const processors = [...processorsFor(resolved), ...(parts.processors ?? [])];
  return new DefaultSampler(resolved, processors, parts.rng ?? createRng(resolved.seed));
}
