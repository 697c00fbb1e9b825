/**
 * @packageDocumentation
 * `@gumiho/conformance` (private): conformance suites that every Gumiho-TS backend runs from its
 * own tests. `describeOpsConformance` checks each op of core's op set against float64 references.
 */
export { OPS_CONFORMANCE_CASES, PRECISION_TOLERANCE, describeOpsConformance } from './ops.js';
export type { OpsConformanceOptions, Tolerance } from './ops.js';
export { describeTargetConformance, readGoldenFixture, sharedDir } from './target.js';
export type { GoldenCase, GoldenFixture, TargetConformanceOptions } from './target.js';
