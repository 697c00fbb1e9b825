import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GumihoError, IncompatibleHeadsError, ModelLoadError, type HostTensor } from '@gumiho/core';
import { MapWeightStore, writeSafetensors } from '@gumiho/safetensors';
import { draftHeadsConfigFor, parseDraftHeadsConfig } from './config.js';
import { GumihoDraftHead, MedusaDraftHead, SerialDraftHead, createGumihoHead } from './heads.js';
import { loadDraftHeads, readDraftHeads, writeDraftHeads } from './io.js';
import { TINY_CONFIG, randomHidden, tinyTarget } from './test-utils.js';
import { randomDraftHeadWeights } from './weights.js';

const target = tinyTarget();
const H = TINY_CONFIG.hiddenSize;
const root = await mkdtemp(join(tmpdir(), 'draft-heads-io-'));
afterAll(() => rm(root, { recursive: true, force: true }));

let counter = 0;
const folder = () => join(root, `heads-${counter++}`);

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('writeDraftHeads / loadDraftHeads', () => {
  it('round-trips Gumiho heads: the loaded head drafts exactly like the original', async () => {
    const config = draftHeadsConfigFor('gumiho', target, { mlpHeads: 2, mlpBlocks: 3 });
    const weights = randomDraftHeadWeights('gumiho', config, 21);
    const dir = folder();
    await writeDraftHeads(dir, config, weights);
    const loaded = await loadDraftHeads(dir, target);
    expect(loaded).toBeInstanceOf(GumihoDraftHead);
    expect(loaded.config).toEqual(config);
    const original = createGumihoHead({ target, weights, config });
    const hidden = randomHidden(5, H, 4);
    const tokens = Int32Array.of(3, 1, 4, 1, 5);
    for (const head of [loaded, original]) await head.observe({ hidden, tokens, context: tokens, topK: 3 });
    const a = await (loaded as GumihoDraftHead).expand({ parents: Int32Array.of(0, 0), tokens: Int32Array.of(9, 2), topK: 3 });
    const b = await original.expand({ parents: Int32Array.of(0, 0), tokens: Int32Array.of(9, 2), topK: 3 });
    expect(Array.from(a.candidates.logProbs)).toEqual(Array.from(b.candidates.logProbs));
    const pa = await (loaded as GumihoDraftHead).parallel({ first: Int32Array.of(1), parents: Int32Array.of(2), tokens: Int32Array.of(7), topK: 4 });
    const pb = await original.parallel({ first: Int32Array.of(1), parents: Int32Array.of(2), tokens: Int32Array.of(7), topK: 4 });
    expect(pa.heads.map((c) => Array.from(c.logProbs))).toEqual(pb.heads.map((c) => Array.from(c.logProbs)));
  });

  it('loads EAGLE-2 and Medusa folders as their heads, bf16 included', async () => {
    const eagle = draftHeadsConfigFor('eagle2', target);
    const eagleDir = folder();
    await writeDraftHeads(eagleDir, eagle, randomDraftHeadWeights('eagle2', eagle, 1), { dtype: 'BF16' });
    const loadedEagle = await loadDraftHeads(eagleDir, target);
    expect(loadedEagle).toBeInstanceOf(SerialDraftHead);
    expect(loadedEagle.id).toBe('eagle2');
    const medusa = draftHeadsConfigFor('medusa', target, { mlpHeads: 2, mlpBlocks: 1 });
    const medusaDir = folder();
    await writeDraftHeads(medusaDir, medusa, randomDraftHeadWeights('medusa', medusa, 2));
    const loadedMedusa = await loadDraftHeads(medusaDir, target);
    expect(loadedMedusa).toBeInstanceOf(MedusaDraftHead);
    expect(loadedMedusa.info.parallelHeads).toBe(2);
  });

  it('accepts the official mlp.mlp.{i} naming and a residual-only mlpBlocks count', async () => {
    const config = draftHeadsConfigFor('gumiho', target, { mlpHeads: 2, mlpBlocks: 3 });
    const weights = randomDraftHeadWeights('gumiho', config, 5);
    const dir = folder();
    await writeDraftHeads(dir, config, weights);
    const renamed: [string, HostTensor<'float32'>][] = [...weights.tensors].map(([name, tensor]) => [name.startsWith('mlp.') ? `mlp.${name}` : name, tensor]);
    await writeSafetensors(join(dir, 'model.safetensors'), renamed);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, mlpBlocks: 2 }));
    const files = await readDraftHeads(dir);
    expect(files.weights.has('mlp.1.2.linear.bias')).toBe(true);
    expect(files.weights.has('mlp.mlp.1.2.linear.bias')).toBe(false);
    expect(files.config.mlpBlocks).toBe(3);
  });
});

