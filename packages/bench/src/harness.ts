/**
 * The benchmark harness: runs several contenders (drafting policies, or a peer library) over the
 * same prompts, alternating contenders prompt by prompt so that machine drift hits all alike, and
 * aggregates medians and same-run speedups over `vanilla`.
 *
 * Not a micro-benchmark: each run is a whole generation, timed by the decoder's own stats.
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '@gumiho/core';

/** What one generation reports to the harness. */
export interface RunRecord {
  readonly tokenIds: Int32Array;
  readonly newTokens: number;
  /** Target forwards, prefill included. */
  readonly rounds: number;
  readonly wallMs: number;
  readonly prefillMs: number;
  readonly draftMs: number;
  readonly verifyMs: number;
  readonly acceptanceByDepth: readonly number[];
  readonly draftRounds: number;
}

/** Generation settings shared by all contenders. */
export interface RunSettings {
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly seed: number;
}

/** Something the bench can time: a policy on our decoder, or a peer library. */
export interface Contender {
  /** Row label: `vanilla`, `gumiho`, `transformers.js`, ... */
  readonly name: string;
  /** `policy` for our decoder, `peer` for another library. */
  readonly kind: 'policy' | 'peer';
  run(prompt: string, settings: RunSettings): Promise<RunRecord>;
}

/** Aggregated figures of one contender. */
export interface ContenderResult {
  readonly policy: string;
  readonly kind: 'policy' | 'peer';
  /** Median over runs of tokens per second (new tokens / wall time, prefill included). */
  readonly tokensPerSecond: number;
  /** Median over (prompt, repeat) of this contender's tokens/s over vanilla's on the same prompt and repeat. */
  readonly speedup: number | null;
  /** Total new tokens / total target forwards (bonus and prefill included). */
  readonly meanAcceptedLength: number;
  /** Share of draft rounds that accepted a token at depth d + 1. */
  readonly acceptanceByDepth: readonly number[];
  readonly draftMsPerRound: number;
  readonly verifyMsPerRound: number;
  /** Median prefill milliseconds. */
  readonly prefillMs: number;
  /** At T = 0: whether every run produced exactly vanilla's tokens (null when not checked). */
  readonly matchesVanilla: boolean | null;
  readonly runs: number;
}

