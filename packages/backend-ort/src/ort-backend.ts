/**
 * The ONNX Runtime tensor backend: `compile` traces a program once into an ONNX graph (see
 * tracer.ts), and each `run` is one `session.run` of that graph on onnxruntime-node.
 *
 * KV caches are core's {@link HostKvCache}. A run feeds each bound layer's existing rows as a
 * zero-copy `ort.Tensor` over `keys(layer).subarray(0, used * rowSize)`; the graph returns only
 * the new rows, stacked over layers (`[layers, rows, rowSize]` per cache for keys and values),
 * which are copied into each layer after its used rows. The existing rows are never copied.
 *
 * Weights become float32 initializers. Their bytes reach ONNX Runtime as in-memory external
 * data (views of the weight store's arrays, never copied in JavaScript); ONNX Runtime copies
 * and pre-packs them into its own memory while the session is created, after which this
 * backend keeps no reference to them. See docs/parts/backend-ort.md.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DTypeError,
  GumihoError,
  HostKvCache,
  InvalidArgumentError,
  ShapeMismatchError,
  type HostTensor,
  type KvCache,
  type KvCacheSpec,
  type Program,
  type ProgramDefinition,
  type TensorBackend,
  type WeightStore,
} from '@gumiho/core';
import type * as Ort from 'onnxruntime-node';
import { MS_DOMAIN } from './onnx-graph.js';
import { checkProviders, loadOrt, selectProvider, type OrtExecutionProvider, type OrtModule } from './ort-runtime.js';
import { elideOutputIdentities, fuseSkipNorm, mergeSlices, splitLinearsByRows } from './rewrite.js';
import { traceProgram, type CacheBinding, type TraceResult } from './tracer.js';

/** Options of {@link createOrtBackend}. */
export interface OrtBackendOptions {
  /**
   * Execution providers in order of preference; the first that starts is used. Default `['cpu']`.
   * `cuda` needs the CUDA provider libraries (not bundled); `webgpu` needs a GPU adapter (Vulkan on Linux).
   */
  readonly executionProviders?: readonly OrtExecutionProvider[];
  /** Intra-op threads (`intraOpNumThreads`). Default 2. */
  readonly threads?: number;
  /**
   * Let ONNX Runtime's worker threads spin while waiting for work (`session.intra_op.allow_spinning`).
   * Default `false`: every compiled program has its own thread pool, and between runs the
   * JavaScript thread builds trees and samples; spinning pools then steal those cores (see
   * docs/parts/backend-ort.md for measurements). Turn it on for one program on otherwise idle cores.
   */
  readonly spinning?: boolean;
  /** ONNX Runtime graph optimisation level. Default `'all'`. */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA device id. Default 0. */
  readonly deviceId?: number;
  /** ONNX Runtime's log level: 0 verbose … 4 fatal. Default 3 (errors only). */
  readonly logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Extra onnxruntime-node session options merged over this backend's (e.g. `enableProfiling`,
   * `profileFilePrefix`, `optimizedModelFilePath`). For experiments and debugging.
   */
  readonly sessionOptions?: Readonly<Record<string, unknown>>;
  /**
   * Weights of programs with `precision: 'draft'` (draft heads): `float32` (default, exact) or
   * `int8` (per-channel symmetric int8 weights through `DynamicQuantizeMatMul`: about 4x fewer
   * bytes read per draft step on memory-bound CPUs). Drafts only propose tokens; the target still
   * verifies every one, so the decoded output is unchanged either way.
   */
  readonly draftWeights?: 'float32' | 'int8';
  /** Debugging: write each compiled graph (without weights) as `<dir>/<program>.onnx`. */
  readonly dumpGraphsTo?: string;
}

