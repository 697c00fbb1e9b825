/**
 * Draft trees as typed arrays (core's {@link DraftTree}) and the tensors derived from them:
 * ancestor mask, depths (position offsets) and root-to-leaf paths (`retrieveIndices`), computed
 * as in EAGLE-2 and Gumiho (method digest section 2.4).
 */
import { InvalidArgumentError, type DraftTree } from '@gumiho/core';

/** Input of {@link createDraftTree}: node 0 is the root; parents come before their children. */
export interface DraftTreeInput {
  /** Token of each node; node 0 is the root token. */
  readonly tokens: ArrayLike<number>;
  /** Parent of each node: -1 for the root, otherwise an index smaller than the node's own. */
  readonly parents: ArrayLike<number>;
  /** Cumulative draft log-probability of each node (default 0 everywhere). */
  readonly scores?: ArrayLike<number>;
}

/**
 * Builds an exact {@link DraftTree}: depths, the ancestor mask (each node attends to itself and
 * its ancestors) and the root-to-leaf paths, one row per leaf in slot order, `-1` padded to the
 * longest path. Rows therefore come in creation order of their leaves; when nodes are created
 * level by level (every builder here) that is non-decreasing path length, which the official Full
 * Tree Attention bookkeeping relies on.
 *
 * @throws InvalidArgumentError when the arrays disagree in length, the root's parent is not -1, or
 *   a parent does not come before its child.
 */
export function createDraftTree(input: DraftTreeInput): DraftTree {
  const size = input.tokens.length;
  if (size < 1) {
    throw new InvalidArgumentError('tokens', 'A draft tree needs at least the root node.', { fix: 'pass the root token as node 0.' });
  }
  if (input.parents.length !== size || (input.scores && input.scores.length !== size)) {
    throw new InvalidArgumentError('parents', `tokens, parents and scores must have one entry per node (${size}).`, {
      fix: 'give every node a token, a parent and (optionally) a score.',
    });
  }
  if (input.parents[0] !== -1) {
    throw new InvalidArgumentError('parents', `The root's parent must be -1, got ${input.parents[0]}.`, { fix: 'set parents[0] = -1.' });
  }
  const tokens = Int32Array.from(input.tokens);
  const parents = Int32Array.from(input.parents);
  const scores = input.scores ? Float32Array.from(input.scores) : new Float32Array(size);
  scores[0] = 0;
  const depths = new Int32Array(size);
  const hasChild = new Uint8Array(size);
  let maxDepth = 0;
  for (let i = 1; i < size; i++) {
    const parent = parents[i]!;
    if (!Number.isInteger(parent) || parent < 0 || parent >= i) {
      throw new InvalidArgumentError('parents', `Node ${i} has parent ${parent}; parents must come before their children.`, {
        fix: 'order nodes so that every parent index is smaller than its child index (creation order).',
      });
    }
    depths[i] = depths[parent]! + 1;
    hasChild[parent] = 1;
    if (depths[i]! > maxDepth) maxDepth = depths[i]!;
  }
  const mask = ancestorMask(parents);
  const width = maxDepth + 1;
  let leafCount = 0;
  for (let i = 0; i < size; i++) if (!hasChild[i]) leafCount++;
  const paths = new Int32Array(leafCount * width).fill(-1);
  let row = 0;
  for (let i = 0; i < size; i++) {
    if (hasChild[i]) continue;
    for (let node = i; node >= 0; node = parents[node]!) paths[row * width + depths[node]!] = node;
    row++;
  }
  return { size, tokens, parents, depths, scores, mask, paths, pathCount: leafCount, pathWidth: width, exact: true };
}

/**
 * The ancestor-closure mask of a parent array, `[size * size]`, row = query: 1 where the query may
 * attend to the key (itself and its ancestors, the root included).
 */
export function ancestorMask(parents: ArrayLike<number>): Uint8Array {
  const size = parents.length;
  const mask = new Uint8Array(size * size);
  for (let i = 0; i < size; i++) {
    const parent = parents[i]!;
    if (parent >= 0) mask.copyWithin(i * size, parent * size, parent * size + size);
    mask[i * size + i] = 1;
  }
  return mask;
}

/** Children of every node in slot order, as compressed rows (`offsets[n] .. offsets[n+1]` in `children`). */
export interface ChildLists {
  readonly offsets: Int32Array;
  readonly children: Int32Array;
}

/** The children of every node of `tree`, in slot order (best draft score first for every builder here). */
export function childLists(tree: Pick<DraftTree, 'size' | 'parents'>): ChildLists {
  const counts = new Int32Array(tree.size + 1);
  for (let i = 1; i < tree.size; i++) counts[tree.parents[i]! + 1]!++;
  for (let i = 0; i < tree.size; i++) counts[i + 1]! += counts[i]!;
  const offsets = counts.slice();
  const fill = counts.slice();
  const children = new Int32Array(Math.max(0, tree.size - 1));
  for (let i = 1; i < tree.size; i++) children[fill[tree.parents[i]!]!++] = i;
  return { offsets, children };
}

