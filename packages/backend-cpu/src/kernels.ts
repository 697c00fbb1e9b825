/**
 * Scalar float32 kernels on typed arrays. The reference implementation of the op set: simple,
 * allocation-free (callers pass outputs), and blocked so that each weight row is loaded once per
 * four activation rows.
 */

/** `out[n, outF] = x[n, inF] · w[outF, inF]ᵀ (+ bias)`. */
export function linear(
  x: Float32Array,
  n: number,
  inFeatures: number,
  w: Float32Array,
  outFeatures: number,
  bias: Float32Array | undefined,
  out: Float32Array,
): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const x0 = i * inFeatures;
    const x1 = x0 + inFeatures;
    const x2 = x1 + inFeatures;
    const x3 = x2 + inFeatures;
    for (let j = 0; j < outFeatures; j++) {
      const wj = j * inFeatures;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < inFeatures; k++) {
        const wk = w[wj + k]!;
        s0 += x[x0 + k]! * wk;
        s1 += x[x1 + k]! * wk;
        s2 += x[x2 + k]! * wk;
        s3 += x[x3 + k]! * wk;
      }
      const b = bias ? bias[j]! : 0;
      out[i * outFeatures + j] = s0 + b;
      out[(i + 1) * outFeatures + j] = s1 + b;
      out[(i + 2) * outFeatures + j] = s2 + b;
      out[(i + 3) * outFeatures + j] = s3 + b;
    }
  }
  for (; i < n; i++) {
    const xi = i * inFeatures;
    for (let j = 0; j < outFeatures; j++) {
      const wj = j * inFeatures;
      let s0 = 0;
      let s1 = 0;
      let k = 0;
      for (; k + 2 <= inFeatures; k += 2) {
        s0 += x[xi + k]! * w[wj + k]!;
        s1 += x[xi + k + 1]! * w[wj + k + 1]!;
      }
      for (; k < inFeatures; k++) s0 += x[xi + k]! * w[wj + k]!;
      out[i * outFeatures + j] = s0 + s1 + (bias ? bias[j]! : 0);
    }
  }
}

/** RMSNorm of each row of `x [n, d]`. */
export function rmsNorm(x: Float32Array, n: number, d: number, weight: Float32Array, eps: number, out: Float32Array): void {
  for (let i = 0; i < n; i++) {
    const base = i * d;
    let sum = 0;
    for (let k = 0; k < d; k++) {
      const v = x[base + k]!;
      sum += v * v;
    }
    const scale = 1 / Math.sqrt(sum / d + eps);
    for (let k = 0; k < d; k++) out[base + k] = x[base + k]! * scale * weight[k]!;
  }
}

/** Rotary embedding (Hugging Face rotate-half convention) of `x [n, heads*headDim]`. */
export function rope(
  x: Float32Array,
  n: number,
  heads: number,
  headDim: number,
  positions: Int32Array,
  theta: number,
  out: Float32Array,
): void {
  const half = headDim >> 1;
  const width = heads * headDim;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let i = 0; i < n; i++) {
    const position = positions[i]!;
    for (let f = 0; f < half; f++) {
      const inverseFrequency = Math.fround(1 / Math.pow(theta, (2 * f) / headDim));
      const angle = Math.fround(position * inverseFrequency);
      cos[f] = Math.cos(angle);
      sin[f] = Math.sin(angle);
    }
    for (let h = 0; h < heads; h++) {
      const base = i * width + h * headDim;
      for (let f = 0; f < half; f++) {
        const a = x[base + f]!;
        const b = x[base + f + half]!;
        out[base + f] = a * cos[f]! - b * sin[f]!;
        out[base + f + half] = b * cos[f]! + a * sin[f]!;
      }
    }
  }
}

/**
 * Attention of `q [n, heads*headDim]` over `keys/values [total, kvHeads*headDim]` (rows
 * `0..total`), with an additive `mask [n, total]`. Keys whose mask is below -1e29 are skipped.
 */
export function attention(
  q: Float32Array,
  n: number,
  heads: number,
  kvHeads: number,
  headDim: number,
  keys: Float32Array,
  values: Float32Array,
  total: number,
  mask: Float32Array,
  scale: number,
  scores: Float32Array,
  out: Float32Array,
): void {
  const group = heads / kvHeads;
  const qWidth = heads * headDim;
  const kvWidth = kvHeads * headDim;
  for (let i = 0; i < n; i++) {
    const maskRow = i * total;
    for (let h = 0; h < heads; h++) {
      const qBase = i * qWidth + h * headDim;
      const kvOffset = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let j = 0; j < total; j++) {
        const m = mask[maskRow + j]!;
        if (m < -1e29) {
          scores[j] = -Infinity;
          continue;
        }
        const kBase = j * kvWidth + kvOffset;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qBase + d]! * keys[kBase + d]!;
        const s = dot * scale + m;
        scores[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j < total; j++) {
        const s = scores[j]!;
        const e = s === -Infinity ? 0 : Math.exp(s - max);
        scores[j] = e;
        sum += e;
      }
      const inverse = 1 / sum;
      const oBase = i * qWidth + h * headDim;
      for (let d = 0; d < headDim; d++) out[oBase + d] = 0;
      for (let j = 0; j < total; j++) {
        const p = scores[j]! * inverse;
        if (p === 0) continue;
        const vBase = j * kvWidth + kvOffset;
        for (let d = 0; d < headDim; d++) out[oBase + d] = out[oBase + d]! + p * values[vBase + d]!;
      }
    }
  }
}
