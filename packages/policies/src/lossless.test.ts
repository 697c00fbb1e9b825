/**
 * End-to-end losslessness of every policy on a tiny random Llama, through the real loop, target,
 * heads, tree builders, verifier and sampler on the CPU backend:
 * - T = 0: token-for-token the vanilla greedy output over hundreds of tokens, with FTA `off` and
 *   `exact`, on several random prompts;
 * - T = 1 (and with top-k / top-p): the distribution of the second generated token (the first one
 *   that can come from a draft) matches the target's exact distribution, by a chi-square test at
 *   significance 0.001.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCpuBackend } from '@gumiho/backend-cpu';
import { createSpeculativeDecoder, type DraftPolicy, type SamplingOptions, type TargetModel } from '@gumiho/core';
import { draftHeadsConfigFor, randomDraftHeadWeights, writeDraftHeads } from '@gumiho/draft-heads';
import { createLlamaTarget, writeRandomLlama } from '@gumiho/models';
import { createSampler } from '@gumiho/samplers';
import { createVerifier } from '@gumiho/verify';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPolicy, type PolicyKnobs, type PolicyName } from './policies.js';

const VOCAB = 48;
let target: TargetModel;
const headsDirs: Record<'gumiho' | 'eagle2' | 'medusa', string> = { gumiho: '', eagle2: '', medusa: '' };

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lossless-'));
  await writeRandomLlama(join(dir, 'target'), {
    vocabSize: VOCAB,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    maxPositions: 1024,
    seed: 11,
  });
  target = await createLlamaTarget({ backend: createCpuBackend(), folder: join(dir, 'target') });
  for (const kind of ['gumiho', 'eagle2', 'medusa'] as const) {
    const config = draftHeadsConfigFor(kind, target, kind === 'medusa' ? { mlpHeads: 5, mlpBlocks: 1 } : {});
    headsDirs[kind] = join(dir, kind);
    await writeDraftHeads(headsDirs[kind], config, randomDraftHeadWeights(kind, config, 3));
  }
});

async function policyFor(name: PolicyName, knobs: PolicyKnobs): Promise<DraftPolicy | undefined> {
  const headsDir = name === 'gumiho' || name === 'eagle2' || name === 'medusa' ? headsDirs[name] : undefined;
  return createPolicy(name, { target, ...(headsDir ? { headsDir } : {}), knobs });
}

async function generate(policy: DraftPolicy | undefined, prompt: Int32Array, maxNewTokens: number, sampling: SamplingOptions = {}) {
  const decoder = createSpeculativeDecoder({ target, policy, verifier: createVerifier(), sampler: createSampler(sampling) });
  return decoder.generate({ prompt, maxNewTokens });
}

const cases: Array<[PolicyName, PolicyKnobs]> = [
  ['lookup', {}],
  ['medusa', { totalTokens: 12 }],
  ['eagle2', { totalTokens: 16, topKDraft: 3, depth: 4 }],
  ['gumiho', { totalTokens: 20, topKDraft: 3, mlpTopK: 3, pruning: 3, fta: 'off' }],
  ['gumiho', { totalTokens: 20, topKDraft: 3, mlpTopK: 3, pruning: 3, fta: 'exact' }],
  ['gumiho', { totalTokens: 20, topKDraft: 3, mlpTopK: 3, pruning: 3, fta: 'exact', q1CausalSiblings: true, q2MisalignedMlpToken: true }],
];

describe('greedy speculative decoding equals vanilla greedy', () => {
  const random = seeded(5);
  const prompts = [0, 1, 2].map((p) => Int32Array.from({ length: 5 + p * 9 }, () => 1 + Math.floor(random() * (VOCAB - 1))));
  // A repetitive prompt, where lookup and lucky drafts get accepted.
  prompts.push(Int32Array.from({ length: 24 }, (_, i) => 1 + ((i * 5) % 7)));
  let vanilla: Int32Array[] = [];

  beforeAll(async () => {
    vanilla = [];
    for (const prompt of prompts) vanilla.push((await generate(undefined, prompt, 200)).tokenIds);
  });

  it.each(cases)('%s %j', async (name, knobs) => {
    const policy = await policyFor(name, knobs);
    let accepted = 0;
    for (let p = 0; p < prompts.length; p++) {
      const result = await generate(policy, prompts[p]!, 200);
      expect(Array.from(result.tokenIds)).toEqual(Array.from(vanilla[p]!));
      accepted += result.stats.newTokens - result.stats.rounds;
      expect(result.stats.rounds).toBeLessThanOrEqual(200);
    }
    // Drafts must get accepted (random models fall into repeats), or the test proves little.
    expect(accepted).toBeGreaterThan(5);
  });
});

/** Exact distribution of the second generated token at temperature 1 with optional top-k / top-p. */
async function secondTokenDistribution(prompt: Int32Array, sampling: SamplingOptions): Promise<Float64Array> {
  const sampler = createSampler({ ...sampling, seed: 1 });
  const history = new Int32Array(prompt.length + 2);
  history.set(prompt);
  const probs = new Float32Array(VOCAB);
  const positions = Int32Array.from(prompt, (_, i) => i);
  target.cache.reset();
  const first = await target.forward({ tokenIds: prompt, positions });
  target.cache.commit();
  sampler.distribution(first.logits, { tokens: history, length: prompt.length }, probs);
  const p1 = Float64Array.from(probs);
  const out = new Float64Array(VOCAB);
  for (let t1 = 0; t1 < VOCAB; t1++) {
    if (p1[t1]! === 0) continue;
    const step = await target.forward({ tokenIds: Int32Array.of(t1), positions: Int32Array.of(prompt.length) });
    target.cache.rollback();
    history[prompt.length] = t1;
    sampler.distribution(step.logits, { tokens: history, length: prompt.length + 1 }, probs);
    for (let t2 = 0; t2 < VOCAB; t2++) out[t2]! += p1[t1]! * probs[t2]!;
  }
  target.cache.reset();
  return out;
}

