/**
 * `gumiho bench`: runs several drafting policies (and, on request, a peer library) over the same
 * prompts on one backend, alternating them prompt by prompt, and prints tokens/s, same-run
 * speedup over vanilla, tau, per-depth acceptance, draft/verify time per round and the
 * weight-bandwidth floor — as a table, as JSON (`--json`), and as JSON + SVG files (`--out`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isExactBf16 } from '@gumiho/backend-cpu';
import { InvalidArgumentError, createSpeculativeDecoder, type ModelConfig, type WeightStore } from '@gumiho/core';
import {
  loadPrompts,
  machineInfo,
  measureParallelReadBandwidth,
  renderSvg,
  renderTable,
  runBench,
  toJson,
  weightFloor,
  type BenchReport,
  type Contender,
} from '@gumiho/bench';
import { DEFAULT_MODEL, createLlamaTarget, createProgressBar, loadModelFolder, resolveModel } from '@gumiho/models';
import { createSampler } from '@gumiho/samplers';
import { createVerifier } from '@gumiho/verify';
import { BACKENDS, DEFAULT_BACKEND, backendFactory } from './backends.js';
import { PEERS, transformersJsContender } from './peers.js';
import { POLICIES, policyFactory } from './policies.js';
import type { CliIo, DraftOptions } from './main.js';

export const BENCH_HELP = `Usage: gumiho bench [options]

Benchmarks drafting policies against vanilla decoding on one backend: the same prompts, policies
alternated prompt by prompt, medians and same-run speedups. Prints a table (or JSON).

  --prompts <file>          .json array of strings, or .jsonl with a "prompt" or "text" field per
                            line, each used verbatim (default: 12 prompts cut from the held-out
                            Python files, packages/bench/prompts/dev-python.json)
  --limit <n>               use the first n prompts (default: all)
  --policies <list>         comma-separated, from ${[...POLICIES.keys()].join(', ')}
                            (default: all of them; vanilla is always run, as the baseline)
  --backend <name>          ${[...BACKENDS.keys()].join(', ')} (default ${DEFAULT_BACKEND})
  --model <name|path>       default ${DEFAULT_MODEL}
  --max-new-tokens <n>      default 128
  --temperature <t>         default 0 (greedy; the table then also checks every policy's tokens
                            against vanilla's)
  --seed <s>                default 1 (each prompt and repeat derives its own seed)
  --repeats <r>             passes over the prompt set (default 1)
  --peers <list>            also time peer libraries on the same model: transformers.js
                            (exports the model with export-onnx once, under .cache/gumiho/onnx)
  --heads-dir <folder>      folder holding <policy>/ head folders (default: heads/<model>/)
  --total-tokens <n|auto>   tree size for every policy; auto (default) measures each policy's best
  --fta <mode>              Gumiho Full Tree Attention: off, exact (default), official
  --json                    print {"machine","backend","model","results":[...]} instead of a table
  --out <file.json>         also write the JSON there and an SVG chart next to it (<file>.svg)
  -h, --help                this help
`;

const BENCH_OPTIONS = {
  prompts: { type: 'string' },
  limit: { type: 'string' },
  policies: { type: 'string' },
  backend: { type: 'string' },
  model: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  seed: { type: 'string' },
  repeats: { type: 'string' },
  'heads-dir': { type: 'string' },
  peers: { type: 'string' },
  'total-tokens': { type: 'string' },
  'top-k-draft': { type: 'string' },
  depth: { type: 'string' },
  fta: { type: 'string' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parsed `gumiho bench` options. */
export interface BenchCommand {
  readonly prompts: string | undefined;
  readonly limit: number | undefined;
  readonly policies: readonly string[];
  readonly backend: string;
  readonly model: string;
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly seed: number;
  readonly repeats: number;
  readonly headsDir: string | undefined;
  readonly peers: readonly string[];
  readonly draft: DraftOptions;
  readonly json: boolean;
  readonly out: string | undefined;
  readonly verbose: boolean;
}

function integer(flag: string, value: string | undefined, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (value.trim() === '' || !Number.isInteger(number) || number < minimum) {
    throw new InvalidArgumentError(flag, `--${flag} must be an integer >= ${minimum}, got "${value}".`, { fix: `pass e.g. --${flag} ${Math.max(minimum, 1)}.` });
  }
  return number;
}

