/**
 * @packageDocumentation
 * `@gumiho/backend-cpu`: the Gumiho-TS op set in pure TypeScript on typed arrays.
 */
export { createCpuBackend } from './cpu-backend.js';
export type { CpuBackendOptions } from './cpu-backend.js';
