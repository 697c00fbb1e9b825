/**
 * Full Tree Attention (FTA, method digest section 2.5): short candidate paths are extended with
 * the most frequent node of each deeper column, so a short path can accept as many tokens as a
 * long one.
 *
 * - `official`: the reference bookkeeping (`G:cnets.py L969-989`), no new nodes. Short path rows
 *   are padded with borrowed nodes and only the short leaf's mask row gains the borrowed keys.
 *   The result is marked `exact: false`: outputs may differ from the target's.
 * - `exact`: the borrowed tokens become real child nodes of the short leaf, with their own
 *   ancestor mask rows, so verification stays exact. This costs tree slots; see
 *   {@link applyExactFta} for how the budget is kept.
 */
import { InvalidArgumentError, type DraftTree } from '@gumiho/core';
import { createDraftTree } from './tree.js';
import { selectAncestorClosed } from './select.js';

/** How a builder applies Full Tree Attention. */
export type FtaMode = 'off' | 'exact' | 'official';

/** The borrowed node of each padded column, as the official code picks it. */
export interface FtaColumnFill {
  /** Path column (depth) being filled. */
  readonly column: number;
  /** The most frequent node among the column's non-padding entries (ties: smallest slot). */
  readonly node: number;
  /** How many rows had padding in this column (the first `rows` short rows). */
  readonly rows: number;
}

/**
 * The column fills of the official FTA for `tree.paths`: for each column from
 * `width - (padding in row 0)` to the last, the most frequent node and the number of padded rows.
 * Row 0 is assumed to be a shortest path (rows in leaf creation order), as in the reference.
 */
export function ftaColumnFills(tree: Pick<DraftTree, 'paths' | 'pathCount' | 'pathWidth' | 'size'>): FtaColumnFill[] {
  const { paths, pathCount: rows, pathWidth: width } = tree;
  const fills: FtaColumnFill[] = [];
  if (rows === 0) return fills;
  let padColumns = 0;
  for (let c = 0; c < width; c++) if (paths[c]! < 0) padColumns++;
  const counts = new Int32Array(tree.size);
  for (let column = width - padColumns; column < width; column++) {
    counts.fill(0);
    let padded = 0;
    for (let r = 0; r < rows; r++) {
      const node = paths[r * width + column]!;
      if (node < 0) padded++;
      else counts[node]!++;
    }
    let best = -1;
    for (let node = 0; node < tree.size; node++) if (counts[node]! > 0 && (best < 0 || counts[node]! > counts[best]!)) best = node;
    if (best < 0) continue;
    fills.push({ column, node: best, rows: padded });
  }
  return fills;
}

/**
 * Official FTA, exactly as the reference code: every `-1` in a padded column is replaced by the
 * column's most frequent node `m`, and the mask entries `(lastValid[r], m)` are set for the first
 * `k` short rows, where `k` is the column's padding count and `lastValid[r]` the leaf of short row
 * `r`. Borrowed nodes' own mask rows are untouched. Returns a new tree with `exact: false`
 * (unchanged when no row is short).
 *
 * The reference also runs this after sorting rows lexicographically at temperature > 0, where the
 * "short rows first" assumption breaks (digest 2.5, consequence 4). Trees here keep leaf creation
 * order at every temperature, so that misplacement is not reproduced.
 */
export function applyOfficialFta(tree: DraftTree): DraftTree {
  const fills = ftaColumnFills(tree);
  if (fills.length === 0) return tree;
  const { pathCount: rows, pathWidth: width, size } = tree;
  const paths = tree.paths.slice();
  const mask = tree.mask.slice();
  // lastValid[r] for the rows whose last column is padding, assumed to be rows 0..shortRows-1.
  let shortRows = 0;
  for (let r = 0; r < rows; r++) if (paths[r * width + width - 1]! < 0) shortRows++;
  const lastValid = new Int32Array(shortRows);
  for (let r = 0; r < shortRows; r++) {
    let firstPad = 0;
    while (firstPad < width && paths[r * width + firstPad]! >= 0) firstPad++;
    // torch's argmin over a row without padding returns 0, so index -1 reads the last column.
    lastValid[r] = paths[r * width + ((firstPad - 1 + width) % width)]!;
  }
  for (const fill of fills) {
    for (let r = 0; r < rows; r++) if (paths[r * width + fill.column]! < 0) paths[r * width + fill.column] = fill.node;
    for (let r = 0; r < Math.min(fill.rows, shortRows); r++) mask[lastValid[r]! * size + fill.node] = 1;
  }
  return { ...tree, paths, mask, exact: false };
}

