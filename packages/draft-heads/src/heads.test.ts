import { describe, expect, it } from 'vitest';
import { GumihoError, InvalidArgumentError, ROOT_HANDLE, type Candidates } from '@gumiho/core';
import { draftHeadsConfigFor, type DraftHeadsConfig } from './config.js';
import { createEagleHead, createGumihoHead, createMedusaHead, type SerialDraftHead } from './heads.js';
import {
  logSoftmax64,
  randomHidden,
  referenceFc,
  referenceGumihoMlp,
  referenceMedusa,
  referenceSerial,
  tinyTarget,
  topIndices,
  type ReferenceRow,
} from './test-utils.js';
import { randomDraftHeadWeights } from './weights.js';

const target = tinyTarget();
const H = target.config.hiddenSize;
const V = target.config.vocabSize;

function gumihoSetup(seed = 3, overrides: Partial<DraftHeadsConfig> = {}) {
  const config = draftHeadsConfigFor('gumiho', target, { mlpHeads: 3, mlpBlocks: 3, ...overrides });
  const weights = randomDraftHeadWeights('gumiho', config, seed);
  return { config, weights, head: createGumihoHead({ target, weights, config }) };
}

/** Committed context: prompt tokens and their (random) target hidden states, as the decoder pairs them. */
function context(length: number, seed: number) {
  const hidden = randomHidden(length, H, seed);
  const tokens = new Int32Array(length);
  for (let i = 0; i < length; i++) tokens[i] = (seed * 31 + i * 17) % V;
  return { hidden, tokens };
}

function contextRows(hidden: Float32Array, tokens: Int32Array): ReferenceRow[] {
  return Array.from(tokens, (token, p) => ({ feature: hidden.subarray(p * H, (p + 1) * H), token, position: p }));
}

/** Asserts that candidate row `row` is the top-k of `reference` logits (log-probs within `tolerance`). */
function expectCandidatesMatch(candidates: Candidates, row: number, reference: Float64Array, tolerance = 2e-4): void {
  const logProbs = logSoftmax64(reference);
  const k = candidates.k;
  const best = topIndices(logProbs, k);
  for (let j = 0; j < k; j++) {
    const token = candidates.tokens[row * k + j]!;
    // Near-ties may swap order; the log-prob of what was returned must match the reference and be
    // (within tolerance) as good as the reference's j-th best.
    expect(candidates.logProbs[row * k + j]!).toBeCloseTo(logProbs[token]!, 3);
    expect(Math.abs(logProbs[token]! - logProbs[best[j]!]!)).toBeLessThan(tolerance);
  }
}

