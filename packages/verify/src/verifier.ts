/**
 * Tree verification (method digest section 3.1, step 3): which drafted tokens the target accepts,
 * and the target's next (bonus) token.
 *
 * Both rules work on the candidate rows `tree.paths` (root-to-leaf paths), as the reference does,
 * so trees whose rows run through borrowed nodes (official Full Tree Attention, `exact: false`)
 * are verified exactly as the reference would. For exact trees the rows are the tree's branches.
 *
 * The history a node's distribution sees is the committed tokens (root included) followed by the
 * row's tokens up to that node, so history-dependent processors (repetition penalty) see exactly
 * what plain decoding would have seen.
 */
import {
  InvalidArgumentError,
  ShapeMismatchError,
  type DraftTree,
  type Sampler,
  type TokenHistory,
  type Verifier,
  type VerifyOptions,
  type VerifyResult,
} from '@gumiho/core';

/** Options of {@link createVerifier}. */
export interface VerifierOptions {
  /**
   * `auto` (default): greedy acceptance when `sampler.greedy`, otherwise multi-candidate rejection
   * sampling. `greedy` / `sampling` force one rule (sampling with a greedy sampler is still exact:
   * its distributions are one-hot).
   */
  readonly rule?: 'auto' | 'greedy' | 'sampling';
}

/** Per-call state shared by both rules. */
class Round {
  readonly width: number;
  readonly history: Int32Array;
  readonly base: number;

  constructor(
    readonly tree: DraftTree,
    readonly logits: Float32Array,
    readonly vocab: number,
    readonly sampler: Sampler,
    history: TokenHistory,
  ) {
    this.width = tree.pathWidth;
    this.base = history.length;
    const needed = history.length + tree.pathWidth;
    if (history.tokens.length >= needed) {
      this.history = history.tokens;
    } else {
      // No room after the history: work on a copy.
      this.history = new Int32Array(needed);
      this.history.set(history.tokens.subarray(0, history.length));
    }
  }

  node(row: number, column: number): number {
    return column < this.width ? this.tree.paths[row * this.width + column]! : -1;
  }

  row(node: number): Float32Array {
    return this.logits.subarray(node * this.vocab, (node + 1) * this.vocab);
  }

  /** Writes the tokens of `row`'s columns 1..column into the history; returns the history view. */
  historyFor(row: number, column: number): TokenHistory {
    for (let j = 1; j <= column; j++) this.history[this.base + j - 1] = this.tree.tokens[this.node(row, j)]!;
    return { tokens: this.history, length: this.base + column };
  }
}

function check(options: VerifyOptions): void {
  const { tree, logits, vocabSize } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 1) {
    throw new InvalidArgumentError('vocabSize', `vocabSize must be a positive integer, got ${vocabSize}.`, { fix: 'pass the target vocabulary size.' });
  }
  if (logits.length < tree.size * vocabSize) {
    throw new ShapeMismatchError('verify logits', [tree.size, vocabSize], [logits.length / vocabSize, vocabSize], {
      fix: 'pass the target logits of every tree node, in node order (logitRows 0..size-1).',
    });
  }
  if (tree.pathCount < 1 || tree.paths[0] !== 0) {
    throw new InvalidArgumentError('tree', 'The tree has no candidate rows starting at the root.', {
      fix: 'build trees with @gumiho/tree (createDraftTree) so that paths are filled in.',
    });
  }
}

/**
 * Greedy acceptance (T = 0), as the reference's `evaluate_posterior`: the target's choice at each
 * node is `sampler.pick` of that node's logits; a row's accepted length is its number of leading
 * drafts equal to the choice at the previous node; the first row with the longest accepted length
 * wins; the bonus token is the choice after its last accepted node.
 */
export function verifyGreedy(options: VerifyOptions): VerifyResult {
  check(options);
  const round = new Round(options.tree, options.logits, options.vocabSize, options.sampler, options.history);
  const { tree } = options;
  // The choice at (row, column) depends on the node and the row's prefix. In an exact tree the
  // node determines its prefix; otherwise (borrowed nodes) key by the whole prefix of nodes.
  const memo = new Map<number | string, number>();
  const choice = (row: number, column: number): number => {
    const node = round.node(row, column);
    let key: number | string = node;
    if (!tree.exact) {
      key = '';
      for (let j = 0; j <= column; j++) key += `${round.node(row, j)},`;
    }
    let value = memo.get(key);
    if (value === undefined) {
      value = options.sampler.pick(round.row(node), round.historyFor(row, column));
      memo.set(key, value);
    }
    return value;
  };
  let bestRow = 0;
  let bestLength = -1;
  for (let row = 0; row < tree.pathCount; row++) {
    let accepted = 0;
    for (let column = 0; column + 1 < round.width; column++) {
      const next = round.node(row, column + 1);
      if (next < 0 || tree.tokens[next] !== choice(row, column)) break;
      accepted++;
    }
    if (accepted > bestLength) {
      bestLength = accepted;
      bestRow = row;
    }
  }
  const acceptedNodes = new Int32Array(bestLength + 1);
  for (let j = 0; j <= bestLength; j++) acceptedNodes[j] = round.node(bestRow, j);
  return { acceptedNodes, acceptedLength: bestLength, nextToken: choice(bestRow, bestLength) };
}