/** Options of {@link runBench}. */
export interface BenchOptions {
  readonly prompts: readonly string[];
  readonly contenders: readonly Contender[];
  readonly settings: RunSettings;
  /** Repeats of the whole prompt set. Default 1. */
  readonly repeats?: number;
  /** Runs one short generation per contender first (not counted). Default true. */
  readonly warmup?: boolean;
  /** Progress callback: runs done, runs in all, what runs now. */
  readonly onProgress?: (done: number, total: number, label: string) => void;
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function sameTokens(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Runs the benchmark; see the module comment. */
export async function runBench(options: BenchOptions): Promise<ContenderResult[]> {
  const { prompts, contenders, settings } = options;
  const repeats = options.repeats ?? 1;
  if (prompts.length === 0) throw new InvalidArgumentError('prompts', 'The benchmark has no prompts.', { fix: 'pass a prompts file with at least one prompt.' });
  if (contenders.length === 0) throw new InvalidArgumentError('policies', 'The benchmark has nothing to run.', { fix: 'name at least one policy.' });
  if (!Number.isInteger(repeats) || repeats < 1) throw new InvalidArgumentError('repeats', `repeats must be a positive integer, got ${repeats}.`);
  const total = prompts.length * repeats * contenders.length;
  let done = 0;
  if (options.warmup ?? true) {
    for (const contender of contenders) {
      options.onProgress?.(done, total, `warm-up ${contender.name}`);
      await contender.run(prompts[0]!, { ...settings, maxNewTokens: Math.min(16, settings.maxNewTokens) });
    }
  }
  const records = new Map<string, Array<{ prompt: number; repeat: number; record: RunRecord }>>();
  for (const contender of contenders) records.set(contender.name, []);
  for (let repeat = 0; repeat < repeats; repeat++) {
    for (let prompt = 0; prompt < prompts.length; prompt++) {
      // Rotate the order per prompt so no contender always runs first.
      const offset = (prompt + repeat) % contenders.length;
      for (let c = 0; c < contenders.length; c++) {
        const contender = contenders[(c + offset) % contenders.length]!;
        options.onProgress?.(done, total, `${contender.name} · prompt ${prompt + 1}/${prompts.length}${repeats > 1 ? ` · repeat ${repeat + 1}` : ''}`);
        const record = await contender.run(prompts[prompt]!, { ...settings, seed: settings.seed + prompt * 1000 + repeat });
        records.get(contender.name)!.push({ prompt, repeat, record });
        done++;
      }
    }
  }
  options.onProgress?.(done, total, 'done');

  const vanilla = records.get('vanilla');
  const key = (prompt: number, repeat: number) => `${prompt}/${repeat}`;
  const vanillaByRun = new Map(vanilla?.map((entry) => [key(entry.prompt, entry.repeat), entry.record]));
  return contenders.map((contender) => {
    const runs = records.get(contender.name)!;
    const rates = runs.map(({ record }) => record.newTokens / (record.wallMs / 1000));
    const speedups: number[] = [];
    let matches: boolean | null = settings.temperature === 0 && vanilla && contender.name !== 'vanilla' ? true : null;
    for (const { prompt, repeat, record } of runs) {
      const base = vanillaByRun.get(key(prompt, repeat));
      if (!base) continue;
      speedups.push(record.newTokens / record.wallMs / (base.newTokens / base.wallMs));
      if (matches !== null && !sameTokens(record.tokenIds, base.tokenIds)) matches = false;
    }
    const sum = (pick: (record: RunRecord) => number) => runs.reduce((total, { record }) => total + pick(record), 0);
    const tokens = sum((r) => r.newTokens);
    const forwards = sum((r) => r.rounds);
    const verifyRounds = sum((r) => r.rounds - 1);
    const draftRounds = sum((r) => r.draftRounds);
    const depths = Math.max(0, ...runs.map(({ record }) => record.acceptanceByDepth.length));
    const acceptanceByDepth = Array.from({ length: depths }, (_, d) =>
      draftRounds > 0 ? sum((r) => r.acceptanceByDepth[d] ?? 0) / draftRounds : 0,
    );
    return {
      policy: contender.name,
      kind: contender.kind,
      tokensPerSecond: median(rates),
      speedup: vanilla ? median(speedups) : null,
      meanAcceptedLength: forwards > 0 ? tokens / forwards : 0,
      acceptanceByDepth,
      draftMsPerRound: verifyRounds > 0 ? sum((r) => r.draftMs) / verifyRounds : 0,
      verifyMsPerRound: verifyRounds > 0 ? sum((r) => r.verifyMs) / verifyRounds : 0,
      prefillMs: median(runs.map(({ record }) => record.prefillMs)),
      matchesVanilla: matches,
      runs: runs.length,
    };
  });
}

/**
 * Reads benchmark prompts: a `.json` array of strings (or of objects with a `prompt` or `text`
 * field), or `.jsonl` with a `prompt` or `text` field per line. Each prompt is used verbatim.
 */
export async function loadPrompts(path: string): Promise<string[]> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError('prompts', `Cannot read the prompts file ${path}: ${(error as Error).message}.`, {
      fix: 'pass an existing .json or .jsonl file to --prompts.',
    });
  }
  const pick = (value: unknown, where: string): string => {
    if (typeof value === 'string') return value;
    if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if (typeof record.prompt === 'string') return record.prompt;
      if (typeof record.text === 'string') return record.text;
    }
    throw new InvalidArgumentError('prompts', `${path} ${where}: expected a string or an object with a "prompt" or "text" string.`, {
      fix: 'use a .json array of strings, or .jsonl lines like {"prompt": "..."}.',
    });
  };
  let prompts: string[];
  try {
    if (path.endsWith('.jsonl')) {
      prompts = content
        .split('\n')
        .map((line, index) => [line, index] as const)
        .filter(([line]) => line.trim() !== '')
        .map(([line, index]) => pick(JSON.parse(line), `line ${index + 1}`));
    } else {
      const parsed: unknown = JSON.parse(content);
      if (!Array.isArray(parsed)) throw new InvalidArgumentError('prompts', `${path} is not a JSON array.`, { fix: 'use a .json array of prompts or a .jsonl file.' });
      prompts = parsed.map((value, index) => pick(value, `item ${index}`));
    }
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new InvalidArgumentError('prompts', `${path} is not valid JSON${path.endsWith('.jsonl') ? ' lines' : ''}: ${error.message}.`, {
        fix: 'fix the file, or pass a .json array or a .jsonl file.',
      });
    }
    throw error;
  }
  if (prompts.length === 0) throw new InvalidArgumentError('prompts', `${path} holds no prompts.`, { fix: 'add at least one prompt.' });
  prompts.forEach((prompt, index) => {
    if (prompt.length === 0) throw new InvalidArgumentError('prompts', `Prompt ${index} in ${path} is empty.`, { fix: 'remove empty prompts.' });
  });
  return prompts;
}
