/**
 * `--backend` names mapped to backend factories. The app is the only place where strings select
 * parts; libraries take the parts themselves.
 */
import { createCpuBackend } from '@gumiho/backend-cpu';
import { createOrtBackend } from '@gumiho/backend-ort';
import { InvalidArgumentError, type TensorBackend } from '@gumiho/core';

/** Creates a backend; may fail with a BackendUnavailableError naming what is missing. */
export type BackendFactory = () => TensorBackend | Promise<TensorBackend>;

/** The backends `--backend` accepts, by name. */
export const BACKENDS: ReadonlyMap<string, BackendFactory> = new Map<string, BackendFactory>([
  ['cpu', () => createCpuBackend()],
  // ONNX Runtime through onnxruntime-node; each name pins one execution provider, `ort` takes the
  // first that starts of CUDA, WebGPU and CPU. Draft heads run with int8 weights there (drafts are
  // only proposals; the target verifies them in float32, so the output is unchanged).
  ['ort-cpu', () => createOrtBackend({ executionProviders: ['cpu'], draftWeights: 'int8' })],
  ['ort-cuda', () => createOrtBackend({ executionProviders: ['cuda'], draftWeights: 'int8' })],
  ['ort-webgpu', () => createOrtBackend({ executionProviders: ['webgpu'], draftWeights: 'int8' })],
  ['ort', () => createOrtBackend({ executionProviders: ['cuda', 'webgpu', 'cpu'], draftWeights: 'int8' })],
]);

/** The default `--backend`. */
export const DEFAULT_BACKEND = 'cpu';

/**
 * Creates the backend called `name`.
 *
 * @throws InvalidArgumentError for an unknown name, listing the known ones.
 */
export async function createBackend(name: string, backends: ReadonlyMap<string, BackendFactory> = BACKENDS): Promise<TensorBackend> {
  return backendFactory(name, backends)();
}

/**
 * The factory of the backend called `name`, without creating it.
 *
 * @throws InvalidArgumentError for an unknown name, listing the known ones.
 */
export function backendFactory(name: string, backends: ReadonlyMap<string, BackendFactory> = BACKENDS): BackendFactory {
  const factory = backends.get(name);
  if (!factory) {
    throw new InvalidArgumentError('backend', `Unknown backend "${name}"; available backends: ${[...backends.keys()].join(', ')}.`, {
      fix: `pass one of them, e.g. --backend ${DEFAULT_BACKEND}.`,
    });
  }
  return factory;
}