/** The nodes from the root to `node`, root first. */
export function pathTo(tree: Pick<DraftTree, 'parents' | 'depths'>, node: number): Int32Array {
  const path = new Int32Array(tree.depths[node]! + 1);
  for (let n = node; n >= 0; n = tree.parents[n]!) path[tree.depths[n]!] = n;
  return path;
}

/** Row `row` of `tree.paths` without its `-1` padding. */
export function pathRow(tree: Pick<DraftTree, 'paths' | 'pathWidth'>, row: number): Int32Array {
  const start = row * tree.pathWidth;
  let end = start;
  while (end < start + tree.pathWidth && tree.paths[end]! >= 0) end++;
  return tree.paths.slice(start, end);
}

/**
 * A copy of `tree` whose path rows are sorted lexicographically with `-1` ranked last, as the
 * reference code does at temperature > 0 (`G:cnets.py L954-963`). The verifier of
 * `@gumiho/verify` does not need this: it orders sibling candidates by slot itself. Provided for
 * comparisons with the reference.
 */
export function sortPathsLexicographically(tree: DraftTree): DraftTree {
  const width = tree.pathWidth;
  const order = Array.from({ length: tree.pathCount }, (_, i) => i);
  const key = (row: number, column: number): number => {
    const value = tree.paths[row * width + column]!;
    return value < 0 ? Number.MAX_SAFE_INTEGER : value;
  };
  order.sort((a, b) => {
    for (let c = 0; c < width; c++) {
      const diff = key(a, c) - key(b, c);
      if (diff !== 0) return diff;
    }
    return 0;
  });
  const paths = new Int32Array(tree.paths.length);
  order.forEach((row, i) => paths.set(tree.paths.subarray(row * width, (row + 1) * width), i * width));
  return { ...tree, paths };
}

/**
 * Checks the invariants of an exact tree: sizes, parents before children, depths, ancestor mask,
 * and paths that cover every leaf exactly once with root-to-leaf chains. Throws
 * {@link InvalidArgumentError} describing the first violation. Useful in tests of custom builders.
 */
export function validateDraftTree(tree: DraftTree): void {
  const fail = (message: string): never => {
    throw new InvalidArgumentError('tree', `Invalid draft tree: ${message}.`, {
      fix: 'build trees with createDraftTree, or fix the custom tree builder.',
    });
  };
  const { size } = tree;
  if (tree.tokens.length !== size || tree.parents.length !== size || tree.depths.length !== size || tree.scores.length !== size) {
    fail('array lengths differ from size');
  }
  if (tree.mask.length !== size * size) fail(`mask has ${tree.mask.length} entries, expected ${size * size}`);
  if (tree.paths.length !== tree.pathCount * tree.pathWidth) fail('paths length differs from pathCount * pathWidth');
  if (tree.parents[0] !== -1 || tree.depths[0] !== 0) fail('node 0 must be the root (parent -1, depth 0)');
  for (let i = 1; i < size; i++) {
    const parent = tree.parents[i]!;
    if (parent < 0 || parent >= i) fail(`node ${i} has parent ${parent}`);
    if (tree.depths[i] !== tree.depths[parent]! + 1) fail(`node ${i} has depth ${tree.depths[i]}`);
  }
  if (!tree.exact) return;
  const expected = ancestorMask(tree.parents);
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== tree.mask[i]) fail(`mask entry (${Math.floor(i / size)}, ${i % size}) is ${tree.mask[i]}`);
  }
  const seenLeaf = new Uint8Array(size);
  const hasChild = new Uint8Array(size);
  for (let i = 1; i < size; i++) hasChild[tree.parents[i]!] = 1;
  for (let row = 0; row < tree.pathCount; row++) {
    const path = pathRow(tree, row);
    if (path[0] !== 0) fail(`path ${row} does not start at the root`);
    for (let c = 1; c < path.length; c++) if (tree.parents[path[c]!] !== path[c - 1]) fail(`path ${row} is not a chain at column ${c}`);
    const leaf = path[path.length - 1]!;
    if (hasChild[leaf]) fail(`path ${row} ends at ${leaf}, which is not a leaf`);
    if (seenLeaf[leaf]) fail(`leaf ${leaf} appears in two paths`);
    seenLeaf[leaf] = 1;
  }
  for (let i = 0; i < size; i++) if (!hasChild[i] && !seenLeaf[i]) fail(`leaf ${i} has no path`);
}
