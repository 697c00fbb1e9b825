/**
 * Graph rewrites that ONNX Runtime's CPU optimiser does not do by itself, applied to a traced
 * graph before it is encoded. Each pass only removes kernels; the arithmetic is unchanged.
 *
 * - {@link fuseSkipNorm}: `s = add(a, b); y = rmsNorm(s)` → one
 *   `com.microsoft.SkipSimplifiedLayerNormalization` that returns `y` and the sum `s`.
 * - {@link mergeSlices}: disjoint `sliceColumns` of one tensor (a fused QKV or gate/up output)
 *   → one `Split`.
 * - {@link splitLinearsByRows}: a `linear` whose only consumer is such a `Split` → one matmul
 *   per kept segment over a row range of the same weight bytes (no `Split` kernel, no copy).
 * - {@link elideOutputIdentities}: `Identity` nodes that only give a computed value its graph
 *   output name → the producer writes the output directly.
 */
import type { GraphBuilder } from './onnx-graph.js';
import { MS_DOMAIN } from './onnx-graph.js';
import type { SliceRecord } from './tracer.js';

type Node = GraphBuilder['graphNodes'][number];

function consumers(nodes: readonly Node[]): Map<string, number> {
  const count = new Map<string, number>();
  for (const node of nodes) for (const input of node.input ?? []) count.set(input, (count.get(input) ?? 0) + 1);
  return count;
}

/** Fuses same-shape `Add` → `SimplifiedLayerNormalization` pairs. Returns the number fused. */
export function fuseSkipNorm(graph: GraphBuilder, adds: ReadonlySet<string>, graphOutputs: ReadonlySet<string>): number {
  const nodes = graph.graphNodes;
  const producer = new Map<string, Node>();
  for (const node of nodes) for (const output of node.output ?? []) producer.set(output, node);
  const uses = consumers(nodes);
  const removed = new Set<Node>();
  let fused = 0;
  for (const norm of nodes) {
    if (norm.opType !== 'SimplifiedLayerNormalization' || removed.has(norm)) continue;
    const sum = norm.input![0]!;
    const add = producer.get(sum);
    if (!add || add.opType !== 'Add' || !adds.has(sum) || removed.has(add)) continue;
    const epsilon = norm.attribute!.find((attribute) => attribute.name === 'epsilon')!;
    const sumUsedElsewhere = (uses.get(sum) ?? 0) > 1 || graphOutputs.has(sum);
    // Rewrite the Add node in place (it comes first in topological order) and drop the norm.
    add.opType = 'SkipSimplifiedLayerNormalization';
    add.domain = MS_DOMAIN;
    add.input = [add.input![0]!, add.input![1]!, norm.input![1]!];
    add.output = [norm.output![0]!, '', '', sumUsedElsewhere ? sum : ''];
    add.attribute = [epsilon];
    removed.add(norm);
    fused++;
  }
  if (removed.size > 0) {
    const kept = nodes.filter((node) => !removed.has(node));
    nodes.length = 0;
    nodes.push(...kept);
  }
  return fused;
}

/** Replaces groups of disjoint column slices of one tensor by a single `Split`. Returns the number of groups merged. */
export function mergeSlices(graph: GraphBuilder, slices: readonly SliceRecord[]): number {
  const groups = new Map<string, SliceRecord[]>();
  for (const slice of slices) {
    const group = groups.get(slice.input) ?? [];
    group.push(slice);
    groups.set(slice.input, group);
  }
  const nodes = graph.graphNodes;
  let merged = 0;
  for (const [input, group] of groups) {
    if (group.length < 2) continue;
    const sorted = [...group].sort((a, b) => a.start - b.start);
    let disjoint = true;
    for (let i = 1; i < sorted.length; i++) if (sorted[i]!.start < sorted[i - 1]!.end) disjoint = false;
    if (!disjoint) continue;
    const cols = sorted[0]!.cols;
    const sizes: number[] = [];
    const outputs: string[] = [];
    let at = 0;
    for (const slice of sorted) {
      if (slice.start > at) {
        sizes.push(slice.start - at);
        outputs.push(graph.fresh('split_gap'));
      }
      sizes.push(slice.end - slice.start);
      outputs.push(slice.output);
      at = slice.end;
    }
    if (at < cols) {
      sizes.push(cols - at);
      outputs.push(graph.fresh('split_gap'));
    }
    const outputSet = new Set(group.map((slice) => slice.output));
    const first = nodes.findIndex((node) => node.opType === 'Slice' && outputSet.has(node.output![0]!));
    const splitSizes = graph.int64(sizes);
    const kept = nodes.filter((node) => !(node.opType === 'Slice' && outputSet.has(node.output![0]!)));
    // Insert the Split where the first slice was: its input is available there.
    const before = nodes.slice(0, first).filter((node) => !(node.opType === 'Slice' && outputSet.has(node.output![0]!))).length;
    graph.node('Split', [input, splitSizes], outputs, { axis: 2 });
    const split = nodes.pop()!;
    kept.splice(before, 0, split);
    nodes.length = 0;
    nodes.push(...kept);
    merged++;
  }
  return merged;
}

