/**
 * Small host-side numeric helpers on typed arrays, shared by samplers, tree builders and
 * verifiers (which may not depend on each other). Not an op set: no backend runs these.
 */

/** Index of the largest value of `values[offset .. offset+length)`, relative to `offset`; first wins ties. */
export function argmax(values: ArrayLike<number>, offset = 0, length = values.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const value = values[offset + i]!;
    if (value > bestValue) {
      bestValue = value;
      best = i;
    }
  }
  return best;
}

/** Writes `log(softmax(logits))` into `out` (may alias `logits`). */
export function logSoftmax(logits: ArrayLike<number>, out: Float32Array, offset = 0, length = logits.length - offset): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(logits[offset + i]! - max);
  const logSum = max + Math.log(sum);
  for (let i = 0; i < length; i++) out[i] = logits[offset + i]! - logSum;
  return out;
}

/** Writes `softmax(logits)` into `out` (may alias `logits`). */
export function softmax(logits: ArrayLike<number>, out: Float32Array, offset = 0, length = logits.length - offset): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < length; i++) {
    const value = Math.exp(logits[offset + i]! - max);
    out[i] = value;
    sum += value;
  }
  const inverse = 1 / sum;
  for (let i = 0; i < length; i++) out[i] = out[i]! * inverse;
  return out;
}

/**
 * The `k` largest values of `values[offset .. offset+length)`, best first (ties: lower index first).
 * Writes their indices (relative to `offset`) to `outIndices` and values to `outValues`.
 * O(length · log k) with a small binary heap; no allocation.
 */
export function topK(
  values: ArrayLike<number>,
  k: number,
  outIndices: Int32Array,
  outValues: Float32Array,
  offset = 0,
  length = values.length - offset,
): number {
  const count = Math.min(k, length);
  if (count <= 0) return 0;
  // Min-heap of size `count` over (value, index): the root is the worst kept candidate.
  let size = 0;
  const worse = (a: number, b: number): boolean => {
    const va = outValues[a]!;
    const vb = outValues[b]!;
    return va < vb || (va === vb && outIndices[a]! > outIndices[b]!);
  };
  const swap = (a: number, b: number): void => {
    const vi = outIndices[a]!;
    outIndices[a] = outIndices[b]!;
    outIndices[b] = vi;
    const vv = outValues[a]!;
    outValues[a] = outValues[b]!;
    outValues[b] = vv;
  };
  const siftDown = (start: number, end: number): void => {
    let node = start;
    for (;;) {
      const left = 2 * node + 1;
      if (left >= end) return;
      let child = left;
      if (left + 1 < end && worse(left + 1, left)) child = left + 1;
      if (!worse(child, node)) return;
      swap(child, node);
      node = child;
    }
  };
  for (let i = 0; i < length; i++) {
    const value = values[offset + i]!;
    if (Number.isNaN(value)) continue;
    if (size < count) {
      outIndices[size] = i;
      outValues[size] = value;
      let node = size++;
      while (node > 0) {
        const parent = (node - 1) >> 1;
        if (!worse(node, parent)) break;
        swap(node, parent);
        node = parent;
      }
    } else if (value > outValues[0]!) {
      outIndices[0] = i;
      outValues[0] = value;
      siftDown(0, size);
    }
  }
  // Heap sort in place: repeatedly move the worst to the end → best first.
  for (let end = size - 1; end > 0; end--) {
    swap(0, end);
    siftDown(0, end);
  }
  return size;
}

/** Converts bfloat16 bits to float32. */
export function bf16ToF32(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  const view = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) view[i] = bits[i]! << 16;
  return out;
}

/** Converts IEEE half-precision bits to float32. */
export function f16ToF32(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) out[i] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) out[i] = fraction ? NaN : sign * Infinity;
    else out[i] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}
