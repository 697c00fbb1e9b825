/**
 * Drafting policies assembled from parts: a draft head (from `@gumiho/draft-heads`) plus a tree
 * builder (from `@gumiho/tree`) plus a budget. This package is an *assembly layer*, like the apps:
 * it is the one place that knows which head goes with which builder; the parts stay independent.
 *
 * | policy  | head                                  | tree builder                              |
 * |---------|---------------------------------------|-------------------------------------------|
 * | vanilla | none                                  | none (one-node trees)                     |
 * | lookup  | prompt n-gram lookup (no weights)     | chain                                     |
 * | medusa  | parallel heads on the target's hidden | static tree of top-k paths                |
 * | eagle2  | one serial Transformer layer          | EAGLE-2 dynamic tree                      |
 * | gumiho  | 2 serial layers + 5 parallel MLPs     | Gumiho hybrid tree (+ Full Tree Attention)|
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, ModelLoadError, type DraftHead, type DraftPolicy, type TargetModel, type TreeBuilder } from '@gumiho/core';
import { createLookupHead, loadDraftHeads } from '@gumiho/draft-heads';
import {
  createChainBuilder,
  createDynamicTreeBuilder,
  createGumihoTreeBuilder,
  createStaticTreeBuilder,
  type FtaMode,
} from '@gumiho/tree';

/** The built-in policies. */
export const POLICY_NAMES = ['vanilla', 'lookup', 'medusa', 'eagle2', 'gumiho'] as const;
/** A built-in policy name. */
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Tree knobs shared by the policies (each uses those that apply to it). */
export interface PolicyKnobs {
  /** Tree size including the root. */
  readonly totalTokens?: number;
  /** Per-node top-k of the serial levels (eagle2, gumiho) or of the lookup head. */
  readonly topKDraft?: number;
  /** Maximum depth (eagle2's expansion steps, lookup's and the chain's length). */
  readonly depth?: number;
  /** Gumiho: per-node top-k at the MLP levels. */
  readonly mlpTopK?: number;
  /** Gumiho: nodes kept per MLP level. */
  readonly pruning?: number;
  /** Gumiho: Full Tree Attention mode. */
  readonly fta?: FtaMode;
  /** Gumiho: replicate the official code's quirk Q1 (causal mask among level-2 siblings). */
  readonly q1CausalSiblings?: boolean;
  /** Gumiho: replicate the official code's quirk Q2 (misaligned level-1 token in the MLP input). */
  readonly q2MisalignedMlpToken?: boolean;
}

/** Default knobs per policy, sized for this project's CPU backends (see the README's bench). */
export const DEFAULT_KNOBS: Readonly<Record<Exclude<PolicyName, 'vanilla'>, Required<Pick<PolicyKnobs, 'totalTokens'>> & PolicyKnobs>> = {
  lookup: { totalTokens: 9, topKDraft: 1 },
  medusa: { totalTokens: 16 },
  eagle2: { totalTokens: 24, depth: 6 },
  gumiho: { totalTokens: 24, fta: 'exact' },
};

/**
 * The per-node top-k that suits a tree of `totalTokens` nodes when none is given: about its
 * square root (2 for 4 nodes, 5 for 24, 8 for 64). Every candidate costs a row of the draft's LM
 * head, so a small tree should not pay for a wide search it cannot keep.
 */
export function defaultTopK(totalTokens: number): number {
  return Math.min(8, Math.max(2, Math.round(Math.sqrt(totalTokens))));
}

/**
 * The static Medusa tree for a budget of `nodes` drafted tokens: the `nodes` most likely paths of
 * top-k indices under a simple model (rank r at any depth accepted with weight 0.55 / (r + 1)^1.6,
 * deeper levels decayed by 0.8), which is prefix-closed by construction.
 */
export function medusaTreePaths(nodes: number, heads = 5, maxRank = 8): number[][] {
  const weight = (rank: number, depth: number) => (0.55 / (rank + 1) ** 1.6) * (depth > 0 ? 0.8 : 1);
  const chosen: Array<{ path: number[]; score: number }> = [];
  const nextRank = new Map<string, number>(); // parent path -> next untaken rank
  while (chosen.length < nodes) {
    let best: { path: number[]; score: number } | undefined;
    for (const parent of [{ path: [] as number[], score: 1 }, ...chosen]) {
      const depth = parent.path.length;
      const rank = nextRank.get(parent.path.join(',')) ?? 0;
      if (depth >= heads || rank >= maxRank) continue;
      const score = parent.score * weight(rank, depth);
      if (!best || score > best.score) best = { path: [...parent.path, rank], score };
    }
    if (!best) break;
    chosen.push(best);
    const parentKey = best.path.slice(0, -1).join(',');
    nextRank.set(parentKey, (nextRank.get(parentKey) ?? 0) + 1);
  }
  return chosen.map((entry) => entry.path);
}

function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

/**
 * Where the heads trained by this project for `modelName` live: `<repo>/heads/<model>/<kind>`.
 * Returns undefined when there is no such folder.
 */
