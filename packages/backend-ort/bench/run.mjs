// Runs a TypeScript bench script of this package: bundles it with esbuild (workspace packages
// resolved to their sources through the `@gumiho/source` condition) and runs the bundle.
// Usage: node bench/run.mjs bench/forward-cost.ts [args...]
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error('usage: node bench/run.mjs <bench/script.ts> [args...]');
  process.exit(2);
}
const outDir = join(here, '.out');
mkdirSync(outDir, { recursive: true });
const outfile = join(outDir, basename(script).replace(/\.ts$/, '.mjs'));
await build({
  entryPoints: [script],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['@gumiho/source'],
  external: ['onnxruntime-node', 'onnx-proto', '@huggingface/transformers'],
  outfile,
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, [outfile, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
