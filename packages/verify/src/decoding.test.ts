/**
 * End to end through core's decoding loop with a fake target: every builder of @gumiho/tree with
 * the verifier of this package must reproduce vanilla greedy decoding token for token (exact trees:
 * FTA off or exact), including with a repetition penalty and near the end of the context.
 *
 * The fake target's logits are a hash of the last two tokens it can *see* (committed tokens plus
 * the tree rows its mask allows), so a wrong mask or a wrong accepted path changes the output.
 */
import {
  argmax,
  createSpeculativeDecoder,
  type DraftPolicy,
  type SamplingOptions,
  type TargetModel,
} from '@gumiho/core';
import { createTokenRuleTarget } from '@gumiho/core/testing';
import { createSampler } from '@gumiho/samplers';
import { createChainBuilder, createDynamicTreeBuilder, createGumihoTreeBuilder, createStaticTreeBuilder } from '@gumiho/tree';
import { createMockDraftHead } from '@gumiho/tree/testing';
import { describe, expect, it } from 'vitest';
import { createVerifier } from './index.js';

const V = 16;
const EOS = 0;

function mix(h: number, v: number): number {
  h = Math.imul(h ^ (v + 0x9e3779b9), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Target logits after a visible sequence: depends on its last two tokens; EOS is never likely. */
function targetLogits(visible: readonly number[]): Float32Array {
  const a = visible[visible.length - 2] ?? 0;
  const b = visible[visible.length - 1] ?? 0;
  const logits = new Float32Array(V);
  for (let v = 0; v < V; v++) logits[v] = (mix(mix(a * 31 + 7, b), v) / 4294967296) * 6;
  logits[EOS] = -10;
  return logits;
}

function fakeTarget(capacity: number): TargetModel {
  return createTokenRuleTarget({ vocabSize: V, capacity, eosTokenIds: [EOS], logits: targetLogits });
}

/** Greedy roll-out of the target from `path`, `steps` tokens. */
function rollout(path: readonly number[], steps: number): number {
  const sequence = [...path];
  for (let s = 0; s < steps; s++) sequence.push(argmax(targetLogits(sequence)));
  return sequence[sequence.length - 1]!;
}

/** Draft logits that usually (not always) put the target's greedy continuation on top. */
function guessingLogits(path: readonly number[], parallelHead: number | undefined): Float32Array {
  const guess = rollout(path, (parallelHead ?? 0) + 1);
  const logits = new Float32Array(V);
  for (let v = 0; v < V; v++) logits[v] = (mix(path.length * 131 + (parallelHead ?? 9), v + path[path.length - 1]!) / 4294967296) * 3;
  logits[guess]! += 2;
  return logits;
}

const serialHead = () => createMockDraftHead({ vocabSize: V, logits: guessingLogits, id: 'serial' });
const gumihoHead = () => createMockDraftHead({ vocabSize: V, serialDepth: 2, parallelHeads: 5, logits: guessingLogits, id: 'gumiho' });
const medusaHead = () => createMockDraftHead({ vocabSize: V, serialDepth: 0, parallelHeads: 4, logits: guessingLogits, id: 'medusa' });

const policies: [string, () => DraftPolicy][] = [
  ['chain', () => ({ id: 'chain', head: serialHead(), builder: createChainBuilder({ depth: 5 }) })],
  [
    'static medusa',
    () => ({ id: 'medusa', head: medusaHead(), builder: createStaticTreeBuilder({ paths: [[0], [1], [0, 0], [0, 1], [1, 0], [0, 0, 0], [0, 0, 0, 0]] }) }),
  ],
  ['eagle2', () => ({ id: 'eagle2', head: serialHead(), builder: createDynamicTreeBuilder({ topK: 3, depth: 4, totalTokens: 20 }), maxTreeSize: 20 })],
  ['gumiho fta off', () => ({ id: 'gumiho', head: gumihoHead(), builder: createGumihoTreeBuilder({ topK: 4, mlpTopK: 4, pruning: 4, totalTokens: 24 }), maxTreeSize: 24 })],
  [
    'gumiho fta exact + Q1 + Q2',
    () => ({
      id: 'gumiho',
      head: gumihoHead(),
      builder: createGumihoTreeBuilder({ topK: 4, mlpTopK: 4, pruning: 4, totalTokens: 24, fta: 'exact', q1CausalSiblings: true, q2MisalignedMlpToken: true }),
      maxTreeSize: 24,
    }),
  ],
];

async function generate(policy: DraftPolicy | undefined, sampling: SamplingOptions, capacity = 256, maxNewTokens = 60) {
  const decoder = createSpeculativeDecoder({ target: fakeTarget(capacity), policy, verifier: createVerifier(), sampler: createSampler(sampling) });
  return decoder.generate({ prompt: Int32Array.of(3, 7, 2), maxNewTokens });
}

describe('speculative decoding with every builder equals vanilla greedy decoding', () => {
  it.each(policies)('%s', async (_, makePolicy) => {
    for (const sampling of [{}, { repetitionPenalty: 1.3 }]) {
      const vanilla = await generate(undefined, sampling);
      const speculative = await generate(makePolicy(), sampling);
      expect(Array.from(speculative.tokenIds)).toEqual(Array.from(vanilla.tokenIds));
      // Drafts were really accepted: fewer target forwards than tokens.
      expect(speculative.stats.meanAcceptedLength).toBeGreaterThan(1.3);
    }
    // Near the end of the context the trees shrink (maxSize) and the output still matches.
    const short = await generate(undefined, {}, 40, 100);
    const shortSpeculative = await generate(makePolicy(), {}, 40, 100);
    expect(shortSpeculative.stats.stopReason).toBe('context');
    expect(Array.from(shortSpeculative.tokenIds)).toEqual(Array.from(short.tokenIds));
  });

  it('official FTA runs through the loop (its output is not guaranteed to match)', async () => {
    const policy: DraftPolicy = {
      id: 'gumiho-official',
      head: gumihoHead(),
      builder: createGumihoTreeBuilder({ topK: 4, mlpTopK: 4, pruning: 4, totalTokens: 24, fta: 'official' }),
      maxTreeSize: 24,
    };
    const result = await generate(policy, {});
    expect(result.tokenIds.length).toBe(60);
    expect(result.stats.meanAcceptedLength).toBeGreaterThan(1);
  });
});