/**
 * Lossless multi-candidate rejection sampling for trees with deterministic drafts (SpecInfer-style,
 * q = δ; the reference's T > 0 rule with the processors applied to every distribution). At each
 * depth, `p` is the processed distribution of the accepted node (`sampler.distribution`); its
 * distinct child tokens (rows continuing the accepted prefix) are tried in slot order, i.e. best
 * draft score first: accept token `x` with probability `p(x)`; otherwise set `p(x) = 0`,
 * renormalise and try the next. When no child is accepted the bonus token is drawn from the
 * residual `p`; when the accepted node has no children, from its full distribution. All
 * randomness comes from `sampler.draw`, so a seeded sampler makes verification reproducible.
 *
 * Why it is lossless: the probability to accept child `x_i` is `p(x_i)` (the factors
 * `1 - p(x_1) - ...` of the earlier rejections cancel against the renormalisation), and the
 * residual is `p` restricted to the other tokens; so the emitted token has law `p` exactly.
 */
export function verifySampling(options: VerifyOptions): VerifyResult {
  check(options);
  const { tree, sampler, vocabSize } = options;
  const round = new Round(tree, options.logits, vocabSize, sampler, options.history);
  const probs = new Float32Array(vocabSize);
  const coin = new Float32Array(2);
  const tried = new Uint8Array(vocabSize);
  const children: number[] = [];
  // Rows that continue the accepted prefix; all rows share the root.
  let rows: number[] = Array.from({ length: tree.pathCount }, (_, r) => r);
  const accepted: number[] = [0];
  for (let column = 0; ; column++) {
    const row = rows[0]!;
    sampler.distribution(round.row(accepted[column]!), round.historyFor(row, column), probs);
    // Distinct child nodes of the accepted prefix, in slot order.
    children.length = 0;
    for (const r of rows) {
      const child = round.node(r, column + 1);
      if (child >= 0 && !children.includes(child)) children.push(child);
    }
    children.sort((a, b) => a - b);
    tried.fill(0);
    let mass = 0;
    for (let i = 0; i < vocabSize; i++) mass += probs[i]!;
    let acceptedChild = -1;
    for (const child of children) {
      const token = tree.tokens[child]!;
      if (token < 0 || token >= vocabSize || tried[token]) continue;
      tried[token] = 1;
      const p = probs[token]!;
      if (p <= 0) continue;
      const rest = mass - p;
      coin[0] = p;
      coin[1] = rest > 0 ? rest : 0;
      if (coin[1] === 0 || sampler.draw(coin) === 0) {
        acceptedChild = child;
        break;
      }
      probs[token] = 0;
      mass = rest;
      // Recompute when cancellation may have eaten the remaining mass.
      if (mass < 1e-4) {
        mass = 0;
        for (let i = 0; i < vocabSize; i++) mass += probs[i]!;
      }
    }
    if (acceptedChild < 0) {
      const nextToken = sampler.draw(probs);
      return { acceptedNodes: Int32Array.from(accepted), acceptedLength: accepted.length - 1, nextToken };
    }
    accepted.push(acceptedChild);
    rows = rows.filter((r) => round.node(r, column + 1) === acceptedChild);
  }
}

/**
 * Creates the verifier: greedy acceptance when the sampler is greedy, otherwise lossless
 * multi-candidate rejection sampling ({@link verifyGreedy}, {@link verifySampling}). Works on
 * `tree.paths` rows, so official-FTA trees (`exact: false`) are handled as the reference does.
 */
export function createVerifier(options: VerifierOptions = {}): Verifier {
  const rule = options.rule ?? 'auto';
  if (rule !== 'auto' && rule !== 'greedy' && rule !== 'sampling') {
    throw new InvalidArgumentError('rule', `Unknown verification rule ${String(rule)}.`, { fix: "use 'auto', 'greedy' or 'sampling'." });
  }
  return {
    id: rule === 'auto' ? 'tree' : `tree-${rule}`,
    verify(verifyOptions) {
      const greedy = rule === 'greedy' || (rule === 'auto' && verifyOptions.sampler.greedy);
      return greedy ? verifyGreedy(verifyOptions) : verifySampling(verifyOptions);
    },
  };
}

/**
 * The KV cache slots (tree node indices) to keep after a round: the root and the accepted nodes,
 * root first. The same indices select the target hidden rows the drafter consumes next round.
 * This is `result.acceptedNodes`; the core loop already passes it to `KvCache.compact`.
 */
export function acceptedSlots(result: VerifyResult): Int32Array {
  return result.acceptedNodes;
}

/** The accepted draft tokens (root excluded) followed by the bonus token: what the round emits. */
export function emittedTokens(tree: DraftTree, result: VerifyResult): Int32Array {
  const out = new Int32Array(result.acceptedLength + 1);
  for (let i = 1; i <= result.acceptedLength; i++) out[i - 1] = tree.tokens[result.acceptedNodes[i]!]!;
  out[result.acceptedLength] = result.nextToken;
  return out;
}

/**
 * Gathers rows `result.acceptedNodes` of a row-major `[tree.size, rowSize]` array (target hidden
 * states, for the drafter's next `observe`) into a new `[acceptedLength + 1, rowSize]` array.
 */
export function gatherAcceptedRows(values: Float32Array, rowSize: number, result: VerifyResult): Float32Array {
  const nodes = result.acceptedNodes;
  const out = new Float32Array(nodes.length * rowSize);
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    if ((node + 1) * rowSize > values.length) {
      throw new ShapeMismatchError('gatherAcceptedRows values', [`>${node}`, rowSize], [values.length / rowSize, rowSize]);
    }
    out.set(values.subarray(node * rowSize, (node + 1) * rowSize), i * rowSize);
  }
  return out;
}
