/**
 * Peer libraries for `gumiho bench --peers`: the same model run by a library a TypeScript user
 * would otherwise reach for, timed on the same prompts and machine.
 *
 * `transformers.js` (`@huggingface/transformers`) loads the model exported by
 * `gumiho export-onnx` (once, cached) and generates with its own loop on onnxruntime-node's CPU
 * provider. It is optional: when the package is not installed the bench says how to add it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { exportDecoderOnnx } from '@gumiho/backend-ort';
import { InvalidArgumentError } from '@gumiho/core';
import type { Contender, RunRecord } from '@gumiho/bench';

/** Peers `--peers` accepts. */
export const PEERS = ['transformers.js'] as const;

interface TransformersModule {
  env: { allowRemoteModels: boolean; localModelPath: string };
  AutoTokenizer: { from_pretrained(name: string, options: object): Promise<(text: string) => { input_ids: { dims: number[] } }> };
  AutoModelForCausalLM: {
    from_pretrained(name: string, options: object): Promise<{ generate(options: object): Promise<{ tolist(): bigint[][] }>; dispose?(): Promise<void> }>;
  };
}

/**
 * The transformers.js contender for the model in `modelFolder`, exported to ONNX under
 * `cacheDir/onnx/<name>` on first use.
 */
export async function transformersJsContender(modelFolder: string, modelName: string, cacheDir: string): Promise<Contender> {
  let transformers: TransformersModule;
  try {
    transformers = (await import('@huggingface/transformers')) as unknown as TransformersModule;
  } catch (error) {
    throw new InvalidArgumentError('peers', 'The transformers.js peer needs the @huggingface/transformers package, which is not installed.', {
      fix: 'run "pnpm --filter @gumiho/cli add -D @huggingface/transformers" (or drop --peers).',
      cause: error,
    });
  }
  const exportDir = join(cacheDir, 'onnx', modelName);
  if (!existsSync(join(exportDir, 'onnx', 'model.onnx'))) await exportDecoderOnnx({ folder: modelFolder, outDir: exportDir });
  transformers.env.allowRemoteModels = false;
  transformers.env.localModelPath = join(cacheDir, 'onnx');
  const tokenizer = await transformers.AutoTokenizer.from_pretrained(modelName, { local_files_only: true });
  const model = await transformers.AutoModelForCausalLM.from_pretrained(modelName, { local_files_only: true, dtype: 'fp32', device: 'cpu' });
  return {
    name: 'transformers.js',
    kind: 'peer',
    async run(prompt, settings): Promise<RunRecord> {
      if (settings.temperature !== 0) {
        throw new InvalidArgumentError('peers', 'The transformers.js peer is benchmarked at temperature 0 only.', { fix: 'drop --peers for sampled runs.' });
      }
      const inputs = tokenizer(prompt);
      const start = performance.now();
      const output = await model.generate({ ...inputs, max_new_tokens: settings.maxNewTokens, do_sample: false });
      const wallMs = performance.now() - start;
      const ids = output.tolist()[0]!.slice(inputs.input_ids.dims[1]).map(Number);
      return {
        tokenIds: Int32Array.from(ids),
        newTokens: ids.length,
        rounds: ids.length,
        wallMs,
        prefillMs: NaN,
        draftMs: 0,
        verifyMs: wallMs,
        acceptanceByDepth: [],
        draftRounds: 0,
      };
    },
  };
}
