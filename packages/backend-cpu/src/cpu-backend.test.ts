import { describeOpsConformance } from '@gumiho/conformance';
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from './cpu-backend.js';
import { wasmSimdAvailable } from './wasm/runtime.js';

describe('createCpuBackend', () => {
  it('uses the WebAssembly SIMD kernels on Node 20', () => {
    expect(wasmSimdAvailable()).toBe(true);
    const backend = createCpuBackend();
    expect(backend.kernels).toBe('wasm-simd');
    expect(backend.capabilities).toEqual({ precision: 'float32', traced: false });
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