describe('official EAGLE/Gumiho draft folders', () => {
  it('load with their Hugging Face config.json, mlp.mlp.* keys and own embed_tokens', async () => {
    const config = draftHeadsConfigFor('gumiho', target, { mlpHeads: 2, mlpBlocks: 6 });
    const weights = randomDraftHeadWeights('gumiho', config, 31, { embedTokens: true });
    const dir = folder();
    await mkdir(dir, { recursive: true });
    const renamed = [...weights.tensors].map(([name, tensor]): [string, HostTensor<'float32'>] => [name.startsWith('mlp.') ? `mlp.${name}` : name, tensor]);
    await writeSafetensors(join(dir, 'model.safetensors'), renamed);
    // As in the official repository: a Llama config of the draft, with the unused "bias": false.
    await writeFile(join(dir, 'config.json'), JSON.stringify({
      architectures: ['LlamaForCausalLM'], hidden_size: 32, intermediate_size: 48, num_attention_heads: 2, num_key_value_heads: 1,
      num_hidden_layers: 2, rms_norm_eps: 1e-6, rope_theta: 10000, vocab_size: 64, model_type: 'llama', bias: false,
    }));
    const files = await readDraftHeads(dir);
    expect(files.config).toMatchObject({ kind: 'gumiho', serialLayers: 2, mlpHeads: 2, mlpBlocks: 6, headDim: 16, fcBias: true });
    const loaded = await loadDraftHeads(dir, target);
    expect(loaded).toBeInstanceOf(GumihoDraftHead);
    const original = createGumihoHead({ target, weights, config });
    const hidden = randomHidden(3, H, 8);
    const tokens = Int32Array.of(4, 5, 6);
    const a = await loaded.observe({ hidden, tokens, context: tokens, topK: 4 });
    const b = await original.observe({ hidden, tokens, context: tokens, topK: 4 });
    expect(Array.from(a.candidates.logProbs)).toEqual(Array.from(b.candidates.logProbs));
  });

  it('explains that pytorch_model.bin must be converted', async () => {
    const dir = folder();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ hidden_size: 32, num_hidden_layers: 1 }));
    await writeFile(join(dir, 'pytorch_model.bin'), 'not read');
    const error = await errorOf(readDraftHeads(dir));
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(error.message).toMatch(/pytorch_model\.bin.*Fix: convert it once to model\.safetensors/);
  });
});

