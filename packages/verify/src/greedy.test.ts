import { InvalidArgumentError, ShapeMismatchError, argmax, type DraftTree, type TokenHistory } from '@gumiho/core';
import { createSampler } from '@gumiho/samplers';
import { applyOfficialFta, createDraftTree } from '@gumiho/tree';
import { describe, expect, it } from 'vitest';
import { acceptedSlots, createVerifier, emittedTokens, gatherAcceptedRows } from './index.js';

const V = 10;

/** Logits `[size, V]` where node `n` prefers token `choices[n]` (value 5) over the rest (0). */
function preferring(choices: number[]): Float32Array {
  const logits = new Float32Array(choices.length * V);
  choices.forEach((token, node) => (logits[node * V + token] = 5));
  return logits;
}

function historyOf(tokens: number[], room = 16): TokenHistory {
  const buffer = new Int32Array(tokens.length + room);
  buffer.set(tokens);
  return { tokens: buffer, length: tokens.length };
}

const greedy = createSampler();
const verifier = createVerifier();

describe('greedy verification on hand-made trees', () => {
  // root(9) -> a(1), b(2); a -> c(3); c -> d(4)
  const tree = createDraftTree({ tokens: [9, 1, 2, 3, 4], parents: [-1, 0, 0, 1, 3] });

  it('accepts the matching branch and takes the bonus after it', () => {
    const result = verifier.verify({ tree, logits: preferring([2, 0, 7, 0, 0]), vocabSize: V, sampler: greedy, history: historyOf([5, 9]) });
    expect(Array.from(result.acceptedNodes)).toEqual([0, 2]);
    expect(result.acceptedLength).toBe(1);
    expect(result.nextToken).toBe(7);
    expect(Array.from(emittedTokens(tree, result))).toEqual([2, 7]);
    expect(acceptedSlots(result)).toBe(result.acceptedNodes);
  });

  it('accepts a whole path, and nothing when the first choice differs', () => {
    const full = verifier.verify({ tree, logits: preferring([1, 3, 0, 4, 8]), vocabSize: V, sampler: greedy, history: historyOf([9]) });
    expect(Array.from(full.acceptedNodes)).toEqual([0, 1, 3, 4]);
    expect(full.nextToken).toBe(8);
    const none = verifier.verify({ tree, logits: preferring([6, 3, 0, 4, 8]), vocabSize: V, sampler: greedy, history: historyOf([9]) });
    expect(Array.from(none.acceptedNodes)).toEqual([0]);
    expect(none.acceptedLength).toBe(0);
    expect(none.nextToken).toBe(6);
  });

  it('lets the first row with the longest match win when siblings share a token', () => {
    // root -> a(1), b(1); b -> c(2). a is a leaf, so row [0, 2, 3] matches longer.
    const dup = createDraftTree({ tokens: [9, 1, 1, 2], parents: [-1, 0, 0, 2] });
    const result = verifier.verify({ tree: dup, logits: preferring([1, 5, 2, 6]), vocabSize: V, sampler: greedy, history: historyOf([9]) });
    expect(Array.from(result.acceptedNodes)).toEqual([0, 2, 3]);
    expect(result.nextToken).toBe(6);
  });

  it('applies the repetition penalty with the path so far as history', () => {
    // Node a(1) slightly prefers token 1 (already on the path) over token 4: the penalty flips it.
    const logits = preferring([1, 1, 0, 0, 0]);
    logits[1 * V + 4] = 4;
    const penalised = createSampler({ repetitionPenalty: 2 });
    const plain = verifier.verify({ tree, logits, vocabSize: V, sampler: greedy, history: historyOf([9]) });
    const withPenalty = verifier.verify({ tree, logits, vocabSize: V, sampler: penalised, history: historyOf([9]) });
    expect(plain.nextToken).toBe(1);
    expect(withPenalty.nextToken).toBe(4);
  });

  it('verifies official-FTA rows through borrowed nodes, as the reference does', () => {
    // The digest's toy tree (section 2.5); borrowed row [0, 3, 5, 9, 13].
    const parents = [-1, 0, 0, 0, 0, 1, 2, 1, 2, 5, 6, 7, 8, 9, 10, 9];
    const base = createDraftTree({ tokens: parents.map((_, i) => 20 + i).map((t) => t % V), parents });
    const tree = applyOfficialFta(base);
    // Target choices: root -> token of 3, node 3 -> token of 5, 5 -> token of 9, 9 -> token of 13, 13 -> 0.
    const choices = new Array<number>(16).fill(0);
    choices[0] = base.tokens[3]!;
    choices[3] = base.tokens[5]!;
    choices[5] = base.tokens[9]!;
    choices[9] = base.tokens[13]!;
    const logits = preferring(choices);
    const borrowed = verifier.verify({ tree, logits, vocabSize: V, sampler: greedy, history: historyOf([7]) });
    expect(Array.from(borrowed.acceptedNodes)).toEqual([0, 3, 5, 9, 13]);
    // Without FTA only node 3 is accepted.
    const exact = verifier.verify({ tree: base, logits, vocabSize: V, sampler: greedy, history: historyOf([7]) });
    expect(Array.from(exact.acceptedNodes)).toEqual([0, 3]);
    expect(exact.nextToken).toBe(base.tokens[5]);
  });

  it('samples along official-FTA rows: accepted nodes always form a prefix of some row', () => {
    const parents = [-1, 0, 0, 0, 0, 1, 2, 1, 2, 5, 6, 7, 8, 9, 10, 9];
    const tree = applyOfficialFta(createDraftTree({ tokens: parents.map((_, i) => i % 4), parents }));
    const random = lcg(9);
    const logits = Float32Array.from({ length: tree.size * 4 }, () => random() * 3);
    const sampler = createSampler({ temperature: 1, seed: 5 });
    const rowStrings = Array.from({ length: tree.pathCount }, (_, r) => Array.from(tree.paths.subarray(r * tree.pathWidth, (r + 1) * tree.pathWidth)).join(','));
    let deep = 0;
    for (let i = 0; i < 500; i++) {
      const result = verifier.verify({ tree, logits, vocabSize: 4, sampler, history: historyOf([1]) });
      const prefix = Array.from(result.acceptedNodes).join(',');
      expect(rowStrings.some((row) => `${row},`.startsWith(`${prefix},`))).toBe(true);
      expect(result.nextToken).toBeGreaterThanOrEqual(0);
      if (result.acceptedLength >= 3) deep++;
    }
    expect(deep).toBeGreaterThan(0);
  });

  it('works without room after the history and checks the logits shape', () => {
    const result = verifier.verify({
      tree,
      logits: preferring([1, 3, 0, 4, 8]),
      vocabSize: V,
      sampler: greedy,
      history: { tokens: Int32Array.of(9), length: 1 },
    });
    expect(result.acceptedLength).toBe(3);
    expect(() => verifier.verify({ tree, logits: new Float32Array(3 * V), vocabSize: V, sampler: greedy, history: historyOf([9]) })).toThrow(
      ShapeMismatchError,
    );
    expect(() => createVerifier({ rule: 'fast' as never })).toThrow(InvalidArgumentError);
  });

  it('gathers the hidden rows of the accepted nodes', () => {
    const hidden = Float32Array.from({ length: 5 * 2 }, (_, i) => i);
    const result = { acceptedNodes: Int32Array.of(0, 2), acceptedLength: 1, nextToken: 0 };
    expect(Array.from(gatherAcceptedRows(hidden, 2, result))).toEqual([0, 1, 4, 5]);
  });
});

