import { argmax, type BuildTreeOptions, type DraftHead, type DraftTree, type TreeBuilder } from '@gumiho/core';
import { describe, expect, it } from 'vitest';
import {
  createChainBuilder,
  createDynamicTreeBuilder,
  createGumihoTreeBuilder,
  createStaticTreeBuilder,
  pathTo,
  validateDraftTree,
} from './index.js';
import { createMockDraftHead, type MockDraftHead } from './testing.js';

const CONTEXT = Int32Array.of(3, 1, 4, 1, 5);
const ROOT = 5;
const HIDDEN = 8;

function buildOptions(head: DraftHead, maxSize = 64): BuildTreeOptions {
  return {
    head,
    root: ROOT,
    maxSize,
    hidden: new Float32Array(CONTEXT.length * HIDDEN),
    tokens: Int32Array.of(1, 4, 1, 5, ROOT),
    context: CONTEXT,
  };
}

/** Draft-token path (root excluded) of every non-root node, in slot order. */
function tokenPaths(tree: DraftTree): string[] {
  const out: string[] = [];
  for (let i = 1; i < tree.size; i++) out.push(Array.from(pathTo(tree, i).subarray(1), (n) => tree.tokens[n]!).join(','));
  return out;
}

/** The `k` best tokens of a log-prob row, best first (ties: lower id), with their values. */
function best(row: Float32Array, k: number): { token: number; lp: number }[] {
  return Array.from(row, (lp, token) => ({ token, lp }))
    .sort((a, b) => b.lp - a.lp || a.token - b.token)
    .slice(0, k);
}

function byScore<T extends { score: number }>(items: T[], k: number): T[] {
  return items
    .map((item, i) => ({ item, i }))
    .sort((a, b) => b.item.score - a.item.score || a.i - b.i)
    .slice(0, k)
    .map(({ item }) => item);
}

interface RefNode {
  path: number[];
  score: number;
  created: number;
}

function keepTop(pool: RefNode[], n: number): string[] {
  return byScore(pool, n)
    .sort((a, b) => a.created - b.created)
    .map((node) => node.path.join(','));
}

function protocolCalls(head: MockDraftHead): string[] {
  return head.calls.map((call) => call.method);
}

async function build(builder: TreeBuilder, head: MockDraftHead, maxSize = 64): Promise<DraftTree> {
  head.calls.length = 0;
  const tree = await builder.build(buildOptions(head, maxSize));
  validateDraftTree(tree);
  expect(tree.tokens[0]).toBe(ROOT);
  expect(tree.size).toBeLessThanOrEqual(maxSize);
  const calls = protocolCalls(head);
  expect(calls.filter((m) => m === 'observe')).toHaveLength(1);
  expect(calls[0]).toBe('observe');
  expect(calls).not.toContain('endRound');
  return tree;
}

const ctx = Array.from(CONTEXT);

describe('createChainBuilder', () => {
  it('follows the top-1 token of a serial head', async () => {
    const head = createMockDraftHead({ vocabSize: 16 });
    const tree = await build(createChainBuilder({ depth: 4 }), head);
    const expected: number[] = [];
    for (let d = 0; d < 4; d++) expected.push(argmax(head.serialLogProbs([...ctx, ...expected])));
    expect(Array.from(tree.tokens.subarray(1))).toEqual(expected);
    expect(Array.from(tree.parents)).toEqual([-1, 0, 1, 2, 3]);
    expect(protocolCalls(head)).toEqual(['observe', 'expand', 'expand', 'expand']);
    expect(tree.scores[4]).toBeCloseTo(
      expected.reduce((sum, t, d) => sum + head.serialLogProbs([...ctx, ...expected.slice(0, d)])[t]!, 0),
      5,
    );
  });

  it('uses 2 serial levels then the parallel heads of a Gumiho-like head', async () => {
    const head = createMockDraftHead({ vocabSize: 16, serialDepth: 2, parallelHeads: 5 });
    const tree = await build(createChainBuilder({ depth: 7 }), head);
    const t1 = argmax(head.serialLogProbs(ctx));
    const t2 = argmax(head.serialLogProbs([...ctx, t1]));
    const mlp = [0, 1, 2, 3, 4].map((m) => argmax(head.parallelLogProbs([...ctx, t1, t2], [...ctx, t1], m)));
    expect(Array.from(tree.tokens.subarray(1))).toEqual([t1, t2, ...mlp]);
    expect(protocolCalls(head)).toEqual(['observe', 'expand', 'parallel']);
  });

  it('uses the parallel heads at the root for a Medusa-like head, and respects maxSize', async () => {
    const head = createMockDraftHead({ vocabSize: 16, serialDepth: 0, parallelHeads: 3 });
    const tree = await build(createChainBuilder({ depth: 5 }), head);
    expect(Array.from(tree.tokens.subarray(1))).toEqual([0, 1, 2].map((m) => argmax(head.parallelLogProbs(ctx, undefined, m))));
    const small = await build(createChainBuilder({ depth: 5 }), createMockDraftHead({ vocabSize: 16 }), 3);
    expect(small.size).toBe(3);
    const rootOnly = await build(createChainBuilder({ depth: 5 }), head, 1);
    expect(rootOnly.size).toBe(1);
  });
});