export function defaultHeadsDir(modelName: string, kind: 'gumiho' | 'eagle2' | 'medusa'): string | undefined {
  // packages/policies/{src,dist} -> repository root
  for (const base of [resolve(packageRoot(), '..', '..'), process.cwd()]) {
    const dir = join(base, 'heads', modelName, kind);
    if (existsSync(join(dir, 'config.json'))) return dir;
  }
  return undefined;
}

/** Options of {@link loadPolicyHead}. */
export interface PolicyHeadOptions {
  readonly target: TargetModel;
  /** Folder with `config.json` + `model.safetensors`; default: {@link defaultHeadsDir}. */
  readonly headsDir?: string;
  /** Draft rows one round may add. */
  readonly maxSpeculativeRows?: number;
}

/** Loads the head a policy drafts with (undefined for `vanilla`). */
export async function loadPolicyHead(name: PolicyName, options: PolicyHeadOptions): Promise<DraftHead | undefined> {
  switch (name) {
    case 'vanilla':
      return undefined;
    case 'lookup':
      return createLookupHead();
    case 'medusa':
    case 'eagle2':
    case 'gumiho': {
      const dir = options.headsDir ?? defaultHeadsDir(options.target.name, name);
      if (!dir) {
        throw new ModelLoadError(`The ${name} policy needs trained ${name} heads for ${options.target.name}, and none were found.`, {
          fix: `pass --heads <folder> (config.json + model.safetensors), or train them with tooling/train-heads.`,
        });
      }
      const head = await loadDraftHeads(dir, options.target, { maxSpeculativeRows: options.maxSpeculativeRows ?? 512 });
      if (head.id !== name) {
        throw new InvalidArgumentError('heads', `The heads in ${dir} are ${head.id} heads, but the ${name} policy was asked for.`, {
          fix: `use --policy ${head.id}, or point --heads at ${name} heads.`,
        });
      }
      return head;
    }
    default:
      throw new InvalidArgumentError('policy', `Unknown policy "${String(name)}".`, { fix: `use one of ${POLICY_NAMES.join(', ')}.` });
  }
}

/** The tree builder of a policy for the given knobs. */
export function createPolicyBuilder(name: Exclude<PolicyName, 'vanilla'>, knobs: PolicyKnobs = {}): { builder: TreeBuilder; totalTokens: number } {
  const merged = { ...DEFAULT_KNOBS[name], ...definedOnly(knobs) };
  const totalTokens = merged.totalTokens;
  if (!Number.isInteger(totalTokens) || totalTokens < 1) {
    throw new InvalidArgumentError('totalTokens', `The tree size must be a positive integer (root included), got ${totalTokens}.`, { fix: 'use --total-tokens auto or a number such as 24.' });
  }
  const drafts = Math.max(1, totalTokens - 1);
  switch (name) {
    case 'lookup':
      // A chain: its length is the budget unless --depth caps it.
      return { builder: createChainBuilder({ depth: Math.min(merged.depth ?? drafts, drafts) }), totalTokens: Math.min(totalTokens, (merged.depth ?? drafts) + 1) };
    case 'medusa':
      return { builder: createStaticTreeBuilder({ paths: medusaTreePaths(drafts) }), totalTokens };
    case 'eagle2':
      return { builder: createDynamicTreeBuilder({ topK: merged.topKDraft ?? defaultTopK(totalTokens), depth: merged.depth ?? 6, totalTokens }), totalTokens };
    case 'gumiho':
      return {
        builder: createGumihoTreeBuilder({
          topK: merged.topKDraft ?? defaultTopK(totalTokens),
          mlpTopK: merged.mlpTopK ?? merged.topKDraft ?? defaultTopK(totalTokens),
          pruning: merged.pruning ?? merged.topKDraft ?? defaultTopK(totalTokens),
          totalTokens,
          fta: merged.fta ?? 'exact',
          q1CausalSiblings: merged.q1CausalSiblings ?? false,
          q2MisalignedMlpToken: merged.q2MisalignedMlpToken ?? false,
        }),
        totalTokens,
      };
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Assembles a policy from a loaded head (undefined head: vanilla). */
export function assemblePolicy(name: PolicyName, head: DraftHead | undefined, knobs: PolicyKnobs = {}): DraftPolicy | undefined {
  if (name === 'vanilla' || !head) return undefined;
  const { builder, totalTokens } = createPolicyBuilder(name, knobs);
  return { id: name, head, builder, maxTreeSize: totalTokens };
}

/** Loads the head and assembles the policy in one step. */
export async function createPolicy(name: PolicyName, options: PolicyHeadOptions & { knobs?: PolicyKnobs }): Promise<DraftPolicy | undefined> {
  if (!(POLICY_NAMES as readonly string[]).includes(name)) {
    throw new InvalidArgumentError('policy', `Unknown policy "${name}".`, { fix: `use one of ${POLICY_NAMES.join(', ')}.` });
  }
  const head = await loadPolicyHead(name, options);
  return assemblePolicy(name, head, options.knobs);
}