/** Parses the arguments of `gumiho bench`; `'help'` when help was asked for. */
export function parseBenchArgs(
  args: readonly string[],
  cwd: string,
  parseDraftOptions: (values: Readonly<Record<string, unknown>>, cwd: string) => DraftOptions,
): BenchCommand | 'help' {
  let values;
  try {
    ({ values } = parseArgs({ args: [...args], options: BENCH_OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new InvalidArgumentError('arguments', `${(error as Error).message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')}.`, {
      fix: 'run "gumiho bench --help" for the accepted options.',
      cause: error,
    });
  }
  if (values.help) return 'help';
  const policies = (values.policies ?? [...POLICIES.keys()].join(','))
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  for (const name of policies) policyFactory(name); // unknown names fail here, before loading
  if (!policies.includes('vanilla')) policies.unshift('vanilla');
  const temperatureText = values.temperature;
  const temperature = temperatureText === undefined ? 0 : Number(temperatureText);
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new InvalidArgumentError('temperature', `--temperature must be a number >= 0, got "${temperatureText}".`, { fix: 'pass e.g. --temperature 0 or --temperature 1.' });
  }
  return {
    prompts: values.prompts === undefined ? undefined : resolve(cwd, values.prompts),
    limit: values.limit === undefined ? undefined : integer('limit', values.limit, 0, 1),
    policies: [...new Set(policies)],
    backend: values.backend ?? DEFAULT_BACKEND,
    model: values.model ?? DEFAULT_MODEL,
    maxNewTokens: integer('max-new-tokens', values['max-new-tokens'], 128, 1),
    temperature,
    seed: integer('seed', values.seed, 1, 0),
    repeats: integer('repeats', values.repeats, 1, 1),
    headsDir: values['heads-dir'] === undefined ? undefined : resolve(cwd, values['heads-dir']),
    peers: parsePeers(values.peers),
    draft: parseDraftOptions(values, cwd),
    json: values.json ?? false,
    out: values.out === undefined ? undefined : resolve(cwd, values.out),
    verbose: values.verbose ?? false,
  };
}

function parsePeers(text: string | undefined): string[] {
  if (text === undefined) return [];
  const peers = text.split(',').map((name) => name.trim()).filter((name) => name !== '');
  for (const peer of peers) {
    if (!(PEERS as readonly string[]).includes(peer)) {
      throw new InvalidArgumentError('peers', `Unknown peer "${peer}"; available peers: ${PEERS.join(', ')}.`, { fix: `pass --peers ${PEERS[0]}, or drop it.` });
    }
  }
  return peers;
}

/**
 * Bytes of a Llama's weights read once per forward (tied embeddings counted once), at
 * `bytesPerWeight` bytes each (4 for float32; 2 where the backend keeps bfloat16 copies).
 */
export function llamaWeightBytes(config: ModelConfig, bytesPerWeight = 4): number {
  const { hiddenSize: h, intermediateSize: i, numHeads, numKvHeads, headDim, vocabSize: v, numLayers } = config;
  const attention = h * numHeads * headDim * 2 + h * numKvHeads * headDim * 2;
  const perLayer = attention + 3 * h * i + 2 * h;
  const parameters = v * h * (config.tieWordEmbeddings ? 1 : 2) + numLayers * perLayer + h;
  return parameters * bytesPerWeight;
}

/**
 * 2 when every value of every matrix in `weights` is exactly a bfloat16 (a bf16 checkpoint read as
 * float32): the cpu backend then stores and reads them as bfloat16. Otherwise 4.
 */
export function bf16ExactBytesPerWeight(weights: WeightStore): 2 | 4 {
  for (const name of weights.names()) {
    const tensor = weights.get(name);
    if (tensor && tensor.shape.length === 2 && !isExactBf16(tensor.data as Float32Array)) return 4;
  }
  return 2;
}

function progressLine(io: CliIo): (done: number, total: number, label: string) => void {
  const stream = io.stderr;
  let last = 0;
  return (done, total, label) => {
    const now = Date.now();
    if (stream.isTTY) {
      if (done < total && now - last < 100) return;
      last = now;
      const width = 28;
      const filled = Math.round((done / Math.max(1, total)) * width);
      stream.write(`\rbench [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}\x1b[K${done >= total ? '\n' : ''}`);
    } else if (done === total || now - last > 5000) {
      last = now;
      stream.write(`bench: ${done}/${total} runs (${label})\n`);
    }
  };
}

/** Runs `gumiho bench`. */
export async function runBenchCommand(command: BenchCommand, io: CliIo, root: string): Promise<BenchReport> {
  const promptsPath = command.prompts ?? join(root, 'packages', 'bench', 'prompts', 'dev-python.json');
  let prompts = await loadPrompts(promptsPath);
  if (command.limit !== undefined) prompts = prompts.slice(0, command.limit);
  const makeBackend = backendFactory(command.backend);
  const folder = await resolveModel(command.model, { root, env: io.env, onProgress: createProgressBar(io.stderr as NodeJS.WriteStream) });
  const model = await loadModelFolder(resolve(io.cwd, folder));
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw new InvalidArgumentError('model', `The model folder ${model.path} has no tokenizer.json.`, { fix: 'use a model folder with a tokenizer.json.' });
  const backend = await makeBackend();
  try {
    // The cpu backend binds model.weights (and the floor below reads them); ORT copies them.
    const target = await createLlamaTarget({ backend, model, releaseModelWeights: true });
    const contenders: Contender[] = [];
    const budgets: string[] = [];
    for (const name of command.policies) {
      const headsDir = command.headsDir && name !== 'vanilla' && name !== 'lookup' ? join(command.headsDir, name) : command.draft.headsDir;
      const policy = await policyFactory(name)({
        target,
        tokenizer,
        modelFolder: model.path,
        root,
        headsDir,
        knobs: command.draft.knobs,
        autoBudget: command.draft.autoBudget,
        cacheDir: io.env.GUMIHO_CACHE_DIR,
        sampling: { temperature: command.temperature },
        onBudget: (choice) => budgets.push(`${name}: ${choice.totalTokens}${choice.cached ? ' (cached)' : ''}`),
      });
      const sampler = createSampler({ temperature: command.temperature, seed: command.seed });
      contenders.push({
        name,
        kind: 'policy',
        async run(prompt, settings) {
          const decoder = createSpeculativeDecoder({
            target,
            tokenizer,
            policy,
            verifier: createVerifier(),
            sampler: settings.temperature === 0 ? sampler : createSampler({ temperature: settings.temperature, seed: settings.seed }),
          });
          const { tokenIds, stats } = await decoder.generate({ prompt, maxNewTokens: settings.maxNewTokens });
          return { tokenIds, ...stats };
        },
      });
    }
    for (const peer of command.peers) {
      if (peer === 'transformers.js') contenders.push(await transformersJsContender(model.path, model.name, io.env.GUMIHO_CACHE_DIR ?? join(root, '.cache', 'gumiho')));
    }
    if (command.verbose && budgets.length) io.stderr.write(`[gumiho] tree budgets: ${budgets.join(', ')}\n`);
    const bandwidth = await measureParallelReadBandwidth();
    // The cpu backend packs bf16-exact weights as bfloat16 (half the bytes); the ORT backends read float32.
    const weightBytes = llamaWeightBytes(model.config, command.backend === 'cpu' ? bf16ExactBytesPerWeight(model.weights) : 4);
    const floor = weightFloor(weightBytes, bandwidth);
    const results = await runBench({
      prompts,
      contenders,
      settings: { maxNewTokens: command.maxNewTokens, temperature: command.temperature, seed: command.seed },
      repeats: command.repeats,
      onProgress: progressLine(io),
    });
    const report: BenchReport = {
      machine: machineInfo(),
      backend: backend.id,
      model: model.name,
      settings: { maxNewTokens: command.maxNewTokens, temperature: command.temperature, seed: command.seed, prompts: prompts.length, repeats: command.repeats },
      floor: { weightBytes, bandwidthGBps: bandwidth / 1e9, msPerToken: floor.msPerToken, tokensPerSecond: floor.tokensPerSecond },
      results,
    };
    const json = toJson(report);
    io.stdout.write(command.json ? `${JSON.stringify(json, null, 1)}\n` : `${renderTable(report)}\n`);
    if (command.out) {
      await mkdir(dirname(command.out), { recursive: true });
      await writeFile(command.out, `${JSON.stringify(json, null, 1)}\n`);
      await writeFile(command.out.replace(/\.json$/, '') + '.svg', renderSvg(report));
    }
    target.dispose();
    return report;
  } finally {
    backend.dispose();
  }
}
