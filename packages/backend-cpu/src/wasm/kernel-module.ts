/**
 * The WebAssembly SIMD kernels of the CPU backend, emitted with the in-repository assembler
 * (`assembler.ts`): a register-blocked matrix multiply with the weight layout of `nn.Linear`, and
 * grouped-query attention over a KV cache with an additive mask.
 *
 * Both take byte pointers into one imported (shared) memory. They are the hot paths; everything
 * else (norms, rotary embedding, elementwise ops) stays in JavaScript, where it costs little.
 */
import { F32, FunctionBuilder, I32, V128, assembleModule } from './assembler.js';

/** Register blocking of a matmul: rows and output columns per block, and columns per block of one row. */
export interface Blocking {
  readonly rows: number;
  readonly columns: number;
  readonly singleRowColumns: number;
}
/** Blocking of the float32 blocks (x64 has 16 vector registers), used by both weight formats. */
export const BLOCKING: Record<'f32', Blocking> = {
  f32: { rows: 4, columns: 2, singleRowColumns: 4 },
};

/** Exports of the kernel module. */
export interface KernelExports {
  /**
   * `out[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m])`, pointers in bytes (`bias` 0 for none). Output
   * columns are processed in panels of `panel` columns so that a panel of `w` stays in cache
   * while every row of `x` passes over it. Output rows are `outStride` floats apart (`m` for a
   * whole matrix; more when computing a range of columns). `scratch` is unused (same signature as
   * `linearBf16`).
   */
  linear(x: number, n: number, k: number, w: number, m: number, bias: number, out: number, panel: number, scratch: number, outStride: number): void;
  /**
   * {@link linear} with bfloat16 weights packed by {@link packBf16} (`k` a multiple of 8);
   * `scratch` holds `panel * k` floats (used from 4 rows on).
   */
  linearBf16(x: number, n: number, k: number, w: number, m: number, bias: number, out: number, panel: number, scratch: number, outStride: number): void;
  /** `out[i] = x[i] / (1 + exp(-x[i]))` for `count` floats (a multiple of 4), pointers in bytes. */
  silu(x: number, out: number, count: number): void;
  /**
   * Attention of `q [n, heads*headDim]` over `keys, values [total, kvHeads*headDim]` with the
   * additive `mask [n, total]` (entries below -1e29 skip their key). `scores` is scratch for
   * `total + 4` floats. `headDim` must be a multiple of 4. Rows whose keys are all masked get 0.
   */
  attention(
    q: number,
    n: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    keys: number,
    values: number,
    total: number,
    mask: number,
    scale: number,
    scores: number,
    out: number,
  ): void;
  /** {@link attention} specialised for `headDim` 64. */
  attention64: KernelExports['attention'];
  /** {@link attention} specialised for `headDim` 128. */
  attention128: KernelExports['attention'];
}

/** Pushes the sum of the four lanes of the v128 local `vector`. */
function horizontalSum(fn: FunctionBuilder, vector: number): void {
  fn.get(vector).f32x4ExtractLane(0).get(vector).f32x4ExtractLane(1).f32Add();
  fn.get(vector).f32x4ExtractLane(2).get(vector).f32x4ExtractLane(3).f32Add();
  fn.f32Add();
}

/**
 * Emits the matmul. `f32`: `w` is float32 `[m, k]`. `bf16`: `w` holds bfloat16 values, 2 bytes
 * each, `k` a multiple of 8, each group of 8 stored as four 32-bit words `(e[4+j] << 16) | e[j]`
 * (see {@link packBf16}), so that a shift and a mask turn 16 bytes into elements 0-3 and 4-7 as
 * float32. With one to three rows the bf16 kernel reads the packed weights directly (half the
 * memory traffic of float32); with more rows it converts each panel of weights once into
 * `scratch` and runs the float32 blocks on it. Every path adds the products in the same order, so
 * results are bit-identical for weights that are exactly bfloat16 (as those of bf16 checkpoints).
 */