describe('createStaticTreeBuilder', () => {
  const paths = [[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0, 0]];

  it('fills the shape from serial expansions (one batched expand per level)', async () => {
    const head = createMockDraftHead({ vocabSize: 16 });
    const tree = await build(createStaticTreeBuilder({ paths }), head);
    expect(tree.size).toBe(paths.length + 1);
    // Node for path [a, b, c] is the c-th best child of node [a, b].
    const sorted = [...paths].sort((a, b) => a.length - b.length || a.join().localeCompare(b.join()));
    sorted.forEach((spec, i) => {
      const node = i + 1;
      const prefix = Array.from(pathTo(tree, tree.parents[node]!).subarray(1), (n) => tree.tokens[n]!);
      expect(tree.tokens[node]).toBe(best(head.serialLogProbs([...ctx, ...prefix]), spec.at(-1)! + 1).at(-1)!.token);
    });
    expect(protocolCalls(head)).toEqual(['observe', 'expand', 'expand', 'expand']);
  });

  it('fills deep levels from the parallel heads (Medusa at the root, Gumiho at depth 2)', async () => {
    const medusa = createMockDraftHead({ vocabSize: 16, serialDepth: 0, parallelHeads: 4 });
    const tree = await build(createStaticTreeBuilder({ paths }), medusa);
    for (let node = 1; node < tree.size; node++) {
      const depth = tree.depths[node]!;
      const spec = [...paths].sort((a, b) => a.length - b.length || a.join().localeCompare(b.join()))[node - 1]!;
      expect(tree.tokens[node]).toBe(best(medusa.parallelLogProbs(ctx, undefined, depth - 1), spec.at(-1)! + 1).at(-1)!.token);
    }
    expect(protocolCalls(medusa)).toEqual(['observe', 'parallel']);

    const gumiho = createMockDraftHead({ vocabSize: 16, serialDepth: 2, parallelHeads: 5 });
    const hybrid = await build(createStaticTreeBuilder({ paths }), gumiho);
    expect(hybrid.size).toBe(paths.length + 1);
    expect(protocolCalls(gumiho)).toEqual(['observe', 'expand', 'parallel']);
    for (let node = 1; node < hybrid.size; node++) {
      if (hybrid.depths[node]! < 3) continue;
      const path = Array.from(pathTo(hybrid, node).subarray(1), (n) => hybrid.tokens[n]!);
      const spec = [...paths].sort((a, b) => a.length - b.length || a.join().localeCompare(b.join()))[node - 1]!;
      const row = gumiho.parallelLogProbs([...ctx, path[0]!, path[1]!], [...ctx, path[0]!], hybrid.depths[node]! - 3);
      expect(hybrid.tokens[node]).toBe(best(row, spec.at(-1)! + 1).at(-1)!.token);
    }
  });

  it('rejects shapes that are not prefix-closed and cuts to maxSize', async () => {
    expect(() => createStaticTreeBuilder({ paths: [[0], [1, 0]] })).toThrow(/prefix/);
    expect(() => createStaticTreeBuilder({ paths: [] })).toThrow(/at least one path/);
    const tree = await build(createStaticTreeBuilder({ paths }), createMockDraftHead({ vocabSize: 16 }), 5);
    expect(tree.size).toBe(5);
    expect(Array.from(tree.depths)).toEqual([0, 1, 1, 1, 2]);
  });
});

/** EAGLE-2's dynamic tree written directly from digest 2.1 over token paths. */
function referenceEagle2(head: MockDraftHead, K: number, depth: number, total: number): string[] {
  const pool: RefNode[] = [];
  let beam = best(head.serialLogProbs(ctx), K).map(({ token, lp }) => ({ path: [token], score: lp, created: 0 }));
  beam.forEach((node) => (node.created = pool.push(node)));
  for (let step = 0; step < depth; step++) {
    const created: RefNode[] = [];
    for (const node of beam) {
      for (const { token, lp } of best(head.serialLogProbs([...ctx, ...node.path]), K)) {
        const child = { path: [...node.path, token], score: node.score + lp, created: 0 };
        child.created = pool.push(child);
        created.push(child);
      }
    }
    beam = byScore(created, K);
  }
  return keepTop(pool, total - 1);
}

