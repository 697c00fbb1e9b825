/**
 * Losslessness at T > 0: speculative rounds on random trees must emit tokens with exactly the law
 * of plain sequential sampling from the target. A random "target" gives logits as a hash of the
 * token prefix (V = 6); each round drafts a random tree (distinct sibling tokens), verifies it, and
 * appends the accepted tokens and the bonus token. The joint law of the first 3 emitted tokens is
 * compared with the exact product of the target's processed conditionals by a chi-square test at
 * significance 0.001 (cells with expected count < 5 pooled; critical value by Wilson-Hilferty).
 * Seeds are fixed, so the test is deterministic.
 */
import type { SamplingOptions, Sampler } from '@gumiho/core';
import { createSampler } from '@gumiho/samplers';
import { createDraftTree } from '@gumiho/tree';
import { describe, expect, it } from 'vitest';
import { createVerifier, emittedTokens } from './index.js';

const V = 6;
const N_TOKENS = 3;
const SAMPLES = 24_000;
const PROMPT = [2, 5, 1];

function hash(values: readonly number[], salt: number): number {
  let h = 0x811c9dc5 ^ salt;
  for (const v of values) {
    h = Math.imul(h ^ (v + 0x9e37), 0x01000193);
    // murmur3 finalizer: every input bit reaches every output bit.
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** The random target: logits after `prefix`. */
function targetLogits(prefix: readonly number[]): Float32Array {
  const logits = new Float32Array(V);
  for (let v = 0; v < V; v++) logits[v] = ((hash([...prefix, v], 17) / 4294967296) * 2 - 1) * 2.5;
  return logits;
}

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/**
 * A random tree below the last token of `sequence`, up to 12 nodes, 0-3 distinct children per
 * node. Children are drawn (without replacement) from a flattened copy of the target's own
 * distribution at the node, as a decent drafter would propose them, so acceptances and rejections
 * are both frequent.
 */
function randomTree(random: () => number, sequence: readonly number[]) {
  const maxSize = 1 + Math.floor(random() * 12);
  const tokens = [sequence.at(-1)!];
  const parents = [-1];
  const paths: number[][] = [[]];
  for (let node = 0; node < tokens.length && tokens.length < maxSize; node++) {
    const children = Math.floor(random() * 4);
    const weights = Array.from(targetLogits([...sequence, ...paths[node]!]), (l) => Math.exp(l / 2));
    for (let c = 0; c < children && tokens.length < maxSize; c++) {
      const total = weights.reduce((a, b) => a + b, 0);
      let u = random() * total;
      let token = 0;
      while (token < V - 1 && (u -= weights[token]!) >= 0) token++;
      while (weights[token] === 0) token = (token + 1) % V;
      weights[token] = 0;
      tokens.push(token);
      parents.push(node);
      paths.push([...paths[node]!, token]);
    }
  }
  return createDraftTree({ tokens, parents });
}

/** Runs speculative rounds until `N_TOKENS` tokens are emitted; returns them and the accepted drafts. */
function speculative(sampler: Sampler, random: () => number): { tokens: number[]; accepted: number } {
  const verifier = createVerifier();
  const sequence = [...PROMPT];
  // The root: sampled from the target after the prompt, like the decoder's prefill.
  const history = new Int32Array(64);
  history.set(sequence);
  const first = sampler.pick(targetLogits(sequence), { tokens: history, length: sequence.length });
  sequence.push(first);
  const emitted = [first];
  let accepted = 0;
  while (emitted.length < N_TOKENS) {
    const tree = randomTree(random, sequence);
    const logits = new Float32Array(tree.size * V);
    for (let node = 0; node < tree.size; node++) {
      const path: number[] = [];
      for (let n = node; n > 0; n = tree.parents[n]!) path.unshift(tree.tokens[n]!);
      logits.set(targetLogits([...sequence, ...path]), node * V);
    }
    history.set(sequence);
    const result = verifier.verify({ tree, logits, vocabSize: V, sampler, history: { tokens: history, length: sequence.length } });
    accepted += result.acceptedLength;
    for (const token of emittedTokens(tree, result)) {
      sequence.push(token);
      emitted.push(token);
    }
  }
  return { tokens: emitted.slice(0, N_TOKENS), accepted };
}

/** Exact law of the first `N_TOKENS` tokens of plain sequential sampling, per joint outcome. */
function sequentialLaw(options: SamplingOptions): Float64Array {
  const reference = createSampler({ ...options, seed: 0 });
  const law = new Float64Array(V ** N_TOKENS);
  const probs = new Float32Array(V);
  const history = new Int32Array(64);
  const visit = (prefix: number[], probability: number): void => {
    if (prefix.length === N_TOKENS) {
      law[prefix.reduce((index, t) => index * V + t, 0)]! += probability;
      return;
    }
    const sequence = [...PROMPT, ...prefix];
    history.set(sequence);
    reference.distribution(targetLogits(sequence), { tokens: history, length: sequence.length }, probs);
    const step = Float64Array.from(probs);
    for (let t = 0; t < V; t++) if (step[t]! > 0) visit([...prefix, t], probability * step[t]!);
  };
  visit([], 1);
  return law;
}

/** Pearson chi-square of `counts` against `law` (cells with expected < 5 pooled). */
function chiSquare(counts: Float64Array, law: Float64Array, n: number): { statistic: number; df: number; impossible: number } {
  let statistic = 0;
  let cells = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  let impossible = 0;
  for (let i = 0; i < law.length; i++) {
    const expected = law[i]! * n;
    if (law[i] === 0) {
      impossible += counts[i]!;
      continue;
    }
    if (expected < 5) {
      pooledObserved += counts[i]!;
      pooledExpected += expected;
      continue;
    }
    statistic += (counts[i]! - expected) ** 2 / expected;
    cells++;
  }
  if (pooledExpected > 0) {
    statistic += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    cells++;
  }
  return { statistic, df: cells - 1, impossible };
}

/** Upper 0.001 quantile of chi-square with `df` degrees of freedom (Wilson-Hilferty). */
function critical001(df: number): number {
  const z = 3.0902;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

const settings: [string, SamplingOptions][] = [
  ['temperature 1', { temperature: 1 }],
  ['temperature 0.7, top-k 3', { temperature: 0.7, topK: 3 }],
  ['temperature 1.2, top-p 0.8, repetition penalty 1.5', { temperature: 1.2, topP: 0.8, repetitionPenalty: 1.5 }],
  ['min-p 0.3, repetition penalty 0.8', { temperature: 1, minP: 0.3, repetitionPenalty: 0.8 }],
];

describe('multi-candidate rejection sampling is lossless', () => {
  it.each(settings)('%s: first 3 tokens follow the sequential law (chi-square, alpha 0.001)', (_, options) => {
    const sampler = createSampler({ ...options, seed: 2024 });
    const random = lcg(77);
    const counts = new Float64Array(V ** N_TOKENS);
    let accepted = 0;
    for (let s = 0; s < SAMPLES; s++) {
      const run = speculative(sampler, random);
      counts[run.tokens.reduce((index, t) => index * V + t, 0)]! += 1;
      accepted += run.accepted;
    }
    const law = sequentialLaw(options);
    const { statistic, df, impossible } = chiSquare(counts, law, SAMPLES);
    expect(impossible).toBe(0);
    expect(df).toBeGreaterThanOrEqual(8);
    expect(statistic).toBeLessThan(critical001(df));
    // The trees were really used: drafts were accepted in a good share of the runs.
    expect(accepted / SAMPLES).toBeGreaterThan(0.3);
  });

  it('has the power to see a wrong law (same runs against the law without top-k)', () => {
    const options = { temperature: 0.7, topK: 3 };
    const sampler = createSampler({ ...options, seed: 2024 });
    const random = lcg(77);
    const counts = new Float64Array(V ** N_TOKENS);
    for (let s = 0; s < 6_000; s++) counts[speculative(sampler, random).tokens.reduce((i, t) => i * V + t, 0)]! += 1;
    const wrong = sequentialLaw({ temperature: 0.7 });
    const { statistic, df } = chiSquare(counts, wrong, 6_000);
    expect(statistic).toBeGreaterThan(critical001(df));
  });
});
