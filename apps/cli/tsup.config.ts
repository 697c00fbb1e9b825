import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { cli: 'src/cli.ts', index: 'src/index.ts' },
  format: ['esm'],
  dts: { entry: { index: 'src/index.ts' }, compilerOptions: { customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  // An optional peer for `gumiho bench --peers transformers.js`, loaded only when asked for.
  external: ['@huggingface/transformers'],
  // Workspace packages stay external: they resolve to their built `dist` through pnpm's links,
  // each with its own dependencies (native ones such as onnxruntime-node included).
});
