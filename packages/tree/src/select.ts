/**
 * The global rerank shared by the dynamic builders: keep the best nodes by cumulative score, in
 * creation order, never a node without its parent (the Q3 issue of the reference code, where a
 * node whose parent was cut by a tie silently attaches to a wrong node).
 */

/**
 * Picks up to `budget` nodes of a pool tree (node indices `first ..`, parents before children,
 * `parents[i] < first` meaning "below the always-kept root") by descending score, ties broken by
 * creation order. A node enters only together with its missing ancestors; if the chain does not
 * fit in the remaining budget the node is skipped. With scores that never increase from parent to
 * child (log-probabilities) the ancestors are always already in, and the result equals the
 * reference's top-N. Returns the kept indices in ascending (creation) order.
 */
export function selectAncestorClosed(
  parents: ArrayLike<number>,
  scores: ArrayLike<number>,
  budget: number,
  first = 1,
): Int32Array {
  const n = parents.length;
  const order: number[] = [];
  for (let i = first; i < n; i++) order.push(i);
  const score = (i: number): number => {
    const value = scores[i]!;
    return Number.isNaN(value) ? -Infinity : value;
  };
  order.sort((a, b) => {
    const sa = score(a);
    const sb = score(b);
    return sa > sb ? -1 : sa < sb ? 1 : a - b;
  });
  const selected = new Uint8Array(n);
  let count = 0;
  for (const node of order) {
    if (count >= budget) break;
    if (selected[node]) continue;
    let need = 0;
    for (let p = node; p >= first && !selected[p]; p = parents[p]!) need++;
    if (count + need > budget) continue;
    for (let p = node; p >= first && !selected[p]; p = parents[p]!) selected[p] = 1;
    count += need;
  }
  const kept = new Int32Array(count);
  let k = 0;
  for (let i = first; i < n; i++) if (selected[i]) kept[k++] = i;
  return kept;
}
