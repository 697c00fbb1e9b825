/**
 * Tree builders: search strategies that grow a {@link DraftTree} by querying a {@link DraftHead}
 * through its handle protocol (`observe`, `expand`, `parallel`). Builders never call `endRound`;
 * the decoding loop does. Every builder calls `observe` exactly once per round, even when the
 * budget leaves room for the root only, because `observe` is how the head consumes the newly
 * committed positions.
 */
import {
  InvalidArgumentError,
  ROOT_HANDLE,
  assert,
  type BuildTreeOptions,
  type Candidates,
  type DraftHead,
  type DraftTree,
  type TreeBuilder,
} from '@gumiho/core';
import { applyFta, type FtaMode } from './fta.js';
import { selectAncestorClosed } from './select.js';
import { createDraftTree, sortPathsLexicographically } from './tree.js';

function checkPositiveInteger(name: string, value: unknown, example: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(name, `${name} must be a positive integer, got ${String(value)}.`, { fix: `use a value such as ${example}.` });
  }
}

function checkMaxSize(maxSize: number): void {
  checkPositiveInteger('maxSize', maxSize, '64 (the root counts as one node)');
}

/**
 * Candidate nodes of one round, a tree rooted at index 0 in creation order. Builders add every
 * candidate they consider, then keep the best ones with {@link selectAncestorClosed}.
 */
class NodePool {
  readonly tokens: number[];
  readonly parents: number[] = [-1];
  readonly scores: number[] = [0];

  constructor(root: number) {
    this.tokens = [root];
  }

  get size(): number {
    return this.tokens.length;
  }

  add(token: number, parent: number, score: number): number {
    this.tokens.push(token);
    this.parents.push(parent);
    this.scores.push(score);
    return this.tokens.length - 1;
  }

  /** The tree of the best `budget - 1` nodes (root included: `budget` nodes at most), creation order. */
  toTree(budget: number): DraftTree {
    const keep = selectAncestorClosed(this.parents, this.scores, budget - 1, 1);
    return this.treeOf(keep);
  }

  /** The tree of the nodes `keep` (ascending, ancestor-closed), root first. */
  treeOf(keep: ArrayLike<number>): DraftTree {
    const slot = new Int32Array(this.size).fill(-1);
    slot[0] = 0;
    const tokens = [this.tokens[0]!];
    const parents = [-1];
    const scores = [0];
    for (let i = 0; i < keep.length; i++) {
      const node = keep[i]!;
      const parentSlot = slot[this.parents[node]!]!;
      assert(parentSlot >= 0, () => `tree builder kept node ${node} without its parent ${this.parents[node]}`);
      slot[node] = tokens.length;
      tokens.push(this.tokens[node]!);
      parents.push(parentSlot);
      scores.push(this.scores[node]!);
    }
    return createDraftTree({ tokens, parents, scores });
  }
}

function token(candidates: Candidates, row: number, index: number): number {
  return index < candidates.k ? candidates.tokens[row * candidates.k + index]! : -1;
}

function logProb(candidates: Candidates, row: number, index: number): number {
  return candidates.logProbs[row * candidates.k + index]!;
}

/**
 * Indices of the `k` largest scores, best first; ties go to the smaller index; NaN ranks last.
 * A size-k min-heap: O(n log k), which matters for the MLP levels (k = 35 of 35 × 35).
 */