describe('serial part (Gumiho / EAGLE-2)', () => {
  it('observe matches a float64 reference of fc + layers (layer 0 without input norm) + LM head', async () => {
    const { config, weights, head } = gumihoSetup();
    const { hidden, tokens } = context(9, 1);
    const result = await head.observe({ hidden, tokens, context: tokens, topK: 5 });
    expect(Array.from(result.handles)).toEqual([ROOT_HANDLE]);
    expect(result.candidates.rows).toBe(1);
    const reference = referenceSerial(config, weights, target, contextRows(hidden, tokens), (i, j) => j <= i);
    expectCandidatesMatch(result.candidates, 0, reference.logits[8]!);
    const out = head.serial.out(ROOT_HANDLE);
    for (let c = 0; c < H; c++) expect(out[c]!).toBeCloseTo(reference.out[8]![c]!, 4);
    const fused = head.serial.fused(ROOT_HANDLE);
    for (let c = 0; c < H; c++) expect(fused[c]!).toBeCloseTo(reference.fused[8]![c]!, 4);
    expect(head.serial.cache.length).toBe(9);
    expect(head.serial.cache.pending).toBe(0);
    expect(head.serial.position(ROOT_HANDLE)).toBe(8);
  });

  it('expand in tree mode: each node sees only its ancestors (equals a sequential from-scratch chain)', async () => {
    const { config, weights, head } = gumihoSetup();
    const { hidden, tokens } = context(7, 2);
    await head.observe({ hidden, tokens, context: tokens, topK: 4 });
    // Level 1: three siblings; level 2: children of siblings 2 and 0, interleaved.
    const level1 = await head.expand({ parents: Int32Array.of(0, 0, 0), tokens: Int32Array.of(5, 9, 13), topK: 4 });
    expect(Array.from(level1.handles)).toEqual([1, 2, 3]);
    const level2 = await head.expand({ parents: Int32Array.of(3, 1, 3), tokens: Int32Array.of(21, 22, 23), topK: 4 });
    expect(Array.from(level2.handles)).toEqual([4, 5, 6]);
    expect(head.serial.cache.pending).toBe(6);
    expect([1, 2, 3, 4, 5, 6].map((h) => head.serial.depth(h))).toEqual([1, 1, 1, 2, 2, 2]);
    expect([1, 2, 3, 4, 5, 6].map((h) => head.serial.position(h))).toEqual([7, 7, 7, 8, 8, 8]);
    expect([1, 2, 3, 4, 5, 6].map((h) => head.serial.parent(h))).toEqual([0, 0, 0, 3, 1, 3]);

    // Reference: the context followed by the node's own chain only, each chain row consuming its
    // parent's output state, at positions 7, 8.
    const base = contextRows(hidden, tokens);
    const chain = (path: number[]) => {
      let rows = base;
      let reference = referenceSerial(config, weights, target, rows, (i, j) => j <= i);
      for (const token of path) {
        rows = [...rows, { feature: reference.out[rows.length - 1]!, token, position: rows.length }];
        reference = referenceSerial(config, weights, target, rows, (i, j) => j <= i);
      }
      return reference.logits[rows.length - 1]!;
    };
    expectCandidatesMatch(level1.candidates, 0, chain([5]));
    expectCandidatesMatch(level1.candidates, 1, chain([9]));
    expectCandidatesMatch(level1.candidates, 2, chain([13]));
    expectCandidatesMatch(level2.candidates, 0, chain([13, 21]));
    expectCandidatesMatch(level2.candidates, 1, chain([5, 22]));
    expectCandidatesMatch(level2.candidates, 2, chain([13, 23]));

    // And the same head run as a plain chain (one node per call) gives the same numbers.
    const fresh = gumihoSetup().head;
    await fresh.observe({ hidden, tokens, context: tokens, topK: 4 });
    const a = await fresh.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(13), topK: 4 });
    const b = await fresh.expand({ parents: a.handles, tokens: Int32Array.of(23), topK: 4 });
    for (let j = 0; j < 4; j++) {
      expect(b.candidates.tokens[j]).toBe(level2.candidates.tokens[2 * 4 + j]);
      expect(b.candidates.logProbs[j]!).toBeCloseTo(level2.candidates.logProbs[2 * 4 + j]!, 5);
    }
  });

  it("expand in causal mode (Gumiho's quirk Q1): row j also sees earlier speculative rows", async () => {
    const { config, weights, head } = gumihoSetup();
    const { hidden, tokens } = context(6, 3);
    await head.observe({ hidden, tokens, context: tokens, topK: 3 });
    const rootOut = head.serial.out(ROOT_HANDLE).slice();
    const siblings = [4, 8, 15];
    const causal = await head.expand({ parents: Int32Array.of(0, 0, 0), tokens: Int32Array.from(siblings), topK: 3, maskMode: 'causal' });
    const rows = [...contextRows(hidden, tokens), ...siblings.map((token) => ({ feature: rootOut, token, position: 6 }))];
    const reference = referenceSerial(config, weights, target, rows, (i, j) => j <= i);
    for (let r = 0; r < 3; r++) expectCandidatesMatch(causal.candidates, r, reference.logits[6 + r]!);
    // Row 0 sees no sibling, so it equals tree mode; rows 1 and 2 differ from tree mode.
    head.endRound();
    const tree = await head.expand({ parents: Int32Array.of(0, 0, 0), tokens: Int32Array.from(siblings), topK: 3 });
    expect(tree.candidates.logProbs[0]!).toBeCloseTo(causal.candidates.logProbs[0]!, 5);
    const differs = [1, 2].some((r) => Math.abs(tree.candidates.logProbs[r * 3]! - causal.candidates.logProbs[r * 3]!) > 1e-6);
    expect(differs).toBe(true);
  });

  it('endRound rolls the draft cache back; observing over several rounds equals one observe', async () => {
    const { head } = gumihoSetup();
    const { hidden, tokens } = context(10, 4);
    await head.observe({ hidden: hidden.subarray(0, 4 * H), tokens: tokens.subarray(0, 4), context: tokens.subarray(0, 4), topK: 3 });
    await head.expand({ parents: Int32Array.of(0, 0), tokens: Int32Array.of(1, 2), topK: 3 });
    await head.expand({ parents: Int32Array.of(1), tokens: Int32Array.of(3), topK: 3 });
    expect(head.serial.cache.pending).toBe(3);
    head.endRound();
    expect(head.serial.cache.pending).toBe(0);
    expect(head.serial.cache.length).toBe(4);
    expect(() => head.serial.out(1)).toThrow(InvalidArgumentError);
    await head.observe({ hidden: hidden.subarray(4 * H, 7 * H), tokens: tokens.subarray(4, 7), context: tokens.subarray(0, 7), topK: 3 });
    await head.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(7), topK: 3 });
    // observe() without endRound() drops the pending rows itself.
    const split = await head.observe({ hidden: hidden.subarray(7 * H), tokens: tokens.subarray(7), context: tokens, topK: 6 });
    expect(head.serial.cache.length).toBe(10);

    const { head: whole } = gumihoSetup();
    const once = await whole.observe({ hidden, tokens, context: tokens, topK: 6 });
    expect(Array.from(split.candidates.tokens)).toEqual(Array.from(once.candidates.tokens));
    for (let j = 0; j < 6; j++) expect(split.candidates.logProbs[j]!).toBeCloseTo(once.candidates.logProbs[j]!, 5);
    const a = head.serial.out(ROOT_HANDLE);
    const b = whole.serial.out(ROOT_HANDLE);
    for (let c = 0; c < H; c++) expect(a[c]!).toBeCloseTo(b[c]!, 5);
    expect(head.serial.position(ROOT_HANDLE)).toBe(9);

    head.reset();
    expect(head.serial.cache.length).toBe(0);
    await expect(head.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(1), topK: 2 })).rejects.toThrow(/observe\(\)/);
  });

  it('uses the head’s own embed_tokens when the checkpoint carries one', async () => {
    const config = draftHeadsConfigFor('eagle2', target);
    const own = randomDraftHeadWeights('eagle2', config, 5, { embedTokens: true });
    const shared = randomDraftHeadWeights('eagle2', config, 5);
    const { hidden, tokens } = context(5, 5);
    const a = await createEagleHead({ target, weights: own, config }).observe({ hidden, tokens, context: tokens, topK: 4 });
    const b = await createEagleHead({ target, weights: shared, config }).observe({ hidden, tokens, context: tokens, topK: 4 });
    const reference = referenceSerial(config, own, target, contextRows(hidden, tokens), (i, j) => j <= i);
    expectCandidatesMatch(a.candidates, 0, reference.logits[4]!);
    expect(Array.from(a.candidates.logProbs)).not.toEqual(Array.from(b.candidates.logProbs));
  });

  it('rejects bad handles, tokens and sizes with Gumiho errors', async () => {
    const { head } = gumihoSetup();
    const { hidden, tokens } = context(4, 6);
    await expect(head.observe({ hidden: hidden.subarray(0, H), tokens, context: tokens, topK: 2 })).rejects.toThrow(/expected 4 rows of 32/);
    await head.observe({ hidden, tokens, context: tokens, topK: 2 });
    await expect(head.expand({ parents: Int32Array.of(5), tokens: Int32Array.of(1), topK: 2 })).rejects.toThrow(/parent handle 5 is not a node/);
    await expect(head.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(V), topK: 2 })).rejects.toThrow(/outside the vocabulary/);
    await expect(head.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(1), topK: 0 })).rejects.toThrow(/topK/);
    const error = await head.expand({ parents: Int32Array.of(0, 0), tokens: Int32Array.of(1), topK: 2 }).catch((e: unknown) => e);
    expect(GumihoError.isInstance(error)).toBe(true);
  });

  it('reports overflow of the draft cache as a context error with a fix', async () => {
    const config = draftHeadsConfigFor('eagle2', target);
    const weights = randomDraftHeadWeights('eagle2', config, 2);
    const head = createEagleHead({ target, weights, config, maxContext: 6, maxSpeculativeRows: 2 });
    const { hidden, tokens } = context(7, 7);
    await expect(head.observe({ hidden, tokens, context: tokens, topK: 2 })).rejects.toThrow(/larger maxContext/);
    await head.observe({ hidden: hidden.subarray(0, 5 * H), tokens: tokens.subarray(0, 5), context: tokens, topK: 2 });
    // 5 committed rows of 6 + 2 speculative leave room for 3 rows this round.
    await head.expand({ parents: Int32Array.of(0, 0, 0), tokens: Int32Array.of(1, 2, 3), topK: 2 });
    await expect(head.expand({ parents: Int32Array.of(1), tokens: Int32Array.of(4), topK: 2 })).rejects.toThrow(/maxSpeculativeRows/);
  });
});

