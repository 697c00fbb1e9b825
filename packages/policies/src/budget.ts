/**
 * Hardware-aware tree budgets (`--total-tokens auto`).
 *
 * Speculative decoding pays when the extra tokens a round yields outweigh what the bigger
 * verification forward and the drafting cost. Both sides depend on the machine: on a GPU a
 * forward over 64 tokens costs about as much as one, on a 2-core CPU it costs several times more.
 * So the budget is chosen per backend and model from two measurements:
 *
 * 1. the backend's **forward cost** `cost(n)` of the target over n tokens (medians, measured once
 *    and cached per backend and model), and
 * 2. the policy's **acceptance at each candidate size**: tau(n) (tokens per round) and its drafting
 *    milliseconds per round, from a short calibration generation per size, with the sampling
 *    settings it will run with (acceptance at T > 0 is lower than at greedy).
 *
 * The expected speed of size n is `tau(n) / (draft(n) + cost(n))` tokens per millisecond; vanilla's
 * is `1 / cost(1)`. The best size wins if it beats vanilla by at least `minGain` (default 10%);
 * otherwise the answer is 1 (no drafting), so a policy with `auto` is never slower than vanilla by
 * this model. The margin is there because tau comes from one short calibration generation: a
 * predicted gain of a few percent is within its noise (seen on ort-cpu: Medusa predicted 1.03x,
 * ran at 0.82x; on cpu: lookup predicted 1.05x, ran at 0.95x).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DraftPolicy, SpeculativeDecoder, TargetModel } from '@gumiho/core';

/** Forward cost of the target: milliseconds per forward over `n` tokens. */
export type CostTable = Record<string, number>;

/** Sizes (root included) measured by default. */
export const DEFAULT_COST_SIZES = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64] as const;

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Measures the target's forward cost over `sizes` tokens after a committed context of
 * `contextIds` (a realistic past length), `trials` times each (median). The cache is left empty.
 */
export async function measureForwardCost(
  target: TargetModel,
  contextIds: Int32Array,
  sizes: readonly number[] = DEFAULT_COST_SIZES,
  trials = 7,
): Promise<CostTable> {
  const cache = target.cache;
  cache.reset();
  const positions = Int32Array.from(contextIds, (_, i) => i);
  await target.forward({ tokenIds: contextIds, positions });
  cache.commit();
  const past = cache.length;
  const usable = sizes.filter((n) => past + n <= cache.spec.capacity);
  const inputs = usable.map((n) => ({
    n,
    tokenIds: Int32Array.from({ length: n }, (_, i) => contextIds[(i * 7) % contextIds.length]!),
    positions: Int32Array.from({ length: n }, (_, i) => past + i),
    logitRows: Int32Array.from({ length: n }, (_, i) => i),
  }));
  const times = new Map<number, number[]>(usable.map((n) => [n, []]));
  // Round-robin over the sizes, so that drift of a shared machine hits every size alike; the
  // first two passes warm up (tracing backends plan each new shape once).
  for (let pass = 0; pass < trials + 2; pass++) {
    for (const input of inputs) {
      const start = performance.now();
      await target.forward(input);
      const elapsed = performance.now() - start;
      cache.rollback();
      if (pass >= 2) times.get(input.n)!.push(elapsed);
    }
  }
  cache.reset();
  const table: CostTable = {};
  for (const [n, list] of times) table[String(n)] = medianOf(list);
  return table;
}

/** Interpolated cost of a forward over `n` tokens. */
export function costAt(table: CostTable, n: number): number {
  const points = Object.entries(table)
    .map(([size, ms]) => [Number(size), ms] as const)
    .sort((a, b) => a[0] - b[0]);
  if (points.length === 0) return NaN;
  let previous = points[0]!;
  if (n <= previous[0]) return previous[1];
  for (const point of points) {
    if (point[0] >= n) {
      const t = (n - previous[0]) / (point[0] - previous[0]);
      return previous[1] + t * (point[1] - previous[1]);
    }
    previous = point;
  }
  // Extrapolate linearly from the last two points.
  const last = points[points.length - 1]!;
  const before = points[points.length - 2] ?? [0, 0];
  return last[1] + ((n - last[0]) * (last[1] - before[1])) / Math.max(1, last[0] - before[0]);
}

/** One row of the budget decision. */
export interface BudgetCandidate {
  readonly totalTokens: number;
  /** Tokens per target forward in the calibration run. */
  readonly tau: number;
  readonly draftMsPerRound: number;
  readonly verifyMs: number;
  /** Expected tokens per second. */
  readonly tokensPerSecond: number;
}

/** The decision, with the evidence. */
export interface BudgetChoice {
  /** Chosen tree size (root included); 1 means "do not draft". */
  readonly totalTokens: number;
  readonly vanillaTokensPerSecond: number;
  readonly candidates: readonly BudgetCandidate[];
  readonly costs: CostTable;
  /** True when the decision came from the cache file. */
  readonly cached: boolean;
}

