/**
 * `gumiho export-onnx`: writes the target as a standard decoder ONNX model (`input_ids`,
 * `attention_mask`, `position_ids`, `past_key_values.{i}.key/value` in, `logits` and
 * `present.{i}.key/value` out), with its config and tokenizer files, loadable by transformers.js
 * and by any ONNX Runtime decoder loop.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exportDecoderOnnx } from '@gumiho/backend-ort';
import { InvalidArgumentError } from '@gumiho/core';
import { DEFAULT_MODEL, createProgressBar, resolveModel } from '@gumiho/models';
import type { CliIo } from './main.js';

export const EXPORT_HELP = `Usage: gumiho export-onnx [options]

Writes the target as a standard decoder ONNX model (transformers.js layout: onnx/model.onnx with
past_key_values inputs and present outputs, plus config.json and the tokenizer files).

  --model <name|path>   default ${DEFAULT_MODEL}
  --out <dir>           output folder (required); created if missing
  -h, --help            this help
`;

/** Parsed `gumiho export-onnx` options. */
export interface ExportCommand {
  readonly model: string;
  readonly out: string;
}

/** Parses the arguments of `gumiho export-onnx`. */
export function parseExportArgs(args: readonly string[], cwd: string): ExportCommand | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { model: { type: 'string' }, out: { type: 'string' }, verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new InvalidArgumentError('arguments', `${(error as Error).message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')}.`, {
      fix: 'run "gumiho export-onnx --help" for the accepted options.',
      cause: error,
    });
  }
  if (values.help) return 'help';
  if (values.out === undefined) throw new InvalidArgumentError('out', 'No output folder was given.', { fix: 'pass --out <dir>.' });
  return { model: values.model ?? DEFAULT_MODEL, out: resolve(cwd, values.out) };
}

/** Runs `gumiho export-onnx`. */
export async function runExport(command: ExportCommand, io: CliIo, root: string): Promise<void> {
  const folder = await resolveModel(command.model, { root, env: io.env, onProgress: createProgressBar(io.stderr as NodeJS.WriteStream) });
  const result = await exportDecoderOnnx({ folder: resolve(io.cwd, folder), outDir: command.out });
  io.stdout.write(`Wrote ${result.files.length} files to ${command.out} (model: ${result.modelPath}).\n`);
}