/** A small LCG for random test trees (independent of the code under test). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/** Random exact tree with distinct sibling tokens, created breadth first. */
function randomTree(random: () => number, root: number, vocab: number, maxSize: number): DraftTree {
  const tokens = [root];
  const parents = [-1];
  for (let node = 0; node < tokens.length && tokens.length < maxSize; node++) {
    const children = Math.floor(random() * 4);
    const used = new Set<number>();
    for (let c = 0; c < children && tokens.length < maxSize; c++) {
      let token = Math.floor(random() * vocab);
      while (used.has(token)) token = (token + 1) % vocab;
      used.add(token);
      tokens.push(token);
      parents.push(node);
    }
  }
  return createDraftTree({ tokens, parents });
}

describe('greedy verification, property', () => {
  it('equals a walk down the tree following the target argmax (distinct sibling tokens)', () => {
    const random = lcg(3);
    for (let trial = 0; trial < 300; trial++) {
      const tree = randomTree(random, 1, 5, 2 + Math.floor(random() * 20));
      const logits = Float32Array.from({ length: tree.size * 5 }, () => random());
      const result = verifier.verify({ tree, logits, vocabSize: 5, sampler: greedy, history: historyOf([1]) });
      const walk = [0];
      for (;;) {
        const node = walk.at(-1)!;
        const choice = argmax(logits, node * 5, 5);
        const child = Array.from(tree.parents).findIndex((p, i) => p === node && tree.tokens[i] === choice);
        if (child < 0) {
          expect(result.nextToken).toBe(choice);
          break;
        }
        walk.push(child);
      }
      expect(Array.from(result.acceptedNodes)).toEqual(walk);
      // The sampling rule with a greedy sampler (one-hot distributions) agrees.
      const viaSampling = createVerifier({ rule: 'sampling' }).verify({ tree, logits, vocabSize: 5, sampler: greedy, history: historyOf([1]) });
      expect(viaSampling).toEqual(result);
    }
  });
});
