/**
 * The `gumiho` command line: argument parsing, the `generate` command, and the mapping of errors
 * to exit codes (0 success; 2 bad input, any {@link GumihoError} or bad flag, one paragraph on
 * stderr; 1 an unexpected failure, which is a bug and prints its stack).
 *
 * Written as a function of its arguments and streams ({@link runCli}) so that tests run it
 * in-process; `cli.ts` is the executable wrapper.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  GumihoError,
  InvalidArgumentError,
  createSpeculativeDecoder,
  type GenerateResult,
  type SamplingOptions,
} from '@gumiho/core';
import { DEFAULT_MODEL, createLlamaTarget, createProgressBar, loadModelFolder, resolveModel } from '@gumiho/models';
import { createSampler } from '@gumiho/samplers';
import { createVerifier } from '@gumiho/verify';
import { BACKENDS, DEFAULT_BACKEND, backendFactory } from './backends.js';
import { DEFAULT_POLICY, POLICIES, policyFactory } from './policies.js';
import type { PolicyKnobs } from '@gumiho/policies';
import { BENCH_HELP, parseBenchArgs, runBenchCommand } from './bench.js';
import { EXPORT_HELP, parseExportArgs, runExport } from './export-onnx.js';

/** A writable text stream (process.stdout or a test double). */
export interface OutputStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
}

/** The world {@link runCli} talks to. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** Environment (GUMIHO_MODEL_STORE, GUMIHO_MODEL_SOURCE, NO_COLOR). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Current directory, for relative paths. */
  readonly cwd: string;
}

/** Exit code of bad input (a GumihoError or a bad flag). */
export const EXIT_BAD_INPUT = 2;

const HELP = `gumiho: lossless speculative decoding of LLMs in TypeScript (Gumiho and friends).

Usage:
  gumiho generate [options]     generate text from a prompt
  gumiho bench [options]        benchmark drafting policies against vanilla decoding
  gumiho export-onnx [options]  write the target as a standard decoder ONNX model
  gumiho --help                 this help; "gumiho <command> --help" for the options
`;

const GENERATE_HELP = `Usage: gumiho generate [options]

Generates a continuation of a prompt with the target model, optionally accelerated by a draft
policy. The output is exactly what the target alone would produce (greedy), or drawn from exactly
its distribution (sampling).

Model and parts:
  --model <name|path>       model name from the store, or a Hugging Face folder (default ${DEFAULT_MODEL});
                            names are copied on first use from $GUMIHO_MODEL_SOURCE (default
                            ../shared/models) into $GUMIHO_MODEL_STORE (default <repo>/.models)
  --backend <name>          ${[...BACKENDS.keys()].join(', ')} (default ${DEFAULT_BACKEND})
  --policy <name>           ${[...POLICIES.keys()].join(', ')} (default ${DEFAULT_POLICY})
  --max-context <n>         KV cache rows: prompt plus generation (default: the model's maximum)

Draft policy (all but vanilla):
  --heads <folder>          draft heads (config.json + model.safetensors); default: the heads
                            committed for the model under heads/<model>/<policy>
  --total-tokens <n|auto>   tree size per round, root included; auto (default) measures the best
                            size for this backend once and caches it in .cache/gumiho
  --top-k-draft <k>         per-node top-k of the serial draft levels (eagle2, gumiho)
  --depth <d>               maximum draft depth (eagle2, lookup)
  --fta <mode>              Gumiho Full Tree Attention: off, exact (default; lossless) or official
                            (the reference code's bookkeeping; NOT lossless)

Prompt (one of):
  --prompt <text>           the prompt text, used exactly as given
  --prompt-file <path>      read the prompt from a file, exactly (nothing trimmed)

Generation:
  --max-new-tokens <n>      default 128
  --temperature <t>         0 = greedy (default); > 0 samples
  --top-k <k>               keep the k most likely tokens (integer >= 1)
  --top-p <p>               nucleus sampling, p in (0, 1]
  --min-p <p>               drop tokens below p times the top probability, p in [0, 1]
  --repetition-penalty <r>  > 0; 1 = none (default)
  --seed <s>                seed of the sampler (integer), for reproducible sampling

Output:
  --json                    print one JSON object {text, tokenIds, stats} instead of streaming text
  --verbose                 statistics on stderr; stack traces for errors
  -h, --help                this help

Exit codes: 0 success, 2 bad input (the message names the problem and the fix), 1 internal error.
`;

