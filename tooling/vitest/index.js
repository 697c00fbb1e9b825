// Shared vitest preset: resolve workspace packages to their TypeScript sources through the
// `@gumiho/source` export condition, run every file in a forked process (onnxruntime-node and
// worker threads are not safe under vm or thread pools), and keep a generous timeout for
// model-level tests on a 2-core machine.
import { defineConfig } from 'vitest/config';

/** @param {import('vitest/config').UserConfig['test']} [test] */
export function createVitestConfig(test = {}) {
  return defineConfig({
    resolve: { conditions: ['@gumiho/source'] },
    ssr: { resolve: { conditions: ['@gumiho/source'] } },
    test: {
      pool: 'forks',
      testTimeout: 120_000,
      hookTimeout: 120_000,
      ...test,
    },
  });
}