describe('loader errors', () => {
  it('rejects heads trained for another hidden size or vocabulary, naming both values', async () => {
    const other = tinyTarget(7, { ...TINY_CONFIG, hiddenSize: 48, headDim: 24 });
    const config = draftHeadsConfigFor('eagle2', other);
    const dir = folder();
    await writeDraftHeads(dir, config, randomDraftHeadWeights('eagle2', config, 3));
    const error = await errorOf(loadDraftHeads(dir, target));
    expect(error).toBeInstanceOf(IncompatibleHeadsError);
    expect(error.message).toMatch(/hidden size 48 \(target: 32\)/);
    expect((error as GumihoError).fix).toMatch(/train/);

    const vocab = draftHeadsConfigFor('medusa', tinyTarget(7, { ...TINY_CONFIG, vocabSize: 100 }));
    const vocabDir = folder();
    await writeDraftHeads(vocabDir, vocab, randomDraftHeadWeights('medusa', vocab, 3));
    expect((await errorOf(loadDraftHeads(vocabDir, target))).message).toMatch(/vocabulary size 100 \(target: 64\)/);
  });

  it('warns (and still loads) when the heads were trained for another checkpoint of the same shape', async () => {
    const trainedFor = { ...target, config: { ...target.config, configSha256: 'a'.repeat(64) } };
    const config = draftHeadsConfigFor('eagle2', trainedFor);
    expect(config.target.configSha256).toBe('a'.repeat(64));
    const dir = folder();
    await writeDraftHeads(dir, config, randomDraftHeadWeights('eagle2', config, 5));
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => {
      if (warning.code === 'GUMIHO_HEADS_OTHER_TARGET') warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    try {
      await loadDraftHeads(dir, trainedFor); // same hash: silent
      await loadDraftHeads(dir, target); // target without a hash (not read from a file): silent
      const other = { ...target, name: 'other-28m', config: { ...target.config, configSha256: 'b'.repeat(64) } };
      expect(await loadDraftHeads(dir, other)).toBeInstanceOf(SerialDraftHead);
      await new Promise((done) => setImmediate(done)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/trained for .* aaaaaaaaaaaa.*"other-28m" has config\.json SHA-256 bbbbbbbbbbbb/);
    expect(warnings[0]).toMatch(/lossless/);
  });

  it('names a missing tensor and an ill-shaped tensor with expected and received shapes', async () => {
    const config = draftHeadsConfigFor('gumiho', target, { mlpHeads: 2, mlpBlocks: 2 });
    const weights = randomDraftHeadWeights('gumiho', config, 8);
    const dir = folder();
    await writeDraftHeads(dir, config, weights);
    const without = [...weights.tensors].filter(([name]) => name !== 'layers.1.input_layernorm.weight');
    await writeSafetensors(join(dir, 'model.safetensors'), without);
    const missing = await errorOf(loadDraftHeads(dir, target));
    expect(missing).toBeInstanceOf(ModelLoadError);
    expect(missing.message).toMatch(/"layers\.1\.input_layernorm\.weight" \(expected shape \[32\]\)/);

    const bad = new MapWeightStore(weights.tensors);
    bad.set('layers.0.self_attn.k_proj.weight', { dtype: 'float32', shape: [32, 32], data: new Float32Array(32 * 32) });
    await writeSafetensors(join(dir, 'model.safetensors'), bad.tensors);
    const shaped = await errorOf(loadDraftHeads(dir, target));
    expect(shaped).toBeInstanceOf(ModelLoadError);
    expect(shaped.message).toMatch(/"layers\.0\.self_attn\.k_proj\.weight".*shape \[32, 32\], expected \[16, 32\]/);
  });

  it('reports a missing folder, bad JSON, a bad config field and a block-count mismatch', async () => {
    const nowhere = await errorOf(loadDraftHeads(join(root, 'does-not-exist'), target));
    expect(nowhere).toBeInstanceOf(ModelLoadError);
    expect(nowhere.message).toMatch(/config\.json/);

    const dir = folder();
    const config = draftHeadsConfigFor('medusa', target, { mlpHeads: 1, mlpBlocks: 2 });
    await writeDraftHeads(dir, config, randomDraftHeadWeights('medusa', config, 1));
    await writeFile(join(dir, 'config.json'), '{ not json');
    expect((await errorOf(readDraftHeads(dir))).message).toMatch(/not valid JSON/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, kind: 'hydra' }));
    expect((await errorOf(readDraftHeads(dir))).message).toMatch(/"kind" must be/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, mlpBlocks: 3 }));
    expect((await errorOf(readDraftHeads(dir))).message).toMatch(/mlpBlocks = 3.*2 blocks per MLP head/);
  });

  it('parses the exact config.json the Python exporter writes', async () => {
    const config = draftHeadsConfigFor('gumiho', target);
    const dir = folder();
    await writeDraftHeads(dir, config, randomDraftHeadWeights('gumiho', config, 1));
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as unknown;
    expect(parseDraftHeadsConfig(json)).toEqual(config);
    expect(() => parseDraftHeadsConfig({ ...config, formatVersion: 2 })).toThrow(/formatVersion/);
    expect(() => parseDraftHeadsConfig({ ...config, numAttentionHeads: 3, numKeyValueHeads: 2 })).toThrow(/multiple/);
  });
});