/**
 * Removes `Identity` nodes whose output is a graph output and whose input is computed by another
 * node (not a graph input, not an initializer, not itself an output): the producer's output is
 * renamed instead. Returns the number removed.
 */
export function elideOutputIdentities(graph: GraphBuilder): number {
  const nodes = graph.graphNodes;
  const boundary = graph.boundaryNames;
  const producer = new Map<string, Node>();
  for (const node of nodes) for (const output of node.output ?? []) producer.set(output, node);
  const renamed = new Map<string, string>();
  const removed = new Set<Node>();
  for (const node of nodes) {
    if (node.opType !== 'Identity') continue;
    const source = node.input![0]!;
    const target = node.output![0]!;
    if (!boundary.has(target) || boundary.has(source) || renamed.has(source)) continue;
    const origin = producer.get(source);
    if (!origin || origin.opType === 'Identity') continue;
    renamed.set(source, target);
    removed.add(node);
  }
  if (removed.size === 0) return 0;
  const kept = nodes.filter((node) => !removed.has(node));
  for (const node of kept) {
    node.input = node.input!.map((name) => renamed.get(name) ?? name);
    node.output = node.output!.map((name) => renamed.get(name) ?? name);
  }
  nodes.length = 0;
  nodes.push(...kept);
  return removed.size;
}

/**
 * Replaces `FusedMatMul(x, W, transB) → Split(axis 2)` by one `FusedMatMul` per used segment over
 * rows of `W` (external-data views of the same bytes). A `Split` of a one-row activation costs
 * about as much as a small matmul, and the fused projections of a Llama layer (QKV, gate/up)
 * would otherwise need one per projection. Returns the number of splits removed.
 */
export function splitLinearsByRows(graph: GraphBuilder): number {
  const nodes = graph.graphNodes;
  const uses = consumers(nodes);
  const boundary = graph.boundaryNames;
  const producer = new Map<string, Node>();
  for (const node of nodes) for (const output of node.output ?? []) producer.set(output, node);
  const constants = new Map<string, number[]>();
  let removed = 0;
  const replacements = new Map<Node, Node[]>();
  const dropped = new Set<Node>();
  for (const split of nodes) {
    if (split.opType !== 'Split' || split.input!.length !== 2) continue;
    const axis = split.attribute?.find((attribute) => attribute.name === 'axis');
    if (Number(axis?.i) !== 2) continue;
    const matmul = producer.get(split.input![0]!);
    if (!matmul || matmul.opType !== 'FusedMatMul' || uses.get(split.input![0]!) !== 1 || boundary.has(split.input![0]!)) continue;
    const transB = matmul.attribute?.find((attribute) => attribute.name === 'transB');
    if (Number(transB?.i) !== 1 || matmul.attribute!.length > 2) continue;
    const sizes = constants.get(split.input![1]!) ?? graph.int64Values(split.input![1]!);
    if (!sizes) continue;
    constants.set(split.input![1]!, sizes);
    const parts: Node[] = [];
    let start = 0;
    let ok = true;
    sizes.forEach((size, index) => {
      const output = split.output![index]!;
      if ((uses.get(output) ?? 0) > 0 || boundary.has(output)) {
        const rows = graph.externalRows(matmul.input![1]!, start, start + size);
        if (!rows) ok = false;
        else parts.push({ ...matmul, name: graph.fresh('n_FusedMatMul'), input: [matmul.input![0]!, rows], output: [output] });
      }
      start += size;
    });
    if (!ok) continue;
    replacements.set(matmul, parts);
    dropped.add(split);
    removed++;
  }
  if (removed === 0) return 0;
  const rebuilt: Node[] = [];
  for (const node of nodes) {
    if (dropped.has(node)) continue;
    rebuilt.push(...(replacements.get(node) ?? [node]));
  }
  nodes.length = 0;
  nodes.push(...rebuilt);
  return removed;
}
