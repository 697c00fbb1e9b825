/**
 * Trained heads on the real target: the TypeScript heads, driven through the `DraftHead` protocol
 * (observe one pair at a time, expand the true next tokens, parallel), must predict the same
 * top-1 token at every depth as the training tooling's teacher-forced evaluation
 * (`train_heads.evaluate.depth_predictions`) on a window of held-out code.
 *
 * Opt-in, because it needs trained heads and a few seconds of PyTorch:
 *   GUMIHO_TRAINED_HEADS=dir1,dir2 [GUMIHO_TARGET_DIR=/work/shared/models/py-llama-28m]
 *   [GUMIHO_WINDOW=64] [GUMIHO_BACKEND=ort] pnpm --filter @gumiho/draft-heads test trained-heads
 * Prints the per-depth agreement and accuracy; GUMIHO_DEBUG=1 also prints every disagreeing root.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT_HANDLE, type ModelConfig } from '@gumiho/core';
import { createCpuBackend } from '@gumiho/backend-cpu';
import { createOrtBackend } from '@gumiho/backend-ort';
import { MapWeightStore, readSafetensors } from '@gumiho/safetensors';
import { GumihoDraftHead, MedusaDraftHead, SerialDraftHead, type DraftTarget } from './heads.js';
import { loadDraftHeads } from './io.js';

const TOOLING = resolve(dirname(fileURLToPath(import.meta.url)), '../../../tooling/train-heads');
const HEADS = (process.env.GUMIHO_TRAINED_HEADS ?? '').split(',').filter((dir) => dir.length > 0);
const TARGET_DIR = process.env.GUMIHO_TARGET_DIR ?? '/work/shared/models/py-llama-28m';
const WINDOW = Number(process.env.GUMIHO_WINDOW ?? 64);
const DEPTHS = 7;

const SCRIPT = `
import json, sys, torch
from train_heads.common import DEFAULT_DATA
from train_heads.evaluate import dev_tokens, depth_predictions
from train_heads.export import load_exported
from train_heads.llama import load_llama
target_dir, heads_dir, out_path, window, depths = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
target = load_llama(target_dir)
model, _ = load_exported(heads_dir, target)
files = dev_tokens(target_dir, DEFAULT_DATA)
ids = next(f["ids"] for f in files if len(f["ids"]) >= window)[:window]
with torch.no_grad():
    X = torch.tensor([ids])
    Fh = target.hidden(X)
    preds = depth_predictions(model, X, Fh, depths)
json.dump({"ids": ids, "features": Fh[0].tolist(), "preds": [p.tolist() for p in preds]}, open(out_path, "w"))
`;

async function realTarget(): Promise<DraftTarget> {
  const hf = JSON.parse(await readFile(join(TARGET_DIR, 'config.json'), 'utf8')) as Record<string, number | boolean>;
  const index = JSON.parse(await readFile(join(TARGET_DIR, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const weights = new MapWeightStore();
  for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
    const shard = index.weight_map[name];
    if (shard) weights.set(name, (await readSafetensors(join(TARGET_DIR, shard))).get(name)!);
  }
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
    tieWordEmbeddings: hf.tie_word_embeddings === true,
    bosTokenId: 0,
    eosTokenIds: [0],
  };
  return {
    name: 'py-llama-28m',
    backend: process.env.GUMIHO_BACKEND === 'ort' ? await createOrtBackend({ threads: 1 }) : createCpuBackend(),
    weights,
    config,
    embeddingWeight: 'model.embed_tokens.weight',
    lmHeadWeight: weights.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight',
  };
}

describe.runIf(HEADS.length > 0)('trained heads: TypeScript protocol vs train_heads teacher-forced predictions', () => {
  for (const dir of HEADS) {
    it(dir, async () => {
      const scratch = await mkdtemp(join(tmpdir(), 'trained-heads-'));
      try {
        const out = join(scratch, 'predictions.json');
        const run = spawnSync('/usr/bin/python3', ['-c', SCRIPT, TARGET_DIR, resolve(dir), out, String(WINDOW), String(DEPTHS)], {
          cwd: TOOLING,
          encoding: 'utf8',
          timeout: 600_000,
        });
        if (run.status !== 0) throw new Error(`train_heads reference failed (${run.status}): ${run.stderr}`);
        const reference = JSON.parse(await readFile(out, 'utf8')) as { ids: number[]; features: number[][]; preds: number[][] };
        const target = await realTarget();
        const head = await loadDraftHeads(dir, target);
        const ids = reference.ids;
        const depths = reference.preds.length;
        // Roots whose true continuation is known for every depth the chain needs.
        const roots = ids.length - 1 - depths;
        const agree = new Array<number>(depths).fill(0);
        const correct = new Array<number>(depths).fill(0);
        for (let t = 0; t < roots; t++) {
          const observed = await head.observe({
            hidden: Float32Array.from(reference.features[t]!),
            tokens: Int32Array.of(ids[t + 1]!),
            context: Int32Array.from(ids.slice(0, t + 2)),
            topK: 1,
          });
          const predicted: number[] = [];
          if (head instanceof MedusaDraftHead) {
            const { heads } = await head.parallel({ topK: 1 });
            for (const candidates of heads) predicted.push(candidates.tokens[0]!);
          } else {
            predicted.push(observed.candidates.tokens[0]!);
            let parent = ROOT_HANDLE;
            const serialLevels = head instanceof GumihoDraftHead ? 2 : depths;
            for (let d = 1; d < serialLevels; d++) {
              const step = await (head as SerialDraftHead).expand({ parents: Int32Array.of(parent), tokens: Int32Array.of(ids[t + 1 + d]!), topK: 1 });
              parent = step.handles[0]!;
              predicted.push(step.candidates.tokens[0]!);
            }
            if (head instanceof GumihoDraftHead) {
              const { heads } = await head.parallel({ first: Int32Array.of(parent), parents: Int32Array.of(parent), tokens: Int32Array.of(ids[t + 3]!), topK: 1 });
              for (const candidates of heads) predicted.push(candidates.tokens[0]!);
            }
          }
          if (process.env.GUMIHO_DEBUG && predicted.join() !== reference.preds.map((p) => p[t]).join()) console.log(t, predicted.join(','), reference.preds.map((p) => p[t]).join(','));
          for (let d = 0; d < depths; d++) {
            if (predicted[d] === reference.preds[d]![t]) agree[d]!++;
            if (predicted[d] === ids[t + 2 + d]) correct[d]!++;
          }
          head.endRound();
        }
        const rate = agree.map((count) => count / roots);
        console.log(`${dir} (${head.id} on ${target.backend.id}, ${roots} roots): agreement with PyTorch per depth ${rate.map((r) => r.toFixed(3)).join(' ')}; ` +
          `top-1 accuracy vs the data ${correct.map((c) => (c / roots).toFixed(3)).join(' ')}`);
        // Near-ties between float32 implementations may flip an argmax now and then.
        for (const r of rate) expect(r).toBeGreaterThanOrEqual(0.97);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }, 900_000);
  }
});