function topIndices(scores: readonly number[], k: number): number[] {
  const n = scores.length;
  const count = Math.min(Math.max(0, k), n);
  if (count === 0) return [];
  const value = (i: number): number => {
    const v = scores[i]!;
    return Number.isNaN(v) ? -Infinity : v;
  };
  // a is worse than b: lower score, or equal score and larger index.
  const worse = (a: number, b: number): boolean => {
    const va = value(a);
    const vb = value(b);
    return va < vb || (va === vb && a > b);
  };
  const heap: number[] = [];
  const siftDown = (start: number): void => {
    let node = start;
    for (;;) {
      const left = 2 * node + 1;
      if (left >= heap.length) return;
      let child = left;
      if (left + 1 < heap.length && worse(heap[left + 1]!, heap[left]!)) child = left + 1;
      if (!worse(heap[child]!, heap[node]!)) return;
      [heap[child], heap[node]] = [heap[node]!, heap[child]!];
      node = child;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < count) {
      heap.push(i);
      let node = heap.length - 1;
      while (node > 0) {
        const parent = (node - 1) >> 1;
        if (!worse(heap[node]!, heap[parent]!)) break;
        [heap[node], heap[parent]] = [heap[parent]!, heap[node]!];
        node = parent;
      }
    } else if (worse(heap[0]!, i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
}

async function observe(options: BuildTreeOptions, topK: number): Promise<Candidates> {
  const expansion = await options.head.observe({ hidden: options.hidden, tokens: options.tokens, context: options.context, topK });
  return expansion.candidates;
}

// ---------------------------------------------------------------------------------------------
// Chain

/** Options of {@link createChainBuilder}. */
export interface ChainBuilderOptions {
  /** Draft tokens per round (the chain's length below the root). */
  readonly depth: number;
}

/**
 * A chain of the head's top-1 token at each level: the serial part first (`observe`, then
 * `expand` while the head has serial levels), then the parallel heads once, from the branch node
 * at `info.parallelBranchDepth` (Medusa: the root; Gumiho: depth 2). Stops early when the head
 * has no more levels or proposes no candidate.
 */
export function createChainBuilder(options: ChainBuilderOptions): TreeBuilder {
  const depth = options.depth;
  checkPositiveInteger('depth', depth, '5');
  return {
    id: `chain(${depth})`,
    async build(build) {
      checkMaxSize(build.maxSize);
      const { head } = build;
      const info = head.info;
      const want = Math.min(depth, build.maxSize - 1);
      const rootCandidates = await observe(build, 1);
      const tokens = [build.root];
      const scores = [0];
      const handles: number[] = [ROOT_HANDLE];
      let serial: Candidates | undefined = info.serialDepth >= 1 ? rootCandidates : undefined;
      let parallel: readonly Candidates[] | undefined;
      let parallelBase = -1;
      while (tokens.length - 1 < want) {
        const d = tokens.length - 1;
        let next: number;
        let lp: number;
        if (serial && d + 1 <= info.serialDepth) {
          next = token(serial, 0, 0);
          lp = next >= 0 ? logProb(serial, 0, 0) : -Infinity;
        } else if (!parallel && info.parallelHeads > 0 && d === info.parallelBranchDepth) {
          const b = info.parallelBranchDepth;
          parallel = (
            await head.parallel({
              first: Int32Array.of(b >= 2 ? handles[1]! : ROOT_HANDLE),
              parents: Int32Array.of(b >= 1 ? handles[d - 1]! : ROOT_HANDLE),
              tokens: Int32Array.of(tokens[d]!),
              topK: 1,
            })
          ).heads;
          parallelBase = d;
          continue;
        } else if (parallel && d - parallelBase < parallel.length) {
          const candidates = parallel[d - parallelBase]!;
          next = token(candidates, 0, 0);
          lp = next >= 0 ? logProb(candidates, 0, 0) : -Infinity;
        } else {
          break;
        }
        if (next < 0) break;
        tokens.push(next);
        scores.push(scores[d]! + lp);
        const nd = d + 1;
        serial = undefined;
        if (nd + 1 <= info.serialDepth && nd + 1 <= want) {
          const expansion = await head.expand({ parents: Int32Array.of(handles[nd - 1]!), tokens: Int32Array.of(next), topK: 1 });
          handles[nd] = expansion.handles[0]!;
          serial = expansion.candidates;
        }
      }
      const parents = tokens.map((_, i) => i - 1);
      return createDraftTree({ tokens, parents, scores });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Static tree

/** Options of {@link createStaticTreeBuilder}. */
export interface StaticTreeBuilderOptions {
  /**
   * The tree as paths of top-k indices, Medusa style: `[0]` is the head's best depth-1 token,
   * `[0, 1]` the second-best child of that node, and so on. Every prefix of a path must be listed.
   */
  readonly paths: readonly (readonly number[])[];
}

interface StaticNode {
  readonly path: readonly number[];
  readonly depth: number;
  readonly index: number;
  /** Index of the parent in the sorted node list, -1 for depth 1 (child of the root). */
  readonly parent: number;
}

function prepareStaticTree(paths: readonly (readonly number[])[]): StaticNode[] {
  if (!Array.isArray(paths) || paths.length === 0) {
    throw new InvalidArgumentError('paths', 'A static tree needs at least one path.', { fix: 'pass paths such as [[0], [1], [0, 0]].' });
  }
  const keyOf = (path: readonly number[]): string => path.join(',');
  const unique = new Map<string, readonly number[]>();
  for (const path of paths) {
    if (!Array.isArray(path) || path.length === 0 || !path.every((i) => Number.isInteger(i) && i >= 0)) {
      throw new InvalidArgumentError('paths', `Invalid static tree path ${JSON.stringify(path)}.`, {
        fix: 'every path is a non-empty list of top-k indices (integers >= 0), e.g. [0, 1].',
      });
    }
    unique.set(keyOf(path), path);
  }
  const sorted = [...unique.values()].sort((a, b) => {
    if (a.length !== b.length) return a.length - b.length;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return 0;
  });
  const indexOf = new Map<string, number>();
  const nodes: StaticNode[] = [];
  for (const path of sorted) {
    let parent = -1;
    if (path.length > 1) {
      const found = indexOf.get(keyOf(path.slice(0, -1)));
      if (found === undefined) {
        throw new InvalidArgumentError('paths', `The static tree lists ${JSON.stringify(path)} but not its prefix ${JSON.stringify(path.slice(0, -1))}.`, {
          fix: 'list every prefix of every path (the tree must be closed under parents).',
        });
      }
      parent = found;
    }
    indexOf.set(keyOf(path), nodes.length);
    nodes.push({ path, depth: path.length, index: path[path.length - 1]!, parent });
  }
  return nodes;
}

/**
 * A fixed tree shape given as paths of top-k indices (Medusa's "sparse tree"). Levels up to the
 * head's serial depth are filled by `observe` and `expand` (one batched `expand` per level);
 * deeper levels by one `parallel` call on the branch nodes at `info.parallelBranchDepth` (for
 * Medusa the root), where a node at depth `d` takes entry `index` of head `d - branchDepth - 1`
 * of its branch. Nodes the head cannot fill (no such level, or no candidate) are dropped with
 * their subtrees; when the tree exceeds `maxSize` the last nodes in (depth, lexicographic) order
 * are cut.
 */
export function createStaticTreeBuilder(options: StaticTreeBuilderOptions): TreeBuilder {
  const spec = prepareStaticTree(options.paths);
  const maxIndexAtDepth = (nodes: readonly StaticNode[], depth: number): number =>
    nodes.reduce((max, node) => (node.depth === depth ? Math.max(max, node.index) : max), -1);
  return {
    id: `static(${spec.length})`,
    async build(build) {
      checkMaxSize(build.maxSize);
      const { head } = build;
      const info = head.info;
      const nodes = spec.slice(0, build.maxSize - 1);
      const maxDepth = nodes.reduce((max, node) => Math.max(max, node.depth), 0);
      const rootCandidates = await observe(build, Math.max(1, maxIndexAtDepth(nodes, 1) + 1));
      // Per static node: slot in the output tree (-1 = dropped / not yet placed), serial handle,
      // serial candidates for its children (row in a Candidates), parallel branch row.
      const slot = new Int32Array(nodes.length).fill(-1);
      const handle = new Int32Array(nodes.length).fill(-1);
      const childSource: ({ candidates: Candidates; row: number } | undefined)[] = new Array(nodes.length);
      const branchRow = new Int32Array(nodes.length).fill(-1);
      const tokens = [build.root];
      const parents = [-1];
      const scores = [0];
      let parallel: readonly Candidates[] | undefined;
      const b = info.parallelBranchDepth;
      for (let d = 1; d <= maxDepth; d++) {
        const level = nodes.map((node, i) => ({ node, i })).filter(({ node }) => node.depth === d);
        const alive = level.filter(({ node }) => node.parent < 0 || slot[node.parent]! >= 0);
        if (alive.length === 0) break;
        const useSerial = d <= info.serialDepth;
        if (useSerial && d >= 2) {
          // Expand the alive parents (depth d-1) that have children at depth d, in one call.
          const parentIds = [...new Set(alive.map(({ node }) => node.parent))];
          const topK = Math.max(...alive.map(({ node }) => node.index)) + 1;
          const expansion = await head.expand({
            parents: Int32Array.from(parentIds, (p) => {
              const grand = nodes[p]!.parent;
              return grand < 0 ? ROOT_HANDLE : handle[grand]!;
            }),
            tokens: Int32Array.from(parentIds, (p) => tokens[slot[p]!]!),
            topK,
          });
          parentIds.forEach((p, row) => {
            handle[p] = expansion.handles[row]!;
            childSource[p] = { candidates: expansion.candidates, row };
          });
        } else if (!useSerial && !parallel) {
          if (info.parallelHeads <= 0 || b >= d || b > info.serialDepth) break;
          // Branch nodes: the alive nodes at depth b (the root when b = 0) with descendants here.
          const branches = b === 0 ? [-1] : [...new Set(alive.map(({ node }) => ancestorAtDepth(nodes, node, b)))];
          const deeper = nodes.filter((node) => node.depth > b && node.depth <= b + info.parallelHeads);
          const topK = Math.max(...deeper.map((node) => node.index)) + 1;
          parallel = (
            await head.parallel({
              first: Int32Array.from(branches, (br) => (b >= 2 ? handle[ancestorIndexAtDepth(nodes, br, 1)]! : ROOT_HANDLE)),
              parents: Int32Array.from(branches, (br) => (br < 0 || nodes[br]!.parent < 0 ? ROOT_HANDLE : handle[nodes[br]!.parent]!)),
              tokens: Int32Array.from(branches, (br) => (br < 0 ? build.root : tokens[slot[br]!]!)),
              topK,
            })
          ).heads;
          branches.forEach((br, row) => {
            if (br >= 0) branchRow[br] = row;
          });
        }
        for (const { node, i } of alive) {
          let candidate = -1;
          let lp = -Infinity;
          if (useSerial) {
            const source = node.parent < 0 ? { candidates: rootCandidates, row: 0 } : childSource[node.parent];
            if (source) {
              candidate = token(source.candidates, source.row, node.index);
              if (candidate >= 0) lp = logProb(source.candidates, source.row, node.index);
            }
          } else if (parallel) {
            const headIndex = d - b - 1;
            const branch = b === 0 ? -1 : ancestorIndexAtDepth(nodes, i, b);
            const row = b === 0 ? 0 : branchRow[branch]!;
            const candidates = parallel[headIndex];
            if (candidates && row >= 0) {
              candidate = token(candidates, row, node.index);
              if (candidate >= 0) lp = logProb(candidates, row, node.index);
            }
          }
          if (candidate < 0) continue;
          slot[i] = tokens.length;
          tokens.push(candidate);
          parents.push(node.parent < 0 ? 0 : slot[node.parent]!);
          scores.push(scores[node.parent < 0 ? 0 : slot[node.parent]!]! + lp);
        }
      }
      return createDraftTree({ tokens, parents, scores });
    },
  };
}

function ancestorIndexAtDepth(nodes: readonly StaticNode[], index: number, depth: number): number {
  let i = index;
  while (i >= 0 && nodes[i]!.depth > depth) i = nodes[i]!.parent;
  return i;
}

function ancestorAtDepth(nodes: readonly StaticNode[], node: StaticNode, depth: number): number {
  if (node.depth === depth) return nodes.indexOf(node);
  return ancestorIndexAtDepth(nodes, node.parent, depth);
}

// ---------------------------------------------------------------------------------------------
// EAGLE-2 dynamic tree

/** Options of {@link createDynamicTreeBuilder}. */
export interface DynamicTreeBuilderOptions {
  /** Beam width and children per expanded node (EAGLE-2: 10). */
  readonly topK: number;
  /** Expansion steps after the first level; the tree is at most `depth + 1` deep (EAGLE-2: 5). */
  readonly depth: number;
  /** Nodes per tree, root included (EAGLE-2: 60). */
  readonly totalTokens: number;
}

/**
 * EAGLE-2's dynamic tree (digest 2.1): the root's top-K children, then `depth` times: expand the
 * beam (K nodes) with the serial part, add all K×K children to the pool with cumulative
 * log-probability scores, keep the top K as the next beam. Finally the best `totalTokens - 1` pool
 * nodes (and at most `maxSize - 1`), in creation order. Uses the serial part only and stops at the
 * head's `serialDepth`.
 */
export function createDynamicTreeBuilder(options: DynamicTreeBuilderOptions): TreeBuilder {
  const { topK, depth, totalTokens } = options;
  checkPositiveInteger('topK', topK, '10');
  checkPositiveInteger('depth', depth, '5');
  checkPositiveInteger('totalTokens', totalTokens, '60');
  return {
    id: `eagle2(k=${topK},depth=${depth},total=${totalTokens})`,
    async build(build) {
      checkMaxSize(build.maxSize);
      const { head } = build;
      const budget = Math.min(totalTokens, build.maxSize);
      const rootCandidates = await observe(build, topK);
      const pool = new NodePool(build.root);
      if (budget <= 1 || head.info.serialDepth < 1) return pool.toTree(1);
      const handles: number[] = [ROOT_HANDLE];
      let beam: number[] = [];
      for (let c = 0; c < rootCandidates.k; c++) {
        const t = token(rootCandidates, 0, c);
        if (t >= 0) beam.push(pool.add(t, 0, logProb(rootCandidates, 0, c)));
      }
      for (let step = 0; step < depth && beam.length > 0; step++) {
        if (step + 2 > head.info.serialDepth) break; // children of the beam would be at depth step + 2
        const expansion = await head.expand({
          parents: Int32Array.from(beam, (node) => handles[pool.parents[node]!]!),
          tokens: Int32Array.from(beam, (node) => pool.tokens[node]!),
          topK,
        });
        const created: number[] = [];
        beam.forEach((node, row) => {
          handles[node] = expansion.handles[row]!;
          const candidates = expansion.candidates;
          for (let c = 0; c < candidates.k; c++) {
            const t = token(candidates, row, c);
            if (t >= 0) created.push(pool.add(t, node, pool.scores[node]! + logProb(candidates, row, c)));
          }
        });
        beam = topIndices(
          created.map((node) => pool.scores[node]!),
          topK,
        ).map((i) => created[i]!);
      }
      return pool.toTree(budget);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Gumiho hybrid tree

/** Options of {@link createGumihoTreeBuilder}; defaults are the official eval scripts' values. */
export interface GumihoTreeBuilderOptions {
  /** Serial beam width and per-node top-k (default 14). */
  readonly topK?: number;
  /** Per node, candidates taken from each MLP head (default 35). */
  readonly mlpTopK?: number;
  /** Nodes kept per MLP level, by cumulative score (default 35). */
  readonly pruning?: number;
  /** Nodes per tree, root included (default 64). */
  readonly totalTokens?: number;
  /** Full Tree Attention: `off` (default), `exact` (real extra nodes) or `official` (reference bookkeeping, inexact). */
  readonly fta?: FtaMode;
  /**
   * With `fta: 'official'`: sort the rows lexicographically before FTA, as the reference does at
   * temperature > 0 (digest 2.4 and 2.5, consequence 4). The bookkeeping then assumes short rows
   * come first when they do not, so FTA does nothing when row 0 is full length, and may add mask
   * entries to the wrong leaves otherwise. Only for reproducing the official T > 0 numbers. Default false.
   */
  readonly ftaLexicographicRows?: boolean;
  /** Quirk Q1: level-2 siblings attend causally to each other while drafting (official code). Default false. */
  readonly q1CausalSiblings?: boolean;
  /** Quirk Q2: the MLP input of branch r uses the r-th level-1 node instead of its real parent (official code). Default false. */
  readonly q2MisalignedMlpToken?: boolean;
}

/**
 * Gumiho's hybrid tree (digest 2.3): serial level 1 from `observe` (top-K), serial level 2 from
 * one `expand` of the K level-1 nodes (top-K of the K×K children by cumulative score), then one
 * `parallel` call on the K depth-2 branches gives the MLP levels 3.. (one per parallel head): per
 * node the top-`mlpTopK` tokens of its branch's head, then the best `pruning` of the level by
 * cumulative score. A node's children always come from its own branch's head. Finally the best
 * `totalTokens - 1` nodes (at most `maxSize - 1`), in creation order, ancestors guaranteed (Q3),
 * then Full Tree Attention per `fta`.
 *
 * @throws InvalidArgumentError when the head has fewer than 2 serial levels, no parallel heads, or
 *   a parallel branch depth other than 2 (use the dynamic or static builder for such heads).
 */
export function createGumihoTreeBuilder(options: GumihoTreeBuilderOptions = {}): TreeBuilder {
  const topK = options.topK ?? 14;
  const mlpTopK = options.mlpTopK ?? 35;
  const pruning = options.pruning ?? 35;
  const totalTokens = options.totalTokens ?? 64;
  const fta = options.fta ?? 'off';
  const q1 = options.q1CausalSiblings ?? false;
  const q2 = options.q2MisalignedMlpToken ?? false;
  const lexicographic = options.ftaLexicographicRows ?? false;
  checkPositiveInteger('topK', topK, '14');
  checkPositiveInteger('mlpTopK', mlpTopK, '35');
  checkPositiveInteger('pruning', pruning, '35');
  checkPositiveInteger('totalTokens', totalTokens, '64');
  if (fta !== 'off' && fta !== 'exact' && fta !== 'official') {
    throw new InvalidArgumentError('fta', `Unknown Full Tree Attention mode ${String(fta)}.`, { fix: "use 'off', 'exact' or 'official'." });
  }
  return {
    id: `gumiho(k=${topK},mlp=${mlpTopK},prune=${pruning},total=${totalTokens},fta=${fta}${lexicographic ? ',lex' : ''}${q1 ? ',q1' : ''}${q2 ? ',q2' : ''})`,
    async build(build) {
      checkMaxSize(build.maxSize);
      const { head } = build;
      checkGumihoHead(head);
      const budget = Math.min(totalTokens, build.maxSize);
      const level1 = await observe(build, topK);
      const pool = new NodePool(build.root);
      if (budget <= 1) return pool.toTree(1);

      // Serial level 1.
      const l1: number[] = [];
      for (let c = 0; c < level1.k && l1.length < topK; c++) {
        const t = token(level1, 0, c);
        if (t >= 0) l1.push(pool.add(t, 0, logProb(level1, 0, c)));
      }
      if (l1.length === 0) return pool.toTree(1);

      // Serial level 2: expand every level-1 node, keep the top K of the K×K children.
      const expansion = await head.expand({
        parents: new Int32Array(l1.length).fill(ROOT_HANDLE),
        tokens: Int32Array.from(l1, (node) => pool.tokens[node]!),
        topK,
        maskMode: q1 ? 'causal' : 'tree',
      });
      const h1 = expansion.handles;
      const flatParent: number[] = [];
      const flatToken: number[] = [];
      const flatScore: number[] = [];
      l1.forEach((node, row) => {
        for (let c = 0; c < expansion.candidates.k; c++) {
          const t = token(expansion.candidates, row, c);
          if (t < 0) continue;
          flatParent.push(row);
          flatToken.push(t);
          flatScore.push(pool.scores[node]! + logProb(expansion.candidates, row, c));
        }
      });
      const selected = topIndices(flatScore, topK);
      if (selected.length === 0) return finish(pool, budget, fta, lexicographic);
      const l2 = selected.map((i) => pool.add(flatToken[i]!, l1[flatParent[i]!]!, flatScore[i]!));
      const l2ParentRow = selected.map((i) => flatParent[i]!);

      // Parallel levels: one call for all depth-2 branches.
      const { heads } = await head.parallel({
        first: Int32Array.from(l2ParentRow, (row, r) => (q2 && r < h1.length ? h1[r]! : h1[row]!)),
        parents: Int32Array.from(l2ParentRow, (row) => h1[row]!),
        tokens: Int32Array.from(l2, (node) => pool.tokens[node]!),
        topK: mlpTopK,
      });
      let current = l2;
      let branch = l2.map((_, r) => r);
      const levels = Math.min(head.info.parallelHeads, heads.length);
      for (let m = 0; m < levels && current.length > 0; m++) {
        const candidates = heads[m]!;
        const parentLocal: number[] = [];
        const tokens: number[] = [];
        const scores: number[] = [];
        current.forEach((node, local) => {
          const row = branch[local]!;
          for (let c = 0; c < Math.min(mlpTopK, candidates.k); c++) {
            const t = token(candidates, row, c);
            if (t < 0) continue;
            parentLocal.push(local);
            tokens.push(t);
            scores.push(pool.scores[node]! + logProb(candidates, row, c));
          }
        });
        const kept = topIndices(scores, pruning);
        const next = kept.map((i) => pool.add(tokens[i]!, current[parentLocal[i]!]!, scores[i]!));
        branch = kept.map((i) => branch[parentLocal[i]!]!);
        current = next;
      }
      return finish(pool, budget, fta, lexicographic);
    },
  };
}

function finish(pool: NodePool, budget: number, fta: FtaMode, lexicographic: boolean): DraftTree {
  const tree = pool.toTree(budget);
  return applyFta(lexicographic && fta === 'official' ? sortPathsLexicographically(tree) : tree, fta, budget);
}

function checkGumihoHead(head: DraftHead): void {
  const info = head.info;
  if (info.serialDepth < 2 || info.parallelHeads < 1 || info.parallelBranchDepth !== 2) {
    throw new InvalidArgumentError(
      'head',
      `The Gumiho tree builder needs a head with >= 2 serial levels, parallel heads and branch depth 2; ${head.id} has serialDepth ${info.serialDepth}, ${info.parallelHeads} parallel heads, branch depth ${info.parallelBranchDepth}.`,
      { fix: 'use createDynamicTreeBuilder (serial heads) or createStaticTreeBuilder (Medusa-style heads) for this head.' },
    );
  }
}
