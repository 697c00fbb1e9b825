/**
 * Cross-check against the Python training tooling: `python -m train_heads smoke` writes a tiny
 * random target, exported heads of each kind and `reference.json` with PyTorch outputs for fixed
 * inputs. The exports must load with `loadDraftHeads` and reproduce those outputs within 1e-3.
 *
 * Skipped (with the reason printed) when /usr/bin/python3 has no torch or the tooling is absent.
 * Set GUMIHO_SMOKE_DIR to reuse an existing smoke folder instead of generating one (~10 s).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT_HANDLE, type ModelConfig } from '@gumiho/core';
import { createCpuBackend } from '@gumiho/backend-cpu';
import { LayeredWeightStore, readSafetensors } from '@gumiho/safetensors';
import { GumihoDraftHead, MedusaDraftHead, SerialDraftHead, type DraftTarget } from './heads.js';
import { loadDraftHeads, readDraftHeads } from './io.js';
import { gumihoMlpHeads } from './programs.js';
import { PrefixedWeightStore } from './weights.js';

const TOOLING = resolve(dirname(fileURLToPath(import.meta.url)), '../../../tooling/train-heads');
const PYTHON = '/usr/bin/python3';

function skipReason(): string | undefined {
  if (process.env.GUMIHO_SMOKE_DIR) return undefined;
  if (!existsSync(join(TOOLING, 'train_heads', 'smoke.py'))) return `tooling/train-heads has no smoke command (${TOOLING})`;
  if (!existsSync(PYTHON)) return `${PYTHON} does not exist`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `${PYTHON} cannot import torch`;
  return undefined;
}

const reason = skipReason();
if (reason) console.warn(`[draft-heads] PyTorch reference test skipped: ${reason}.`);

interface TopLogits {
  ids: number[];
  values: number[];
}
interface KindReference {
  n: number;
  features: number[][];
  tokens: number[];
  positions: number[];
  serialHidden?: number[][];
  serialLogits?: TopLogits;
  mlpInput?: number[];
  mlpOutputs?: number[][];
  mlpLogits?: TopLogits[];
}
interface Reference {
  format: string;
  kinds: Record<string, KindReference>;
}

const TOLERANCE = 1e-3;

describe.skipIf(reason !== undefined)('PyTorch reference (tooling/train-heads smoke)', () => {
  let dir = '';
  let owned = false;
  let reference: Reference;
  let target: DraftTarget;

  beforeAll(async () => {
    if (process.env.GUMIHO_SMOKE_DIR) {
      dir = process.env.GUMIHO_SMOKE_DIR;
    } else {
      dir = await mkdtemp(join(tmpdir(), 'draft-heads-smoke-'));
      owned = true;
      const run = spawnSync(PYTHON, ['-m', 'train_heads', 'smoke', '--out', dir], {
        cwd: TOOLING,
        encoding: 'utf8',
        timeout: 110_000,
        env: { ...process.env, TRAIN_HEADS_THREADS: '1' },
      });
      if (run.status !== 0) throw new Error(`train_heads smoke failed (${run.status}): ${run.stderr}`);
    }
    reference = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as Reference;
    const hf = JSON.parse(await readFile(join(dir, 'target', 'config.json'), 'utf8')) as Record<string, number | boolean>;
    const weights = await readSafetensors(join(dir, 'target', 'model.safetensors'));
    const config: ModelConfig = {
      modelType: 'llama',
      vocabSize: hf.vocab_size as number,
      hiddenSize: hf.hidden_size as number,
      intermediateSize: hf.intermediate_size as number,
      numLayers: hf.num_hidden_layers as number,
      numHeads: hf.num_attention_heads as number,
      numKvHeads: hf.num_key_value_heads as number,
      headDim: hf.head_dim as number,
      rmsNormEps: hf.rms_norm_eps as number,
      ropeTheta: hf.rope_theta as number,
      maxPositions: hf.max_position_embeddings as number,
      tieWordEmbeddings: true,
      bosTokenId: 0,
      eosTokenIds: [0],
    };
    target = {
      name: 'smoke-tiny',
      backend: createCpuBackend(),
      weights,
      config,
      embeddingWeight: 'model.embed_tokens.weight',
      lmHeadWeight: weights.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight',
    };
  }, 120_000);

  afterAll(async () => {
    if (owned) await rm(dir, { recursive: true, force: true });
  });

  const expectTopLogits = (logProbs: Float32Array, tokens: Int32Array, expected: TopLogits) => {
    expect(Array.from(tokens.subarray(0, expected.ids.length))).toEqual(expected.ids);
    // Log-probs differ from logits by a per-row constant: compare differences to the best.
    for (let j = 1; j < expected.ids.length; j++) {
      expect(Math.abs(logProbs[j]! - logProbs[0]! - (expected.values[j]! - expected.values[0]!))).toBeLessThan(TOLERANCE);
    }
  };

  for (const kind of ['gumiho', 'eagle2'] as const) {
    it(`${kind}: the serial part reproduces PyTorch's hidden states and top-5 logits`, async () => {
      const ref = reference.kinds[kind]!;
      const head = await loadDraftHeads(join(dir, kind), target);
      expect(head).toBeInstanceOf(SerialDraftHead);
      const serial = (head as SerialDraftHead).serial;
      const H = target.config.hiddenSize;
      // One pair per observe (several rounds), checking every position's output state.
      let last: Awaited<ReturnType<SerialDraftHead['observe']>> | undefined;
      for (let p = 0; p < ref.n; p++) {
        last = await head.observe({ hidden: Float32Array.from(ref.features[p]!), tokens: Int32Array.of(ref.tokens[p]!), context: Int32Array.from(ref.tokens.slice(0, p + 1)), topK: 5 });
        const out = serial.out(ROOT_HANDLE);
        let worst = 0;
        for (let c = 0; c < H; c++) worst = Math.max(worst, Math.abs(out[c]! - ref.serialHidden![p]![c]!));
        if (process.env.GUMIHO_VERBOSE) console.log(`${kind} p=${p} max |out - torch| = ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(TOLERANCE);
        expect(serial.position(ROOT_HANDLE)).toBe(ref.positions[p]);
      }
      expectTopLogits(last!.candidates.logProbs, last!.candidates.tokens, ref.serialLogits!);
    });
  }

  it('gumiho: every MLP head reproduces PyTorch on the reference z', async () => {
    const ref = reference.kinds.gumiho!;
    const files = await readDraftHeads(join(dir, 'gumiho'));
    const config = files.config;
    const H = config.hiddenSize;
    const store = new LayeredWeightStore([new PrefixedWeightStore(files.weights, 'h.'), target.weights]);
    const program = await target.backend.compile(
      {
        name: 'gumiho-mlp-from-z',
        inputs: { z: { dtype: 'float32', shape: [1, 2 * H] } },
        build: (ops, inputs, context) => ({
          logits: gumihoMlpHeads(ops, inputs.z, { hiddenSize: H, heads: config.mlpHeads, blocks: config.mlpBlocks, fcBias: true }, context.weight, {
            prefix: 'h.',
            lmHead: target.lmHeadWeight,
          }),
        }),
      },
      store,
    );
    const result = await program.run({ z: { dtype: 'float32', shape: [1, 2 * H], data: Float32Array.from(ref.mlpInput!) } });
    const V = config.vocabSize;
    expect(config.mlpHeads).toBe(ref.mlpLogits!.length);
    ref.mlpLogits!.forEach((expected, head) => {
      const row = result.logits.data.subarray(head * V, (head + 1) * V);
      expected.ids.forEach((id, j) => expect(Math.abs(row[id]! - expected.values[j]!)).toBeLessThan(TOLERANCE));
    });
    // The loaded head's parallel() runs the same heads; check it on a real branch too.
    const head = (await loadDraftHeads(join(dir, 'gumiho'), target)) as GumihoDraftHead;
    await head.observe({ hidden: Float32Array.from(ref.features.flat()), tokens: Int32Array.from(ref.tokens), context: Int32Array.from(ref.tokens), topK: 2 });
    const level1 = await head.expand({ parents: Int32Array.of(0), tokens: Int32Array.of(ref.tokens[0]!), topK: 2 });
    const parallel = await head.parallel({ first: level1.handles, parents: level1.handles, tokens: Int32Array.of(ref.tokens[1]!), topK: 3 });
    expect(parallel.heads).toHaveLength(config.mlpHeads);
  });

  it('medusa: every head reproduces PyTorch on the last target feature', async () => {
    const ref = reference.kinds.medusa!;
    const head = await loadDraftHeads(join(dir, 'medusa'), target);
    expect(head).toBeInstanceOf(MedusaDraftHead);
    await head.observe({ hidden: Float32Array.from(ref.features.flat()), tokens: Int32Array.from(ref.tokens), context: Int32Array.from(ref.tokens), topK: 5 });
    const result = await head.parallel({ topK: 5 });
    ref.mlpLogits!.forEach((expected, i) => expectTopLogits(result.heads[i]!.logProbs, result.heads[i]!.tokens, expected));
  });
});
