/**
 * Host-side overhead per decoding round at the default model's vocabulary (V = 8192): sampler,
 * tree builders (with a draft head that returns precomputed candidates, so only the builder's own
 * work is timed) and verification of a 64-node tree. Run: `pnpm --filter @gumiho/verify bench`.
 */
import { ROOT_HANDLE, type Candidates, type DraftHead, type DraftTree } from '@gumiho/core';
import { createSampler } from '@gumiho/samplers';
import { createDynamicTreeBuilder, createGumihoTreeBuilder } from '@gumiho/tree';
import { bench, describe } from 'vitest';
import { createVerifier } from '../src/index.js';

const V = 8192;
let seed = 1;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
const logitsRow = Float32Array.from({ length: V }, () => random() * 8);
const history = { tokens: new Int32Array(4096), length: 512 };
for (let i = 0; i < 512; i++) history.tokens[i] = Math.floor(random() * V);

/** Candidates with random distinct-enough tokens and sorted log-probs, computed once per shape. */
const cache = new Map<string, Candidates>();
function candidates(rows: number, k: number): Candidates {
  const key = `${rows}x${k}`;
  let value = cache.get(key);
  if (!value) {
    const tokens = Int32Array.from({ length: rows * k }, () => Math.floor(random() * V));
    const logProbs = new Float32Array(rows * k);
    for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) logProbs[r * k + c] = -0.3 * c - random() * 0.2 - 0.1;
    value = { rows, k, tokens, logProbs };
    cache.set(key, value);
  }
  return value;
}

const head: DraftHead = {
  specificationVersion: 'v1',
  id: 'precomputed',
  info: { serialDepth: 2, parallelHeads: 5, parallelBranchDepth: 2 },
  reset() {},
  async observe(options) {
    return { handles: Int32Array.of(ROOT_HANDLE), candidates: candidates(1, options.topK) };
  },
  async expand(options) {
    return { handles: Int32Array.from(options.tokens, (_, i) => i + 1), candidates: candidates(options.tokens.length, options.topK) };
  },
  async parallel(options) {
    const rows = options.tokens?.length ?? 1;
    return { heads: Array.from({ length: 5 }, () => candidates(rows, options.topK)) };
  },
  endRound() {},
  dispose() {},
};
const serialHead: DraftHead = { ...head, info: { serialDepth: Infinity, parallelHeads: 0, parallelBranchDepth: 0 } };
const buildOptions = { head, root: 1, hidden: new Float32Array(384), tokens: Int32Array.of(1), context: Int32Array.of(1), maxSize: 64 };

describe('sampler.pick, V = 8192', () => {
  const greedy = createSampler();
  const plain = createSampler({ temperature: 1, seed: 1 });
  const full = createSampler({ temperature: 0.8, topK: 50, topP: 0.95, repetitionPenalty: 1.1, seed: 1 });
  bench('greedy', () => void greedy.pick(logitsRow, history));
  bench('temperature 1', () => void plain.pick(logitsRow, history));
  bench('T 0.8 + top-k 50 + top-p 0.95 + repetition 1.1', () => void full.pick(logitsRow, history));
});

describe('tree builders (precomputed head)', () => {
  const gumiho = createGumihoTreeBuilder();
  const gumihoExact = createGumihoTreeBuilder({ fta: 'exact' });
  const gumihoOfficial = createGumihoTreeBuilder({ fta: 'official' });
  const eagle2 = createDynamicTreeBuilder({ topK: 10, depth: 5, totalTokens: 60 });
  bench('gumiho 14/35/35/64, fta off', async () => void (await gumiho.build(buildOptions)));
  bench('gumiho 14/35/35/64, fta exact', async () => void (await gumihoExact.build(buildOptions)));
  bench('gumiho 14/35/35/64, fta official', async () => void (await gumihoOfficial.build(buildOptions)));
  bench('eagle2 10/5/60', async () => void (await eagle2.build({ ...buildOptions, head: serialHead })));
});

describe('verify a 64-node Gumiho tree, V = 8192', async () => {
  const tree: DraftTree = await createGumihoTreeBuilder().build(buildOptions);
  const logits = new Float32Array(tree.size * V);
  for (let i = 0; i < logits.length; i++) logits[i] = random() * 8;
  const verifier = createVerifier();
  const greedy = createSampler();
  const sampling = createSampler({ temperature: 1, seed: 3 });
  const full = createSampler({ temperature: 0.8, topK: 50, topP: 0.95, seed: 3 });
  bench('greedy', () => void verifier.verify({ tree, logits, vocabSize: V, sampler: greedy, history }));
  bench('sampling T 1', () => void verifier.verify({ tree, logits, vocabSize: V, sampler: sampling, history }));
  bench('sampling T 0.8 + top-k + top-p', () => void verifier.verify({ tree, logits, vocabSize: V, sampler: full, history }));
});