/** Options of {@link chooseTreeBudget}. */
export interface ChooseBudgetOptions {
  readonly target: TargetModel;
  /** Builds the policy at a given tree size (root included). */
  readonly policyAt: (totalTokens: number) => DraftPolicy | undefined;
  /** Builds a decoder for a policy, with the sampling settings to calibrate for. */
  readonly decoderFor: (policy: DraftPolicy | undefined) => SpeculativeDecoder;
  /** Calibration prompt (token ids); a couple of hundred tokens of typical input. */
  readonly calibrationPrompt: Int32Array;
  /** Candidate sizes. Default 4, 6, 8, 12, 16, 24, 32, 48, 64. */
  readonly sizes?: readonly number[];
  /** Tokens generated per calibration run. Default 48. */
  readonly calibrationTokens?: number;
  /**
   * Smallest predicted gain over vanilla (a fraction) for which drafting is chosen. Default
   * {@link DEFAULT_MIN_GAIN}. Applied to cached measurements too.
   */
  readonly minGain?: number;
  /** JSON file caching costs and decisions; omit to skip caching. */
  readonly cacheFile?: string;
  /** Identifies backend + model + policy + heads + knobs in the cache. */
  readonly cacheKey: string;
  /** Identifies backend + model for the cost table in the cache. */
  readonly costKey: string;
}

interface CacheDocument {
  costs: Record<string, CostTable>;
  budgets: Record<string, Omit<BudgetChoice, 'cached'>>;
}

async function readCache(file: string | undefined): Promise<CacheDocument> {
  if (!file) return { costs: {}, budgets: {} };
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<CacheDocument>;
    return { costs: parsed.costs ?? {}, budgets: parsed.budgets ?? {} };
  } catch {
    return { costs: {}, budgets: {} };
  }
}

async function writeCache(file: string, document: CacheDocument): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temporary = `${file}.tmp-${process.pid}`;
  await writeFile(temporary, JSON.stringify(document, null, 1));
  await rename(temporary, file);
}

/** Default of {@link ChooseBudgetOptions.minGain}: drafting must be predicted 10% faster than vanilla. */
export const DEFAULT_MIN_GAIN = 0.1;

/**
 * The tree size with the best predicted tokens/s, or 1 (no drafting) unless it beats vanilla's by
 * at least `minGain` (a fraction, e.g. 0.05 for 5%).
 */
export function pickTreeSize(
  candidates: readonly BudgetCandidate[],
  vanillaTokensPerSecond: number,
  minGain: number = DEFAULT_MIN_GAIN,
): number {
  if (!(minGain >= 0)) throw new RangeError(`minGain must be a fraction >= 0 (e.g. 0.05 for 5%), got ${minGain}`);
  let best: BudgetCandidate | undefined;
  for (const candidate of candidates) if (!best || candidate.tokensPerSecond > best.tokensPerSecond) best = candidate;
  return best && best.tokensPerSecond > vanillaTokensPerSecond * (1 + minGain) ? best.totalTokens : 1;
}

/** Chooses the tree size; see the module comment. */
export async function chooseTreeBudget(options: ChooseBudgetOptions): Promise<BudgetChoice> {
  const document = await readCache(options.cacheFile);
  const known = document.budgets[options.cacheKey];
  if (known) {
    // The cache keeps the measurements; the decision is re-derived so a changed rule applies to it too.
    return { ...known, totalTokens: pickTreeSize(known.candidates, known.vanillaTokensPerSecond, options.minGain), cached: true };
  }

  let costs = document.costs[options.costKey];
  if (!costs) {
    costs = await measureForwardCost(options.target, options.calibrationPrompt);
    document.costs[options.costKey] = costs;
  }
  const sizes = options.sizes ?? [4, 6, 8, 12, 16, 24, 32, 48, 64];
  const tokens = options.calibrationTokens ?? 48;
  const vanillaMs = costAt(costs, 1);
  const candidates: BudgetCandidate[] = [];
  for (const size of sizes) {
    if (size < 2 || options.calibrationPrompt.length + tokens + size > options.target.cache.spec.capacity) continue;
    const policy = options.policyAt(size);
    if (!policy) continue;
    // Knobs such as --depth may cap the tree below `size`: measure each real size once.
    if (candidates.some((candidate) => candidate.totalTokens === (policy.maxTreeSize ?? size))) continue;
    const decoder = options.decoderFor(policy);
    await decoder.generate({ prompt: options.calibrationPrompt, maxNewTokens: 8 }); // warm-up (compiles shapes)
    const result = await decoder.generate({ prompt: options.calibrationPrompt, maxNewTokens: tokens });
    const verifyRounds = Math.max(1, result.stats.rounds - 1);
    const tau = result.stats.meanAcceptedLength;
    const draftMsPerRound = result.stats.draftMs / verifyRounds;
    const verifyMs = costAt(costs, policy.maxTreeSize ?? size);
    candidates.push({ totalTokens: policy.maxTreeSize ?? size, tau, draftMsPerRound, verifyMs, tokensPerSecond: (1000 * tau) / (draftMsPerRound + verifyMs) });
  }
  const vanillaTokensPerSecond = 1000 / vanillaMs;
  const choice = {
    totalTokens: pickTreeSize(candidates, vanillaTokensPerSecond, options.minGain),
    vanillaTokensPerSecond,
    candidates,
    costs,
  };
  document.budgets[options.cacheKey] = choice;
  if (options.cacheFile) await writeCache(options.cacheFile, document);
  return { ...choice, cached: false };
}