const GENERATE_OPTIONS = {
  model: { type: 'string' },
  backend: { type: 'string' },
  policy: { type: 'string' },
  'max-context': { type: 'string' },
  prompt: { type: 'string' },
  'prompt-file': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  heads: { type: 'string' },
  'total-tokens': { type: 'string' },
  'top-k-draft': { type: 'string' },
  depth: { type: 'string' },
  fta: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A bad command line: unknown flag or command, missing value. */
class UsageError extends InvalidArgumentError {}

function parseNumber(flag: string, value: string | undefined, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const number = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(number) || (integer && !Number.isInteger(number))) {
    throw new UsageError(flag, `--${flag} must be ${integer ? 'an integer' : 'a number'}, got "${value}".`, {
      fix: `pass a ${integer ? 'whole number' : 'number'}, e.g. --${flag} ${integer ? '4' : '0.7'}.`,
    });
  }
  return number;
}

/**
 * `parseArgs` reads `--temperature -1` as a flag without its value; join such a negative number to
 * its flag (`--temperature=-1`) so that the value check can name the real problem.
 */
function joinNegativeNumbers(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    const takesValue = name !== undefined && (GENERATE_OPTIONS as Record<string, { type: string }>)[name]?.type === 'string';
    if (takesValue && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Finds the repository root: above the CLI's own file, else above the current directory. */
export function repositoryRoot(cwd: string): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), cwd]) {
    let folder = resolve(start);
    for (;;) {
      if (existsSync(join(folder, 'pnpm-workspace.yaml'))) return folder;
      const parent = dirname(folder);
      if (parent === folder) break;
      folder = parent;
    }
  }
  return cwd;
}

/** Draft-policy options shared by `generate` and `bench`. */
export interface DraftOptions {
  readonly headsDir: string | undefined;
  readonly knobs: PolicyKnobs;
  /** `--total-tokens auto` (the default). */
  readonly autoBudget: boolean;
}

/** Parses `--heads`, `--total-tokens`, `--top-k-draft`, `--depth` and `--fta`. */
export function parseDraftOptions(values: Readonly<Record<string, unknown>>, cwd: string): DraftOptions {
  const text = (name: string) => values[name] as string | undefined;
  const totalText = text('total-tokens') ?? 'auto';
  const totalTokens = totalText === 'auto' ? undefined : parseNumber('total-tokens', totalText, true);
  if (totalTokens !== undefined && totalTokens < 1) {
    throw new UsageError('total-tokens', `--total-tokens must be "auto" or at least 1 (the root counts), got ${totalTokens}.`, {
      fix: 'pass --total-tokens auto, or a tree size such as 24.',
    });
  }
  const topKDraft = parseNumber('top-k-draft', text('top-k-draft'), true);
  const depth = parseNumber('depth', text('depth'), true);
  for (const [flag, value] of [['top-k-draft', topKDraft], ['depth', depth]] as const) {
    if (value !== undefined && value < 1) {
      throw new UsageError(flag, `--${flag} must be at least 1, got ${value}.`, { fix: `pass a positive integer, e.g. --${flag} 4.` });
    }
  }
  const fta = text('fta');
  if (fta !== undefined && fta !== 'off' && fta !== 'exact' && fta !== 'official') {
    throw new UsageError('fta', `--fta must be off, exact or official, got "${fta}".`, {
      fix: 'pass --fta exact (lossless Full Tree Attention), off, or official (the reference code, not lossless).',
    });
  }
  const knobs: PolicyKnobs = {
    ...(totalTokens !== undefined ? { totalTokens } : {}),
    ...(topKDraft !== undefined ? { topKDraft } : {}),
    ...(depth !== undefined ? { depth } : {}),
    ...(fta !== undefined ? { fta } : {}),
  };
  const heads = text('heads');
  return { headsDir: heads === undefined ? undefined : resolve(cwd, heads), knobs, autoBudget: totalTokens === undefined };
}

/** Options of `gumiho generate`, parsed and validated. */
export interface GenerateCommand {
  readonly model: string;
  readonly backend: string;
  readonly policy: string;
  readonly maxContext: number | undefined;
  readonly prompt: string;
  readonly maxNewTokens: number;
  readonly sampling: SamplingOptions;
  readonly draft: DraftOptions;
  readonly json: boolean;
  readonly verbose: boolean;
}

