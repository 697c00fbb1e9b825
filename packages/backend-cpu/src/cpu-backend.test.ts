import type { HostTensor, ProgramDefinition, WeightStore } from '@gumiho/core';
import { describeOpsConformance, describeTargetConformance } from '@gumiho/conformance';
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from './cpu-backend.js';
import { wasmSimdAvailable } from './wasm/runtime.js';

describe('createCpuBackend', () => {
  it('uses the WebAssembly SIMD kernels on Node 20', () => {
    expect(wasmSimdAvailable()).toBe(true);
    const backend = createCpuBackend();
    expect(backend.kernels).toBe('wasm-simd');
    expect(backend.capabilities).toEqual({ precision: 'float32', traced: false, copiesWeights: false });
    backend.dispose();
  });

  it('runs the scalar kernels when asked', () => {
    const backend = createCpuBackend({ kernels: 'scalar' });
    expect(backend.kernels).toBe('scalar');
    backend.dispose();
  });

  it('rejects unknown kernel names with a clear error', () => {
    expect(() => createCpuBackend({ kernels: 'gpu' as never })).toThrow(/kernels must be/);
  });
});

describeOpsConformance('cpu (wasm-simd)', () => createCpuBackend({ kernels: 'wasm-simd' }));
describeOpsConformance('cpu (scalar)', () => createCpuBackend({ kernels: 'scalar' }));

function store(entries: Record<string, HostTensor<'float32'>>): WeightStore {
  const map = new Map(Object.entries(entries));
  return { get: (name) => map.get(name), has: (name) => map.has(name), names: () => map.keys() };
}

describe('op buffers', () => {
  it('reuses buffers across a long chain of ops (memory stays bounded)', async () => {
    const backend = createCpuBackend();
    const [n, c] = [64, 1024];
    const chain: ProgramDefinition<'x', 'y'> = {
      name: 'chain',
      inputs: { x: { dtype: 'float32', shape: ['n', c] } },
      build(ops, inputs) {
        let x = inputs.x;
        for (let i = 0; i < 200; i++) x = ops.add(ops.silu(x), inputs.x);
        return { y: x };
      },
    };
    const program = await backend.compile(chain, store({}));
    const x = new Float32Array(n * c).map((_, i) => Math.sin(i));
    const before = backend.memoryBytes;
    const { y } = await program.run({ x: { dtype: 'float32', shape: [n, c], data: x } });
    // 400 op outputs of 256 KiB each would need 100 MiB; a handful of buffers suffice.
    expect(backend.memoryBytes - before).toBeLessThan(8 * 1024 * 1024);
    for (let i = 0; i < y.data.length; i += 997) {
      let expected = x[i]!;
      for (let step = 0; step < 200; step++) expected = expected / (1 + Math.exp(-expected)) + x[i]!;
      expect(Math.abs(y.data[i]! - expected)).toBeLessThan(1e-5 * Math.abs(expected) + 1e-5);
    }
    program.dispose();
    backend.dispose();
  });

  it('stays correct when build branches on shapes (the buffer plan is redone)', async () => {
    const backend = createCpuBackend();
    const branchy: ProgramDefinition<'x', 'y'> = {
      name: 'branchy',
      inputs: { x: { dtype: 'float32', shape: ['n', 4] } },
      build(ops, inputs) {
        const a = ops.silu(inputs.x);
        const b = ops.add(a, a);
        const c = ops.mul(b, b);
        // With more than two rows, `a` lives until the end: a different dataflow than with two.
        return { y: Number(inputs.x.shape[0]) > 2 ? ops.add(c, a) : ops.add(c, c) };
      },
    };
    const program = await backend.compile(branchy, store({}));
    const silu = (v: number) => v / (1 + Math.exp(-v));
    for (const n of [2, 3, 2, 5]) {
      const x = new Float32Array(n * 4).map((_, i) => i / 7 - 1);
      const { y } = await program.run({ x: { dtype: 'float32', shape: [n, 4], data: x } });
      x.forEach((v, i) => {
        const a = silu(v);
        const c = (2 * a) ** 2;
        expect(y.data[i]).toBeCloseTo(n > 2 ? c + a : 2 * c, 5);
      });
    }
    program.dispose();
    backend.dispose();
  });
});

