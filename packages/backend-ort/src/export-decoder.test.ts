import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCpuBackend } from '@gumiho/backend-cpu';
import { InvalidArgumentError, UnsupportedModelError, type ModelConfig } from '@gumiho/core';
import { buildAttentionMask, createLlamaProgram, fuseLlamaWeights, randomLlamaTensors, writeRandomLlama } from '@gumiho/models';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportDecoderOnnx } from './index.js';
import { mapStore, maxAbsDiff } from './test-utils.js';

const sizes = { vocabSize: 48, hiddenSize: 32, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8 };
const config: ModelConfig = {
  modelType: 'llama',
  ...sizes,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  maxPositions: 64,
  tieWordEmbeddings: true,
  bosTokenId: 0,
  eosTokenIds: [0],
};
const tensors = randomLlamaTensors({ ...sizes, seed: 9 });

let dir: string;
let session: ort.InferenceSession;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gumiho-export-'));
  const result = await exportDecoderOnnx({ weights: mapStore(tensors), config, outDir: dir });
  session = await ort.InferenceSession.create(result.modelPath, { intraOpNumThreads: 1, logSeverityLevel: 3 });
});
afterAll(async () => {
  await session?.release();
  await rm(dir, { recursive: true, force: true });
});

const int64 = (values: readonly number[], dims: readonly number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);