describe('createDynamicTreeBuilder (EAGLE-2)', () => {
  it('matches the digest algorithm on a fake head', async () => {
    for (const [K, depth, total, seed] of [
      [4, 3, 20, 1],
      [3, 5, 30, 2],
      [5, 2, 60, 3],
    ] as const) {
      const head = createMockDraftHead({ vocabSize: 24, seed });
      const tree = await build(createDynamicTreeBuilder({ topK: K, depth, totalTokens: total }), head);
      expect(tokenPaths(tree)).toEqual(referenceEagle2(head, K, depth, total));
      expect(protocolCalls(head)).toEqual(['observe', ...Array<string>(depth).fill('expand')]);
    }
  });

  it('never keeps a node without its parent, even when children outscore parents (Q3)', async () => {
    const mock = createMockDraftHead({ vocabSize: 12, seed: 4 });
    const boosted: DraftHead = {
      ...mock,
      async expand(options) {
        const expansion = await mock.expand(options);
        return { ...expansion, candidates: { ...expansion.candidates, logProbs: expansion.candidates.logProbs.map((lp) => lp + 10) } };
      },
    };
    const tree = await createDynamicTreeBuilder({ topK: 3, depth: 3, totalTokens: 8 }).build(buildOptions(boosted, 64));
    validateDraftTree(tree);
    expect(tree.size).toBe(8);
    // Every node's token is one of its real parent's candidates.
    for (let node = 1; node < tree.size; node++) {
      const prefix = Array.from(pathTo(tree, tree.parents[node]!).subarray(1), (n) => tree.tokens[n]!);
      expect(best(mock.serialLogProbs([...ctx, ...prefix]), 3).map((c) => c.token)).toContain(tree.tokens[node]);
    }
  });

  it('stops at the serial depth of the head and respects maxSize', async () => {
    const head = createMockDraftHead({ vocabSize: 24, serialDepth: 2 });
    const tree = await build(createDynamicTreeBuilder({ topK: 4, depth: 5, totalTokens: 60 }), head);
    expect(Math.max(...tree.depths)).toBe(2);
    expect(tree.size).toBe(1 + 4 + 16);
    const small = await build(createDynamicTreeBuilder({ topK: 4, depth: 5, totalTokens: 60 }), head, 7);
    expect(small.size).toBe(7);
  });
});

/** Gumiho's hybrid tree written directly from digest 2.3 over token paths. */
function referenceGumiho(head: MockDraftHead, K: number, mlpTopK: number, pruning: number, total: number, q2: boolean): string[] {
  const pool: RefNode[] = [];
  const add = (path: number[], score: number): RefNode => {
    const node = { path, score, created: 0 };
    node.created = pool.push(node);
    return node;
  };
  const l1 = best(head.serialLogProbs(ctx), K).map(({ token, lp }) => add([token], lp));
  const flat: { parent: number; token: number; score: number }[] = [];
  l1.forEach((node, j) => {
    for (const { token, lp } of best(head.serialLogProbs([...ctx, ...node.path]), K)) flat.push({ parent: j, token, score: node.score + lp });
  });
  const l2 = byScore(flat, K).map((c) => ({ node: add([...l1[c.parent]!.path, c.token], c.score), parent: c.parent }));
  const heads = l2.map(({ node, parent }, r) =>
    [0, 1, 2, 3, 4].map((m) => head.parallelLogProbs([...ctx, ...node.path], [...ctx, ...l1[q2 ? r : parent]!.path], m)),
  );
  let current = l2.map(({ node }, r) => ({ node, branch: r }));
  for (let m = 0; m < 5; m++) {
    const cands: { parent: (typeof current)[number]; token: number; score: number }[] = [];
    for (const entry of current) {
      for (const { token, lp } of best(heads[entry.branch]![m]!, mlpTopK)) cands.push({ parent: entry, token, score: entry.node.score + lp });
    }
    current = byScore(cands, pruning).map((c) => ({ node: add([...c.parent.node.path, c.token], c.score), branch: c.parent.branch }));
  }
  return keepTop(pool, total - 1);
}

