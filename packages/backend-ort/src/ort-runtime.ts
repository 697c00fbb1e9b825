/**
 * Loading onnxruntime-node (a peer dependency) and choosing an execution provider.
 *
 * Each requested provider is tried in order with a tiny probe session; the first that starts is
 * used. When none starts, one {@link BackendUnavailableError} lists every provider with its
 * reason and how to install what is missing.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BackendUnavailableError, InvalidArgumentError, type BackendAttempt } from '@gumiho/core';
import type * as Ort from 'onnxruntime-node';
import { GraphBuilder } from './onnx-graph.js';

/** The onnxruntime-node module. */
export type OrtModule = typeof Ort;

/** Execution providers this backend knows. */
export type OrtExecutionProvider = 'cpu' | 'cuda' | 'webgpu';

const KNOWN: readonly OrtExecutionProvider[] = ['cpu', 'cuda', 'webgpu'];

/** How to get each provider working, quoted in {@link BackendUnavailableError}. */
export const INSTALL_HINTS: Readonly<Record<OrtExecutionProvider | 'runtime', string>> = {
  runtime: 'install the peer dependency: `pnpm add onnxruntime-node@1.30.0` (its CUDA postinstall may be skipped with ONNXRUNTIME_NODE_INSTALL=skip).',
  cpu: 'the CPU provider ships inside onnxruntime-node; reinstall onnxruntime-node@1.30.0 for this platform.',
  cuda:
    'reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 on a host that can reach NuGet (it downloads the CUDA provider libraries), and put CUDA 12 and cuDNN 9 on the library path (LD_LIBRARY_PATH).',
  webgpu:
    'the WebGPU provider ships inside onnxruntime-node but needs a GPU adapter: on Linux install libvulkan1 and a Vulkan ICD for the GPU (NVIDIA: the driver\'s nvidia_icd.json, e.g. VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json).',
};

let loaded: Promise<OrtModule> | undefined;

/** Imports onnxruntime-node once; throws {@link BackendUnavailableError} when it is not installed. */
export async function loadOrt(): Promise<OrtModule> {
  loaded ??= import('onnxruntime-node').then(
    (module) => ((module as unknown as { default?: OrtModule }).default ?? module) as OrtModule,
    (error: unknown) => {
      loaded = undefined;
      throw new BackendUnavailableError([{ name: 'onnxruntime-node', reason: `cannot be imported (${String(error)})` }], {
        cause: error,
        fix: INSTALL_HINTS.runtime,
      });
    },
  );
  return loaded;
}

/** Checks a provider list: known names, no duplicates, not empty. */
export function checkProviders(providers: readonly string[]): readonly OrtExecutionProvider[] {
  if (providers.length === 0) throw new InvalidArgumentError('executionProviders', 'executionProviders is empty.', { fix: "pass e.g. ['cpu']." });
  for (const provider of providers) {
    if (!KNOWN.includes(provider as OrtExecutionProvider)) {
      throw new InvalidArgumentError('executionProviders', `Unknown execution provider "${provider}".`, { fix: `use one of ${KNOWN.join(', ')}.` });
    }
  }
  if (new Set(providers).size !== providers.length) throw new InvalidArgumentError('executionProviders', `Duplicate execution providers in [${providers.join(', ')}].`);
  return providers as readonly OrtExecutionProvider[];
}

function probeModel(): Uint8Array {
  const graph = new GraphBuilder();
  const x = graph.input('x', 'float32', [1, 4]);
  graph.node('Add', [x, x], ['y']);
  graph.output('y', 'float32', [1, 4]);
  return graph.encode('probe', { '': 17 });
}

/**
 * Where onnxruntime-node keeps its native libraries, or `undefined` when that cannot be told.
 * The CUDA provider is a separate library there (`libonnxruntime_providers_cuda.so`); checking
 * for it first gives a precise reason and spares ONNX Runtime's own load-error log.
 */
function nativeDirectory(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    return join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

function missingCudaLibrary(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const directory = nativeDirectory();
  if (!directory || !existsSync(directory)) return undefined;
  const library = join(directory, 'libonnxruntime_providers_cuda.so');
  return existsSync(library) ? undefined : `the CUDA provider library is not installed (${library} is missing)`;
}

/** The install hint without its final period (reasons are joined with '; '). */
function hint(provider: OrtExecutionProvider): string {
  return INSTALL_HINTS[provider].replace(/\.$/, '');
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, ' ').trim().slice(0, 400);
}

/** Whether one execution provider can be used here, and if not, why and how to fix it. */
export interface OrtProviderStatus {
  readonly provider: OrtExecutionProvider;
  readonly available: boolean;
  /** Why it cannot be used, with the fix; `undefined` when available. */
  readonly reason: string | undefined;
}

/**
 * Tries every known provider (cpu, cuda, webgpu) with a probe session and reports which can be
 * used here, for `--help` texts and diagnostics. Never throws for a missing provider; throws
 * {@link BackendUnavailableError} only when onnxruntime-node itself is missing.
 */
export async function probeOrtProviders(): Promise<readonly OrtProviderStatus[]> {
  const ort = await loadOrt();
  const statuses: OrtProviderStatus[] = [];
  for (const provider of KNOWN) {
    try {
      await selectProvider(ort, [provider], () => ({ executionProviders: [provider], intraOpNumThreads: 1 }));
      statuses.push({ provider, available: true, reason: undefined });
    } catch (error) {
      const reason = error instanceof BackendUnavailableError ? error.attempts[0]?.reason : String(error);
      statuses.push({ provider, available: false, reason });
    }
  }
  return statuses;
}

/**
 * Returns the first provider of `providers` that can create and run a session, or throws one
 * {@link BackendUnavailableError} naming every attempt.
 */
export async function selectProvider(
  ort: OrtModule,
  providers: readonly OrtExecutionProvider[],
  sessionOptions: (provider: OrtExecutionProvider) => Ort.InferenceSession.SessionOptions,
): Promise<OrtExecutionProvider> {
  const attempts: BackendAttempt[] = [];
  const supported = typeof ort.listSupportedBackends === 'function' ? ort.listSupportedBackends() : undefined;
  for (const provider of providers) {
    const entry = supported?.find((backend) => backend.name === provider);
    if (supported && !entry) {
      attempts.push({ name: `ort-${provider}`, reason: `this onnxruntime-node build has no ${provider} provider. To fix: ${hint(provider)}` });
      continue;
    }
    const missing = provider === 'cuda' ? missingCudaLibrary() : undefined;
    if (missing) {
      attempts.push({ name: `ort-${provider}`, reason: `${missing}. To fix: ${hint(provider)}` });
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(probeModel(), { ...sessionOptions(provider), logSeverityLevel: 4 });
      try {
        const x = new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]);
        await session.run({ x });
      } finally {
        await session.release();
      }
      return provider;
    } catch (error) {
      const notBundled = entry && entry.bundled === false ? ' (its libraries are not bundled with onnxruntime-node)' : '';
      attempts.push({ name: `ort-${provider}`, reason: `${message(error)}${notBundled}. To fix: ${hint(provider)}` });
    }
  }
  throw new BackendUnavailableError(attempts, {
    fix: `install one of the providers as described for each, or fall back to executionProviders: ['cpu'] (or the pure-TypeScript cpu backend).`,
  });
}