function emitLinear(fn: FunctionBuilder, format: 'f32' | 'bf16', blocking: Blocking = BLOCKING.f32): void {
  const { rows: ROWS, columns: COLUMNS_MULTI, singleRowColumns: COLUMNS_SINGLE } = blocking;
  const [X, N, K, W, M, BIAS, OUT, PANEL, SCRATCH, OUT_STRIDE] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
  const i = fn.local(I32);
  const j = fn.local(I32);
  const jb = fn.local(I32);
  const jEnd = fn.local(I32);
  const p = fn.local(I32);
  const kBytes = fn.local(I32);
  const k4Bytes = fn.local(I32);
  const k8Bytes = fn.local(I32);
  const wBase = fn.local(I32);
  const maxC = Math.max(COLUMNS_MULTI, COLUMNS_SINGLE);
  const xp = Array.from({ length: ROWS }, () => fn.local(I32));
  const wp = Array.from({ length: maxC }, () => fn.local(I32));
  const wv = Array.from({ length: maxC }, () => fn.local(V128));
  const acc = Array.from({ length: ROWS }, () => Array.from({ length: maxC }, () => fn.local(V128)));
  const sum = Array.from({ length: ROWS }, () => Array.from({ length: maxC }, () => fn.local(F32)));
  const xv = fn.local(V128);
  const xs = fn.local(F32);
  const bv = fn.local(F32);
  const pw = fn.local(I32);
  const q = fn.local(I32);
  const qEnd = fn.local(I32);
  const lo = Array.from({ length: maxC }, () => fn.local(V128));
  const hi = Array.from({ length: maxC }, () => fn.local(V128));
  const highMask = fn.local(V128);

  /** Computes the `rows x columns` block of the output at (i, j), weights at `wBase` in `fmt`. */
  const block = (rows: number, columns: number, fmt: 'f32' | 'bf16'): void => {
    for (let r = 0; r < rows; r++) {
      fn.get(X).get(i).i32(r).i32Add().get(kBytes).i32Mul().i32Add().set(xp[r]!);
    }
    for (let c = 0; c < columns; c++) {
      // bf16 rows are k * 2 bytes: half of kBytes.
      fn.get(wBase).get(j).i32(c).i32Add().get(kBytes).i32Mul();
      if (fmt === 'bf16') fn.i32(1).raw(0x76 /* i32.shr_u */);
      fn.i32Add().set(wp[c]!);
    }
    for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) fn.f32x4Const(0).set(acc[r]![c]!);
    fn.i32(0).set(p);
    if (fmt === 'bf16') {
      // Eight inputs at a time: 16 bytes of weights become two float32 vectors.
      fn.while(
        () => fn.get(p).get(k8Bytes).i32LtS(),
        () => {
          fn.get(p).i32(1).raw(0x76 /* i32.shr_u */).set(pw);
          for (let c = 0; c < columns; c++) {
            fn.get(wp[c]!).get(pw).i32Add().v128Load().tee(wv[c]!).i32(16).i32x4Shl().set(lo[c]!);
            fn.get(wv[c]!).get(highMask).v128And().set(hi[c]!);
          }
          for (let r = 0; r < rows; r++) {
            fn.get(xp[r]!).get(p).i32Add().v128Load().set(xv);
            for (let c = 0; c < columns; c++) fn.get(acc[r]![c]!).get(xv).get(lo[c]!).f32x4Mul().f32x4Add().set(acc[r]![c]!);
            fn.get(xp[r]!).get(p).i32Add().v128Load(16).set(xv);
            for (let c = 0; c < columns; c++) fn.get(acc[r]![c]!).get(xv).get(hi[c]!).f32x4Mul().f32x4Add().set(acc[r]![c]!);
          }
          fn.get(p).i32(32).i32Add().set(p);
        },
      );
    } else {
      // Four inputs at a time.
      fn.while(
        () => fn.get(p).get(k4Bytes).i32LtS(),
        () => {
          for (let c = 0; c < columns; c++) fn.get(wp[c]!).get(p).i32Add().v128Load().set(wv[c]!);
          for (let r = 0; r < rows; r++) {
            fn.get(xp[r]!).get(p).i32Add().v128Load().set(xv);
            for (let c = 0; c < columns; c++) {
              fn.get(acc[r]![c]!).get(xv).get(wv[c]!).f32x4Mul().f32x4Add().set(acc[r]![c]!);
            }
          }
          fn.get(p).i32(16).i32Add().set(p);
        },
      );
    }
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) {
        horizontalSum(fn, acc[r]![c]!);
        fn.set(sum[r]![c]!);
      }
    }
    if (fmt === 'f32') {
      // Scalar tail: the last k % 4 inputs (float32 weights only; bf16 needs k % 8 == 0).
      fn.while(
        () => fn.get(p).get(kBytes).i32LtS(),
        () => {
          for (let r = 0; r < rows; r++) {
            fn.get(xp[r]!).get(p).i32Add().f32Load().set(xs);
            for (let c = 0; c < columns; c++) {
              fn.get(sum[r]![c]!).get(xs).get(wp[c]!).get(p).i32Add().f32Load().f32Mul().f32Add().set(sum[r]![c]!);
            }
          }
          fn.get(p).i32(4).i32Add().set(p);
        },
      );
    }
    fn.get(BIAS).i32(0).i32Ne().if(() => {
      for (let c = 0; c < columns; c++) {
        fn.get(BIAS).get(j).i32(c).i32Add().i32(2).i32Shl().i32Add().f32Load().set(bv);
        for (let r = 0; r < rows; r++) fn.get(sum[r]![c]!).get(bv).f32Add().set(sum[r]![c]!);
      }
    });
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) {
        // out + ((i + r) * outStride + j + c) * 4
        fn.get(OUT).get(i).i32(r).i32Add().get(OUT_STRIDE).i32Mul().get(j).i32Add().i32(c).i32Add().i32(2).i32Shl().i32Add();
        fn.get(sum[r]![c]!).f32Store();
      }
    }
  };

  /** Sweeps columns jb..jEnd for the row block at i. */
  const sweepColumns = (rows: number, columns: number, fmt: 'f32' | 'bf16'): void => {
    fn.get(jb).set(j);
    fn.while(
      () => fn.get(j).i32(columns).i32Add().get(jEnd).i32LeS(),
      () => {
        block(rows, columns, fmt);
        fn.get(j).i32(columns).i32Add().set(j);
      },
    );
    fn.while(
      () => fn.get(j).get(jEnd).i32LtS(),
      () => {
        block(rows, 1, fmt);
        fn.get(j).i32(1).i32Add().set(j);
      },
    );
  };

  /** All rows over the panel: blocks of ROWS rows, then single rows. */
  const sweepRows = (fmt: 'f32' | 'bf16'): void => {
    fn.i32(0).set(i);
    fn.while(
      () => fn.get(i).i32(ROWS).i32Add().get(N).i32LeS(),
      () => {
        sweepColumns(ROWS, COLUMNS_MULTI, fmt);
        fn.get(i).i32(ROWS).i32Add().set(i);
      },
    );
    fn.while(
      () => fn.get(i).get(N).i32LtS(),
      () => {
        sweepColumns(1, COLUMNS_SINGLE, fmt);
        fn.get(i).i32(1).i32Add().set(i);
      },
    );
  };

  fn.i32x4Const(-65536).set(highMask);
  fn.get(K).i32(2).i32Shl().set(kBytes);
  fn.get(K).i32(~3).i32And().i32(2).i32Shl().set(k4Bytes);
  fn.get(K).i32(~7).i32And().i32(2).i32Shl().set(k8Bytes);
  fn.i32(0).set(jb);
  fn.while(
    () => fn.get(jb).get(M).i32LtS(),
    () => {
      // jEnd = min(jb + panel, m)
      fn.get(jb).get(PANEL).i32Add().get(M).get(jb).get(PANEL).i32Add().get(M).i32LtS().select().set(jEnd);
      if (format === 'f32') {
        fn.get(W).set(wBase);
        sweepRows('f32');
      } else {
        fn.get(N).i32(ROWS).i32GeS().if(
          () => {
            // Convert the panel's rows jb..jEnd to float32 in scratch (rows are contiguous).
            fn.get(W).get(jb).get(kBytes).i32Mul().i32(1).raw(0x76).i32Add().set(q);
            fn.get(W).get(jEnd).get(kBytes).i32Mul().i32(1).raw(0x76).i32Add().set(qEnd);
            fn.get(SCRATCH).set(pw);
            fn.while(
              () => fn.get(q).get(qEnd).i32LtS(),
              () => {
                fn.get(q).v128Load().set(xv);
                fn.get(pw).get(xv).i32(16).i32x4Shl().v128Store();
                fn.get(pw).get(xv).get(highMask).v128And().v128Store(16);
                fn.get(q).i32(16).i32Add().set(q);
                fn.get(pw).i32(32).i32Add().set(pw);
              },
            );
            // wBase + j * kBytes addresses scratch row j - jb (wrapping arithmetic).
            fn.get(SCRATCH).get(jb).get(kBytes).i32Mul().i32Sub().set(wBase);
            sweepRows('f32');
          },
          () => {
            fn.get(W).set(wBase);
            sweepRows('bf16');
          },
        );
      }
      fn.get(jb).get(PANEL).i32Add().set(jb);
    },
  );
}

