// Runs one TypeScript bench program of this package: bundles it with esbuild, resolving workspace
// packages to their sources (the `@gumiho/source` export condition), then runs the bundle with the
// remaining arguments. Usage: node bench/run.mjs bench/<program>.ts [args...]
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node bench/run.mjs bench/<program>.ts [args...]');
  process.exit(2);
}
const outDir = join(here, '.out');
mkdirSync(outDir, { recursive: true });
const outfile = join(outDir, basename(entry).replace(/\.ts$/, '.mjs'));
await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['@gumiho/source'],
  outfile,
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, [outfile, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