// The golden target suite (py-llama-28m against Hugging Face, 1e-3 on logits) on one fixture case,
// to keep this suite quick; it skips itself where the shared model is absent.
describeTargetConformance('cpu (wasm-simd, bf16 weights)', () => createCpuBackend(), { cases: [0] });

describe('bfloat16 weight packing', () => {
  it('gives results bit-identical to float32 weights, on both the direct and the panel path', async () => {
    const [k, m] = [384, 522];
    const w = new Float32Array(m * k).map((_, i) => Math.sin(i * 0.37) * 0.2);
    const bits = new Uint32Array(w.buffer);
    for (let i = 0; i < bits.length; i++) bits[i] = bits[i]! & 0xffff0000;
    const definition: ProgramDefinition<'x', 'y'> = {
      name: 'bf16',
      inputs: { x: { dtype: 'float32', shape: ['n', k] } },
      build: (ops, inputs, context) => ({ y: ops.linear(inputs.x, context.weight('w')) }),
    };
    const packed = createCpuBackend({ bf16Weights: true });
    const plain = createCpuBackend({ bf16Weights: false });
    const weights = store({ w: { dtype: 'float32', shape: [m, k], data: w } });
    const [a, b] = await Promise.all([packed.compile(definition, weights), plain.compile(definition, weights)]);
    for (const n of [1, 2, 3, 4, 5, 8, 19]) {
      const x = new Float32Array(n * k).map((_, i) => Math.cos(i * 0.11));
      const input = { x: { dtype: 'float32' as const, shape: [n, k], data: x } };
      const [ya, yb] = [await a.run(input), await b.run(input)];
      expect(Array.from(ya.y.data), `n=${n}`).toEqual(Array.from(yb.y.data));
    }
    // The packed copy takes two bytes per weight instead of four.
    expect(plain.memoryBytes - packed.memoryBytes).toBeGreaterThan(m * k * 1.5);
    a.dispose();
    b.dispose();
    packed.dispose();
    plain.dispose();
  });
});

describe('helper threads', () => {
  it('split matmuls by columns with results identical to one thread', async () => {
    const threaded = createCpuBackend({ threads: 2 });
    const single = createCpuBackend();
    expect(threaded.threads).toBe(2);
    for (let wait = 0; wait < 250 && !threaded.threadsReady; wait++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(threaded.threadsReady).toBe(true);
    for (const exact of [false, true]) {
      const [k, m] = [96, 203];
      const w = new Float32Array(m * k).map((_, i) => Math.sin(i * 0.7) * 0.3);
      if (exact) {
        const bits = new Uint32Array(w.buffer);
        for (let i = 0; i < bits.length; i++) bits[i] = bits[i]! & 0xffff0000;
      }
      const b = new Float32Array(m).map((_, i) => i / m);
      const weights = store({ w: { dtype: 'float32', shape: [m, k], data: w }, b: { dtype: 'float32', shape: [m], data: b } });
      const definition: ProgramDefinition<'x', 'y'> = {
        name: 'threads',
        inputs: { x: { dtype: 'float32', shape: ['n', k] } },
        build: (ops, inputs, context) => ({ y: ops.linear(inputs.x, context.weight('w'), context.weight('b')) }),
      };
      const [a, c] = await Promise.all([threaded.compile(definition, weights), single.compile(definition, weights)]);
      for (const n of [1, 4, 7, 16, 33]) {
        const x = new Float32Array(n * k).map((_, i) => Math.cos(i * 0.3));
        const input = { x: { dtype: 'float32' as const, shape: [n, k], data: x } };
        expect(Array.from((await a.run(input)).y.data), `n=${n} bf16=${exact}`).toEqual(Array.from((await c.run(input)).y.data));
      }
      a.dispose();
      c.dispose();
    }
    threaded.dispose();
    single.dispose();
  });

  it('rejects a bad thread count', () => {
    expect(() => createCpuBackend({ threads: 0 })).toThrow(/threads must be/);
  });
});
