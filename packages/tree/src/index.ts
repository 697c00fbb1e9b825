/**
 * @packageDocumentation
 * `@gumiho/tree`: draft trees as typed arrays (core `DraftTree`, with derived ancestor mask,
 * depths and root-to-leaf paths), tree builders implementing core's `TreeBuilder` (chain, static
 * Medusa-style, EAGLE-2 dynamic, Gumiho hybrid) and Full Tree Attention (`off`, `exact`,
 * `official`). A deterministic fake draft head for tests is in `@gumiho/tree/testing`.
 */
export type { DraftTree, TreeBuilder } from '@gumiho/core';
export {
  ancestorMask,
  childLists,
  createDraftTree,
  pathRow,
  pathTo,
  sortPathsLexicographically,
  validateDraftTree,
} from './tree.js';
export type { ChildLists, DraftTreeInput } from './tree.js';
export { selectAncestorClosed } from './select.js';
export { applyExactFta, applyFta, applyOfficialFta, ftaColumnFills } from './fta.js';
export type { FtaColumnFill, FtaMode } from './fta.js';
export { createChainBuilder, createDynamicTreeBuilder, createGumihoTreeBuilder, createStaticTreeBuilder } from './builders.js';
export type {
  ChainBuilderOptions,
  DynamicTreeBuilderOptions,
  GumihoTreeBuilderOptions,
  StaticTreeBuilderOptions,
} from './builders.js';
