/**
 * Forward-cost benchmark of the CPU backend on a Llama target (the `@gumiho/models` program):
 * milliseconds per target forward over n = 1, 2, 4, 8, 16, 32, 64 new tokens at a past of 300
 * rows (causal block, rows dropped after each forward), and plain greedy decoding speed
 * (one-token forwards, argmax, commit).
 *
 *   pnpm --filter @gumiho/backend-cpu bench:forward [-- --model <folder>] [--reps 9] [--past 300]
 *     [--tokens 128] [--f32-weights] [--threads 2] [--scalar]
 *
 * `--model` defaults to the shared py-llama-28m checkpoint when it exists (`shared/models/` next
 * to the repository), else a random model of the same shape is written to a temporary folder.
 * Columns: `wasm bf16-w` is the default backend (WebAssembly SIMD; weights of a bf16 checkpoint
 * kept as exact bfloat16); `--f32-weights` adds the same kernels with float32 weight copies;
 * `--threads N` adds the same with N matmul threads (`createCpuBackend({ threads })`);
 * `--scalar` adds the scalar JavaScript kernels (slow). A program that prints
 * tables, not a test; the machine is shared and noisy, so figures are medians.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { argmax } from '@gumiho/core';
import { createLlamaTarget, findRepositoryRoot, loadModelFolder, writeRandomLlama, type LoadedModel } from '@gumiho/models';
import { createCpuBackend, type CpuKernels } from '../src/index.js';

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const reps = Number(option('reps') ?? 9);
const past = Number(option('past') ?? 300);
const greedyTokens = Number(option('tokens') ?? 128);
const rowCounts = [1, 2, 4, 8, 16, 32, 64];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function loadModel(): Promise<{ model: LoadedModel; cleanup: () => Promise<void> }> {
  let folder = option('model');
  if (!folder) {
    const shared = join(findRepositoryRoot(process.cwd()), '..', 'shared', 'models', 'py-llama-28m');
    if (existsSync(shared)) folder = shared;
  }
  if (folder) return { model: await loadModelFolder(folder), cleanup: async () => {} };
  const temporary = await mkdtemp(join(tmpdir(), 'gumiho-bench-'));
  await writeRandomLlama(temporary, {
    vocabSize: 8192,
    hiddenSize: 384,
    intermediateSize: 1024,
    numLayers: 16,
    numHeads: 6,
    numKvHeads: 2,
    headDim: 64,
    maxPositions: 2048,
    tieWordEmbeddings: true,
  });
  return { model: await loadModelFolder(temporary), cleanup: () => rm(temporary, { recursive: true, force: true }) };
}

interface Figures {
  readonly label: string;
  readonly ms: Map<number, number>;
  readonly minMs: Map<number, number>;
  readonly tokensPerSecond: number;
}

async function measure(model: LoadedModel, kernels: CpuKernels, counts: readonly number[], bf16Weights = true, threads = 1): Promise<Figures> {
  const backend = createCpuBackend({ kernels, bf16Weights, threads });
  for (let wait = 0; wait < 500 && !backend.threadsReady; wait++) await new Promise((resolve) => setTimeout(resolve, 10));
  const label = (kernels === 'scalar' ? 'scalar' : bf16Weights ? 'wasm bf16-w' : 'wasm f32-w') + (threads > 1 ? ` ${threads}T` : '');
  const vocab = model.config.vocabSize;
  const target = await createLlamaTarget({ backend, model, maxContext: Math.max(past + 64 + 8, greedyTokens + 40) });
  const randomIds = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);
  const positions = (start: number, n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => start + i);

  // Forward cost at a past of `past` committed rows.
  target.cache.reset();
  await target.forward({ tokenIds: randomIds(past), positions: positions(0, past) });
  target.cache.commit();
  // Row counts are interleaved within each repetition, so that machine load drifts evenly over them.
  const samples = new Map<number, number[]>(counts.map((n) => [n, []]));
  for (let r = 0; r < reps + 1; r++) {
    for (const n of counts) {
      const ids = randomIds(n);
      const pos = positions(past, n);
      const logitRows = Int32Array.from({ length: n }, (_, i) => i);
      const start = performance.now();
      await target.forward({ tokenIds: ids, positions: pos, logitRows });
      const elapsed = performance.now() - start;
      target.cache.rollback();
      if (r > 0) samples.get(n)!.push(elapsed); // the first repetition warms up
    }
  }
  const ms = new Map<number, number>();
  const minMs = new Map<number, number>();
  for (const [n, values] of samples) {
    ms.set(n, median(values));
    minMs.set(n, Math.min(...values));
  }

  // Greedy decoding: a 32-token prompt, then one-token forwards.
  const speeds: number[] = [];
  for (let run = 0; run < 5; run++) {
    target.cache.reset();
    const prompt = randomIds(32);
    let result = await target.forward({ tokenIds: prompt, positions: positions(0, 32) });
    target.cache.commit();
    const start = performance.now();
    for (let t = 0; t < greedyTokens; t++) {
      const token = argmax(result.logits, 0, vocab);
      result = await target.forward({ tokenIds: Int32Array.of(token), positions: Int32Array.of(target.cache.length) });
      target.cache.commit();
    }
    speeds.push(greedyTokens / ((performance.now() - start) / 1000));
  }
  target.dispose();
  backend.dispose();
  return { label, ms, minMs, tokensPerSecond: median(speeds) };
}

async function main(): Promise<void> {
  const { model, cleanup } = await loadModel();
  const c = model.config;
  console.log(
    `model ${model.name}: ${c.numLayers} layers, hidden ${c.hiddenSize}, intermediate ${c.intermediateSize}, ${c.numHeads}/${c.numKvHeads} heads of ${c.headDim}, vocab ${c.vocabSize}; Node ${process.versions.node}`,
  );
  const results = [await measure(model, 'wasm-simd', rowCounts)];
  const threads = Number(option('threads') ?? 1);
  if (threads > 1) results.push(await measure(model, 'wasm-simd', rowCounts, true, threads));
  if (process.argv.includes('--f32-weights')) results.push(await measure(model, 'wasm-simd', rowCounts, false));
  if (process.argv.includes('--f32-weights') && threads > 1) results.push(await measure(model, 'wasm-simd', rowCounts, false, threads));
  if (process.argv.includes('--scalar')) results.push(await measure(model, 'scalar', [1, 2, 4, 8, 16]));
  await cleanup();

  console.log(`\nms per target forward over n new tokens at a past of ${past} rows (median and min of ${reps}, row counts interleaved; logits for all n rows)`);
  console.log(`load average at the end: ${loadavg().map((v) => v.toFixed(1)).join(' ')} on ${cpus().length} cores`);
  const header = ['n', ...results.flatMap((r) => [`${r.label} ms`, 'min ms', 'ms/token', 'x n=1'])];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((h) => '-'.repeat(h.length + 2)).join('|')}|`);
  for (const n of rowCounts) {
    const cells = [String(n)];
    for (const r of results) {
      const ms = r.ms.get(n);
      const one = r.ms.get(1)!;
      const min = r.minMs.get(n);
      cells.push(ms === undefined ? '-' : ms.toFixed(1), min === undefined ? '-' : min.toFixed(1), ms === undefined ? '-' : (ms / n).toFixed(2), ms === undefined ? '-' : (ms / one).toFixed(2));
    }
    console.log(`| ${cells.map((cell, i) => cell.padStart(header[i]!.length)).join(' | ')} |`);
  }
  console.log(`\ngreedy decoding, ${greedyTokens} tokens after a 32-token prompt (median of 5 runs):`);
  for (const r of results) console.log(`  ${r.label}: ${r.tokensPerSecond.toFixed(1)} tokens/s`);
}

await main();
