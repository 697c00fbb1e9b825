/**
 * @packageDocumentation
 * `@gumiho/samplers`: the default {@link Sampler} (`createSampler`), the logits processors it
 * composes (repetition penalty, temperature, top-k, top-p, min-p, in Hugging Face's order) and a
 * seeded RNG (`createRng`, xoshiro128**).
 */
export type { LogitsProcessor, Rng, Sampler, SamplingOptions, TokenHistory } from '@gumiho/core';
export {
  applyLogitsProcessors,
  createMinPProcessor,
  createRepetitionPenaltyProcessor,
  createTemperatureProcessor,
  createTopKProcessor,
  createTopPProcessor,
} from './processors.js';
export { createRng, randomSeed, validateSeed } from './rng.js';
export type { SeededRng } from './rng.js';
export { createLogitsProcessors, createSampler, resolveSamplingOptions } from './sampler.js';
export type { ConfiguredSampler, ResolvedSamplingOptions, SamplerParts } from './sampler.js';
