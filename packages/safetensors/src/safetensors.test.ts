import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GumihoError } from '@gumiho/core';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, readSafetensors, writeSafetensors } from './safetensors.js';

describe('safetensors', () => {
  const a = { dtype: 'float32' as const, shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0.25, 1e-3, -7) };
  const b = { dtype: 'float32' as const, shape: [1], data: Float32Array.of(42) };

  it('round-trips float32 exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    await writeSafetensors(join(dir, 'x.safetensors'), [['a', a], ['b', b]]);
    const store = await readSafetensors(join(dir, 'x.safetensors'));
    expect([...store.names()]).toEqual(['a', 'b']);
    expect(store.get('a')!.shape).toEqual([2, 3]);
    expect([...store.get('a')!.data]).toEqual([...a.data]);
    expect(store.sourceDTypes.get('b')).toBe('F32');
  });

  it('round-trips bf16 within bf16 precision', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    await writeSafetensors(join(dir, 'x.safetensors'), [['a', a]], { dtype: 'BF16' });
    const store = await readSafetensors(join(dir, 'x.safetensors'));
    const data = store.get('a')!.data;
    for (let i = 0; i < a.data.length; i++) expect(Math.abs(data[i]! - a.data[i]!)).toBeLessThanOrEqual(Math.abs(a.data[i]!) / 128);
    expect(data[0]).toBe(1);
    expect(data[2]).toBe(3.5);
  });

  it('rejects truncated files with a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    const bytes = encodeSafetensors([['a', a]]);
    writeFileSync(join(dir, 'bad.safetensors'), bytes.subarray(0, bytes.length - 4));
    const error = await readSafetensors(join(dir, 'bad.safetensors')).catch((e: unknown) => e);
    expect(GumihoError.isInstance(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/not a valid safetensors file.*data offsets/);
  });

  it('names a missing file', async () => {
    const error = await readSafetensors('/nonexistent/x.safetensors').catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/Cannot read \/nonexistent\/x.safetensors/);
  });
});
