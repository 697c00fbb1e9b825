/**
 * @packageDocumentation
 * `@gumiho/verify`: the tree verifier (`createVerifier`): greedy acceptance at temperature 0 and
 * lossless multi-candidate rejection sampling otherwise, on the tree's candidate rows (so official
 * Full Tree Attention trees work too), plus helpers for what a round keeps and emits.
 */
export type { Verifier, VerifyOptions, VerifyResult } from '@gumiho/core';
export {
  acceptedSlots,
  createVerifier,
  emittedTokens,
  gatherAcceptedRows,
  verifyGreedy,
  verifySampling,
} from './verifier.js';
export type { VerifierOptions } from './verifier.js';
