/**
 * The decoding loop against small fakes: a "target" whose next token is a hash of the last two
 * visible tokens (visibility from the tree mask, so a wrong mask changes the output), a draft
 * head that is right most of the time, a chain tree builder and a greedy verifier. The loop must
 * give the vanilla output token for token, with correct bookkeeping.
 */
import { describe, expect, it } from 'vitest';
import { createSpeculativeDecoder, type DraftPolicy } from './decoder.js';
import { ROOT_HANDLE, type DraftHead, type DraftTree, type TreeBuilder } from './draft.js';
import { argmax } from './math.js';
import type { Sampler, Verifier } from './sampling.js';
import { createTokenRuleTarget, type TokenRuleTarget } from './testing.js';

const VOCAB = 16;
const EOS = 0;

function nextToken(a: number, b: number): number {
  // Never EOS unless the pair says so; 1 + hash.
  return 1 + ((a * 7 + b * 3 + ((a * b) % 5)) % (VOCAB - 1));
}

function fakeTarget(capacity = 64, eosAfter?: number): TokenRuleTarget {
  return createTokenRuleTarget({
    vocabSize: VOCAB,
    capacity,
    eosTokenIds: [EOS],
    logits(visible) {
      const a = visible[visible.length - 2] ?? 0;
      const b = visible[visible.length - 1]!;
      const logits = new Float32Array(VOCAB);
      logits[eosAfter !== undefined && visible.length >= eosAfter ? EOS : nextToken(a, b)] = 10;
      return logits;
    },
    hidden: (tokenId) => [tokenId, 0],
  });
}

const greedySampler: Sampler = {
  greedy: true,
  distribution() {
    throw new Error('not used');
  },
  draw() {
    throw new Error('not used');
  },
  pick: (logits) => argmax(logits),
};

/** Greedy acceptance on chains (enough for these tests; the real verifier is @gumiho/verify). */
const chainVerifier: Verifier = {
  id: 'chain-greedy',
  verify({ tree, logits, vocabSize }) {
    const accepted = [0];
    let node = 0;
    for (;;) {
      const choice = argmax(logits, node * vocabSize, vocabSize);
      const child = node + 1 < tree.size && tree.parents[node + 1] === node ? node + 1 : -1;
      if (child < 0 || tree.tokens[child] !== choice) return { acceptedNodes: Int32Array.from(accepted), acceptedLength: accepted.length - 1, nextToken: choice };
      accepted.push(child);
      node = child;
    }
  },
};

/** A head that knows the fake target's rule but errs on every third guess. */
function fakeHead(observed: Array<{ hidden: number[]; tokens: number[] }>): DraftHead {
  let context: number[] = [];
  let guesses = 0;
  const guess = (a: number, b: number) => (++guesses % 3 === 0 ? 1 + ((nextToken(a, b) + 1) % (VOCAB - 1)) : nextToken(a, b));
  const paths = new Map<number, number[]>();
  return {
    specificationVersion: 'v1',
    id: 'fake',
    info: { serialDepth: Infinity, parallelHeads: 0, parallelBranchDepth: 0 },
    reset() {
      context = [];
    },
    async observe(options) {
      observed.push({ hidden: Array.from(options.hidden).filter((_, i) => i % 2 === 0), tokens: Array.from(options.tokens) });
      context = Array.from(options.context);
      paths.clear();
      paths.set(ROOT_HANDLE, context);
      const token = guess(context[context.length - 2] ?? 0, context[context.length - 1]!);
      return { handles: Int32Array.of(ROOT_HANDLE), candidates: { rows: 1, k: 1, tokens: Int32Array.of(token), logProbs: Float32Array.of(0) } };
    },
    async expand(options) {
      const handles = new Int32Array(options.tokens.length);
      const tokens = new Int32Array(options.tokens.length);
      options.tokens.forEach((token, i) => {
        const path = [...paths.get(options.parents[i]!)!, token];
        const handle = paths.size;
        paths.set(handle, path);
        handles[i] = handle;
        tokens[i] = guess(path[path.length - 2]!, token);
      });
      return { handles, candidates: { rows: tokens.length, k: 1, tokens, logProbs: new Float32Array(tokens.length) } };
    },
    async parallel() {
      return { heads: [] };
    },
    endRound() {
      paths.clear();
    },
    dispose() {},
  };
}

function chainBuilder(depth: number): TreeBuilder {
  return {
    id: 'chain',
    async build({ head, root, hidden, tokens, context, maxSize }) {
      const size = Math.min(depth + 1, maxSize);
      const treeTokens = [root];
      let expansion = await head.observe({ hidden, tokens, context, topK: 1 });
      while (treeTokens.length < size) {
        const token = expansion.candidates.tokens[0]!;
        treeTokens.push(token);
        if (treeTokens.length === size) break;
        expansion = await head.expand({ parents: expansion.handles, tokens: Int32Array.of(token), topK: 1 });
      }
      const n = treeTokens.length;
      const mask = new Uint8Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) mask[i * n + j] = 1;
      const tree: DraftTree = {
        size: n,
        tokens: Int32Array.from(treeTokens),
        parents: Int32Array.from(treeTokens, (_, i) => i - 1),
        depths: Int32Array.from(treeTokens, (_, i) => i),
        scores: new Float32Array(n),
        mask,
        paths: Int32Array.from(treeTokens, (_, i) => i),
        pathCount: 1,
        pathWidth: n,
        exact: true,
      };
      return tree;
    },
  };
}

