/**
 * @packageDocumentation
 * `@gumiho/bench`: the benchmark harness behind `gumiho bench` — alternating runs, medians,
 * same-run speedups over vanilla, the weight-bandwidth floor, tables, JSON and SVG charts.
 */
export { loadPrompts, median, runBench } from './harness.js';
export type { BenchOptions, Contender, ContenderResult, RunRecord, RunSettings } from './harness.js';
export { machineInfo, measureParallelReadBandwidth, measureReadBandwidth, weightFloor } from './machine.js';
export type { MachineInfo } from './machine.js';
export { renderSvg, renderTable, toJson } from './report.js';
export type { BenchReport } from './report.js';
