import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DTypeError, GumihoError, ModelLoadError, ShapeMismatchError, UnsupportedModelError } from '@gumiho/core';
import { assembleSafetensors, encodeSafetensors } from '@gumiho/safetensors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadModelFolder } from './load.js';
import { randomLlamaTensors, writeRandomLlama } from './random.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gumiho-load-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<GumihoError> {
  try {
    await promise;
  } catch (error) {
    expect(GumihoError.isInstance(error)).toBe(true);
    expect((error as GumihoError).fix).toBeTruthy();
    expect((error as Error).message).toContain('Fix:');
    return error as GumihoError;
  }
  throw new Error('expected a failure');
}

/** Safetensors bytes where `name` is stored as I32 instead of a float type. */
function withIntegerTensor(name: string): Uint8Array {
  return assembleSafetensors(
    Array.from(randomLlamaTensors(), ([key, tensor]) => ({
      name: key,
      dtype: key === name ? 'I32' : 'F32',
      shape: tensor.shape,
      bytes:
        key === name
          ? new Uint8Array(Int32Array.from(tensor.data, (v) => Math.round(v * 100)).buffer)
          : new Uint8Array(Float32Array.from(tensor.data).buffer),
    })),
  );
}

describe('loadModelFolder', () => {
  it('loads a single-file checkpoint with exact weights', async () => {
    const tensors = await writeRandomLlama(dir, { seed: 7 });
    const model = await loadModelFolder(dir);
    expect(model.config.numLayers).toBe(2);
    expect(model.tokenizer).toBeUndefined();
    const embed = model.weights.get('model.embed_tokens.weight')!;
    expect(embed.shape).toEqual([64, 16]);
    expect(Array.from(embed.data)).toEqual(Array.from(tensors.get('model.embed_tokens.weight')!.data));
    // The config's hash is the SHA-256 of the file's bytes (what draft heads record as their target).
    expect(model.config.configSha256).toBe(createHash('sha256').update(await readFile(join(dir, 'config.json'))).digest('hex'));
  });

  it('loads a sharded bf16 checkpoint with an untied head', async () => {
    await writeRandomLlama(dir, { shards: 3, dtype: 'BF16', tieWordEmbeddings: false });
    const model = await loadModelFolder(dir);
    expect(model.weights.sourceDTypes.get('lm_head.weight')).toBe('BF16');
    expect(model.config.tieWordEmbeddings).toBe(false);
  });

  it('names a missing folder', async () => {
    const error = await failure(loadModelFolder(join(dir, 'nope')));
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(error.message).toMatch(/nope does not exist/);
  });

  it('names a file given instead of a folder, and a folder without weights', async () => {
    await writeFile(join(dir, 'x.txt'), 'hi');
    expect((await failure(loadModelFolder(join(dir, 'x.txt')))).message).toMatch(/is not a folder/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 4, hidden_size: 4, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 1 }));
    expect((await failure(loadModelFolder(dir))).message).toMatch(/neither model\.safetensors nor model\.safetensors\.index\.json/);
  });

  it('names a config that cannot be read (a folder where the file should be)', async () => {
    await writeRandomLlama(dir);
    await rm(join(dir, 'config.json'));
    await mkdir(join(dir, 'config.json'));
    expect((await failure(loadModelFolder(dir))).message).toMatch(/Cannot read the model config .*config\.json/);
  });

  it('names an unreadable config', async () => {
    await writeRandomLlama(dir);
    await writeFile(join(dir, 'config.json'), '{ not json');
    expect((await failure(loadModelFolder(dir))).message).toMatch(/config\.json is not valid JSON/);
  });

  it('names a shard listed in the index but absent', async () => {
    await writeRandomLlama(dir, { shards: 3 });
    await unlink(join(dir, 'model-00002-of-00003.safetensors'));
    const error = await failure(loadModelFolder(dir));
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(error.message).toContain('model-00002-of-00003.safetensors');
    expect(error.message).toMatch(/named in model\.safetensors\.index\.json is missing/);
  });

  it('names a tensor with the wrong shape, expected vs received', async () => {
    await writeRandomLlama(dir, { config: { intermediate_size: 20 } });
    const error = await failure(loadModelFolder(dir));
    expect(error).toBeInstanceOf(ShapeMismatchError);
    expect(error.message).toMatch(/"model\.layers\.0\.mlp\.gate_proj\.weight".*expected shape \[20, 16\], received \[24, 16\]/);
  });

  it('names a tensor with the wrong dtype', async () => {
    await writeRandomLlama(dir);
    await writeFile(join(dir, 'model.safetensors'), withIntegerTensor('model.layers.1.self_attn.v_proj.weight'));
    const error = await failure(loadModelFolder(dir));
    expect(error).toBeInstanceOf(DTypeError);
    expect(error.message).toMatch(/"model\.layers\.1\.self_attn\.v_proj\.weight".*expected dtype BF16 or F16 or F32, received I32/);
  });

  it('names a missing tensor', async () => {
    const tensors = randomLlamaTensors();
    tensors.delete('model.norm.weight');
    await writeRandomLlama(dir);
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
    const error = await failure(loadModelFolder(dir));
    expect(error.message).toMatch(/lacks the tensor "model\.norm\.weight"/);
  });

  it('rejects an unsupported model_type, naming what is supported', async () => {
    await writeRandomLlama(dir, { config: { model_type: 'gpt2' } });
    const error = await failure(loadModelFolder(dir));
    expect(error).toBeInstanceOf(UnsupportedModelError);
    expect(error.message).toMatch(/"gpt2" is not supported; supported model types: llama/);
  });

  it('leaves the folder as it was', async () => {
    await writeRandomLlama(dir, { shards: 2 });
    const before = (await readdir(dir)).sort();
    await loadModelFolder(dir);
    expect((await readdir(dir)).sort()).toEqual(before);
  });
});
