/**
 * Matmul benchmark of the CPU backend's kernels on the shapes of py-llama-28m (hidden 384,
 * intermediate 1024, 6 heads / 2 KV heads of 64, vocabulary 8192, fused qkv and gate/up).
 * Prints GFLOP/s at 1, 16 and 64 rows for the WebAssembly SIMD kernel (float32 weights and packed
 * bfloat16 weights) and the scalar JavaScript kernel, with the weight hot in cache and "from
 * memory" (cycling through copies that together exceed the caches, as in a real forward where
 * every weight is read once).
 *
 *   pnpm --filter @gumiho/backend-cpu bench:matmul [-- --seconds 0.25] [--repeats 5]
 *
 * A program that prints a table, not a test. The machine is shared and noisy: figures are medians.
 */
import { linear as scalarLinear } from '../src/kernels.js';
import { WasmRuntime } from '../src/wasm/runtime.js';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const seconds = flag('seconds', 0.25);
const repeats = flag('repeats', 5);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Median seconds per call of `fn(iteration)` over `repeats` timed batches of about `seconds`. */
function time(fn: (iteration: number) => void): number {
  let iteration = 0;
  const start = performance.now();
  while (performance.now() - start < 50) fn(iteration++); // warm-up and tier-up
  const perCall = (performance.now() - start) / iteration;
  const batch = Math.max(1, Math.round((seconds * 1000) / perCall));
  const samples: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    for (let i = 0; i < batch; i++) fn(iteration++);
    samples.push((performance.now() - t) / 1000 / batch);
  }
  return median(samples);
}

function fill(array: Float32Array): Float32Array {
  for (let i = 0; i < array.length; i++) array[i] = Math.random() * 2 - 1;
  return array;
}

const shapes: { name: string; m: number; k: number }[] = [
  { name: 'qkv_proj (fused)', m: 640, k: 384 },
  { name: 'o_proj', m: 384, k: 384 },
  { name: 'gate_up_proj (fused)', m: 2048, k: 384 },
  { name: 'down_proj', m: 384, k: 1024 },
  { name: 'lm_head', m: 8192, k: 384 },
];
const rowCounts = [1, 16, 64];
/** Copies of a weight cycled through for the "from memory" figures: at least this many bytes. */
const COLD_BYTES = 96 * 1024 * 1024;

const runtime = WasmRuntime.create();
if (!runtime) {
  console.error('WebAssembly SIMD with shared memory is not available in this engine.');
  process.exit(1);
}

console.log(`matmul GFLOP/s (median of ${repeats}), out[n, m] = x[n, k] · w[m, k]ᵀ, Node ${process.versions.node}`);
console.log('hot: the same weight every call (in cache); mem: cycling through copies of the weight larger than the caches');
console.log('f32 / bf16: WebAssembly SIMD with float32 weights / with exact-bfloat16 weights packed at half the bytes\n');
const header = ['shape', 'm x k', 'n', 'f32 hot', 'f32 mem', 'bf16 hot', 'bf16 mem', 'scalar JS'];
const rows: string[][] = [];
for (const { name, m, k } of shapes) {
  const copies = Math.max(1, Math.ceil(COLD_BYTES / (m * k * 4)));
  // Values rounded to bfloat16, so that both packings apply to the same weights.
  const sources = Array.from({ length: copies }, () => {
    const w = fill(new Float32Array(m * k));
    const bits = new Uint32Array(w.buffer);
    for (let i = 0; i < bits.length; i++) bits[i] = bits[i]! & 0xffff0000;
    return w;
  });
  const f32 = sources.map((w) => runtime.packWeight(w, m, k, false)!);
  const bf16 = sources.map((w) => runtime.packWeight(w, m, k, true)!);
  for (const n of rowCounts) {
    const x = fill(runtime.allocate(n * k)!);
    const out = runtime.allocate(n * m)!;
    const flop = 2 * n * m * k;
    const gflops = (seconds: number): string => (flop / seconds / 1e9).toFixed(1);
    const xs = new Float32Array(x);
    const outs = new Float32Array(n * m);
    rows.push([
      name,
      `${m} x ${k}`,
      String(n),
      gflops(time(() => runtime.linear(x, n, k, f32[0]!, m, undefined, out))),
      gflops(time((i) => runtime.linear(x, n, k, f32[i % copies]!, m, undefined, out))),
      gflops(time(() => runtime.linear(x, n, k, bf16[0]!, m, undefined, out))),
      gflops(time((i) => runtime.linear(x, n, k, bf16[i % copies]!, m, undefined, out))),
      (flop / time(() => scalarLinear(xs, n, k, sources[0]!, m, undefined, outs)) / 1e9).toFixed(2),
    ]);
    runtime.release(x);
    runtime.release(out);
  }
  for (const w of [...f32, ...bf16]) runtime.releasePointer(w.ptr);
}
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]): string => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
