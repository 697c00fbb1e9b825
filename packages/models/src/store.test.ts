import { mkdtemp, mkdir, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, ModelLoadError } from '@gumiho/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUILTIN_MANIFESTS, createManifest, isModelPath, resolveModel, type ModelManifest, type StoreProgress } from './store.js';

let dir: string;
let source: string;
let store: string;
let manifests: Map<string, ModelManifest>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gumiho-store-'));
  source = join(dir, 'source');
  store = join(dir, 'store');
  await mkdir(join(source, 'tiny', 'sub'), { recursive: true });
  await writeFile(join(source, 'tiny', 'a.bin'), new Uint8Array(100_000).fill(7));
  await writeFile(join(source, 'tiny', 'sub', 'b.json'), '{"b": 1}');
  manifests = new Map([['tiny', await createManifest('tiny', join(source, 'tiny'))]]);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('model store', () => {
  it('tells paths from names', () => {
    expect(isModelPath('py-llama-28m')).toBe(false);
    expect(isModelPath('./py-llama-28m')).toBe(true);
    expect(isModelPath('/models/x')).toBe(true);
    expect(isModelPath('models/x')).toBe(true);
  });

  it('ships a manifest of the default model', () => {
    const manifest = BUILTIN_MANIFESTS.get('py-llama-28m')!;
    expect(manifest.files.map((file) => file.path)).toContain('model-00004-of-00004.safetensors');
    for (const file of manifest.files) expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('fills the store on first use with progress, then reuses it', async () => {
    const events: StoreProgress[] = [];
    const folder = await resolveModel('tiny', { store, source, manifests, onProgress: (event) => events.push(event) });
    expect(folder).toBe(join(store, 'tiny'));
    expect((await readdir(folder)).sort()).toEqual(['a.bin', 'sub']);
    expect(events.at(-1)).toMatchObject({ model: 'tiny', bytes: 100_008, totalBytes: 100_008 });
    expect(await readdir(store)).toEqual(['tiny']);
    events.length = 0;
    expect(await resolveModel('tiny', { store, source: join(dir, 'gone'), manifests, onProgress: (event) => events.push(event) })).toBe(folder);
    expect(events).toEqual([]);
  });

  it('reads the store and source folders from the environment', async () => {
    const folder = await resolveModel('tiny', { manifests, env: { GUMIHO_MODEL_STORE: store, GUMIHO_MODEL_SOURCE: source } });
    expect(folder).toBe(join(store, 'tiny'));
  });

  it('defaults to <root>/.models filled from <root>/../shared/models', async () => {
    const root = join(dir, 'repo');
    await mkdir(root);
    await mkdir(join(dir, 'shared'));
    const { rename } = await import('node:fs/promises');
    await rename(source, join(dir, 'shared', 'models'));
    expect(await resolveModel('tiny', { root, manifests, env: {} })).toBe(join(root, '.models', 'tiny'));
  });

  it('leaves nothing behind on a checksum mismatch, and names the file', async () => {
    await writeFile(join(source, 'tiny', 'sub', 'b.json'), '{"b": 2}');
    const error = await resolveModel('tiny', { store, source, manifests }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as Error).message).toMatch(/Checksum mismatch for sub\/b\.json of tiny/);
    expect((error as Error).message).toContain('Fix:');
    expect(await readdir(store)).toEqual([]);
  });

  it('removes the temporary folder of a fill that was killed, but not of one still running', async () => {
    await mkdir(join(store, '.tiny.tmp-999999999-dead'), { recursive: true });
    await writeFile(join(store, '.tiny.tmp-999999999-dead', 'a.bin'), 'partial');
    await mkdir(join(store, `.tiny.tmp-${process.pid}-live`), { recursive: true });
    await resolveModel('tiny', { store, source, manifests });
    expect((await readdir(store)).sort()).toEqual([`.tiny.tmp-${process.pid}-live`, 'tiny']);
  });

  it('names a file missing from the source', async () => {
    await rm(join(source, 'tiny', 'a.bin'));
    const error = await resolveModel('tiny', { store, source, manifests }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as Error).message).toMatch(/source lacks .*a\.bin.*GUMIHO_MODEL_SOURCE/s);
  });

  it('detects a damaged stored copy', async () => {
    const folder = await resolveModel('tiny', { store, source, manifests });
    await truncate(join(folder, 'a.bin'), 10);
    await expect(resolveModel('tiny', { store, source, manifests })).rejects.toThrow(/damaged: a\.bin has 10 bytes instead of 100000.*delete/s);
  });

  it('rejects unknown names, listing the known ones', async () => {
    await expect(resolveModel('nope', { store, source, manifests })).rejects.toThrow(InvalidArgumentError);
    await expect(resolveModel('nope', { store, source, manifests })).rejects.toThrow(/Unknown model "nope"; known models: tiny/);
  });

  it('returns paths untouched (absolute)', async () => {
    expect(await resolveModel(join(source, 'tiny'), { store, manifests })).toBe(join(source, 'tiny'));
  });
});