/**
 * Exact FTA: for every short path (leaf `b` at depth `d` below the longest), the tokens of the
 * borrowed nodes of columns `d+1 .. width-1` (chosen as by {@link ftaColumnFills}) are added as a
 * chain of real children below `b`. A borrowed copy's score is its parent's score plus the
 * borrowed node's own draft log-probability (its score minus its real parent's score).
 *
 * Budget: the original nodes and all borrowed copies compete for `maxSize - 1` slots by score
 * (ties: original nodes first, then creation order); the kept set is closed under ancestors. So
 * when the tree is already full, a borrowed copy only enters by displacing a lower-scoring node.
 * Duplicate tokens are never added below the same parent.
 */
export function applyExactFta(tree: DraftTree, maxSize: number): DraftTree {
  if (!Number.isInteger(maxSize) || maxSize < 1) {
    throw new InvalidArgumentError('maxSize', `maxSize must be a positive integer, got ${maxSize}.`, { fix: 'pass the tree budget, root included.' });
  }
  const fills = ftaColumnFills(tree);
  if (fills.length === 0 && tree.size <= maxSize) return tree;
  const tokens = Array.from(tree.tokens);
  const parents = Array.from(tree.parents);
  const scores = Array.from(tree.scores);
  const fillByColumn = new Map(fills.map((fill) => [fill.column, fill.node]));
  const width = tree.pathWidth;
  for (let r = 0; r < tree.pathCount; r++) {
    let leafColumn = 0;
    while (leafColumn + 1 < width && tree.paths[r * width + leafColumn + 1]! >= 0) leafColumn++;
    let parent = tree.paths[r * width + leafColumn]!;
    for (let column = leafColumn + 1; column < width; column++) {
      const borrowed = fillByColumn.get(column);
      if (borrowed === undefined) break;
      const logProb = tree.scores[borrowed]! - tree.scores[tree.parents[borrowed]!]!;
      tokens.push(tree.tokens[borrowed]!);
      parents.push(parent);
      scores.push(scores[parent]! + logProb);
      parent = tokens.length - 1;
    }
  }
  const keep = selectAncestorClosed(parents, scores, maxSize - 1, 1);
  const slot = new Int32Array(tokens.length).fill(-1);
  slot[0] = 0;
  const outTokens = [tokens[0]!];
  const outParents = [-1];
  const outScores = [0];
  // Keep original nodes in slot order, then the borrowed copies in creation order: parents still
  // precede children because copies only hang below originals or earlier copies.
  for (const node of keep) {
    slot[node] = outTokens.length;
    outTokens.push(tokens[node]!);
    outParents.push(slot[parents[node]!]!);
    outScores.push(scores[node]!);
  }
  return createDraftTree({ tokens: outTokens, parents: outParents, scores: outScores });
}

/** Applies FTA in `mode` to `tree` (`exact` keeps at most `maxSize` nodes). */
export function applyFta(tree: DraftTree, mode: FtaMode, maxSize: number): DraftTree {
  switch (mode) {
    case 'off':
      return tree;
    case 'official':
      return applyOfficialFta(tree);
    case 'exact':
      return applyExactFta(tree, maxSize);
    default:
      throw new InvalidArgumentError('fta', `Unknown Full Tree Attention mode ${String(mode)}.`, { fix: "use 'off', 'exact' or 'official'." });
  }
}
