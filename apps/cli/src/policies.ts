/**
 * `--policy` names mapped to draft policy factories. `vanilla` drafts nothing: every round
 * verifies the root alone, which is plain autoregressive decoding through the same loop.
 * Policies with draft heads (lookup, medusa, eagle2, gumiho) are added here as they land.
 */
import { InvalidArgumentError, type DraftPolicy, type TargetModel, type Tokenizer } from '@gumiho/core';

/** What a policy factory may use to build its head and tree builder. */
export interface PolicyContext {
  /** The target; heads compile on `target.backend` and may reuse `target.weights`. */
  readonly target: TargetModel;
  readonly tokenizer: Tokenizer | undefined;
  /** The target's model folder (heads may live next to it). */
  readonly modelFolder: string;
  /** The repository root (committed heads live under `heads/`). */
  readonly root: string;
}

/** Creates a draft policy, or `undefined` for none (vanilla decoding). */
export type PolicyFactory = (context: PolicyContext) => DraftPolicy | undefined | Promise<DraftPolicy | undefined>;

/** The policies `--policy` accepts, by name. */
export const POLICIES: Map<string, PolicyFactory> = new Map<string, PolicyFactory>([['vanilla', () => undefined]]);

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