describe('Gumiho parallel heads', () => {
  it('match a float64 computation of z = [fused(first) ; fc([e(token) ; out(parent)])] through every head', async () => {
    const { config, weights, head } = gumihoSetup(11);
    expect(head.info).toEqual({ serialDepth: 2, parallelHeads: 3, parallelBranchDepth: 2 });
    const { hidden, tokens } = context(8, 8);
    await head.observe({ hidden, tokens, context: tokens, topK: 4 });
    const level1 = await head.expand({ parents: Int32Array.of(0, 0), tokens: Int32Array.of(3, 30), topK: 4 });
    // Branches: depth-2 tokens under level-1 parents; `first` pairs as the official code does (Q2).
    const first = Int32Array.of(level1.handles[0]!, level1.handles[1]!, level1.handles[0]!);
    const parents = Int32Array.of(level1.handles[1]!, level1.handles[0]!, level1.handles[0]!);
    const branchTokens = Int32Array.of(40, 41, 2);
    const result = await head.parallel({ first, parents, tokens: branchTokens, topK: 5 });
    expect(result.heads).toHaveLength(3);
    for (let r = 0; r < 3; r++) {
      const second = referenceFc(config, weights, target, branchTokens[r]!, head.serial.out(parents[r]!));
      const z = [...head.serial.fused(first[r]!), ...second];
      for (let m = 0; m < 3; m++) {
        expect(result.heads[m]!.rows).toBe(3);
        expectCandidatesMatch(result.heads[m]!, r, referenceGumihoMlp(config, weights, target, m, z));
      }
    }
    // Heads differ from each other.
    expect(Array.from(result.heads[0]!.logProbs)).not.toEqual(Array.from(result.heads[1]!.logProbs));
    const empty = await head.parallel({ first: new Int32Array(0), parents: new Int32Array(0), tokens: new Int32Array(0), topK: 2 });
    expect(empty.heads.map((c) => c.rows)).toEqual([0, 0, 0]);
    await expect(head.parallel({ topK: 2 })).rejects.toThrow(/needs `first`, `parents` and `tokens`/);
  });
});

