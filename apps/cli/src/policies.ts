/**
 * `--policy` names mapped to draft policy factories, on top of `@gumiho/policies`. `vanilla`
 * drafts nothing: every round verifies the root alone, which is plain autoregressive decoding
 * through the same loop. The others load their head (trained heads for the default model are
 * committed under `heads/`) and their tree builder, sized by `--total-tokens N` or measured for
 * this machine with `--total-tokens auto` (the default).
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  InvalidArgumentError,
  createSpeculativeDecoder,
  type DraftHead,
  type DraftPolicy,
  type SamplingOptions,
  type TargetModel,
  type Tokenizer,
} from '@gumiho/core';
import {
  POLICY_NAMES,
  assemblePolicy,
  chooseTreeBudget,
  defaultHeadsDir,
  loadPolicyHead,
  type BudgetChoice,
  type PolicyKnobs,
  type PolicyName,
} from '@gumiho/policies';
import { createSampler } from '@gumiho/samplers';
import { createVerifier } from '@gumiho/verify';

/** What a policy factory may use to build its head and tree builder. */
export interface PolicyContext {
  /** The target; heads compile on `target.backend` and may reuse `target.weights`. */
  readonly target: TargetModel;
  readonly tokenizer: Tokenizer | undefined;
  /** The target's model folder (heads may live next to it). */
  readonly modelFolder: string;
  /** The repository root (committed heads live under `heads/`). */
  readonly root: string;
  /** `--heads <folder>`; default: the committed heads for the model. */
  readonly headsDir?: string;
  /** Tree knobs from the command line (`totalTokens` absent: the policy's default). */
  readonly knobs?: PolicyKnobs;
  /** `--total-tokens auto`: measure the best tree size for this backend (cached). */
  readonly autoBudget?: boolean;
  /** Where the budget cache lives (default `<root>/.cache/gumiho`). */
  readonly cacheDir?: string;
  /**
   * Sampling settings the budget is calibrated with (acceptance at T > 0 differs from greedy's).
   * Default greedy.
   */
  readonly sampling?: SamplingOptions;
  /** Told about the budget decision (for `--verbose` and the bench). */
  readonly onBudget?: (choice: BudgetChoice) => void;
}

/** Creates a draft policy, or `undefined` for none (vanilla decoding). */
export type PolicyFactory = (context: PolicyContext) => DraftPolicy | undefined | Promise<DraftPolicy | undefined>;

/**
 * A typical Python context for calibrating tree budgets (code-shaped, about 200 tokens). Any
 * text of the kind the model will see works; this one is not taken from the benchmark prompts.
 */
export const CALIBRATION_TEXT = `import os
import sys
from collections import defaultdict


class Registry:
    """Maps names to handlers and remembers the order they were added in."""

    def __init__(self, strict=False):
        self.strict = strict
        self._handlers = {}
        self._order = []
        self._aliases = defaultdict(list)

    def register(self, name, handler, aliases=()):
        if self.strict and name in self._handlers:
            raise KeyError("handler %r is already registered" % (name,))
        self._handlers[name] = handler
        self._order.append(name)
        for alias in aliases:
            self._aliases[alias].append(name)
        return handler

    def lookup(self, name):
        if name in self._handlers:
            return self._handlers[name]
        for target in self._aliases.get(name, ()):
            return self._handlers[target]
        raise KeyError(name)

    def names(self):
        return list(self._order)


def load_from_environment(registry, prefix="APP_"):
    for key, value in os.environ.items():
        if key.startswith(prefix):
            registry.register(key[len(prefix):].lower(), value)
    return registry`;

function headsFingerprint(dir: string | undefined): string {
  if (!dir) return 'none';
  try {
    const hash = createHash('sha256').update(readFileSync(join(dir, 'config.json')));
    hash.update(String(statSync(join(dir, 'model.safetensors')).size));
    return hash.digest('hex').slice(0, 16);
  } catch {
    return 'unreadable';
  }
}

async function buildPolicy(name: PolicyName, context: PolicyContext): Promise<DraftPolicy | undefined> {
  const { target } = context;
  const knobs = context.knobs ?? {};
  const headsDir =
    name === 'gumiho' || name === 'eagle2' || name === 'medusa' ? context.headsDir ?? defaultHeadsDir(target.name, name) : undefined;
  const head: DraftHead | undefined = await loadPolicyHead(name, { target, ...(headsDir ? { headsDir } : {}) });
  if (!head) return undefined;
  if (!context.autoBudget || knobs.totalTokens !== undefined) return assemblePolicy(name, head, knobs);
  const tokenizer = context.tokenizer;
  if (!tokenizer) {
    throw new InvalidArgumentError('total-tokens', '--total-tokens auto calibrates on a text prompt, and the model has no tokenizer.', {
      fix: 'pass --total-tokens <n>.',
    });
  }
  const sampling: SamplingOptions = { ...(context.sampling ?? {}), temperature: context.sampling?.temperature ?? 0, seed: 1 };
  const { totalTokens: _ignored, ...shape } = knobs;
  const choice = await chooseTreeBudget({
    target,
    policyAt: (totalTokens) => assemblePolicy(name, head, { ...shape, totalTokens }),
    decoderFor: (policy) => createSpeculativeDecoder({ target, policy, verifier: createVerifier(), sampler: createSampler(sampling) }),
    calibrationPrompt: tokenizer.encode(CALIBRATION_TEXT),
    cacheFile: join(context.cacheDir ?? join(context.root, '.cache', 'gumiho'), 'budgets.json'),
    costKey: `${target.backend.id}|${target.name}|${target.cache.spec.capacity}`,
    cacheKey: `${target.backend.id}|${target.name}|${name}|${headsFingerprint(headsDir)}|${JSON.stringify(shape)}|${JSON.stringify(sampling)}`,
  });
  context.onBudget?.(choice);
  if (choice.totalTokens <= 1) {
    // Drafting does not pay on this backend: keep the head but verify one-node trees.
    return { ...assemblePolicy(name, head, shape)!, maxTreeSize: 1 };
  }
  return assemblePolicy(name, head, { ...shape, totalTokens: choice.totalTokens });
}

/** The policies `--policy` accepts, by name. */
export const POLICIES: Map<string, PolicyFactory> = new Map<string, PolicyFactory>(
  POLICY_NAMES.map((name) => [name, (context: PolicyContext) => buildPolicy(name, context)] as const),
);

/** The default `--policy`. */
export const DEFAULT_POLICY = 'vanilla';

/**
 * Creates the policy called `name`.
 *
 * @throws InvalidArgumentError for an unknown name, listing the known ones.
 */
export async function createPolicy(
  name: string,
  context: PolicyContext,
  policies: ReadonlyMap<string, PolicyFactory> = POLICIES,
): Promise<DraftPolicy | undefined> {
  return policyFactory(name, policies)(context);
}

/**
 * The factory of the policy called `name`, without running it.
 *
 * @throws InvalidArgumentError for an unknown name, listing the known ones.
 */
export function policyFactory(name: string, policies: ReadonlyMap<string, PolicyFactory> = POLICIES): PolicyFactory {
  const factory = policies.get(name);
  if (!factory) {
    throw new InvalidArgumentError('policy', `Unknown policy "${name}"; available policies: ${[...policies.keys()].join(', ')}.`, {
      fix: `pass one of them, e.g. --policy ${DEFAULT_POLICY}.`,
    });
  }
  return factory;
}
