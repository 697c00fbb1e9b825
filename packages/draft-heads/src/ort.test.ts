/**
 * The heads' programs on the ONNX Runtime backend, which traces each program once with symbolic
 * shapes: a full Gumiho round and a Medusa round must give the same candidates as on the eager
 * CPU backend, across calls with different row and key counts (one traced graph per program).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, ROOT_HANDLE, type Candidates, type TensorBackend } from '@gumiho/core';
import { createOrtBackend } from '@gumiho/backend-ort';
import { draftHeadsConfigFor } from './config.js';
import { createGumihoHead, createMedusaHead, type DraftTarget } from './heads.js';
import { randomHidden, tinyTarget } from './test-utils.js';
import { randomDraftHeadWeights } from './weights.js';

let ort: TensorBackend | undefined;
let unavailable = '';

beforeAll(async () => {
  try {
    ort = await createOrtBackend({ threads: 1 });
  } catch (error) {
    if (!(error instanceof BackendUnavailableError)) throw error;
    unavailable = error.message;
  }
});
afterAll(() => ort?.dispose());

const cpuTarget = tinyTarget();
const H = cpuTarget.config.hiddenSize;

function expectSame(a: Candidates, b: Candidates): void {
  expect(b.rows).toBe(a.rows);
  for (let i = 0; i < a.tokens.length; i++) {
    expect(Math.abs(a.logProbs[i]! - b.logProbs[i]!)).toBeLessThan(1e-4);
    // Tokens agree unless two candidates are within float noise of each other.
    if (a.tokens[i] !== b.tokens[i]) expect(Math.abs(a.logProbs[i]! - b.logProbs[i]!)).toBeLessThan(1e-5);
  }
}

async function gumihoRound(target: DraftTarget) {
  const config = draftHeadsConfigFor('gumiho', target, { mlpHeads: 3, mlpBlocks: 3 });
  const head = createGumihoHead({ target, weights: randomDraftHeadWeights('gumiho', config, 17), config });
  const results: Candidates[] = [];
  const hidden = randomHidden(12, H, 3);
  const tokens = Int32Array.from({ length: 12 }, (_, i) => (i * 11 + 3) % 64);
  // Two rounds with different row counts: prompt, then 3 accepted pairs.
  for (const [from, to] of [[0, 9], [9, 12]] as const) {
    const root = await head.observe({ hidden: hidden.subarray(from * H, to * H), tokens: tokens.subarray(from, to), context: tokens.subarray(0, to), topK: 4 });
    results.push(root.candidates);
    const level1 = await head.expand({ parents: new Int32Array(3).fill(ROOT_HANDLE), tokens: root.candidates.tokens.subarray(0, 3), topK: 4, maskMode: from === 0 ? 'tree' : 'causal' });
    results.push(level1.candidates);
    const level2 = await head.expand({ parents: Int32Array.of(level1.handles[2]!, level1.handles[0]!), tokens: Int32Array.of(7, 8), topK: 4 });
    results.push(level2.candidates);
    const parallel = await head.parallel({ first: Int32Array.of(level1.handles[0]!, level1.handles[1]!), parents: Int32Array.of(level1.handles[2]!, level1.handles[0]!), tokens: Int32Array.of(9, 10), topK: 5 });
    results.push(...parallel.heads);
    head.endRound();
  }
  head.dispose();
  return results;
}

describe('heads on the ONNX Runtime backend', () => {
  it('a Gumiho round (observe, tree and causal expand, parallel) matches the CPU backend', async (context) => {
    if (!ort) return context.skip(`onnxruntime-node unavailable: ${unavailable}`);
    const cpu = await gumihoRound(cpuTarget);
    const traced = await gumihoRound({ ...cpuTarget, backend: ort });
    expect(traced).toHaveLength(cpu.length);
    cpu.forEach((candidates, i) => expectSame(candidates, traced[i]!));
  });

  it('Medusa heads match the CPU backend', async (context) => {
    if (!ort) return context.skip(`onnxruntime-node unavailable: ${unavailable}`);
    const run = async (target: DraftTarget) => {
      const config = draftHeadsConfigFor('medusa', target, { mlpHeads: 2, mlpBlocks: 2 });
      const head = createMedusaHead({ target, weights: randomDraftHeadWeights('medusa', config, 4), config });
      const hidden = randomHidden(3, H, 9);
      const root = await head.observe({ hidden, tokens: Int32Array.of(1, 2, 3), context: Int32Array.of(1, 2, 3), topK: 5 });
      return [root.candidates, ...(await head.parallel({ topK: 5 })).heads];
    };
    const cpu = await run(cpuTarget);
    const traced = await run({ ...cpuTarget, backend: ort });
    cpu.forEach((candidates, i) => expectSame(candidates, traced[i]!));
  });
});