describe('parallelHeads option', () => {
  it('runs only the first heads, with the same outputs as the full set', async () => {
    const { config, weights, head: full } = gumihoSetup(12);
    const two = createGumihoHead({ target, weights, config, parallelHeads: 2 });
    expect(two.info.parallelHeads).toBe(2);
    const { hidden, tokens } = context(5, 12);
    const results = [];
    for (const head of [full, two]) {
      await head.observe({ hidden, tokens, context: tokens, topK: 2 });
      const level1 = await head.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(6), topK: 2 });
      results.push(await head.parallel({ first: level1.handles, parents: level1.handles, tokens: Int32Array.of(8), topK: 4 }));
    }
    expect(results[1]!.heads).toHaveLength(2);
    for (let m = 0; m < 2; m++) expect(Array.from(results[1]!.heads[m]!.logProbs)).toEqual(Array.from(results[0]!.heads[m]!.logProbs));
    expect(() => createGumihoHead({ target, weights, config, parallelHeads: 4 })).toThrow(/parallelHeads must be an integer in 1\.\.3/);
    const medusaConfig = draftHeadsConfigFor('medusa', target, { mlpHeads: 3, mlpBlocks: 1 });
    const medusa = createMedusaHead({ target, weights: randomDraftHeadWeights('medusa', medusaConfig, 2), config: medusaConfig, parallelHeads: 1 });
    await medusa.observe({ hidden, tokens, context: tokens, topK: 2 });
    expect((await medusa.parallel({ topK: 2 })).heads).toHaveLength(1);
  });
});

