import { InvalidArgumentError, type DraftTree } from '@gumiho/core';
import { describe, expect, it } from 'vitest';
import {
  applyExactFta,
  applyOfficialFta,
  childLists,
  createDraftTree,
  ftaColumnFills,
  pathRow,
  pathTo,
  selectAncestorClosed,
  sortPathsLexicographically,
  validateDraftTree,
} from './index.js';

/** A small deterministic PRNG for property tests (independent of the code under test). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/** A random tree of `size` nodes, created level by level like every builder does. */
function randomTree(random: () => number, size: number, levelByLevel = true): DraftTree {
  const parents = [-1];
  const depth = [0];
  for (let i = 1; i < size; i++) {
    let parent = Math.floor(random() * i);
    if (levelByLevel) {
      // Only attach to nodes of the deepest or the previous level, so depths never decrease.
      const maxDepth = Math.max(...depth);
      const candidates = depth.map((d, n) => (d >= maxDepth - 1 ? n : -1)).filter((n) => n >= 0);
      parent = candidates[Math.floor(random() * candidates.length)]!;
    }
    parents.push(parent);
    depth.push(depth[parent]! + 1);
  }
  const tokens = parents.map((_, i) => (i * 7) % 13);
  const scores = depth.map((d) => -d - random());
  return createDraftTree({ tokens, parents, scores });
}

function rows(tree: DraftTree): number[][] {
  return Array.from({ length: tree.pathCount }, (_, r) => Array.from(tree.paths.subarray(r * tree.pathWidth, (r + 1) * tree.pathWidth)));
}

/** The toy tree of the method digest, section 2.5 (K=4, 3 MLP levels, N=15). */
function toyTree(): DraftTree {
  const parents = [-1, 0, 0, 0, 0, 1, 2, 1, 2, 5, 6, 7, 8, 9, 10, 9];
  const tokens = parents.map((_, i) => 100 + i);
  const depths = [0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4];
  const scores = depths.map((d, i) => -d - i / 100);
  return createDraftTree({ tokens, parents, scores });
}

