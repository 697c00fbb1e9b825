/**
 * @packageDocumentation
 * `@gumiho/policies`: the built-in drafting policies (vanilla, lookup, medusa, eagle2, gumiho)
 * assembled from draft heads and tree builders, and hardware-aware tree budgets.
 */
export {
  DEFAULT_KNOBS,
  POLICY_NAMES,
  assemblePolicy,
  createPolicy,
  createPolicyBuilder,
  defaultHeadsDir,
  defaultTopK,
  loadPolicyHead,
  medusaTreePaths,
} from './policies.js';
export type { PolicyHeadOptions, PolicyKnobs, PolicyName } from './policies.js';
export { DEFAULT_COST_SIZES, DEFAULT_MIN_GAIN, chooseTreeBudget, costAt, measureForwardCost, pickTreeSize } from './budget.js';
export type { BudgetCandidate, BudgetChoice, ChooseBudgetOptions, CostTable } from './budget.js';
