/**
 * Scalar float32 kernels on typed arrays: the fallback where WebAssembly SIMD is unavailable
 * (and for shapes the SIMD kernels do not take), and the reference the SIMD kernels are tested
 * against. Allocation-free (callers pass outputs); the matmul is blocked so that each weight row is
 * loaded once per four activation rows.
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

/** Positions below this get cached cos/sin rows in a {@link RopeTable}; larger ones are computed per call. */
const ROPE_CACHE_POSITIONS = 1 << 16;

/**
 * Cosines and sines of the rotary angles for one `(theta, headDim)`, cached per position as
 * float32 (what Hugging Face computes): `inverseFrequency[f] = 1 / theta^(2f / headDim)` and
 * `angle = position * inverseFrequency[f]`, both rounded to float32.
 */
export class RopeTable {
  readonly half: number;
  private readonly inverseFrequency: Float64Array;
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);
  private cached = 0;
  private readonly rowCos: Float32Array;
  private readonly rowSin: Float32Array;

  constructor(theta: number, headDim: number) {
    this.half = headDim >> 1;
    this.inverseFrequency = new Float64Array(this.half);
    for (let f = 0; f < this.half; f++) this.inverseFrequency[f] = Math.fround(1 / Math.pow(theta, (2 * f) / headDim));
    this.rowCos = new Float32Array(this.half);
    this.rowSin = new Float32Array(this.half);
  }

  /** Cosines and sines of `position` in `cos[offset..offset+half)`, `sin[...]`. Valid until the next call. */
  row(position: number): { cos: Float32Array; sin: Float32Array; offset: number } {
    const half = this.half;
    if (position >= 0 && position < ROPE_CACHE_POSITIONS && Number.isInteger(position)) {
      if (position >= this.cached) this.grow(position + 1);
      return { cos: this.cos, sin: this.sin, offset: position * half };
    }
    this.compute(position, this.rowCos, this.rowSin, 0);
    return { cos: this.rowCos, sin: this.rowSin, offset: 0 };
  }

  private grow(positions: number): void {
    const count = Math.min(ROPE_CACHE_POSITIONS, Math.max(positions, this.cached * 2, 256));
    const cos = new Float32Array(count * this.half);
    const sin = new Float32Array(count * this.half);
    cos.set(this.cos);
    sin.set(this.sin);
    for (let p = this.cached; p < count; p++) this.compute(p, cos, sin, p * this.half);
    this.cos = cos;
    this.sin = sin;
    this.cached = count;
  }

  private compute(position: number, cos: Float32Array, sin: Float32Array, offset: number): void {
    for (let f = 0; f < this.half; f++) {
      const angle = Math.fround(position * this.inverseFrequency[f]!);
      cos[offset + f] = Math.cos(angle);
      sin[offset + f] = Math.sin(angle);
    }
  }
}

/** Rotary embedding (Hugging Face rotate-half convention) of `x [n, heads*headDim]`. */
export function rope(
  x: Float32Array,
  n: number,
  heads: number,
  headDim: number,
  positions: Int32Array,
  table: RopeTable,
  out: Float32Array,
): void {
  const half = table.half;
  const width = heads * headDim;
  for (let i = 0; i < n; i++) {
    const { cos, sin, offset } = table.row(positions[i]!);
    for (let h = 0; h < heads; h++) {
      const base = i * width + h * headDim;
      for (let f = 0; f < half; f++) {
        const a = x[base + f]!;
        const b = x[base + f + half]!;
        const c = cos[offset + f]!;
        const s = sin[offset + f]!;
        out[base + f] = a * c - b * s;
        out[base + f + half] = b * c + a * s;
      }
    }
  }
}

/**
 * Attention of `q [n, heads*headDim]` over `keys/values [total, kvHeads*headDim]` (rows
 * `0..total`), with an additive `mask [n, total]`. Keys whose mask is below -1e29 are skipped;
 * a row whose keys are all skipped gets zeros. `scores` is scratch of at least `total` floats.
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
      const oBase = i * qWidth + h * headDim;
      if (max === -Infinity) {
        for (let d = 0; d < headDim; d++) out[oBase + d] = 0;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < total; j++) {
        const s = scores[j]!;
        const e = s === -Infinity ? 0 : Math.exp(s - max);
        scores[j] = e;
        sum += e;
      }
      const inverse = 1 / sum;
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