/**
 * Pushes `exp(x)` of the v128 local `x`, with `x` clamped to [-87, 88] (so results stay finite
 * and normal: about 1.6e-38 to 1.7e38). Range reduction `x = n ln2 + r`, a degree-6 polynomial for `e^r`
 * (|r| <= ln2/2, relative error about 1e-7) and `2^n` built from its exponent bits.
 */
function emitExp(fn: FunctionBuilder, x: number, nf: number, r: number): void {
  fn.get(x).f32x4Const(-87).f32x4Max().f32x4Const(88).raw(0xfd, 0xe8, 0x01 /* f32x4.min */).set(x);
  fn.get(x).f32x4Const(Math.LOG2E).f32x4Mul().f32x4Nearest().set(nf);
  // r = x - nf * ln2_hi - nf * ln2_lo (ln2_hi exact in few bits)
  fn.get(x).get(nf).f32x4Const(0.693359375).f32x4Mul().f32x4Sub();
  fn.get(nf).f32x4Const(-2.12194440e-4).f32x4Mul().f32x4Sub().set(r);
  const coefficients = [1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1];
  fn.f32x4Const(coefficients[0]!);
  for (let c = 1; c < coefficients.length; c++) fn.get(r).f32x4Mul().f32x4Const(coefficients[c]!).f32x4Add();
  // * 2^nf
  fn.get(nf).i32x4TruncSatF32x4S().i32x4Const(127).i32x4Add().i32(23).i32x4Shl().f32x4Mul();
}