/**
 * Parses the arguments of `gumiho generate` (without the command word). Returns `'help'` when
 * help was asked for.
 *
 * @throws InvalidArgumentError for unknown flags, bad numbers, a missing, empty or unreadable prompt.
 */
export async function parseGenerateArgs(args: readonly string[], cwd: string): Promise<GenerateCommand | 'help'> {
  let values;
  try {
    ({ values } = parseArgs({ args: joinNegativeNumbers(args), options: GENERATE_OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    const message = (error as Error).message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
    throw new UsageError('arguments', `${message}.`, {
      fix: 'run "gumiho generate --help" for the accepted options.',
      cause: error,
    });
  }
  if (values.help) return 'help';
  if ((values.prompt === undefined) === (values['prompt-file'] === undefined)) {
    throw new UsageError('prompt', values.prompt === undefined ? 'No prompt was given.' : 'Both --prompt and --prompt-file were given.', {
      fix: 'pass exactly one of --prompt <text> and --prompt-file <path>.',
    });
  }
  let prompt = values.prompt;
  if (prompt === undefined) {
    const path = resolve(cwd, values['prompt-file']!);
    try {
      prompt = await readFile(path, 'utf8');
    } catch (error) {
      throw new InvalidArgumentError('prompt-file', `Cannot read the prompt file ${path}: ${(error as Error).message}.`, {
        fix: 'pass the path of a readable text file.',
        cause: error,
      });
    }
  }
  if (prompt.length === 0) {
    throw new InvalidArgumentError('prompt', 'The prompt is empty.', { fix: 'give a prompt with at least one character.' });
  }
  const maxNewTokens = parseNumber('max-new-tokens', values['max-new-tokens'], true) ?? 128;
  if (maxNewTokens < 1) {
    throw new InvalidArgumentError('max-new-tokens', `--max-new-tokens must be at least 1, got ${maxNewTokens}.`, {
      fix: 'pass a positive number of tokens, e.g. --max-new-tokens 64.',
    });
  }
  const sampling: SamplingOptions = {
    temperature: parseNumber('temperature', values.temperature, false),
    topK: parseNumber('top-k', values['top-k'], true),
    topP: parseNumber('top-p', values['top-p'], false),
    minP: parseNumber('min-p', values['min-p'], false),
    repetitionPenalty: parseNumber('repetition-penalty', values['repetition-penalty'], false),
    seed: parseNumber('seed', values.seed, true),
  };
  return {
    model: values.model ?? DEFAULT_MODEL,
    backend: values.backend ?? DEFAULT_BACKEND,
    policy: values.policy ?? DEFAULT_POLICY,
    maxContext: parseNumber('max-context', values['max-context'], true),
    prompt,
    maxNewTokens,
    sampling,
    draft: parseDraftOptions(values, cwd),
    json: values.json ?? false,
    verbose: values.verbose ?? false,
  };
}

/** Runs `gumiho generate` with parsed options; writes text or JSON to stdout. */
export async function runGenerate(command: GenerateCommand, io: CliIo): Promise<GenerateResult> {
  // Validate everything cheap before loading anything.
  const sampler = createSampler(command.sampling);
  const makeBackend = backendFactory(command.backend);
  const makePolicy = policyFactory(command.policy);

  const root = repositoryRoot(io.cwd);
  const loadStart = performance.now();
  const folder = await resolveModel(command.model, {
    root,
    env: io.env,
    onProgress: createProgressBar(io.stderr as NodeJS.WriteStream),
  });
  const model = await loadModelFolder(resolve(io.cwd, folder));
  const tokenizer = model.tokenizer;
  if (!tokenizer) {
    throw new InvalidArgumentError('model', `The model folder ${model.path} has no tokenizer.json, so a text prompt cannot be encoded.`, {
      fix: 'use a model folder with a Hugging Face tokenizer.json.',
    });
  }
  const backend = await makeBackend();
  try {
    const target = await createLlamaTarget({ backend, model, maxContext: command.maxContext, releaseModelWeights: true });
    const policy = await makePolicy({
      target,
      tokenizer,
      modelFolder: model.path,
      root,
      headsDir: command.draft.headsDir,
      knobs: command.draft.knobs,
      autoBudget: command.draft.autoBudget,
      cacheDir: io.env.GUMIHO_CACHE_DIR,
      sampling: command.sampling,
      onBudget: (choice) => {
        if (command.verbose) {
          io.stderr.write(
            `[gumiho] tree budget for ${command.policy} on ${backend.id}: ${choice.totalTokens} tokens${choice.cached ? ' (cached)' : ''}; ` +
              `candidates ${choice.candidates.map((c) => `${c.totalTokens}: tau ${c.tau.toFixed(2)}, ${c.tokensPerSecond.toFixed(0)}/s`).join('; ')}; vanilla ${choice.vanillaTokensPerSecond.toFixed(0)}/s\n`,
          );
        }
      },
    });
    const loadMs = performance.now() - loadStart;
    const decoder = createSpeculativeDecoder({ target, tokenizer, policy, verifier: createVerifier(), sampler });
    const stream = decoder.stream({ prompt: command.prompt, maxNewTokens: command.maxNewTokens });
    const colour = !command.json && io.stdout.isTTY === true && io.env.NO_COLOR === undefined;
    let result: GenerateResult;
    for (;;) {
      const step = await stream.next();
      if (step.done) {
        result = step.value;
        break;
      }
      if (command.json || step.value.text === '') continue;
      io.stdout.write(colour && step.value.source === 'draft' ? `\x1b[32m${step.value.text}\x1b[39m` : step.value.text);
    }
    if (command.json) {
      io.stdout.write(
        `${JSON.stringify({
          text: result.text,
          tokenIds: Array.from(result.tokenIds),
          model: model.name,
          backend: backend.id,
          policy: command.policy,
          treeSize: policy?.maxTreeSize ?? 1,
          promptTokens: tokenizer.encode(command.prompt).length,
          stats: { ...result.stats, loadMs },
        })}\n`,
      );
    } else if (io.stdout.isTTY) {
      io.stdout.write('\n');
    }
    if (command.verbose) {
      const s = result.stats;
      io.stderr.write(
        `[gumiho] ${model.name} on ${backend.id}, policy ${command.policy}: ${s.newTokens} tokens in ${s.rounds} rounds ` +
          `(tau ${s.meanAcceptedLength.toFixed(2)}), ${s.tokensPerSecond.toFixed(1)} tokens/s; wall ${s.wallMs.toFixed(0)} ms, ` +
          `prefill ${s.prefillMs.toFixed(0)} ms, draft ${s.draftMs.toFixed(0)} ms, verify ${s.verifyMs.toFixed(0)} ms, load ${loadMs.toFixed(0)} ms; stop: ${s.stopReason}\n`,
      );
    }
    target.dispose();
    policy?.head.dispose();
    return result;
  } finally {
    backend.dispose();
  }
}

function reportError(error: unknown, io: CliIo, verbose: boolean): number {
  if (GumihoError.isInstance(error)) {
    io.stderr.write(`gumiho: ${error.message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (verbose && error.stack) io.stderr.write(`${error.stack}\n`);
    return EXIT_BAD_INPUT;
  }
  io.stderr.write(`gumiho: internal error (a bug; please report it): ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  return 1;
}

/**
 * Runs the command line `args` (without `node` and the script). Returns the exit code; never
 * throws.
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const verbose = args.includes('--verbose');
  try {
    const [command, ...rest] = args;
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      (command === undefined ? io.stderr : io.stdout).write(HELP);
      return command === undefined ? EXIT_BAD_INPUT : 0;
    }
    if (command === 'bench') {
      const parsedBench = parseBenchArgs(rest, io.cwd, parseDraftOptions);
      if (parsedBench === 'help') {
        io.stdout.write(BENCH_HELP);
        return 0;
      }
      await runBenchCommand(parsedBench, io, repositoryRoot(io.cwd));
      return 0;
    }
    if (command === 'export-onnx') {
      const parsedExport = parseExportArgs(rest, io.cwd);
      if (parsedExport === 'help') {
        io.stdout.write(EXPORT_HELP);
        return 0;
      }
      await runExport(parsedExport, io, repositoryRoot(io.cwd));
      return 0;
    }
    if (command !== 'generate') {
      throw new UsageError('command', `Unknown command "${command}"; available commands: generate, bench, export-onnx.`, {
        fix: 'run "gumiho --help" for usage.',
      });
    }
    const parsed = await parseGenerateArgs(rest, io.cwd);
    if (parsed === 'help') {
      io.stdout.write(GENERATE_HELP);
      return 0;
    }
    await runGenerate(parsed, io);
    return 0;
  } catch (error) {
    return reportError(error, io, verbose);
  }
}