/** Statistics of one compiled program, for reports and tests. */
export interface OrtProgramInfo {
  /** Nodes in the traced graph after this backend's rewrites (before ONNX Runtime's optimiser). */
  readonly nodes: number;
  /** Number of `add → rmsNorm` pairs fused, and slice groups merged into `Split`s. */
  readonly fusedSkipNorms: number;
  readonly mergedSlices: number;
  /** Fused projections followed by a `Split` that became one matmul per segment. */
  readonly splitLinears: number;
  /** Bytes of weight data handed to ONNX Runtime. */
  readonly weightBytes: number;
}

/** A {@link TensorBackend} that runs on ONNX Runtime, with its chosen provider. */
export interface OrtBackend extends TensorBackend {
  /** `ort-cpu`, `ort-cuda` or `ort-webgpu`. */
  readonly id: `ort-${OrtExecutionProvider}`;
  /** The execution provider in use. */
  readonly executionProvider: OrtExecutionProvider;
  compile<I extends string, O extends string>(definition: ProgramDefinition<I, O>, weights: WeightStore): Promise<OrtProgram<I, O>>;
}

/** A compiled program of the ort backend. */
export interface OrtProgram<I extends string = string, O extends string = string> extends Program<I, O> {
  readonly info: OrtProgramInfo;
}

const OPSETS = { '': 23, [MS_DOMAIN]: 1 };
/** IR version 10 is the one that goes with opset 23's Attention/RotaryEmbedding. */
const IR_VERSION = 10;

function resolve(dim: number | string, dims: ReadonlyMap<string, number>): number | undefined {
  return typeof dim === 'number' ? dim : dims.get(dim);
}

class OrtProgramImpl<I extends string, O extends string> implements OrtProgram<I, O> {
  private session: Ort.InferenceSession | undefined;
  private readonly cacheNames: readonly string[];

  constructor(
    readonly definition: ProgramDefinition<I, O>,
    private readonly ort: OrtModule,
    session: Ort.InferenceSession,
    private readonly trace: Omit<TraceResult, 'graph'>,
    readonly info: OrtProgramInfo,
  ) {
    this.session = session;
    this.cacheNames = [...trace.pastSymbols.keys()];
  }