describe('EAGLE-2 head', () => {
  it('is the serial part alone: unbounded serial depth, no parallel heads', async () => {
    const config = draftHeadsConfigFor('eagle2', target);
    expect(config.serialLayers).toBe(1);
    const head: SerialDraftHead = createEagleHead({ target, weights: randomDraftHeadWeights('eagle2', config, 9), config });
    expect(head.id).toBe('eagle2');
    expect(head.info).toEqual({ serialDepth: Infinity, parallelHeads: 0, parallelBranchDepth: 0 });
    const { hidden, tokens } = context(5, 9);
    await head.observe({ hidden, tokens, context: tokens, topK: 2 });
    let handles: Int32Array = Int32Array.of(ROOT_HANDLE);
    for (let depth = 1; depth <= 6; depth++) {
      const step = await head.expand({ parents: handles, tokens: Int32Array.of(depth), topK: 2 });
      handles = step.handles;
      expect(head.serial.position(handles[0]!)).toBe(4 + depth);
    }
    await expect(head.parallel({ topK: 2 })).rejects.toThrow(/no parallel heads/);
  });
});

describe('Medusa head', () => {
  it('runs its heads on the root’s target hidden state and matches float64', async () => {
    const config = draftHeadsConfigFor('medusa', target, { mlpHeads: 3, mlpBlocks: 2 });
    const weights = randomDraftHeadWeights('medusa', config, 13);
    const head = createMedusaHead({ target, weights, config });
    expect(head.info).toEqual({ serialDepth: 0, parallelHeads: 3, parallelBranchDepth: 0 });
    const { hidden, tokens } = context(4, 10);
    const root = await head.observe({ hidden, tokens, context: tokens, topK: 4 });
    const last = hidden.subarray(3 * H, 4 * H);
    expectCandidatesMatch(root.candidates, 0, referenceMedusa(config, weights, target, 0, last));
    const result = await head.parallel({ topK: 6 });
    for (let m = 0; m < 3; m++) expectCandidatesMatch(result.heads[m]!, 0, referenceMedusa(config, weights, target, m, last));
    const two = await head.parallel({ tokens: Int32Array.of(1, 2), topK: 3 });
    expect(two.heads[1]!.rows).toBe(2);
    expect(Array.from(two.heads[1]!.tokens.subarray(0, 3))).toEqual(Array.from(two.heads[1]!.tokens.subarray(3, 6)));
    await expect(head.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(1), topK: 2 })).rejects.toThrow(/no serial part/);
  });
});