describe('createDraftTree', () => {
  it('derives depths, the ancestor mask and leaf paths', () => {
    // root -> a(1), b(2); a -> c(3); c -> d(4)
    const tree = createDraftTree({ tokens: [9, 5, 6, 7, 8], parents: [-1, 0, 0, 1, 3], scores: [0, -1, -2, -1.5, -3] });
    expect(Array.from(tree.depths)).toEqual([0, 1, 1, 2, 3]);
    expect(tree.exact).toBe(true);
    const mask = (q: number) => Array.from(tree.mask.subarray(q * 5, q * 5 + 5));
    expect(mask(0)).toEqual([1, 0, 0, 0, 0]);
    expect(mask(2)).toEqual([1, 0, 1, 0, 0]);
    expect(mask(4)).toEqual([1, 1, 0, 1, 1]);
    expect(tree.pathWidth).toBe(4);
    expect(rows(tree)).toEqual([
      [0, 2, -1, -1],
      [0, 1, 3, 4],
    ]);
    expect(Array.from(pathRow(tree, 0))).toEqual([0, 2]);
    expect(Array.from(pathTo(tree, 3))).toEqual([0, 1, 3]);
    const lists = childLists(tree);
    expect(Array.from(lists.children.subarray(lists.offsets[0]!, lists.offsets[1]!))).toEqual([1, 2]);
  });

  it('rejects malformed input with a fix', () => {
    expect(() => createDraftTree({ tokens: [], parents: [] })).toThrow(InvalidArgumentError);
    expect(() => createDraftTree({ tokens: [1, 2], parents: [0, 0] })).toThrow(/root's parent/);
    expect(() => createDraftTree({ tokens: [1, 2, 3], parents: [-1, 2, 0] })).toThrow(/before their children/);
  });

  it('property: masks are ancestor closures, depths count ancestors, paths cover every leaf once', () => {
    const random = lcg(11);
    for (let trial = 0; trial < 200; trial++) {
      const size = 1 + Math.floor(random() * 40);
      const tree = randomTree(random, size, trial % 2 === 0);
      expect(() => validateDraftTree(tree)).not.toThrow();
      let wrong = 0;
      for (let q = 0; q < size; q++) {
        const ancestors = new Set<number>();
        for (let n = q; n >= 0; n = tree.parents[n]!) ancestors.add(n);
        for (let k = 0; k < size; k++) if (tree.mask[q * size + k] !== (ancestors.has(k) ? 1 : 0)) wrong++;
        if (tree.depths[q] !== ancestors.size - 1) wrong++;
      }
      expect(wrong).toBe(0);
      const leaves = rows(tree).map((row) => row.filter((n) => n >= 0).at(-1)!);
      const isLeaf = (n: number) => !Array.from(tree.parents).includes(n);
      expect(new Set(leaves).size).toBe(leaves.length);
      expect(leaves.sort((a, b) => a - b)).toEqual([...Array(size).keys()].filter(isLeaf));
      if (trial % 2 === 0) {
        const lengths = rows(tree).map((row) => row.filter((n) => n >= 0).length);
        expect(lengths).toEqual([...lengths].sort((a, b) => a - b));
      }
    }
  });

  it('sorts rows lexicographically with padding last, as the reference does at T > 0', () => {
    const sorted = sortPathsLexicographically(toyTree());
    expect(rows(sorted)).toEqual([
      [0, 1, 5, 9, 13],
      [0, 1, 5, 9, 15],
      [0, 1, 7, 11, -1],
      [0, 2, 6, 10, 14],
      [0, 2, 8, 12, -1],
      [0, 3, -1, -1, -1],
      [0, 4, -1, -1, -1],
    ]);
  });
});

describe('selectAncestorClosed', () => {
  it('property: equals the plain top-N for monotone scores and is always ancestor-closed', () => {
    const random = lcg(5);
    for (let trial = 0; trial < 200; trial++) {
      const n = 2 + Math.floor(random() * 60);
      const parents = [-1];
      const scores = [0];
      for (let i = 1; i < n; i++) {
        const parent = Math.floor(random() * i);
        parents.push(parent);
        const monotone = trial % 3 !== 0;
        // Ties on purpose (rounded log-probs), and non-monotone scores every third trial.
        scores.push(monotone ? scores[parent]! - Math.round(random() * 3) : Math.round(random() * 6 - 3));
      }
      const budget = Math.floor(random() * n);
      const kept = Array.from(selectAncestorClosed(parents, scores, budget, 1));
      expect(kept.length).toBeLessThanOrEqual(budget);
      const set = new Set(kept);
      for (const node of kept) expect(parents[node] === 0 || set.has(parents[node]!)).toBe(true);
      expect(kept).toEqual([...kept].sort((a, b) => a - b));
      if (trial % 3 !== 0) {
        const order = [...Array(n - 1).keys()].map((i) => i + 1).sort((a, b) => scores[b]! - scores[a]! || a - b);
        expect(kept).toEqual(order.slice(0, budget).sort((a, b) => a - b));
      }
    }
  });

  it('adds a missing parent instead of attaching the child elsewhere (Q3)', () => {
    // Child 2 scores above its parent 1; with budget 1 the pair does not fit, so 3 is taken.
    const parents = [-1, 0, 1, 0];
    const scores = [0, -5, -1, -2];
    expect(Array.from(selectAncestorClosed(parents, scores, 1, 1))).toEqual([3]);
    expect(Array.from(selectAncestorClosed(parents, scores, 2, 1))).toEqual([1, 2]);
  });
});

describe('Full Tree Attention', () => {
  it('official mode reproduces the digest toy check (rows, added mask entries)', () => {
    const tree = toyTree();
    expect(rows(tree)).toEqual([
      [0, 3, -1, -1, -1],
      [0, 4, -1, -1, -1],
      [0, 1, 7, 11, -1],
      [0, 2, 8, 12, -1],
      [0, 1, 5, 9, 13],
      [0, 2, 6, 10, 14],
      [0, 1, 5, 9, 15],
    ]);
    expect(ftaColumnFills(tree)).toEqual([
      { column: 2, node: 5, rows: 2 },
      { column: 3, node: 9, rows: 2 },
      { column: 4, node: 13, rows: 4 },
    ]);
    const fta = applyOfficialFta(tree);
    expect(fta.exact).toBe(false);
    expect(rows(fta)).toEqual([
      [0, 3, 5, 9, 13],
      [0, 4, 5, 9, 13],
      [0, 1, 7, 11, 13],
      [0, 2, 8, 12, 13],
      [0, 1, 5, 9, 13],
      [0, 2, 6, 10, 14],
      [0, 1, 5, 9, 15],
    ]);
    const added: string[] = [];
    for (let q = 0; q < tree.size; q++) {
      for (let k = 0; k < tree.size; k++) {
        const i = q * tree.size + k;
        if (fta.mask[i] !== tree.mask[i]) {
          expect(tree.mask[i]).toBe(0);
          added.push(`${q}->${k}`);
          // None of the added keys is a descendant of its query (it was not an ancestor either: mask was 0).
          expect(Array.from(pathTo(tree, k))).not.toContain(q);
        }
      }
    }
    expect(added).toEqual(['3->5', '3->9', '3->13', '4->5', '4->9', '4->13', '11->13', '12->13']);
    // Unchanged: tokens, depths, and the input tree itself.
    expect(fta.tokens).toBe(tree.tokens);
    expect(rows(tree)[0]).toEqual([0, 3, -1, -1, -1]);
  });

  it('official mode after the T > 0 lexicographic row sort is a no-op when row 0 is full (reference bookkeeping)', () => {
    const sorted = sortPathsLexicographically(toyTree());
    expect(rows(sorted)[0]).toEqual([0, 1, 5, 9, 13]);
    expect(ftaColumnFills(sorted)).toEqual([]);
    expect(applyOfficialFta(sorted)).toBe(sorted);
  });

  it('official mode after a lexicographic sort with a short row 0 puts mask entries on the rows the reference picks', () => {
    // root -> 1, 2; 2 -> 3 -> 4. Lexicographic: [0,1,-,-] first (short), then [0,2,3,4].
    const tree = sortPathsLexicographically(createDraftTree({ tokens: [0, 1, 2, 3, 4], parents: [-1, 0, 0, 2, 3] }));
    const fta = applyOfficialFta(tree);
    expect(rows(fta)).toEqual([
      [0, 1, 3, 4],
      [0, 2, 3, 4],
    ]);
    expect(fta.mask[1 * 5 + 3]).toBe(1);
    expect(fta.mask[1 * 5 + 4]).toBe(1);
  });

  it('official mode leaves a tree whose paths all have full length unchanged', () => {
    const chain = createDraftTree({ tokens: [1, 2, 3], parents: [-1, 0, 1] });
    expect(applyOfficialFta(chain)).toBe(chain);
  });

  it('exact mode adds the borrowed tokens as real children of the short leaves', () => {
    const tree = toyTree();
    const fta = applyExactFta(tree, 64);
    expect(fta.exact).toBe(true);
    validateDraftTree(fta);
    expect(fta.size).toBe(16 + 3 + 3 + 1 + 1);
    // Every path now has full length, and the borrowed suffixes carry the borrowed tokens.
    const paths = rows(fta).map((row) => row.map((n) => (n < 0 ? -1 : fta.tokens[n]!)));
    for (const path of paths) expect(path).not.toContain(-1);
    expect(paths).toContainEqual([100, 103, 105, 109, 113]);
    expect(paths).toContainEqual([100, 104, 105, 109, 113]);
    expect(paths).toContainEqual([100, 101, 107, 111, 113]);
    expect(paths).toContainEqual([100, 102, 108, 112, 113]);
    // The original nodes keep their slots (they win ties and come first).
    expect(Array.from(fta.tokens.subarray(0, 16))).toEqual(Array.from(tree.tokens));
  });

  it('exact mode keeps the size budget by score, ancestors included', () => {
    const tree = toyTree();
    for (const budget of [1, 5, 16, 18, 20]) {
      const fta = applyExactFta(tree, budget);
      expect(fta.size).toBeLessThanOrEqual(budget);
      validateDraftTree(fta);
    }
    // At the original size, borrowed copies displace only lower-scoring nodes.
    const same = applyExactFta(tree, 16);
    expect(same.size).toBe(16);
    const minKeptScore = Math.min(...Array.from(same.scores.subarray(1)));
    const dropped = Array.from(tree.scores).filter((s) => !Array.from(same.scores).includes(s));
    for (const s of dropped) expect(s).toBeLessThanOrEqual(minKeptScore);
  });
});
