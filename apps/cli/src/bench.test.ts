/**
 * `gumiho bench` and `gumiho export-onnx` on a tiny random Llama with the real tokenizer: the
 * table and JSON shapes, the files `--out` writes, the greedy "same tokens as vanilla" check, and
 * bad input.
 */
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomLlama } from '@gumiho/models';
import { MapWeightStore } from '@gumiho/safetensors';
import { beforeAll, describe, expect, it } from 'vitest';
import { bf16ExactBytesPerWeight, llamaWeightBytes } from './bench.js';
import { runCli } from './main.js';

const SHARED = process.env.GUMIHO_SHARED_DIR ?? fileURLToPath(new URL('../../../../shared', import.meta.url));
const REAL_MODEL = join(SHARED, 'models', 'py-llama-28m');

let dir: string;
let tiny: string;

async function run(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (chunk: string) => (stdout += chunk), isTTY: false },
    stderr: { write: (chunk: string) => (stderr += chunk), isTTY: false },
    env: { GUMIHO_MODEL_STORE: join(dir, 'store'), GUMIHO_MODEL_SOURCE: join(dir, 'no-source'), GUMIHO_CACHE_DIR: join(dir, 'cache') },
    cwd: dir,
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gumiho-bench-'));
  tiny = join(dir, 'tiny');
  await writeRandomLlama(tiny, { vocabSize: 8192, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, maxPositions: 256, seed: 3 });
  await copyFile(join(REAL_MODEL, 'tokenizer.json'), join(tiny, 'tokenizer.json'));
  await copyFile(join(REAL_MODEL, 'tokenizer_config.json'), join(tiny, 'tokenizer_config.json'));
  await writeFile(join(dir, 'prompts.jsonl'), '{"prompt": "def add(a, b):\\n    return a"}\n{"text": "import os\\nimport sys\\nfrom"}\n');
});

describe('gumiho bench', () => {
  it('prints a table with vanilla and lookup, checks tokens against vanilla, and writes JSON + SVG', async () => {
    const out = join(dir, 'results', 'bench.json');
    const result = await run(['bench', '--model', tiny, '--prompts', 'prompts.jsonl', '--policies', 'lookup', '--max-new-tokens', '24', '--total-tokens', '5', '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/\| vanilla +\| +[\d.]+ \| +1\.00x \| 1\.00 \|/);
    expect(result.stdout).toMatch(/\| lookup .* yes \|/);
    expect(result.stdout).toMatch(/Weight-bandwidth floor: [\d.]+ MB of weights/);
    expect(result.stderr).toMatch(/bench: 4\/4 runs/);
    const json = JSON.parse(await readFile(out, 'utf8'));
    expect(Object.keys(json)).toEqual(expect.arrayContaining(['machine', 'backend', 'model', 'results']));
    expect(json.backend).toBe('cpu');
    expect(json.results.map((r: { policy: string }) => r.policy)).toEqual(['vanilla', 'lookup']);
    for (const key of ['policy', 'tokensPerSecond', 'speedup', 'meanAcceptedLength', 'acceptanceByDepth', 'draftMsPerRound', 'verifyMsPerRound']) {
      expect(json.results[1]).toHaveProperty(key);
    }
    expect(json.results[1].matchesVanilla).toBe(true);
    expect(existsSync(join(dir, 'results', 'bench.svg'))).toBe(true);
  });

  it('--json prints the JSON document', async () => {
    const result = await run(['bench', '--model', tiny, '--prompts', 'prompts.jsonl', '--limit', '1', '--policies', 'vanilla', '--max-new-tokens', '8', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(json.results).toHaveLength(1);
    expect(json.results[0].speedup).toBe(1);
  });

  it('names bad input and the fix (exit 2)', async () => {
    for (const [args, pattern] of [
      [['bench', '--policies', 'nope'], /Unknown policy "nope"/],
      [['bench', '--model', tiny, '--prompts', 'missing.json'], /Cannot read the prompts file/],
      [['bench', '--repeats', '0'], /--repeats must be an integer >= 1/],
      [['bench', '--temperature', 'hot'], /--temperature must be a number >= 0/],
      [['bench', '--fta', 'sometimes'], /--fta must be off, exact or official/],
      [['bench', '--bogus'], /Unknown option '--bogus'/],
      [['bench', '--model', tiny, '--prompts', 'prompts.jsonl', '--policies', 'gumiho', '--heads-dir', join(dir, 'no-heads')], /Cannot read|not found|No such|needs trained|does not exist/i],
    ] as const) {
      const result = await run([...args]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr).toContain('Fix:');
    }
  });
});

describe('gumiho export-onnx', () => {
  it('writes a decoder ONNX model with its config and tokenizer', async () => {
    const out = join(dir, 'onnx-export');
    const result = await run(['export-onnx', '--model', tiny, '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(out, 'onnx', 'model.onnx'))).toBe(true);
    expect(existsSync(join(out, 'config.json'))).toBe(true);
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(true);
  });

  it('requires --out', async () => {
    const result = await run(['export-onnx', '--model', tiny]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/No output folder was given\. Fix: pass --out <dir>\./);
  });
});

describe('llamaWeightBytes', () => {
  it('counts the default model at 113.3 MB of float32 (28.3 M parameters, tied embeddings)', () => {
    const bytes = llamaWeightBytes({
      modelType: 'llama', vocabSize: 8192, hiddenSize: 384, intermediateSize: 1024, numLayers: 16, numHeads: 6, numKvHeads: 2,
      headDim: 64, rmsNormEps: 1e-5, ropeTheta: 1e4, maxPositions: 2048, tieWordEmbeddings: true, bosTokenId: 0, eosTokenIds: [0],
    });
    expect(bytes / 4).toBe(28_324_224);
  });

  it('counts bfloat16 copies at 2 bytes, and tells bf16-exact weights from float32 ones', () => {
    const config = {
      modelType: 'llama', vocabSize: 8192, hiddenSize: 384, intermediateSize: 1024, numLayers: 16, numHeads: 6, numKvHeads: 2,
      headDim: 64, rmsNormEps: 1e-5, ropeTheta: 1e4, maxPositions: 2048, tieWordEmbeddings: true, bosTokenId: 0, eosTokenIds: [0],
    };
    expect(llamaWeightBytes(config, 2)).toBe(28_324_224 * 2);
    const bf16 = new MapWeightStore();
    bf16.set('w', { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, -0.5, 3.25, 0) });
    bf16.set('norm', { dtype: 'float32', shape: [2], data: Float32Array.of(0.1, 0.2) }); // vectors are not counted
    expect(bf16ExactBytesPerWeight(bf16)).toBe(2);
    bf16.set('w2', { dtype: 'float32', shape: [1, 2], data: Float32Array.of(1, 0.1) });
    expect(bf16ExactBytesPerWeight(bf16)).toBe(4);
  });
});