/**
 * Emits attention. With `fixedHeadDim` (a multiple of 32) the per-key dot products are fully
 * unrolled with two accumulators and the value pass accumulates 32 floats at a time; otherwise
 * `headDim` is read at run time (any multiple of 4).
 */
function emitAttention(fn: FunctionBuilder, fixedHeadDim?: number): void {
  const [Q, N, HEADS, KV_HEADS, HEAD_DIM, KEYS, VALUES, TOTAL, MASK, SCALE, SCORES, OUT] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] as const;
  const i = fn.local(I32);
  const h = fn.local(I32);
  const j = fn.local(I32);
  const d = fn.local(I32);
  const group = fn.local(I32);
  const qStride = fn.local(I32);
  const kvStride = fn.local(I32);
  const headBytes = fn.local(I32);
  const qp = fn.local(I32);
  const kvOffset = fn.local(I32);
  const maskRow = fn.local(I32);
  const kp = fn.local(I32);
  const sp = fn.local(I32);
  const sEnd = fn.local(I32);
  const maskValue = fn.local(F32);
  const score = fn.local(F32);
  const max = fn.local(F32);
  const inverse = fn.local(F32);
  const prob = fn.local(F32);
  const dot = fn.local(V128);
  const maxV = fn.local(V128);
  const sumV = fn.local(V128);
  const sv = fn.local(V128);
  const ev = fn.local(V128);
  const nf = fn.local(V128);
  const rv = fn.local(V128);
  const pv = fn.local(V128);
  const outAcc = Array.from({ length: 8 }, () => fn.local(V128));
  const dot2 = fn.local(V128);

  fn.get(HEADS).get(KV_HEADS).i32DivS().set(group);
  fn.get(HEAD_DIM).i32(2).i32Shl().set(headBytes);
  fn.get(HEADS).get(headBytes).i32Mul().set(qStride);
  fn.get(KV_HEADS).get(headBytes).i32Mul().set(kvStride);

  /** Accumulates `width` vectors of `Σ_j p_j v_j` at head offset `d`, stores them scaled. */
  const weightedValues = (width: number): void => {
    for (let t = 0; t < width; t++) fn.f32x4Const(0).set(outAcc[t]!);
    fn.forRange(j, () => fn.i32(0), () => fn.get(TOTAL), 1, () => {
      fn.get(SCORES).get(j).i32(2).i32Shl().i32Add().f32Load().tee(prob).f32(0).f32Ne().if(() => {
        fn.get(prob).f32x4Splat().set(pv);
        // kp = values + j * kvStride + kvOffset + d
        fn.get(VALUES).get(j).get(kvStride).i32Mul().i32Add().get(kvOffset).i32Add().get(d).i32Add().set(kp);
        for (let t = 0; t < width; t++) {
          fn.get(outAcc[t]!).get(pv).get(kp).v128Load(16 * t).f32x4Mul().f32x4Add().set(outAcc[t]!);
        }
      });
    });
    for (let t = 0; t < width; t++) {
      fn.get(OUT).get(qp).get(Q).i32Sub().i32Add().get(d).i32Add();
      fn.get(outAcc[t]!).get(inverse).f32x4Splat().f32x4Mul().v128Store(16 * t);
    }
  };

  fn.forRange(i, () => fn.i32(0), () => fn.get(N), 1, () => {
    fn.get(MASK).get(i).get(TOTAL).i32Mul().i32(2).i32Shl().i32Add().set(maskRow);
    fn.forRange(h, () => fn.i32(0), () => fn.get(HEADS), 1, () => {
      fn.get(Q).get(i).get(qStride).i32Mul().i32Add().get(h).get(headBytes).i32Mul().i32Add().set(qp);
      fn.get(h).get(group).i32DivS().get(headBytes).i32Mul().set(kvOffset);
      fn.f32(-Infinity).set(max);
      // Pass 1: scores (masked keys -> -inf, skipped).
      fn.forRange(j, () => fn.i32(0), () => fn.get(TOTAL), 1, () => {
        fn.get(SCORES).get(j).i32(2).i32Shl().i32Add().set(sp);
        fn.get(maskRow).get(j).i32(2).i32Shl().i32Add().f32Load().tee(maskValue).f32(-1e29).f32Lt().if(
          () => {
            fn.get(sp).f32(-Infinity).f32Store();
          },
          () => {
            fn.get(KEYS).get(j).get(kvStride).i32Mul().i32Add().get(kvOffset).i32Add().set(kp);
            fn.f32x4Const(0).set(dot);
            if (fixedHeadDim) {
              fn.f32x4Const(0).set(dot2);
              for (let u = 0; u < fixedHeadDim / 4; u++) {
                const target = u % 2 === 0 ? dot : dot2;
                fn.get(target).get(qp).v128Load(16 * u).get(kp).v128Load(16 * u).f32x4Mul().f32x4Add().set(target);
              }
              fn.get(dot).get(dot2).f32x4Add().set(dot);
            } else {
              fn.forRange(d, () => fn.i32(0), () => fn.get(headBytes), 16, () => {
                fn.get(dot).get(qp).get(d).i32Add().v128Load().get(kp).get(d).i32Add().v128Load().f32x4Mul().f32x4Add().set(dot);
              });
            }
            horizontalSum(fn, dot);
            fn.get(SCALE).f32Mul().get(maskValue).f32Add().set(score);
            fn.get(sp).get(score).f32Store();
            fn.get(max).get(score).f32Max().set(max);
          },
        );
      });
      fn.get(max).f32(-Infinity).f32Eq().if(
        () => {
          // Every key masked: the output row is zero.
          fn.forRange(d, () => fn.i32(0), () => fn.get(headBytes), 16, () => {
            fn.get(OUT).get(qp).get(Q).i32Sub().i32Add().get(d).i32Add().f32x4Const(0).v128Store();
          });
        },
        () => {
          // Pad the scores to a multiple of four with -inf, then exponentiate four at a time.
          fn.get(SCORES).get(TOTAL).i32(2).i32Shl().i32Add().set(sp);
          for (let t = 0; t < 4; t++) fn.get(sp).f32(-Infinity).f32Store(4 * t);
          fn.get(SCORES).get(TOTAL).i32(3).i32Add().i32(~3).i32And().i32(2).i32Shl().i32Add().set(sEnd);
          fn.get(max).f32x4Splat().set(maxV);
          fn.f32x4Const(0).set(sumV);
          fn.forRange(sp, () => fn.get(SCORES), () => fn.get(sEnd), 16, () => {
            fn.get(sp).v128Load().set(sv);
            fn.get(sv).get(maxV).f32x4Sub().set(ev);
            emitExp(fn, ev, nf, rv);
            // Zero the lanes of masked keys (score -inf).
            fn.get(sv).f32x4Const(-Infinity).f32x4Gt().v128And().set(ev);
            fn.get(sp).get(ev).v128Store();
            fn.get(sumV).get(ev).f32x4Add().set(sumV);
          });
          fn.f32(1);
          horizontalSum(fn, sumV);
          fn.f32Div().set(inverse);
          // Pass 3: weighted values, 16 floats of the head at a time, then 4 at a time.
          fn.i32(0).set(d);
          if (fixedHeadDim) {
            fn.while(
              () => fn.get(d).i32(128).i32Add().get(headBytes).i32LeS(),
              () => {
                weightedValues(8);
                fn.get(d).i32(128).i32Add().set(d);
              },
            );
          }
          fn.while(
            () => fn.get(d).i32(64).i32Add().get(headBytes).i32LeS(),
            () => {
              weightedValues(4);
              fn.get(d).i32(64).i32Add().set(d);
            },
          );
          fn.while(
            () => fn.get(d).get(headBytes).i32LtS(),
            () => {
              weightedValues(1);
              fn.get(d).i32(16).i32Add().set(d);
            },
          );
        },
      );
    });
  });
}

