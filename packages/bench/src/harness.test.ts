import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPrompts, median, runBench, type Contender, type RunRecord } from './harness.js';
import { machineInfo } from './machine.js';
import { renderSvg, renderTable, toJson } from './report.js';

function fake(name: string, msPerToken: number, tau: number, tokens: (prompt: string) => number[]): Contender & { calls: string[] } {
  const calls: string[] = [];
  return {
    name,
    kind: 'policy',
    calls,
    async run(prompt, settings): Promise<RunRecord> {
      calls.push(prompt);
      const ids = tokens(prompt).slice(0, settings.maxNewTokens);
      const rounds = Math.ceil(ids.length / tau);
      return {
        tokenIds: Int32Array.from(ids),
        newTokens: ids.length,
        rounds,
        wallMs: ids.length * msPerToken,
        prefillMs: 1,
        draftMs: rounds,
        verifyMs: 2 * rounds,
        acceptanceByDepth: tau > 1 ? [rounds - 1, Math.floor((rounds - 1) / 2)] : [],
        draftRounds: tau > 1 ? rounds - 1 : 0,
      };
    },
  };
}

describe('runBench', () => {
  it('alternates contenders, computes same-run speedups, tau and the vanilla check', async () => {
    const same = (prompt: string) => Array.from({ length: 20 }, (_, i) => prompt.length + i);
    const vanilla = fake('vanilla', 10, 1, same);
    const fast = fake('gumiho', 4, 4, same);
    const wrong = fake('broken', 5, 2, (prompt) => same(prompt).map((t, i) => (i === 7 ? t + 1 : t)));
    const progress: number[] = [];
    const results = await runBench({
      prompts: ['a', 'bb', 'ccc'],
      contenders: [vanilla, fast, wrong],
      settings: { maxNewTokens: 20, temperature: 0, seed: 1 },
      onProgress: (done) => progress.push(done),
    });
    expect(vanilla.calls).toEqual(['a', 'a', 'bb', 'ccc']); // warm-up, then each prompt once
    expect(progress.at(-1)).toBe(9);
    const byName = Object.fromEntries(results.map((r) => [r.policy, r]));
    expect(byName.vanilla!.speedup).toBe(1);
    expect(byName.vanilla!.tokensPerSecond).toBeCloseTo(100, 6);
    expect(byName.gumiho!.speedup).toBeCloseTo(2.5, 6);
    expect(byName.gumiho!.meanAcceptedLength).toBeCloseTo(60 / 15, 6);
    expect(byName.gumiho!.matchesVanilla).toBe(true);
    expect(byName.broken!.matchesVanilla).toBe(false);
    expect(byName.vanilla!.matchesVanilla).toBeNull();
    expect(byName.gumiho!.acceptanceByDepth[0]).toBe(1);
    const report = {
      machine: machineInfo(),
      backend: 'cpu',
      model: 'fake',
      settings: { maxNewTokens: 20, temperature: 0, seed: 1, prompts: 3, repeats: 1 },
      floor: { weightBytes: 1e8, bandwidthGBps: 20, msPerToken: 5, tokensPerSecond: 200 },
      results,
    };
    const table = renderTable(report);
    expect(table).toMatch(/\| gumiho +\| +250\.0 \| +2\.50x \| +4\.00 \|/);
    expect(table).toMatch(/broken.* NO \|/);
    expect(table).toMatch(/Weight-bandwidth floor: 100\.0 MB/);
    expect(renderSvg(report)).toMatch(/^<svg[\s\S]*2\.50x  tau 4\.00[\s\S]*<\/svg>\n$/);
    expect((toJson(report).results as Array<{ policy: string }>).map((r) => r.policy)).toEqual(['vanilla', 'gumiho', 'broken']);
  });

  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('loadPrompts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prompts-'));
  it('reads .json arrays and .jsonl with prompt or text fields, verbatim', async () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify(['x = 1\n', { prompt: ' y' }, { text: 'z' }]));
    writeFileSync(join(dir, 'b.jsonl'), '{"prompt": "def f("}\n\n{"text": "  import os"}\n');
    expect(await loadPrompts(join(dir, 'a.json'))).toEqual(['x = 1\n', ' y', 'z']);
    expect(await loadPrompts(join(dir, 'b.jsonl'))).toEqual(['def f(', '  import os']);
  });
  it('names the problem and the fix', async () => {
    writeFileSync(join(dir, 'c.jsonl'), '{"prompt": 1}\n');
    writeFileSync(join(dir, 'd.json'), '{not json');
    await expect(loadPrompts(join(dir, 'c.jsonl'))).rejects.toThrow(/line 1: expected a string.*Fix:/);
    await expect(loadPrompts(join(dir, 'd.json'))).rejects.toThrow(/not valid JSON/);
    await expect(loadPrompts(join(dir, 'missing.json'))).rejects.toThrow(/Cannot read the prompts file/);
  });
});
