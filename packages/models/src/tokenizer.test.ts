import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ModelLoadError } from '@gumiho/core';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from './tokenizer.js';

const MODEL = fileURLToPath(new URL('../../../../shared/models/py-llama-28m', import.meta.url));
const FIXTURE = new URL('../../../../shared/fixtures/py-llama-28m.golden.json', import.meta.url);

interface GoldenCase {
  prompt: string;
  ids: number[];
  greedy64: number[];
  greedy64_text: string;
}

describe('HuggingFaceTokenizer on py-llama-28m', () => {
  const cases = (JSON.parse(readFileSync(FIXTURE, 'utf8')) as { cases: GoldenCase[] }).cases;

  it('encodes the fixture prompts to the reference ids, without special tokens', async () => {
    const tokenizer = await loadTokenizer(MODEL);
    for (const golden of cases) expect(Array.from(tokenizer.encode(golden.prompt))).toEqual(golden.ids);
  });

  it('decodes ids back to text, skipping special tokens', async () => {
    const tokenizer = await loadTokenizer(MODEL);
    for (const golden of cases) {
      expect(tokenizer.decode(golden.ids)).toBe(golden.prompt);
      expect(tokenizer.decode(golden.greedy64)).toBe(golden.greedy64_text);
    }
    expect(tokenizer.decode([0, ...cases[0]!.ids, 0])).toBe(cases[0]!.prompt);
    expect(tokenizer.decode([0], { skipSpecialTokens: false })).toBe('<|endoftext|>');
  });

  it('fails clearly without tokenizer.json', async () => {
    await expect(loadTokenizer('/nonexistent-folder')).rejects.toThrow(ModelLoadError);
    await expect(loadTokenizer('/nonexistent-folder')).rejects.toThrow(/tokenizer\.json.*Fix:/s);
  });
});
