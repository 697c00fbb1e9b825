import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ROOT_HANDLE } from '@gumiho/core';
import { createLookupHead, findContinuations } from './lookup.js';

const observe = (context: number[], topK: number) => ({
  hidden: new Float32Array(0),
  tokens: Int32Array.of(context[context.length - 1]!),
  context: Int32Array.from(context),
  topK,
});

describe('findContinuations', () => {
  it('uses the longest matching n-gram and ranks continuations by frequency, then recency', () => {
    //              0  1  2  3  4  5  6  7  8  9 10 11
    const sequence = [1, 2, 3, 9, 1, 2, 3, 7, 5, 2, 3, 7];
    // Trailing 3-gram [2, 3, 7] occurred at 5..7, followed by 5.
    const at = (i: number) => sequence[i]!;
    const three = findContinuations(at, sequence.length, 3, 1);
    expect(three).toEqual({ ngram: 3, tokens: [5], counts: [1], total: 1 });
    // Without the last token, [5, 2, 3] never occurred before; [2, 3] was followed by 9 and 7 once each (7 more recent).
    const prefix = sequence.slice(0, 11);
    const two = findContinuations((i) => prefix[i]!, prefix.length, 2, 1);
    expect(two).toEqual({ ngram: 2, tokens: [7, 9], counts: [1, 1], total: 2 });
    const onlyTwo = findContinuations((i) => prefix[i]!, prefix.length, 2, 2);
    expect(onlyTwo.ngram).toBe(2);
    expect(onlyTwo.tokens).toEqual([7, 9]);
  });

  it('counts repeated continuations and backs off to shorter n-grams', () => {
    const sequence = [4, 8, 4, 8, 4, 6, 1, 4];
    // 3-gram [6, 1, 4] and 2-gram [1, 4] never occurred earlier; 1-gram [4] did, 3 times.
    const found = findContinuations((i) => sequence[i]!, sequence.length, 3, 1);
    expect(found.ngram).toBe(1);
    expect(found.tokens).toEqual([8, 6]);
    expect(found.counts).toEqual([2, 1]);
    expect(found.total).toBe(3);
    expect(findContinuations((i) => sequence[i]!, sequence.length, 3, 2)).toEqual({ ngram: 0, tokens: [], counts: [], total: 0 });
  });

  it('respects the search window', () => {
    const sequence = [5, 6, 0, 0, 0, 0, 5];
    expect(findContinuations((i) => sequence[i]!, sequence.length, 1, 1).tokens).toEqual([6]);
    expect(findContinuations((i) => sequence[i]!, sequence.length, 1, 1, 4).tokens).toEqual([]);
  });
});

describe('lookup head', () => {
  it('proposes what followed the context’s trailing n-gram, with log-probs from frequencies', async () => {
    const head = createLookupHead();
    expect(head.info).toEqual({ serialDepth: Infinity, parallelHeads: 0, parallelBranchDepth: 0 });
    // "a b c a b d a b" -> after [a b]: c once, d once (d more recent).
    const [a, b, c, d] = [10, 11, 12, 13];
    const root = await head.observe(observe([a, b, c, a, b, d, a, b], 3));
    expect(Array.from(root.handles)).toEqual([ROOT_HANDLE]);
    expect(Array.from(root.candidates.tokens)).toEqual([d, c, -1]);
    expect(root.candidates.logProbs[0]).toBeCloseTo(Math.log(0.5), 6);
    expect(root.candidates.logProbs[1]).toBeCloseTo(Math.log(0.5), 6);
    expect(root.candidates.logProbs[2]).toBe(-Infinity);
  });

  it('extends the context with each node’s path', async () => {
    const head = createLookupHead({ maxNgram: 2 });
    const [a, b, c, d, e] = [1, 2, 3, 4, 5];
    await head.observe(observe([a, b, c, d, e, a], 2));
    // Path [a] + b -> trailing [a, b] -> c; path + c -> [b, c] -> d; a sibling path with e -> [a, e]: none, then [e] -> a.
    const level1 = await head.expand({ parents: Int32Array.of(0, 0), tokens: Int32Array.of(b, e), topK: 2 });
    expect(Array.from(level1.handles)).toEqual([1, 2]);
    expect(Array.from(level1.candidates.tokens)).toEqual([c, -1, a, -1]);
    const level2 = await head.expand({ parents: Int32Array.of(1), tokens: Int32Array.of(c), topK: 1 });
    expect(Array.from(level2.candidates.tokens)).toEqual([d]);
    expect(level2.candidates.logProbs[0]).toBeCloseTo(0, 6);
    head.endRound();
    await expect(head.expand({ parents: Int32Array.of(2), tokens: Int32Array.of(a), topK: 1 })).rejects.toThrow(InvalidArgumentError);
  });

  it('validates its options', () => {
    expect(() => createLookupHead({ minNgram: 0 })).toThrow(/minNgram/);
    expect(() => createLookupHead({ maxNgram: 1, minNgram: 2 })).toThrow(/maxNgram/);
  });
});
