/**
 * @packageDocumentation
 * `@gumiho/draft-heads`: draft heads implementing core's `DraftHead` protocol: Gumiho (serial
 * Transformer for depths 1-2 plus parallel MLP heads), EAGLE-2 (serial part only), Medusa
 * (parallel heads on the target's hidden state) and prompt n-gram lookup; loading and writing
 * head folders (`config.json` + `model.safetensors`, official Gumiho key layout); the heads'
 * programs, written against core's op set.
 */
export {
  GumihoDraftHead,
  MedusaDraftHead,
  SerialDraftHead,
  createDraftHead,
  createEagleHead,
  createGumihoHead,
  createMedusaHead,
} from './heads.js';
export type { DraftTarget, WeightedHeadOptions } from './heads.js';
export { LookupDraftHead, createLookupHead, findContinuations } from './lookup.js';
export type { LookupContinuations, LookupHeadOptions } from './lookup.js';
export { SerialPart } from './serial-part.js';
export type { SerialPartOptions } from './serial-part.js';
export { checkHeadsMatchTarget, draftHeadsConfigFor, otherTargetWarning, parseDraftHeadsConfig } from './config.js';
export type { DraftHeadKind, DraftHeadsConfig, DraftHeadsConfigOverrides, DraftHeadsTargetInfo } from './config.js';
export {
  PrefixedWeightStore,
  checkDraftHeadWeights,
  countMlpBlocks,
  expectedDraftHeadTensors,
  mlpWeightName,
  normaliseDraftHeadNames,
  randomDraftHeadWeights,
} from './weights.js';
export type { DraftHeadShape, ExpectedTensor } from './weights.js';
export { DRAFT_HEADS_FILES, isOfficialDraftConfig, loadDraftHeads, officialDraftHeadsConfig, readDraftHeads, writeDraftHeads } from './io.js';
export type { DraftHeadsFiles, LoadDraftHeadsOptions, WriteDraftHeadsOptions } from './io.js';
export { DRAFT_CACHE, gumihoMlpHeads, gumihoMlpProgram, medusaProgram, serialStepProgram } from './programs.js';
export type { GumihoMlpInput, MlpShape, SerialInput, SerialOutput, SerialShape, SharedWeightNames } from './programs.js';
export { candidatesFromLogits, emptyCandidates, logSumExp } from './candidates.js';