function emptyPast(batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const kind of ['key', 'value']) feeds[`past_key_values.${layer}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [batch, config.numKvHeads, 0, config.headDim]);
  }
  return feeds;
}

/** Logits of every row of a causal run of `ids` on the cpu backend (reference). */
async function referenceLogits(ids: readonly number[], modelConfig = config, modelTensors = tensors): Promise<Float32Array> {
  const cpu = createCpuBackend();
  const program = await cpu.compile(createLlamaProgram(modelConfig, 32), fuseLlamaWeights(mapStore(modelTensors), modelConfig));
  const cache = cpu.createKvCache({ layers: config.numLayers, kvHeads: config.numKvHeads, headDim: config.headDim, capacity: 32 });
  const n = ids.length;
  const out = await program.run(
    {
      ids: { dtype: 'int32', shape: [n], data: Int32Array.from(ids) },
      positions: { dtype: 'int32', shape: [n], data: Int32Array.from(ids, (_, i) => i) },
      mask: { dtype: 'float32', shape: [n, n], data: buildAttentionMask(n, 0, 0) },
      logitRows: { dtype: 'int32', shape: [n], data: Int32Array.from(ids, (_, i) => i) },
    },
    { target: cache },
  );
  return out.logits.data;
}

describe('exportDecoderOnnx', () => {
  const ids = [3, 17, 5, 40, 22, 9];
  const vocab = config.vocabSize;

  it('writes a standard decoder: input and output names in the transformers.js layout', async () => {
    expect(session.inputNames.slice(0, 3)).toEqual(['input_ids', 'attention_mask', 'position_ids']);
    expect(session.inputNames).toContain('past_key_values.1.value');
    expect(session.outputNames[session.outputNames.length - 1]).toBe('logits');
    expect(session.outputNames).toContain('present.0.key');
    const written = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(written['model_type']).toBe('llama');
    expect(written['num_key_value_heads']).toBe(2);
  });

  it('prefill, then decoding with past_key_values, matches the Llama program on the cpu backend', async () => {
    const expected = await referenceLogits(ids);
    const prefixLength = 4;
    const prefill = await session.run({
      input_ids: int64(ids.slice(0, prefixLength), [1, prefixLength]),
      attention_mask: int64(Array(prefixLength).fill(1), [1, prefixLength]),
      position_ids: int64([0, 1, 2, 3], [1, prefixLength]),
      ...emptyPast(1),
    });
    expect(prefill['logits']!.dims).toEqual([1, prefixLength, vocab]);
    expect(prefill['present.0.key']!.dims).toEqual([1, config.numKvHeads, prefixLength, config.headDim]);
    expect(maxAbsDiff(prefill['logits']!.data as Float32Array, expected.subarray(0, prefixLength * vocab))).toBeLessThan(1e-4);
    const past: Record<string, ort.Tensor> = {};
    for (let layer = 0; layer < config.numLayers; layer++) {
      for (const kind of ['key', 'value']) past[`past_key_values.${layer}.${kind}`] = prefill[`present.${layer}.${kind}`]!;
    }
    const step = await session.run({
      input_ids: int64(ids.slice(prefixLength), [1, 2]),
      attention_mask: int64(Array(ids.length).fill(1), [1, ids.length]),
      position_ids: int64([4, 5], [1, 2]),
      ...past,
    });
    expect(step['present.1.value']!.dims).toEqual([1, config.numKvHeads, ids.length, config.headDim]);
    expect(maxAbsDiff(step['logits']!.data as Float32Array, expected.subarray(prefixLength * vocab))).toBeLessThan(1e-4);
  });

  it('honours left padding in a batch through attention_mask', async () => {
    const expected = await referenceLogits(ids);
    const short = ids.slice(0, 4);
    const expectedShort = await referenceLogits(short);
    const out = await session.run({
      input_ids: int64([0, 0, ...short, ...ids], [2, 6]),
      attention_mask: int64([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [2, 6]),
      position_ids: int64([1, 1, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5], [2, 6]),
      ...emptyPast(2),
    });
    const logits = out['logits']!.data as Float32Array;
    expect(maxAbsDiff(logits.subarray(5 * vocab, 6 * vocab), expectedShort.subarray(3 * vocab))).toBeLessThan(1e-4);
    expect(maxAbsDiff(logits.subarray(11 * vocab, 12 * vocab), expected.subarray(5 * vocab))).toBeLessThan(1e-4);
  });

  it('exports a Hugging Face folder, copying its config and tokenizer files', async () => {
    const source = await mkdtemp(join(tmpdir(), 'gumiho-export-src-'));
    const out = await mkdtemp(join(tmpdir(), 'gumiho-export-out-'));
    try {
      await writeRandomLlama(source, { ...sizes, seed: 9 });
      const result = await exportDecoderOnnx({ folder: source, outDir: out });
      expect(result.files).toContain(join(out, 'config.json'));
      const fromFolder = await ort.InferenceSession.create(result.modelPath, { intraOpNumThreads: 1 });
      const prefill = await fromFolder.run({
        input_ids: int64(ids, [1, ids.length]),
        attention_mask: int64(Array(ids.length).fill(1), [1, ids.length]),
        position_ids: int64(ids.map((_, i) => i), [1, ids.length]),
        ...emptyPast(1),
      });
      expect(maxAbsDiff(prefill['logits']!.data as Float32Array, await referenceLogits(ids))).toBeLessThan(1e-4);
      await fromFolder.release();
    } finally {
      await rm(source, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }
  });

  it('uses an untied lm_head when the model has one', async () => {
    const untiedConfig = { ...config, tieWordEmbeddings: false };
    const untied = randomLlamaTensors({ ...sizes, seed: 4, tieWordEmbeddings: false });
    const out = await mkdtemp(join(tmpdir(), 'gumiho-export-untied-'));
    try {
      const result = await exportDecoderOnnx({ weights: mapStore(untied), config: untiedConfig, outDir: out });
      const untiedSession = await ort.InferenceSession.create(result.modelPath, { intraOpNumThreads: 1 });
      const logits = await untiedSession.run({
        input_ids: int64(ids, [1, ids.length]),
        attention_mask: int64(Array(ids.length).fill(1), [1, ids.length]),
        position_ids: int64(ids.map((_, i) => i), [1, ids.length]),
        ...emptyPast(1),
      });
      expect(maxAbsDiff(logits['logits']!.data as Float32Array, await referenceLogits(ids, untiedConfig, untied))).toBeLessThan(1e-4);
      await untiedSession.release();
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('rejects ambiguous options and non-Llama configs', async () => {
    await expect(exportDecoderOnnx({ outDir: dir })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(exportDecoderOnnx({ weights: mapStore([]), outDir: dir })).rejects.toBeInstanceOf(InvalidArgumentError);
    const source = await mkdtemp(join(tmpdir(), 'gumiho-export-bad-'));
    try {
      await writeRandomLlama(source, { ...sizes, config: { model_type: 'gpt2' } });
      await expect(exportDecoderOnnx({ folder: source, outDir: source })).rejects.toBeInstanceOf(UnsupportedModelError);
    } finally {
      await rm(source, { recursive: true, force: true });
    }
  });
});