/** `out[i] = x[i] / (1 + exp(-x[i]))` for `count` floats, `count` a multiple of 4. */
function emitSilu(fn: FunctionBuilder): void {
  const [X, OUT, COUNT] = [0, 1, 2] as const;
  const p = fn.local(I32);
  const end = fn.local(I32);
  const v = fn.local(V128);
  const e = fn.local(V128);
  const nf = fn.local(V128);
  const r = fn.local(V128);
  fn.get(COUNT).i32(2).i32Shl().set(end);
  fn.forRange(p, () => fn.i32(0), () => fn.get(end), 16, () => {
    fn.get(X).get(p).i32Add().v128Load().set(v);
    fn.f32x4Const(0).get(v).f32x4Sub().set(e);
    fn.get(OUT).get(p).i32Add();
    fn.get(v);
    emitExp(fn, e, nf, r);
    fn.f32x4Const(1).f32x4Add().raw(0xfd, 0xe7, 0x01 /* f32x4.div */);
    fn.v128Store();
  });
}

/** Builds the kernel module's binary for a memory with the given limits (64 KiB pages). */
export function kernelModuleBinary(
  memory: { initial: number; maximum: number; shared: boolean },
  blocking: Blocking = BLOCKING.f32,
): Uint8Array<ArrayBuffer> {
  return assembleModule({
    memory,
    functions: [
      { name: 'linear', params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], build: (fn) => emitLinear(fn, 'f32', blocking) },
      { name: 'linearBf16', params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], build: (fn) => emitLinear(fn, 'bf16', blocking) },
      { name: 'silu', params: [I32, I32, I32], build: emitSilu },
      { name: 'attention', params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, I32, I32], build: (fn) => emitAttention(fn) },
      { name: 'attention64', params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, I32, I32], build: (fn) => emitAttention(fn, 64) },
      { name: 'attention128', params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, I32, I32], build: (fn) => emitAttention(fn, 128) },
    ],
  });
}

/**
 * True when every value of `source` is exactly a bfloat16 (its low 16 bits are zero), as the
 * weights of bf16 checkpoints converted to float32 are.
 */
export function isExactBf16(source: Float32Array): boolean {
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & 0xffff) !== 0) return false;
  return true;
}

/**
 * Writes `source [rows, k]` (exact bfloat16 values, `k` a multiple of 8) as the kernel's packed
 * bfloat16 layout into `target` (`rows * k / 2` words): per group of 8 elements, word `j` is
 * `(e[4+j] & 0xffff0000) | (e[j] >>> 16)`.
 */
export function packBf16(source: Float32Array, target: Uint32Array): void {
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  for (let g = 0, w = 0; g < bits.length; g += 8, w += 4) {
    for (let j = 0; j < 4; j++) target[w + j] = ((bits[g + 4 + j]! & 0xffff0000) | (bits[g + j]! >>> 16)) >>> 0;
  }
}