  async run(inputs: Readonly<Record<I, HostTensor>>, caches: Readonly<Record<string, KvCache>> = {}): Promise<Record<O, HostTensor<'float32'>>> {
    const session = this.session;
    if (!session) throw new GumihoError(`Program "${this.definition.name}" was disposed.`, { fix: 'compile it again.' });
    const ort = this.ort;
    const dims = new Map<string, number>();
    const feeds: Record<string, Ort.Tensor> = {};
    for (const spec of this.trace.inputs) {
      const tensor = (inputs as Readonly<Record<string, HostTensor | undefined>>)[spec.name];
      if (!tensor) throw new InvalidArgumentError(spec.name, `Program input "${spec.name}" is missing.`);
      if (tensor.dtype !== spec.dtype) throw new DTypeError(`input "${spec.name}"`, spec.dtype, tensor.dtype);
      if (tensor.shape.length !== spec.shape.length) throw new ShapeMismatchError(`input "${spec.name}"`, spec.shape, tensor.shape);
      let size = 1;
      spec.shape.forEach((dim, axis) => {
        const actual = tensor.shape[axis]!;
        const expected = typeof dim === 'number' ? dim : dims.get(dim);
        if (expected !== undefined && expected !== actual) throw new ShapeMismatchError(`input "${spec.name}"`, spec.shape, tensor.shape);
        if (typeof dim === 'string') dims.set(dim, actual);
        size *= actual;
      });
      if (tensor.data.length !== size) throw new ShapeMismatchError(`input "${spec.name}" data length`, [size], [tensor.data.length]);
      const limit = this.trace.idInputs.get(spec.name);
      if (limit !== undefined) {
        for (const id of tensor.data) {
          if (id < 0 || id >= limit) throw new InvalidArgumentError('ids', `Token id ${id} is outside the embedding table (0..${limit - 1}).`);
        }
      }
      const shape = spec.dtype === 'float32' ? [1, ...tensor.shape] : [...tensor.shape];
      feeds[spec.name] = new ort.Tensor(spec.dtype, tensor.data, shape);
    }

    // Bind the caches: existing rows in, as zero-copy views.
    const bound = new Map<string, { cache: HostKvCache; used: number }>();
    for (const name of this.cacheNames) {
      const cache = caches[name];
      if (!cache) {
        throw new InvalidArgumentError('caches', `Program "${this.definition.name}" attends over KV cache "${name}", but no such cache was passed to run().`);
      }
      if (!(cache instanceof HostKvCache)) throw new InvalidArgumentError('caches', `KV cache "${name}" was not created by the ort backend (createKvCache).`);
      bound.set(name, { cache, used: cache.used });
    }
    for (const binding of this.trace.caches) {
      const { cache, used } = bound.get(binding.cache)!;
      this.checkCache(binding, cache);
      const rows = resolve(binding.rows, dims);
      // Checked before the run where the row count is known from the inputs (and after it otherwise).
      if (rows !== undefined) cache.ensureRoom(rows);
      const size = binding.rowSize;
      feeds[binding.pastKey] = new ort.Tensor('float32', cache.keys(binding.layer).subarray(0, used * size), [1, used, size]);
      feeds[binding.pastValue] = new ort.Tensor('float32', cache.values(binding.layer).subarray(0, used * size), [1, used, size]);
      if (binding.maskInput !== undefined) {
        const mask = (inputs as Readonly<Record<string, HostTensor | undefined>>)[binding.maskInput]!;
        const n = rows ?? mask.shape[0]!;
        if (mask.shape[0] !== n || mask.shape[1] !== used + n) {
          throw new ShapeMismatchError(`attention mask "${binding.maskInput}" (rows × (cached rows ${used} + rows))`, [n, used + n], mask.shape);
        }
      }
    }

    let results: Ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (error) {
      throw new GumihoError(`ONNX Runtime failed to run program "${this.definition.name}": ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }

    // The new rows: one [layers, rows, rowSize] tensor per cache for keys and one for values,
    // copied into each layer after its used rows. All caches are checked before any is written.
    for (const output of this.trace.cacheOutputs) bound.get(output.cache)!.cache.ensureRoom(results[output.keys]!.dims[1]!);
    for (const output of this.trace.cacheOutputs) {
      const { cache, used } = bound.get(output.cache)!;
      const newKeys = results[output.keys]!;
      const rows = newKeys.dims[1]!;
      const block = rows * output.rowSize;
      const keyData = newKeys.data as Float32Array;
      const valueData = results[output.values]!.data as Float32Array;
      output.layers.forEach((layer, slot) => {
        cache.keys(layer).set(keyData.subarray(slot * block, (slot + 1) * block), used * output.rowSize);
        cache.values(layer).set(valueData.subarray(slot * block, (slot + 1) * block), used * output.rowSize);
      });
      cache.appendPending(rows);
    }
    const out = {} as Record<O, HostTensor<'float32'>>;
    for (const output of this.trace.outputs) {
      const tensor = results[output.value]!;
      out[output.name as O] = { dtype: 'float32', shape: tensor.dims.slice(1), data: tensor.data as Float32Array };
    }
    return out;
  }

  private checkCache(binding: CacheBinding, cache: HostKvCache): void {
    if (cache.rowSize !== binding.rowSize) throw new ShapeMismatchError(`KV cache "${binding.cache}" row size`, [binding.rowSize], [cache.rowSize]);
    if (binding.layer >= cache.spec.layers) {
      throw new InvalidArgumentError('caches', `KV cache "${binding.cache}" has ${cache.spec.layers} layers; the program uses layer ${binding.layer}.`);
    }
  }

  dispose(): void {
    const session = this.session;
    this.session = undefined;
    // Releasing twice or after a failed run must not become an unhandled rejection.
    session?.release().catch(() => undefined);
  }
}

function sessionOptions(options: OrtBackendOptions, provider: OrtExecutionProvider): Ort.InferenceSession.SessionOptions {
  const threads = options.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 1) throw new InvalidArgumentError('threads', `threads must be a positive integer, got ${threads}.`);
  const executionProvider: Ort.InferenceSession.ExecutionProviderConfig =
    provider === 'cuda' ? { name: 'cuda', deviceId: options.deviceId ?? 0 } : provider;
  return {
    executionProviders: [executionProvider],
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: options.logSeverityLevel ?? 3,
    extra: { session: { intra_op: { allow_spinning: options.spinning === true ? '1' : '0' } } },
    ...(options.sessionOptions ?? {}),
  } as Ort.InferenceSession.SessionOptions;
}

/**
 * Creates the ONNX Runtime backend. Tries `executionProviders` in order and uses the first that
 * starts; `id` is then `ort-cpu`, `ort-cuda` or `ort-webgpu`.
 *
 * @throws BackendUnavailableError when onnxruntime-node is missing or no provider starts; it lists
 *   every provider tried, why it failed and how to install it.
 */
export async function createOrtBackend(options: OrtBackendOptions = {}): Promise<OrtBackend> {
  const providers = checkProviders(options.executionProviders ?? ['cpu']);
  sessionOptions(options, 'cpu'); // validates the options before anything is loaded
  const ort = await loadOrt();
  const provider = await selectProvider(ort, providers, (candidate) => sessionOptions(options, candidate));
  const programs = new Set<OrtProgramImpl<string, string>>();
  const backend: OrtBackend = {
    specificationVersion: 'v1',
    id: `ort-${provider}`,
    executionProvider: provider,
    capabilities: { precision: 'float32', traced: true, copiesWeights: true },
    async compile<I extends string, O extends string>(definition: ProgramDefinition<I, O>, weights: WeightStore): Promise<OrtProgram<I, O>> {
      const quantizeLinears = definition.precision === 'draft' && (options.draftWeights ?? 'float32') === 'int8';
      const { graph, ...trace } = traceProgram(definition as unknown as ProgramDefinition, weights, { quantizeLinears });
      const outputValues = new Set(trace.outputs.map((output) => output.value));
      const fusedSkipNorms = fuseSkipNorm(graph, trace.adds, outputValues);
      const mergedSlices = mergeSlices(graph, trace.slices);
      const splitLinears = splitLinearsByRows(graph);
      elideOutputIdentities(graph);
      const model = graph.encode(definition.name, OPSETS, IR_VERSION);
      if (options.dumpGraphsTo) await writeFile(join(options.dumpGraphsTo, `${definition.name}.onnx`), model);
      const external = graph.externalData();
      const info: OrtProgramInfo = {
        nodes: graph.nodeCount,
        fusedSkipNorms,
        mergedSlices,
        splitLinears,
        weightBytes: external.reduce((sum, blob) => sum + blob.data.byteLength, 0),
      };
      let session: Ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(model, {
          ...sessionOptions(options, provider),
          externalData: external.map((blob) => ({ path: blob.path, data: blob.data })),
        } as Ort.InferenceSession.SessionOptions);
      } catch (error) {
        throw new GumihoError(
          `ONNX Runtime (${provider}) could not load the graph of program "${definition.name}": ${error instanceof Error ? error.message : String(error)}`,
          { cause: error, fix: 'this is a bug in the ort backend\'s lowering or an op the provider lacks; run the program on the cpu backend meanwhile.' },
        );
      }
      const program = new OrtProgramImpl(definition, ort, session, trace, info);
      programs.add(program as unknown as OrtProgramImpl<string, string>);
      return program;
    },
    createKvCache(spec: KvCacheSpec): KvCache {
      return new HostKvCache(spec);
    },
    dispose() {
      for (const program of programs) program.dispose();
      programs.clear();
    },
  };
  return backend;
}
