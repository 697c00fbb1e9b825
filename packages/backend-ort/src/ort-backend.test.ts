import { createCpuBackend } from '@gumiho/backend-cpu';
import { BackendUnavailableError, GumihoError, HostKvCache, InvalidArgumentError, ShapeMismatchError, type HostTensor, type ProgramDefinition } from '@gumiho/core';
import { buildAttentionMask, createLlamaProgram, createLlamaTarget, fuseLlamaWeights, loadModelFolder, randomLlamaTensors, writeRandomLlama, type LlamaInput } from '@gumiho/models';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrtBackend, probeOrtProviders, type OrtBackend } from './index.js';
import { compareBackends, intTensor, mapStore, maxAbsDiff, random, randomTensor, type CompareStep } from './test-utils.js';

const TOLERANCE = 1e-4;
const cpu = createCpuBackend();
let ort: OrtBackend;

beforeAll(async () => {
  ort = await createOrtBackend({ threads: 1, spinning: false });
});
afterAll(() => ort.dispose());

describe('createOrtBackend', () => {
  it('selects the CPU provider by default', () => {
    expect(ort.id).toBe('ort-cpu');
    expect(ort.executionProvider).toBe('cpu');
    expect(ort.capabilities).toEqual({ precision: 'float32', traced: true, copiesWeights: true });
  });

  it('rejects unknown or duplicate providers with InvalidArgumentError', async () => {
    await expect(createOrtBackend({ executionProviders: ['tpu' as 'cpu'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(createOrtBackend({ executionProviders: ['cpu', 'cpu'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(createOrtBackend({ executionProviders: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(createOrtBackend({ threads: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('lists every provider tried, with install hints, when none starts (CUDA is not bundled)', async () => {
    const error = await createOrtBackend({ executionProviders: ['cuda'] }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    // A host with the CUDA provider installed would start it; this one (and CI) has none.
    if (error === undefined) return;
    expect(error).toBeInstanceOf(BackendUnavailableError);
    const unavailable = error as BackendUnavailableError;
    expect(unavailable.attempts.map((attempt) => attempt.name)).toEqual(['ort-cuda']);
    expect(unavailable.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    expect(unavailable.message).toContain('cuDNN 9');
  });

  it('reports which providers can be used here, with reasons for the others', async () => {
    const statuses = await probeOrtProviders();
    expect(statuses.map((status) => status.provider)).toEqual(['cpu', 'cuda', 'webgpu']);
    expect(statuses[0]).toEqual({ provider: 'cpu', available: true, reason: undefined });
    for (const status of statuses) {
      if (!status.available) expect(status.reason).toMatch(/To fix: /);
    }
  });

  it('falls back along the preference list (webgpu without an adapter → cpu)', async () => {
    const backend = await createOrtBackend({ executionProviders: ['webgpu', 'cpu'], threads: 1 });
    // With a GPU adapter present this picks webgpu; without one it must fall back to cpu.
    expect(['ort-webgpu', 'ort-cpu']).toContain(backend.id);
    backend.dispose();
  });
});

/** A program that uses every op once, without a cache. */
const everyOp: ProgramDefinition<'x' | 'ids' | 'positions' | 'rows', 'y' | 'z'> = {
  name: 'every-op',
  inputs: {
    x: { dtype: 'float32', shape: ['n', 8] },
    ids: { dtype: 'int32', shape: ['n'] },
    positions: { dtype: 'int32', shape: ['n'] },
    rows: { dtype: 'int32', shape: ['r'] },
  },
  build(ops, inputs, context) {
    const embedded = ops.embedding(context.weight('table'), inputs.ids); // [n, 8]
    const h = ops.add(inputs.x, embedded);
    const normed = ops.rmsNorm(h, context.weight('norm'), 1e-5);
    const projected = ops.linear(normed, context.weight('w'), context.weight('b')); // [n, 16]
    const left = ops.sliceColumns(projected, 0, 8);
    const right = ops.sliceColumns(projected, 8, 16);
    const roped = ops.rope(left, inputs.positions, { heads: 2, headDim: 4, theta: 10000 });
    const gated = ops.mul(ops.silu(right), roped);
    const both = ops.concat([gated, h], 1); // [n, 16]
    const stacked = ops.concat([both, both], 0); // [2n, 16]
    return { y: ops.gatherRows(stacked, inputs.rows), z: ops.rmsNorm(ops.add(h, gated), context.weight('norm'), 1e-6) };
  },
};

describe('ops against the cpu backend', () => {
  it('matches every op on random inputs, for several row counts', async () => {
    const next = random(7);
    const weights = mapStore([
      ['table', randomTensor([11, 8], next)],
      ['norm', randomTensor([8], next, 0.5)],
      ['w', randomTensor([16, 8], next, 0.5)],
      ['b', randomTensor([16], next, 0.1)],
    ]);
    for (const n of [1, 3, 6]) {
      const steps: CompareStep[] = [
        {
          inputs: {
            x: randomTensor([n, 8], next),
            ids: intTensor(Array.from({ length: n }, (_, i) => (i * 5) % 11)),
            positions: intTensor(Array.from({ length: n }, (_, i) => 1000 + 37 * i)),
            rows: intTensor([2 * n - 1, 0, n]),
          },
        },
      ];
      const { maxOutputDiff, outputs } = await compareBackends(everyOp as ProgramDefinition, weights, cpu, ort, steps);
      expect(maxOutputDiff).toBeLessThan(TOLERANCE);
      expect(outputs[0]!['y']!.shape).toEqual([3, 16]);
    }
  });

  it('fuses add → rmsNorm and merges column slices into one Split', async () => {
    const next = random(3);
    const weights = mapStore([
      ['table', randomTensor([11, 8], next)],
      ['norm', randomTensor([8], next)],
      ['w', randomTensor([16, 8], next)],
      ['b', randomTensor([16], next)],
    ]);
    const program = await ort.compile(everyOp, weights);
    expect(program.info.fusedSkipNorms).toBe(2);
    expect(program.info.mergedSlices).toBe(1);
    expect(program.info.weightBytes).toBe((88 + 8 + 128 + 16) * 4);
    program.dispose();
  });
});

describe('weights after compile', () => {
  it('are copied into the session: overwriting the store afterwards changes nothing (copiesWeights)', async () => {
    const program: ProgramDefinition<'x', 'y'> = {
      name: 'copied-weights',
      inputs: { x: { dtype: 'float32', shape: ['n', 8] } },
      build(ops, inputs, context) {
        const hidden = ops.linear(inputs.x, context.weight('w'), context.weight('b'));
        return { y: ops.add(ops.sliceColumns(hidden, 0, 4), ops.sliceColumns(hidden, 4, 8)) };
      },
    };
    const next = random(21);
    const w = randomTensor([8, 8], next);
    const b = randomTensor([8], next);
    const compiled = await ort.compile(program, mapStore([['w', w], ['b', b]]));
    const x = randomTensor([3, 8], next);
    const before = Float32Array.from((await compiled.run({ x })).y.data);
    w.data.fill(Number.NaN);
    b.data.fill(1e30);
    const after = (await compiled.run({ x })).y.data;
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(before.every(Number.isFinite)).toBe(true);
    compiled.dispose();
  });

  it('a Llama target keeps only the shared embedding / LM head, and decodes as on the cpu backend', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gumiho-ort-weights-'));
    try {
      await writeRandomLlama(dir, { tieWordEmbeddings: false, seed: 4 });
      const forward = { tokenIds: Int32Array.of(3, 9, 27, 5), positions: Int32Array.of(0, 1, 2, 3), logitRows: Int32Array.of(0, 3) };
      const reference = await createLlamaTarget({ backend: cpu, folder: dir });
      expect([...reference.weights.names()].length).toBeGreaterThan(2); // cpu binds the store: nothing dropped
      const expected = await reference.forward(forward);

      const lean = await createLlamaTarget({ backend: ort, folder: dir });
      expect([...lean.weights.names()].sort()).toEqual(['lm_head.weight', 'model.embed_tokens.weight']);
      expect([...lean.model.weights.names()].sort()).toEqual(['lm_head.weight', 'model.embed_tokens.weight']);
      const got = await lean.forward(forward);
      expect(maxAbsDiff(got.logits, expected.logits)).toBeLessThan(TOLERANCE);
      lean.dispose();

      // A model passed in is left whole unless asked; retainWeights keeps everything on the target.
      const model = await loadModelFolder(dir);
      const count = [...model.weights.names()].length;
      const shared = await createLlamaTarget({ backend: ort, model });
      expect([...model.weights.names()].length).toBe(count);
      expect([...shared.weights.names()].length).toBe(2);
      const full = await createLlamaTarget({ backend: ort, model, retainWeights: true, releaseModelWeights: true });
      expect([...full.weights.names()].length).toBeGreaterThan(2);
      expect([...model.weights.names()].length).toBe(count);
      const released = await createLlamaTarget({ backend: ort, model, releaseModelWeights: true });
      expect([...model.weights.names()].sort()).toEqual(['lm_head.weight', 'model.embed_tokens.weight']);
      for (const target of [shared, full, released, reference]) target.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('splitting fused projections by weight rows', () => {
  it('computes only the used column ranges, from views of the same weight bytes', async () => {
    const program: ProgramDefinition<'x', 'a' | 'b'> = {
      name: 'projection-slices',
      inputs: { x: { dtype: 'float32', shape: ['n', 8] } },
      build(ops, inputs, context) {
        const projected = ops.linear(inputs.x, context.weight('w')); // [n, 12]
        // Columns 3..5 and 9..11 are never used.
        return { a: ops.sliceColumns(projected, 0, 3), b: ops.sliceColumns(projected, 5, 9) };
      },
    };
    const next = random(13);
    const weights = mapStore([['w', randomTensor([12, 8], next)]]);
    const compiled = await ort.compile(program, weights);
    expect(compiled.info.splitLinears).toBe(1);
    expect(compiled.info.weightBytes).toBe(12 * 8 * 4);
    compiled.dispose();
    for (const n of [1, 4]) {
      const { maxOutputDiff, outputs } = await compareBackends(program as ProgramDefinition, weights, cpu, ort, [{ inputs: { x: randomTensor([n, 8], next) } }]);
      expect(maxOutputDiff).toBeLessThan(TOLERANCE);
      expect(outputs[0]!['b']!.shape).toEqual([n, 4]);
    }
  });
});

/** Attention over a cache, with q/k/v and the mask as inputs. */
function attentionProgram(heads: number, kvHeads: number, headDim: number, capacity: number, scale?: number): ProgramDefinition<'q' | 'k' | 'v' | 'mask', 'out'> {
  return {
    name: 'attention',
    inputs: {
      q: { dtype: 'float32', shape: ['n', heads * headDim] },
      k: { dtype: 'float32', shape: ['n', kvHeads * headDim] },
      v: { dtype: 'float32', shape: ['n', kvHeads * headDim] },
      mask: { dtype: 'float32', shape: ['n', 't'] },
    },
    caches: { main: { layers: 2, kvHeads, headDim, capacity } },
    build(ops, inputs, context) {
      const options = { mask: inputs.mask, heads, kvHeads, headDim, ...(scale === undefined ? {} : { scale }) };
      const first = ops.attention(inputs.q, inputs.k, inputs.v, { ...options, kv: context.kv('main', 0) });
      // Layer 1 sees different keys (scaled), so the two layers' caches differ.
      const second = ops.attention(first, ops.mul(inputs.k, inputs.k), inputs.v, { ...options, kv: context.kv('main', 1) });
      return { out: ops.add(first, second) };
    },
  };
}

function causalStep(next: () => number, n: number, past: number, heads: number, kvHeads: number, headDim: number, treeMask?: Uint8Array, pending = 0, after?: CompareStep['after']): CompareStep {
  const mask = buildAttentionMask(n, past - pending, pending, treeMask);
  return {
    inputs: {
      q: randomTensor([n, heads * headDim], next),
      k: randomTensor([n, kvHeads * headDim], next),
      v: randomTensor([n, kvHeads * headDim], next),
      mask: { dtype: 'float32', shape: [n, past + n], data: mask },
    },
    ...(after === undefined ? {} : { after }),
  };
}

describe('attention and the KV cache', () => {
  it('matches the cpu backend over prefill, tree verification with compaction, and decoding (GQA)', async () => {
    const [heads, kvHeads, headDim] = [6, 2, 8];
    const next = random(11);
    const tree = Uint8Array.from([1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1]); // 0 → {1, 2}, 1 → 3
    const steps: CompareStep[] = [
      causalStep(next, 5, 0, heads, kvHeads, headDim), // first prefill: no cached rows
      causalStep(next, 4, 5, heads, kvHeads, headDim, tree, 0, [0, 1, 3]), // a tree; keep a path
      causalStep(next, 1, 8, heads, kvHeads, headDim, undefined, 0, 'rollback'),
      causalStep(next, 1, 8, heads, kvHeads, headDim),
      causalStep(next, 3, 9, heads, kvHeads, headDim),
    ];
    const result = await compareBackends(attentionProgram(heads, kvHeads, headDim, 32) as ProgramDefinition, mapStore([]), cpu, ort, steps);
    expect(result.maxOutputDiff).toBeLessThan(TOLERANCE);
    expect(result.maxCacheDiff).toBe(0);
  });

  it('honours an explicit scale, and hides pending rows that the mask hides', async () => {
    const [heads, kvHeads, headDim] = [4, 4, 4];
    const next = random(5);
    const steps: CompareStep[] = [
      causalStep(next, 3, 0, heads, kvHeads, headDim, undefined, 0, []), // keep none of them
      causalStep(next, 2, 0, heads, kvHeads, headDim, undefined, 0, 'rollback'),
      // Two runs without committing in between: the second must not see the first's pending rows.
      causalStep(next, 2, 0, heads, kvHeads, headDim, undefined, 0, 'commit'),
    ];
    const program = attentionProgram(heads, kvHeads, headDim, 16, 0.3) as ProgramDefinition;
    const result = await compareBackends(program, mapStore([]), cpu, ort, steps);
    expect(result.maxOutputDiff).toBeLessThan(TOLERANCE);

    const [compiled, reference] = [await ort.compile(program, mapStore([])), await cpu.compile(program, mapStore([]))];
    const [cache, cpuCache] = [ort, cpu].map((backend) => backend.createKvCache({ layers: 2, kvHeads, headDim, capacity: 16 }));
    const first = causalStep(next, 3, 0, heads, kvHeads, headDim);
    await compiled.run(first.inputs, { main: cache! });
    await reference.run(first.inputs, { main: cpuCache! });
    expect(cache!.pending).toBe(3);
    const second = causalStep(next, 2, 3, heads, kvHeads, headDim, undefined, 3);
    const [actual, expected] = [await compiled.run(second.inputs, { main: cache! }), await reference.run(second.inputs, { main: cpuCache! })];
    expect(cache!.pending).toBe(5);
    expect(actual['out']!.shape).toEqual([2, heads * headDim]);
    expect(maxAbsDiff(actual['out']!.data, expected['out']!.data)).toBeLessThan(TOLERANCE);
    compiled.dispose();
    reference.dispose();
  });

  it('rejects a missing cache, a wrong mask width and an overflowing cache before running', async () => {
    const [heads, kvHeads, headDim] = [2, 1, 4];
    const next = random(9);
    const program = await ort.compile(attentionProgram(heads, kvHeads, headDim, 4) as ProgramDefinition, mapStore([]));
    const step = causalStep(next, 3, 0, heads, kvHeads, headDim);
    await expect(program.run(step.inputs)).rejects.toBeInstanceOf(InvalidArgumentError);
    const cache = ort.createKvCache({ layers: 2, kvHeads, headDim, capacity: 4 });
    const badMask = { ...step.inputs, mask: { dtype: 'float32', shape: [3, 4], data: new Float32Array(12) } as HostTensor };
    await expect(program.run(badMask, { main: cache })).rejects.toBeInstanceOf(ShapeMismatchError);
    await program.run(step.inputs, { main: cache });
    cache.commit();
    await expect(program.run(causalStep(next, 2, 3, heads, kvHeads, headDim).inputs, { main: cache })).rejects.toThrow(/overflow/);
    expect(cache.length).toBe(3);
    expect(cache.pending).toBe(0);
    program.dispose();
    await expect(program.run(step.inputs, { main: cache })).rejects.toBeInstanceOf(GumihoError);
  });

  it('binds two caches in one program, with row counts known only after the run', async () => {
    const [heads, kvHeads, headDim] = [2, 1, 4];
    const width = heads * headDim;
    // Rows of the second cache's new keys come from a concat ('a' + 'b' rows): not an input dim.
    const program: ProgramDefinition<'x' | 'y' | 'maskX' | 'maskXY', 'out' | 'both'> = {
      name: 'two-caches',
      inputs: {
        x: { dtype: 'float32', shape: ['a', width] },
        y: { dtype: 'float32', shape: ['b', width] },
        maskX: { dtype: 'float32', shape: ['a', 'tx'] },
        maskXY: { dtype: 'float32', shape: ['ab', 'txy'] },
      },
      caches: { first: { layers: 1, kvHeads, headDim, capacity: 16 }, second: { layers: 1, kvHeads, headDim, capacity: 6 } },
      build(ops, inputs, context) {
        const kv = (t: typeof inputs.x) => ops.sliceColumns(t, 0, kvHeads * headDim);
        const out = ops.attention(inputs.x, kv(inputs.x), kv(inputs.x), { kv: context.kv('first', 0), mask: inputs.maskX, heads, kvHeads, headDim });
        const xy = ops.concat([inputs.x, inputs.y], 0);
        const both = ops.attention(xy, kv(xy), kv(xy), { kv: context.kv('second', 0), mask: inputs.maskXY, heads, kvHeads, headDim });
        return { out, both };
      },
    };
    const next = random(17);
    const step = (a: number, b: number, pastX: number, pastXY: number): CompareStep => ({
      inputs: {
        x: randomTensor([a, width], next),
        y: randomTensor([b, width], next),
        maskX: { dtype: 'float32', shape: [a, pastX + a], data: buildAttentionMask(a, pastX, 0) },
        maskXY: { dtype: 'float32', shape: [a + b, pastXY + a + b], data: buildAttentionMask(a + b, pastXY, 0) },
      },
    });
    const result = await compareBackends(program as ProgramDefinition, mapStore([]), cpu, ort, [step(2, 1, 0, 0), step(1, 2, 2, 3)]);
    expect(result.maxOutputDiff).toBeLessThan(TOLERANCE);
    expect(result.maxCacheDiff).toBe(0);

    // The second cache (capacity 6) holds 6 rows now: one more run must fail before writing anything.
    const compiled = await ort.compile(program as ProgramDefinition, mapStore([]));
    const first = ort.createKvCache({ layers: 1, kvHeads, headDim, capacity: 16 }) as HostKvCache;
    const second = ort.createKvCache({ layers: 1, kvHeads, headDim, capacity: 6 });
    await compiled.run(step(3, 2, 0, 0).inputs, { first, second });
    first.commit();
    second.commit();
    const firstKeys = Array.from(first.keys(0));
    await expect(compiled.run(step(1, 1, 3, 5).inputs, { first, second })).rejects.toThrow(/overflow/);
    expect([first.length, first.pending, second.length, second.pending]).toEqual([3, 0, 5, 0]);
    expect(Array.from(first.keys(0))).toEqual(firstKeys);
    compiled.dispose();
  });

  it('rejects token ids outside the embedding table, like the cpu backend', async () => {
    const program = await ort.compile(everyOp as ProgramDefinition, mapStore([
      ['table', randomTensor([11, 8], random(1))],
      ['norm', randomTensor([8], random(2))],
      ['w', randomTensor([16, 8], random(3))],
      ['b', randomTensor([16], random(4))],
    ]));
    const inputs = { x: randomTensor([2, 8], random(5)), positions: intTensor([0, 1]), rows: intTensor([0]) };
    await expect(program.run({ ...inputs, ids: intTensor([3, -1]) })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(program.run({ ...inputs, ids: intTensor([11, 0]) })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(program.run({ ...inputs, ids: intTensor([10, 0]) })).resolves.toBeDefined();
    program.dispose();
  });

  it('rejects inputs of the wrong dtype or shape', async () => {
    const program = await ort.compile(attentionProgram(2, 1, 4, 8) as ProgramDefinition, mapStore([]));
    const cache = ort.createKvCache({ layers: 2, kvHeads: 1, headDim: 4, capacity: 8 });
    const step = causalStep(random(1), 2, 0, 2, 1, 4);
    await expect(program.run({ ...step.inputs, q: intTensor([1, 2]) }, { main: cache })).rejects.toThrow(/dtype/);
    await expect(program.run({ ...step.inputs, k: randomTensor([3, 4], random(2)) }, { main: cache })).rejects.toBeInstanceOf(ShapeMismatchError);
    program.dispose();
  });
});

describe('a tiny random Llama against the cpu backend', () => {
  it('gives the same hidden states, logits and cache over prefill, a tree round and decoding', async () => {
    const config = {
      modelType: 'llama',
      vocabSize: 64,
      hiddenSize: 32,
      intermediateSize: 48,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      maxPositions: 64,
      tieWordEmbeddings: true,
      bosTokenId: 0,
      eosTokenIds: [0],
    };
    const tensors = randomLlamaTensors({ vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, seed: 3 });
    const weights = fuseLlamaWeights(mapStore(tensors), config);
    const program = createLlamaProgram(config, 32) as ProgramDefinition;
    const step = (ids: number[], committed: number, pending: number, treeMask?: Uint8Array, after?: CompareStep['after'], depths?: number[]): CompareStep => {
      const n = ids.length;
      const inputs: Record<LlamaInput, HostTensor> = {
        ids: intTensor(ids),
        positions: intTensor(ids.map((_, i) => committed + (depths ? depths[i]! : i))),
        mask: { dtype: 'float32', shape: [n, committed + pending + n], data: buildAttentionMask(n, committed, pending, treeMask) },
        logitRows: intTensor(ids.map((_, i) => i)),
      };
      return { inputs, ...(after === undefined ? {} : { after }) };
    };
    const tree = Uint8Array.from([1, 0, 0, 1, 1, 0, 1, 0, 1]);
    const steps = [step([5, 9, 13, 2, 40, 41], 0, 0), step([7, 8, 9], 6, 0, tree, [0, 2], [0, 1, 1]), step([11], 8, 0), step([12], 9, 0)];
    const result = await compareBackends(program, weights, cpu, ort, steps);
    expect(result.maxOutputDiff).toBeLessThan(TOLERANCE);
    expect(result.maxCacheDiff).toBeLessThan(TOLERANCE);
    const compiled = await ort.compile(program, weights);
    // Per layer: skip-norm, q, k, v, 2 rope, 2 concat, attention, o, skip-norm, gate, up, silu,
    // mul, down (17); plus embedding, rope tables, final norm, LM head and the stacked new rows.
    expect(compiled.info.splitLinears).toBe(4);
    expect(compiled.info.nodes).toBeLessThanOrEqual(2 * 17 + 14);
    compiled.dispose();
  });
});

/**
 * GPU providers: the same comparisons, where the provider starts (a host with Vulkan and a GPU
 * for webgpu; the CUDA provider libraries for cuda). Elsewhere each is skipped, and the test log
 * says why (the BackendUnavailableError's reason).
 */
for (const provider of ['webgpu', 'cuda'] as const) {
  describe(`ops on ort-${provider}`, () => {
    let backend: OrtBackend | undefined;
    let reason = '';
    beforeAll(async () => {
      try {
        backend = await createOrtBackend({ executionProviders: [provider], threads: 1 });
      } catch (error) {
        if (!(error instanceof BackendUnavailableError)) throw error;
        reason = error.attempts[0]?.reason ?? error.message;
      }
    });
    afterAll(() => backend?.dispose());

    it(`matches the cpu backend on attention over a cache (skipped without ${provider})`, async (context) => {
      if (!backend) {
        context.skip(`ort-${provider} is not available here: ${reason.slice(0, 200)}`);
        return;
      }
      const next = random(21);
      const [heads, kvHeads, headDim] = [6, 2, 8];
      const steps = [causalStep(next, 5, 0, heads, kvHeads, headDim), causalStep(next, 1, 5, heads, kvHeads, headDim)];
      const result = await compareBackends(attentionProgram(heads, kvHeads, headDim, 16) as ProgramDefinition, mapStore([]), cpu, backend, steps);
      expect(result.maxOutputDiff).toBeLessThan(1e-3);
    });
  });
}
