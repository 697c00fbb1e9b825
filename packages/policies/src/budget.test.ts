import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseTreeBudget, DEFAULT_MIN_GAIN, pickTreeSize, type BudgetCandidate, type ChooseBudgetOptions } from './budget.js';

const row = (totalTokens: number, tokensPerSecond: number): BudgetCandidate => ({
  totalTokens,
  tau: 2,
  draftMsPerRound: 1,
  verifyMs: 5,
  tokensPerSecond,
});

describe('pickTreeSize', () => {
  it('picks the fastest size when it clears vanilla by the margin', () => {
    expect(pickTreeSize([row(4, 261.7), row(6, 278.4), row(8, 246.0)], 220.3)).toBe(6);
  });

  it('does not draft for a predicted gain inside the margin (one-prompt tau is noisy)', () => {
    // The calibration that predicted Medusa at 227.2 vs 220.3 tokens/s (1.03x); it ran at 0.82x.
    expect(pickTreeSize([row(4, 227.2), row(6, 209.0)], 220.3)).toBe(1);
    expect(pickTreeSize([row(4, 227.2)], 220.3, 0)).toBe(4);
    expect(pickTreeSize([row(4, 220.3 * (1 + DEFAULT_MIN_GAIN) + 0.1)], 220.3)).toBe(4);
  });

  it('does not draft without candidates or when every size is slower', () => {
    expect(pickTreeSize([], 200)).toBe(1);
    expect(pickTreeSize([row(4, 150), row(8, 120)], 200)).toBe(1);
  });

  it('rejects a negative or non-numeric margin', () => {
    expect(() => pickTreeSize([row(4, 300)], 200, -0.1)).toThrow(/minGain must be a fraction >= 0/);
    expect(() => pickTreeSize([row(4, 300)], 200, Number.NaN)).toThrow(/minGain/);
  });
});

describe('chooseTreeBudget with a cached decision', () => {
  it('re-derives the size from the cached measurements with the current margin', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gumiho-budget-'));
    try {
      const cacheFile = join(dir, 'budgets.json');
      const cached = { totalTokens: 4, vanillaTokensPerSecond: 220.3, candidates: [row(4, 227.2), row(6, 209.0)], costs: { '1': 4.54 } };
      await writeFile(cacheFile, JSON.stringify({ costs: {}, budgets: { key: cached } }));
      // A cache hit never touches the target or the policy, so these are never called.
      const unused = (): never => {
        throw new Error('a cached decision must not measure anything');
      };
      const options = {
        target: undefined,
        policyAt: unused,
        decoderFor: unused,
        calibrationPrompt: new Int32Array(0),
        cacheFile,
        cacheKey: 'key',
        costKey: 'cost',
      } as unknown as ChooseBudgetOptions;
      const choice = await chooseTreeBudget(options);
      expect(choice.cached).toBe(true);
      expect(choice.totalTokens).toBe(1); // stored as 4 by the rule without a margin
      expect(choice.candidates).toEqual(cached.candidates);
      expect((await chooseTreeBudget({ ...options, minGain: 0 })).totalTokens).toBe(4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
