/**
 * Forward-cost benchmark of the ort backend on a real Llama checkpoint: the cost of one target
 * forward over M new tokens at a past of about 300 rows, and plain greedy decoding speed.
 * A program that prints tables, not a test.
 *
 *   pnpm --filter @gumiho/backend-ort bench [-- --model <folder>] [--threads 2] [--spin]
 *     [--providers cpu] [--reps 15] [--tokens 128] [--compare-cpu]
 *
 * Defaults to the shared py-llama-28m model: $GUMIHO_SHARED_DIR/models/py-llama-28m, else
 * ../shared/models/py-llama-28m beside the repository root.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { argmax, type ModelConfig, type ProgramDefinition, type TensorBackend } from '@gumiho/core';
import { EMBED_WEIGHT, LM_HEAD_WEIGHT, createLlamaTarget, findRepositoryRoot, gateUpWeightName, loadModelFolder, qkvWeightName } from '@gumiho/models';
import { createOrtBackend, type OrtExecutionProvider, type OrtProgram } from '../src/index.js';

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Calibration: only the model's matrix products (every weight read once), chained through
 * column slices. Its cost at one row is what this machine's memory allows ONNX Runtime right now.
 */
function linearsOnly(config: ModelConfig): ProgramDefinition<'x', 'y'> {
  const h = config.hiddenSize;
  return {
    name: 'linears-only',
    inputs: { x: { dtype: 'float32', shape: ['n', h] } },
    build(ops, inputs, context) {
      let x = inputs.x;
      for (let layer = 0; layer < config.numLayers; layer++) {
        const qkv = ops.linear(x, context.weight(qkvWeightName(layer)));
        const o = ops.linear(ops.sliceColumns(qkv, 0, config.numHeads * config.headDim), context.weight(`model.layers.${layer}.self_attn.o_proj.weight`));
        const gateUp = ops.linear(o, context.weight(gateUpWeightName(layer)));
        x = ops.linear(ops.sliceColumns(gateUp, 0, config.intermediateSize), context.weight(`model.layers.${layer}.mlp.down_proj.weight`));
      }
      return { y: ops.linear(x, context.weight(config.tieWordEmbeddings ? EMBED_WEIGHT : LM_HEAD_WEIGHT)) };
    },
  };
}

async function main(): Promise<void> {
  const root = findRepositoryRoot(process.cwd());
  const shared = process.env['GUMIHO_SHARED_DIR'] ?? join(root, '..', 'shared');
  const folder = flag('model') ?? [join(shared, 'models', 'py-llama-28m')].find((path) => existsSync(path));
  if (!folder) throw new Error('No model folder: pass --model <folder>.');
  const threads = Number(flag('threads') ?? 2);
  const reps = Number(flag('reps') ?? 15);
  const newTokens = Number(flag('tokens') ?? 128);
  const spinning = process.argv.includes('--spin');
  const providers = (flag('providers') ?? 'cpu').split(',') as OrtExecutionProvider[];
  const model = await loadModelFolder(folder);
  const rssLoaded = process.memoryUsage().rss;
  const backend: TensorBackend = await createOrtBackend({ executionProviders: providers, threads, spinning });
  const started = performance.now();
  const target = await createLlamaTarget({ backend, model, maxContext: 1024 });
  const compileMs = performance.now() - started;
  const info = (target.program as OrtProgram).info;
  console.log(`model ${model.name} (${folder}); backend ${backend.id}, threads ${threads}, spinning ${spinning}`);
  console.log(`compile ${compileMs.toFixed(0)} ms; graph nodes ${info.nodes} (skip-norm fusions ${info.fusedSkipNorms}, splits ${info.mergedSlices}); weights ${(info.weightBytes / 1e6).toFixed(1)} MB`);
  console.log(`rss ${(rssLoaded / 1e6).toFixed(0)} MB with the model loaded, ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB after fusing the projections and compiling`);

  const vocab = model.config.vocabSize;
  const prompt = Int32Array.from({ length: 300 }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));
  const prefillStart = performance.now();
  await target.forward({ tokenIds: prompt, positions: Int32Array.from(prompt, (_, i) => i) });
  console.log(`prefill 300 tokens: ${(performance.now() - prefillStart).toFixed(1)} ms`);
  target.cache.commit();

  const floorProgram = await backend.compile(linearsOnly(model.config), target.weights);

  // Medians, and minimums (on a shared machine the minimum is the better estimate of the cost alone).
  console.log('\n| M | ms (median) | ms (min) | cost(M)/cost(1) (min) | matmuls only, ms (min) | ratio (min) |\n|---|---|---|---|---|---|');
  let single = 0;
  for (const m of [1, 2, 4, 8, 16, 32, 64]) {
    const ids = Int32Array.from({ length: m }, (_, i) => 5 + i);
    const positions = Int32Array.from({ length: m }, (_, i) => 300 + i);
    const times: number[] = [];
    const floorTimes: number[] = [];
    const x = { dtype: 'float32' as const, shape: [m, model.config.hiddenSize], data: new Float32Array(m * model.config.hiddenSize).fill(0.01) };
    // Alternate the two so that machine drift hits both alike.
    for (let rep = 0; rep < reps + 2; rep++) {
      const t0 = performance.now();
      await target.forward({ tokenIds: ids, positions, logitRows: Int32Array.from({ length: m }, (_, i) => i) });
      const elapsed = performance.now() - t0;
      target.cache.rollback();
      const t1 = performance.now();
      await floorProgram.run({ x });
      const floorElapsed = performance.now() - t1;
      if (rep >= 2) {
        times.push(elapsed);
        floorTimes.push(floorElapsed);
      }
    }
    const ms = Math.min(...times);
    const floorMs = Math.min(...floorTimes);
    if (m === 1) single = ms;
    console.log(`| ${m} | ${median(times).toFixed(2)} | ${ms.toFixed(2)} | ${(ms / single).toFixed(2)} | ${floorMs.toFixed(2)} | ${(ms / floorMs).toFixed(2)} |`);
  }

  // Plain greedy decoding from the 300-token prefix.
  const decodeTimes: number[] = [];
  let token = 17;
  const startAll = performance.now();
  for (let i = 0; i < newTokens; i++) {
    const t0 = performance.now();
    const { logits } = await target.forward({ tokenIds: Int32Array.of(token), positions: Int32Array.of(target.cache.length) });
    target.cache.commit();
    decodeTimes.push(performance.now() - t0);
    token = argmax(logits);
  }
  const wall = performance.now() - startAll;
  console.log(
    `\nvanilla greedy decoding, ${newTokens} tokens after 300: ${(newTokens / (wall / 1000)).toFixed(1)} tokens/s, median ${median(decodeTimes).toFixed(2)} ms/token, min ${Math.min(...decodeTimes).toFixed(2)} ms/token`,
  );
  console.log(`rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB at the end`);
  floorProgram.dispose();
  target.dispose();
  backend.dispose();
}

await main();