function vanillaReference(prompt: number[], count: number): number[] {
  const sequence = [...prompt];
  const out: number[] = [];
  while (out.length < count) {
    const token = nextToken(sequence[sequence.length - 2] ?? 0, sequence[sequence.length - 1]!);
    sequence.push(token);
    out.push(token);
  }
  return out;
}

describe('createSpeculativeDecoder', () => {
  const prompt = Int32Array.of(3, 5, 7, 2);

  it('vanilla decoding follows the target, one token per forward', async () => {
    const target = fakeTarget();
    const decoder = createSpeculativeDecoder({ target, verifier: chainVerifier, sampler: greedySampler });
    const result = await decoder.generate({ prompt, maxNewTokens: 20 });
    expect(Array.from(result.tokenIds)).toEqual(vanillaReference([...prompt], 20));
    expect(result.stats.rounds).toBe(20);
    expect(result.stats.meanAcceptedLength).toBe(1);
    expect(result.stats.stopReason).toBe('max-new-tokens');
    expect(target.cache.length).toBe(prompt.length + 19);
  });

  it('speculative decoding gives the vanilla tokens with fewer forwards, and feeds the drafter the shifted pairs', async () => {
    const target = fakeTarget();
    const observed: Array<{ hidden: number[]; tokens: number[] }> = [];
    const policy: DraftPolicy = { id: 'fake', head: fakeHead(observed), builder: chainBuilder(4), maxTreeSize: 8 };
    const decoder = createSpeculativeDecoder({ target, policy, verifier: chainVerifier, sampler: greedySampler });
    const events = [];
    const stream = decoder.stream({ prompt, maxNewTokens: 40 });
    let step = await stream.next();
    while (!step.done) {
      events.push(step.value);
      step = await stream.next();
    }
    const result = step.value;
    const expected = vanillaReference([...prompt], 40);
    expect(Array.from(result.tokenIds)).toEqual(expected);
    expect(events.map((event) => event.token)).toEqual(expected);
    expect(events.some((event) => event.source === 'draft')).toBe(true);
    expect(result.stats.rounds).toBe(target.forwards);
    expect(result.stats.rounds).toBeLessThan(40);
    expect(result.stats.meanAcceptedLength).toBeCloseTo(40 / result.stats.rounds, 10);
    const accepted = events.filter((event) => event.source === 'draft').length;
    expect(result.stats.acceptanceByDepth[0]).toBeGreaterThan(0);
    expect(result.stats.acceptanceByDepth.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(accepted);
    // First observation: prompt hidden states paired with the prompt shifted by one plus the root.
    expect(observed[0]!.hidden).toEqual([...prompt]);
    expect(observed[0]!.tokens).toEqual([...prompt.subarray(1), expected[0]!]);
    // Later observations start with the previous root's hidden state.
    for (let i = 1; i < observed.length; i++) {
      expect(observed[i]!.hidden[0]).toBe(observed[i - 1]!.tokens[observed[i - 1]!.tokens.length - 1]);
      expect(observed[i]!.hidden.slice(1)).toEqual(observed[i]!.tokens.slice(0, -1));
    }
  });

  it('stops at EOS, at the context limit, and when aborted', async () => {
    const eosTarget = fakeTarget(64, 9);
    const eosResult = await createSpeculativeDecoder({ target: eosTarget, verifier: chainVerifier, sampler: greedySampler }).generate({ prompt, maxNewTokens: 50 });
    expect(eosResult.stats.stopReason).toBe('eos');
    expect(eosResult.tokenIds[eosResult.tokenIds.length - 1]).toBe(EOS);

    const small = fakeTarget(12);
    const policy: DraftPolicy = { id: 'fake', head: fakeHead([]), builder: chainBuilder(5) };
    const contextResult = await createSpeculativeDecoder({ target: small, policy, verifier: chainVerifier, sampler: greedySampler }).generate({ prompt, maxNewTokens: 50 });
    expect(contextResult.stats.stopReason).toBe('context');
    expect(Array.from(contextResult.tokenIds)).toEqual(vanillaReference([...prompt], contextResult.tokenIds.length));
    expect(small.cache.length).toBe(12);

    const controller = new AbortController();
    controller.abort();
    const aborted = await createSpeculativeDecoder({ target: fakeTarget(), verifier: chainVerifier, sampler: greedySampler }).generate({ prompt, maxNewTokens: 50, signal: controller.signal });
    expect(aborted.stats.stopReason).toBe('aborted');
    expect(aborted.tokenIds.length).toBe(1);
  });

  it('rejects bad input with errors that name the fix', async () => {
    const decoder = createSpeculativeDecoder({ target: fakeTarget(8), verifier: chainVerifier, sampler: greedySampler });
    await expect(decoder.generate({ prompt: new Int32Array(0) })).rejects.toThrow(/The prompt is empty\. Fix:/);
    await expect(decoder.generate({ prompt: new Int32Array(8).fill(1) })).rejects.toThrow(/context holds 8.*Fix: shorten the prompt/);
    await expect(decoder.generate({ prompt: Int32Array.of(99) })).rejects.toThrow(/outside the vocabulary/);
    await expect(decoder.generate({ prompt: 'text' })).rejects.toThrow(/needs a tokenizer/);
    await expect(decoder.generate({ prompt, maxNewTokens: 0 })).rejects.toThrow(/maxNewTokens must be a positive integer/);
  });
});
