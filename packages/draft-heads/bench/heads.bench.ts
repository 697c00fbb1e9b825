/**
 * Cost of one draft round's head calls at the default target's sizes (py-llama-28m: H=384,
 * FFN 1024, 6/2 heads of 64, vocabulary 8192) with random weights on the CPU backend.
 * Run with `pnpm --filter @gumiho/draft-heads bench` (vitest bench prints the table);
 * `GUMIHO_BENCH_BACKEND=ort` runs the programs on ONNX Runtime (CPU provider) instead.
 */
import { bench, describe } from 'vitest';
import { ROOT_HANDLE, type ModelConfig } from '@gumiho/core';
import { createCpuBackend } from '@gumiho/backend-cpu';
import { createOrtBackend } from '@gumiho/backend-ort';
import { MapWeightStore } from '@gumiho/safetensors';
import { createGumihoHead, createLookupHead, createMedusaHead, draftHeadsConfigFor, randomDraftHeadWeights, type DraftTarget } from '../src/index.js';

const config: ModelConfig = {
  modelType: 'llama', vocabSize: 8192, hiddenSize: 384, intermediateSize: 1024, numLayers: 16, numHeads: 6, numKvHeads: 2,
  headDim: 64, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 2048, tieWordEmbeddings: true, bosTokenId: 0, eosTokenIds: [0],
};
const H = config.hiddenSize;
const random = (n: number, seed: number) => {
  const data = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 4294967296 - 0.5) * 0.2;
  }
  return data;
};
const weights = new MapWeightStore([['embed', { dtype: 'float32', shape: [8192, H], data: random(8192 * H, 1) }]]);
const backend = process.env.GUMIHO_BENCH_BACKEND === 'ort' ? await createOrtBackend() : createCpuBackend();
console.log(`backend: ${backend.id}`);
const target: DraftTarget = { backend, weights, config, embeddingWeight: 'embed', lmHeadWeight: 'embed', cache: { spec: { capacity: 2048 } } };
const gumihoConfig = draftHeadsConfigFor('gumiho', target);
const gumiho = createGumihoHead({ target, weights: randomDraftHeadWeights('gumiho', gumihoConfig, 2), config: gumihoConfig });
const medusaConfig = draftHeadsConfigFor('medusa', target, { mlpHeads: 5 });
const medusa = createMedusaHead({ target, weights: randomDraftHeadWeights('medusa', medusaConfig, 3), config: medusaConfig });

const promptLength = 256;
const hidden = random(promptLength * H, 4).map((v) => v * 20);
const tokens = Int32Array.from({ length: promptLength }, (_, i) => (i * 37) % 8192);
await gumiho.observe({ hidden, tokens, context: tokens, topK: 6 });

for (const width of [6, 14]) {
  describe(`gumiho round, ${width} nodes per level`, () => {
    bench(`observe 3 new pairs (after ${promptLength} committed)`, async () => {
      gumiho.serial.cache.truncate(promptLength);
      await gumiho.observe({ hidden: hidden.subarray(0, 3 * H), tokens: tokens.subarray(0, 3), context: tokens, topK: width });
    });
    bench(`expand ${width} level-1 nodes (serial level 2)`, async () => {
      gumiho.endRound();
      await gumiho.expand({ parents: new Int32Array(width).fill(ROOT_HANDLE), tokens: tokens.subarray(0, width), topK: width });
    });
    bench(`parallel: 5 MLP heads x ${width} branches`, async () => {
      gumiho.endRound();
      const level1 = await gumiho.expand({ parents: Int32Array.of(ROOT_HANDLE), tokens: Int32Array.of(5), topK: 1 });
      const handles = new Int32Array(width).fill(level1.handles[0]!);
      await gumiho.parallel({ first: handles, parents: handles, tokens: tokens.subarray(0, width), topK: 35 });
    });
  });
}

describe('other heads', () => {
  bench('medusa observe (5 heads, 1 block)', async () => {
    await medusa.observe({ hidden: hidden.subarray(0, H), tokens: tokens.subarray(0, 1), context: tokens, topK: 10 });
  });
  const lookup = createLookupHead();
  const context = Int32Array.from({ length: 1024 }, (_, i) => (i * 7919) % 97);
  bench('lookup observe + expand 24 nodes (1024-token context)', async () => {
    await lookup.observe({ hidden: new Float32Array(0), tokens: context.subarray(1023), context, topK: 4 });
    await lookup.expand({ parents: new Int32Array(24), tokens: Int32Array.from({ length: 24 }, (_, i) => i), topK: 4 });
  });
});
