/**
 * Cross-check against the Python training tooling: `python -m train_heads smoke` writes a tiny
 * random target, exported heads of each kind and `reference.json` with PyTorch outputs for fixed
 * inputs. The exports must load with `loadDraftHeads` and reproduce those outputs within 1e-3.
 *
 * Skipped (with the reason printed) when /usr/bin/python3 has no torch or the tooling is absent.
 * The outputs are cached in the system temp folder per version of the tooling's sources (first run
 * ~10 s); GUMIHO_SMOKE_DIR points at an existing smoke folder instead.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
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

/** SHA-256 of the Python tooling's sources, so cached smoke outputs follow its changes. */
function toolingHash(): string {
  const hash = createHash('sha256');
  const folder = join(TOOLING, 'train_heads');
  for (const name of readdirSync(folder).filter((file) => file.endsWith('.py')).sort()) {
    hash.update(name).update(readFileSync(join(folder, name)));
  }
  hash.update(CHAIN_SCRIPT);
  return hash.digest('hex').slice(0, 16);
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

/**
 * Speculative chains through the training code's own multi-step drafting (`serial_steps`, which
 * the training and `eval` commands use): for every root `t` of the reference input, step `d + 1`
 * consumes `(h_d[t], next[d][t])` at position `t + d`, attending to the committed pairs `p <= t`
 * and the root's own earlier speculative rows; Gumiho's MLP heads then get
 * `z = [fc([e(next[0]) ; h_1]) ; fc([e(next[1]) ; h_2])]`. Writes `chains.json`; with `smoke` as
 * second argument it first runs `train_heads smoke` (one Python start for both).
 */
const CHAIN_SCRIPT = `
import json, sys, torch
d = sys.argv[1]
if sys.argv[2] == "smoke":
    from train_heads.__main__ import main
    main(["smoke", "--out", d])
from train_heads.llama import load_llama
from train_heads.export import load_exported
target = load_llama(d + "/target")
ref = json.load(open(d + "/reference.json"))
out = {}
with torch.no_grad():
    for kind in ("gumiho", "eagle2"):
        model, _ = load_exported(d + "/" + kind, target)
        r = ref["kinds"][kind]
        feats = torch.tensor([r["features"]], dtype=torch.float32)
        toks = torch.tensor([r["tokens"]])
        V = model.cfg.vocabSize
        steps = 2 if kind == "gumiho" else 3
        nts = [(toks * 7 + 13 * s + 1) % V for s in range(steps)]
        hs = model.serial_steps(feats, toks, nts[: steps - 1] if kind == "eagle2" else nts[:1])
        entry = {"next": [nt[0].tolist() for nt in nts], "hidden": [h[0].tolist() for h in hs]}
        if kind == "gumiho":
            h1, h2 = hs
            z = torch.cat([model.fuse(nts[0], h1), model.fuse(nts[1], h2)], dim=-1)
            outs = model.mlp_all(z)[:, 0]
            entry["mlpTop"] = [[{"ids": model.lm(o).topk(5).indices.tolist(), "values": model.lm(o).topk(5).values.tolist()} for o in head] for head in outs]
        out[kind] = entry
with open(d + "/chains.json", "w") as f:
    json.dump(out, f)
`;

interface ChainReference {
  /** Token of the depth-`s + 1` node for every root: `next[s][t]`. */
  next: number[][];
  /** `hidden[d][t]`: output of the depth-`d` draft row for root `t` (d = 0: the root row). */
  hidden: number[][][];
  /** Gumiho: `mlpTop[head][t]`, top-5 logits of each MLP head for root `t`. */
  mlpTop?: TopLogits[][];
}

describe.skipIf(reason !== undefined)('PyTorch reference (tooling/train-heads smoke)', () => {
  let dir = '';
  let owned = false;
  let reference: Reference;
  let chains: Record<string, ChainReference>;
  let target: DraftTarget;

  beforeAll(async () => {
    const reuse = process.env.GUMIHO_SMOKE_DIR;
    // Smoke outputs are cached per version of the Python tooling (a hash of its sources).
    const cached = join(tmpdir(), `gumiho-draft-heads-smoke-${toolingHash()}`);
    if (reuse) {
      dir = reuse;
    } else if (existsSync(join(cached, 'chains.json'))) {
      dir = cached;
    } else {
      dir = await mkdtemp(join(tmpdir(), 'draft-heads-smoke-'));
      owned = true;
    }
    if (owned || (reuse && !existsSync(join(dir, 'chains.json')))) {
      const run = spawnSync(PYTHON, ['-c', CHAIN_SCRIPT, dir, reuse ? 'reuse' : 'smoke'], {
        cwd: TOOLING,
        encoding: 'utf8',
        timeout: 110_000,
        env: { ...process.env, TRAIN_HEADS_THREADS: '1' },
      });
      if (run.status !== 0) throw new Error(`train_heads smoke / serial_steps reference failed (${run.status}): ${run.stderr}`);
    }
    if (owned) {
      // Keep it for the next run; a concurrent run may have stored it first.
      await rename(dir, cached).then(
        () => {
          dir = cached;
          owned = false;
        },
        () => undefined,
      );
    }
    reference = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as Reference;
    chains = JSON.parse(await readFile(join(dir, 'chains.json'), 'utf8')) as Record<string, ChainReference>;
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

  for (const kind of ['gumiho', 'eagle2'] as const) {
    it(`${kind}: speculative chains via expand/parallel equal the training code's multi-step drafting`, async () => {
      const ref = reference.kinds[kind]!;
      const chain = chains[kind]!;
      const head = (await loadDraftHeads(join(dir, kind), target)) as SerialDraftHead;
      const H = target.config.hiddenSize;
      let worst = 0;
      const compare = (actual: Float32Array, expected: number[]) => {
        for (let c = 0; c < H; c++) worst = Math.max(worst, Math.abs(actual[c]! - expected[c]!));
      };
      const depths = chain.hidden.length;
      for (let t = 0; t < ref.n; t++) {
        await head.observe({ hidden: Float32Array.from(ref.features[t]!), tokens: Int32Array.of(ref.tokens[t]!), context: Int32Array.from(ref.tokens.slice(0, t + 1)), topK: 1 });
        compare(head.serial.out(ROOT_HANDLE), chain.hidden[0]![t]!);
        let parent = ROOT_HANDLE;
        for (let d = 1; d < depths; d++) {
          const step = await head.expand({ parents: Int32Array.of(parent), tokens: Int32Array.of(chain.next[d - 1]![t]!), topK: 1 });
          parent = step.handles[0]!;
          expect(head.serial.position(parent)).toBe(t + d);
          compare(head.serial.out(parent), chain.hidden[d]![t]!);
        }
        if (kind === 'gumiho') {
          const parallel = await (head as GumihoDraftHead).parallel({ first: Int32Array.of(parent), parents: Int32Array.of(parent), tokens: Int32Array.of(chain.next[1]![t]!), topK: 5 });
          chain.mlpTop!.forEach((perRoot, m) => expectTopLogits(parallel.heads[m]!.logProbs, parallel.heads[m]!.tokens, perRoot[t]!));
        }
        head.endRound();
      }
      if (process.env.GUMIHO_VERBOSE) console.log(`${kind} speculative chains: max |out - torch| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(TOLERANCE);
    });
  }

  it('medusa: every head reproduces PyTorch on the last target feature', async () => {
    const ref = reference.kinds.medusa!;
    const head = await loadDraftHeads(join(dir, 'medusa'), target);
    expect(head).toBeInstanceOf(MedusaDraftHead);
    await head.observe({ hidden: Float32Array.from(ref.features.flat()), tokens: Int32Array.from(ref.tokens), context: Int32Array.from(ref.tokens), topK: 5 });
    const result = await head.parallel({ topK: 5 });
    ref.mlpLogits!.forEach((expected, i) => expectTopLogits(result.heads[i]!.logProbs, result.heads[i]!.tokens, expected));
  });
});
