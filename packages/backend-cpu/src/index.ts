/**
 * @packageDocumentation
 * `@gumiho/backend-cpu`: the Gumiho-TS op set in TypeScript, with WebAssembly SIMD kernels emitted
 * from this package's source (no native code, no build step) and a scalar JavaScript fallback.
 */
export { createCpuBackend } from './cpu-backend.js';
export type { CpuBackend, CpuBackendOptions, CpuKernels } from './cpu-backend.js';
export { wasmSimdAvailable } from './wasm/runtime.js';
export { isExactBf16 } from './wasm/kernel-module.js';