function chiSquare(counts: number[], expected: Float64Array, total: number): { statistic: number; dof: number } {
  // Pool cells with an expected count under 5.
  let statistic = 0;
  let dof = -1;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = expected[i]! * total;
    if (e < 5) {
      pooledObserved += counts[i]!;
      pooledExpected += e;
      continue;
    }
    statistic += (counts[i]! - e) ** 2 / e;
    dof++;
  }
  if (pooledExpected > 0) {
    statistic += (pooledObserved - pooledExpected) ** 2 / Math.max(pooledExpected, 1e-9);
    dof++;
  }
  return { statistic, dof };
}

/** Upper 0.001 critical value of chi-square (Wilson-Hilferty approximation). */
function critical001(dof: number): number {
  const z = 3.0902;
  const a = 2 / (9 * dof);
  return dof * (1 - a + z * Math.sqrt(a)) ** 3;
}

describe('speculative sampling draws from the target distribution', () => {
  const prompt = Int32Array.of(3, 9, 4, 17, 3, 9, 4);
  const settings: Array<[string, SamplingOptions]> = [
    ['T=1', { temperature: 1 }],
    ['T=0.7 top-k 8 top-p 0.9', { temperature: 0.7, topK: 8, topP: 0.9 }],
  ];
  it.each(settings)('%s', async (_label, sampling) => {
    const expected = await secondTokenDistribution(prompt, sampling);
    expect(expected.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    for (const [name, knobs] of [cases[3]!, cases[2]!, cases[1]!] as Array<[PolicyName, PolicyKnobs]>) {
      const policy = await policyFor(name, knobs);
      const runs = 1500;
      const counts = new Array<number>(VOCAB).fill(0);
      let fromDraft = 0;
      for (let run = 0; run < runs; run++) {
        const seededDecoder = createSpeculativeDecoder({ target, policy, verifier: createVerifier(), sampler: createSampler({ ...sampling, seed: 1000 + run }) });
        const stream = seededDecoder.stream({ prompt, maxNewTokens: 2 });
        const tokens: Array<{ token: number; source: string }> = [];
        for await (const event of stream) tokens.push(event);
        counts[tokens[1]!.token]!++;
        if (tokens[1]!.source === 'draft') fromDraft++;
      }
      const { statistic, dof } = chiSquare(counts, expected, runs);
      expect(statistic, `${name}: chi-square ${statistic.toFixed(1)} with ${dof} dof`).toBeLessThan(critical001(dof));
      // The test must exercise acceptance, not only the bonus path.
      expect(fromDraft, `${name}: drafts accepted`).toBeGreaterThan(runs * 0.02);
    }
  });
});

