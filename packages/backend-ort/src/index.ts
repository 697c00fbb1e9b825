/**
 * @packageDocumentation
 * `@gumiho/backend-ort`: the Gumiho-TS op set on ONNX Runtime. Programs are traced once into
 * ONNX graphs (built in TypeScript, no Python) and run by onnxruntime-node on its CPU, CUDA or
 * WebGPU execution provider; KV caches stay in host memory and are bound without copies. Also
 * exports a Llama target as a standard decoder ONNX model (transformers.js layout).
 */
export { createOrtBackend } from './ort-backend.js';
export type { OrtBackend, OrtBackendOptions, OrtProgram, OrtProgramInfo } from './ort-backend.js';
export { INSTALL_HINTS, probeOrtProviders } from './ort-runtime.js';
export type { OrtExecutionProvider, OrtProviderStatus } from './ort-runtime.js';
export { exportDecoderOnnx } from './export-decoder.js';
export type { ExportDecoderOptions, ExportDecoderResult } from './export-decoder.js';