describe('createGumihoTreeBuilder', () => {
  const gumihoHead = (seed: number) => createMockDraftHead({ vocabSize: 48, serialDepth: 2, parallelHeads: 5, seed });

  it('matches the digest algorithm (serial levels 1-2, pruned MLP levels 3-7, global rerank)', async () => {
    for (const [K, mlpTopK, pruning, total, seed] of [
      [14, 35, 35, 64, 1],
      [4, 6, 5, 20, 2],
      [6, 3, 8, 40, 3],
    ] as const) {
      const head = gumihoHead(seed);
      const tree = await build(createGumihoTreeBuilder({ topK: K, mlpTopK, pruning, totalTokens: total }), head);
      expect(tree.size).toBe(total);
      expect(tokenPaths(tree)).toEqual(referenceGumiho(head, K, mlpTopK, pruning, total, false));
      expect(protocolCalls(head)).toEqual(['observe', 'expand', 'parallel']);
      expect(Math.max(...tree.depths)).toBeLessThanOrEqual(7);
    }
  });

  it('replicates quirks Q1 (causal level-2 mask) and Q2 (misaligned MLP token) only when asked', async () => {
    const head = gumihoHead(5);
    await build(createGumihoTreeBuilder({ topK: 6, totalTokens: 32 }), head);
    const plainExpand = head.calls.find((c) => c.method === 'expand');
    const plainParallel = head.calls.find((c) => c.method === 'parallel');
    expect(plainExpand && plainExpand.method === 'expand' && plainExpand.maskMode).toBe('tree');
    expect(plainParallel && plainParallel.method === 'parallel' && Array.from(plainParallel.first!)).toEqual(
      plainParallel && plainParallel.method === 'parallel' ? Array.from(plainParallel.parents!) : [],
    );

    const quirky = await build(createGumihoTreeBuilder({ topK: 6, totalTokens: 32, q1CausalSiblings: true, q2MisalignedMlpToken: true }), head);
    const expand = head.calls.find((c) => c.method === 'expand');
    const parallel = head.calls.find((c) => c.method === 'parallel');
    expect(expand && expand.method === 'expand' && expand.maskMode).toBe('causal');
    if (!expand || expand.method !== 'expand' || !parallel || parallel.method !== 'parallel') throw new Error('missing calls');
    // first[r] is the r-th level-1 node's handle, whatever the branch's real parent.
    expect(Array.from(parallel.first!)).toEqual(Array.from({ length: parallel.first!.length }, (_, r) => r + 1));
    expect(tokenPaths(quirky)).toEqual(referenceGumiho(head, 6, 35, 35, 32, true));
  });

  it('keeps maxSize, guarantees ancestors and applies both FTA modes', async () => {
    const head = gumihoHead(7);
    const small = await build(createGumihoTreeBuilder({ topK: 5, mlpTopK: 5, pruning: 5 }), head, 10);
    expect(small.size).toBe(10);
    const official = await build(createGumihoTreeBuilder({ topK: 4, mlpTopK: 4, pruning: 4, totalTokens: 16, fta: 'official' }), head);
    const off = await build(createGumihoTreeBuilder({ topK: 4, mlpTopK: 4, pruning: 4, totalTokens: 16 }), head);
    expect(official.exact).toBe(false);
    expect(official.tokens).toEqual(off.tokens);
    expect(official.paths.includes(-1)).toBe(false);
    expect(off.paths.includes(-1)).toBe(true);
    const lexicographic = await build(
      createGumihoTreeBuilder({ topK: 4, mlpTopK: 4, pruning: 4, totalTokens: 16, fta: 'official', ftaLexicographicRows: true }),
      head,
    );
    expect(lexicographic.tokens).toEqual(off.tokens);
    expect(lexicographic.paths[0]).toBe(0);
    const exact = await build(createGumihoTreeBuilder({ topK: 4, mlpTopK: 4, pruning: 4, totalTokens: 24, fta: 'exact' }), head);
    expect(exact.exact).toBe(true);
    expect(exact.size).toBeLessThanOrEqual(24);
  });

  it('refuses heads without the Gumiho shape, naming the fix', async () => {
    const builder = createGumihoTreeBuilder();
    await expect(builder.build(buildOptions(createMockDraftHead({ vocabSize: 8 })))).rejects.toThrow(/createDynamicTreeBuilder/);
    expect(() => createGumihoTreeBuilder({ topK: 0 })).toThrow(/topK/);
    expect(() => createGumihoTreeBuilder({ fta: 'on' as never })).toThrow(/fta|Full Tree/);
  });
});
