/**
 * Contracts of drafting: draft heads (what proposes tokens), draft trees (what the target
 * verifies) and tree builders (the search strategies that query a head to grow a tree).
 *
 * A draft head is queried through *node handles*. A round goes:
 * 1. `observe()` consumes the pairs `(hidden state f_p, next token x_{p+1})` of the newly committed
 *    positions (EAGLE's token shift) and returns the candidates for the root's children
 *    (depth 1), with the handle {@link ROOT_HANDLE} standing for the root.
 * 2. `expand()` runs the head's serial part (a small Transformer, or n-gram lookup) on frontier
 *    nodes, each given by its token and its parent's handle; it returns one new handle per node
 *    and the candidates for each node's children.
 * 3. `parallel()` runs the head's parallel heads (Gumiho's MLPs, Medusa's heads) once for a set of
 *    branches and returns candidates for several further depths at once.
 * 4. `endRound()` drops everything speculative; only committed context remains.
 *
 * Tree builders (chain, static, EAGLE-2 dynamic, Gumiho hybrid) decide which nodes to expand and
 * which to keep. They live in their own package and reach heads only through this contract.
 */

/** Handle of the root node (the last committed position's draft state) in every round. */
export const ROOT_HANDLE = 0;

/**
 * Top-k candidates for the children of several nodes: row `r` holds `k` tokens and their draft
 * log-probabilities, best first. A token of -1 means "no candidate" (its log-prob is -Infinity).
 */
export interface Candidates {
  readonly rows: number;
  readonly k: number;
  /** `[rows * k]` */
  readonly tokens: Int32Array;
  /** `[rows * k]` */
  readonly logProbs: Float32Array;
}

/** Input of {@link DraftHead.observe}. */
export interface ObserveOptions {
  /** Target's final post-norm hidden states of the newly committed positions, `[m, hiddenSize]`. */
  readonly hidden: Float32Array;
  /** The token that follows each of those positions, `[m]`; the last one is the next root. */
  readonly tokens: Int32Array;
  /** All committed tokens, the root included (for lookup-style heads). */
  readonly context: Int32Array;
  /** How many children of the root to return. */
  readonly topK: number;
}

/** Input of {@link DraftHead.expand}. */
export interface ExpandOptions {
  /** Handle of each node's parent. */
  readonly parents: Int32Array;
  /** Each node's token. */
  readonly tokens: Int32Array;
  /** How many children to return per node. */
  readonly topK: number;
  /**
   * How the new speculative rows see each other: `tree` (each sees its own ancestors, as EAGLE-2
   * does) or `causal` (each also sees every earlier speculative row: Gumiho's quirk Q1).
   * Default `tree`.
   */
  readonly maskMode?: 'tree' | 'causal';
}

/** Output of {@link DraftHead.observe} and {@link DraftHead.expand}. */
export interface Expansion {
  /** One handle per input node (for `observe`: `[ROOT_HANDLE]`). */
  readonly handles: Int32Array;
  /** Children candidates, one row per input node. */
  readonly candidates: Candidates;
}

/**
 * Input of {@link DraftHead.parallel}: one row per branch.
 *
 * For Gumiho (section 1.1 of the method digest) branch `r` feeds the MLP heads with
 * `z = [fused(first[r]) ; fc([e(tokens[r]) ; out(parents[r])])]`, where `fused(h)` is the fused
 * input the serial part consumed for node `h` and `out(h)` its output state. With the official
 * code's quirk Q2, `first[r]` is the r-th depth-1 node rather than the branch's real parent.
 * Medusa-style heads ignore all three arrays and use the root's target hidden state.
 */
export interface ParallelOptions {
  readonly first?: Int32Array;
  readonly parents?: Int32Array;
  readonly tokens?: Int32Array;
  /** Candidates per branch and head. */
  readonly topK: number;
}

/** Output of {@link DraftHead.parallel}. */
export interface ParallelExpansion {
  /** One entry per parallel head (head `i` predicts `i + 1` levels below the branch node). */
  readonly heads: readonly Candidates[];
}

/** Static facts about a draft head. */
export interface DraftHeadInfo {
  /** Levels the serial part can draft in one round (Infinity for autoregressive heads, 0 for none). */
  readonly serialDepth: number;
  /** Number of parallel heads (0 for none). */
  readonly parallelHeads: number;
  /** Depth of the branch nodes that `parallel` expects (Gumiho: 2; Medusa: 0, the root). */
  readonly parallelBranchDepth: number;
}

/** A draft head: proposes candidate tokens. See the module comment for the protocol. */
export interface DraftHead {
  readonly specificationVersion: 'v1';
  /** Identifier such as `gumiho`, `eagle2`, `medusa`, `lookup`. */
  readonly id: string;
  readonly info: DraftHeadInfo;
  /** Forgets all context (a new sequence starts). */
  reset(): void;
  /** Consumes the newly committed positions; returns the root's children. */
  observe(options: ObserveOptions): Promise<Expansion>;
  /** Runs the serial part on frontier nodes. */
  expand(options: ExpandOptions): Promise<Expansion>;
  /** Runs the parallel heads on branches. */
  parallel(options: ParallelOptions): Promise<ParallelExpansion>;
  /** Drops the round's speculative state. */
  endRound(): void;
  /** Frees compiled programs. */
  dispose(): void;
}

/**
 * A draft tree, as verified by the target: node 0 is the root (the token the target already
 * chose), every other node is a drafted token. Nodes are in creation order, parents before
 * children.
 */
export interface DraftTree {
  /** Number of nodes, root included. */
  readonly size: number;
  /** Token of each node `[size]`. */
  readonly tokens: Int32Array;
  /** Parent of each node `[size]`; -1 for the root. */
  readonly parents: Int32Array;
  /** Depth of each node `[size]` (root 0). The target's position id is committed length + depth. */
  readonly depths: Int32Array;
  /** Cumulative draft log-probability of each node `[size]` (root 0). */
  readonly scores: Float32Array;
  /** Attention mask `[size * size]`, row = query, 1 = may attend. Ancestors and self, unless FTA changed it. */
  readonly mask: Uint8Array;
  /** Root-to-leaf paths (`retrieveIndices`), `[pathCount * pathWidth]`, -1 padded. */
  readonly paths: Int32Array;
  readonly pathCount: number;
  /** Longest path, root included. */
  readonly pathWidth: number;
  /**
   * False when the tree's mask or paths deviate from exact tree attention (the `official` Full
   * Tree Attention mode); then outputs are not guaranteed to equal the target's.
   */
  readonly exact: boolean;
}

/** Input of {@link TreeBuilder.build}. */
export interface BuildTreeOptions extends Omit<ObserveOptions, 'topK'> {
  /** The head to query. */
  readonly head: DraftHead;
  /** The root token. */
  readonly root: number;
  /** Largest tree (root included) the caller can verify this round. */
  readonly maxSize: number;
}

/** A search strategy that grows a {@link DraftTree} by querying a {@link DraftHead}. */
export interface TreeBuilder {
  readonly id: string;
  build(options: BuildTreeOptions): Promise<DraftTree>;
}
