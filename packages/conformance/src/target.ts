/**
 * The golden target suite: runs the Llama target (`@gumiho/models`) on a backend and checks it
 * against the reference outputs of Hugging Face transformers in
 * `shared/fixtures/py-llama-28m.golden.json` (logits, hidden states, top-10 at every prompt
 * position, 64 greedy tokens), plus the tree-attention and KV-compaction behaviour that
 * speculative decoding relies on. Every backend runs the same suite:
 *
 * ```ts
 * describeTargetConformance('cpu', () => createCpuBackend());
 * ```
 *
 * Not a speed test: it measures nothing.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { argmax, createSpeculativeDecoder, type TargetModel, type TensorBackend } from '@gumiho/core';
import { createLlamaTarget, loadModelFolder, type LlamaTarget, type LoadedModel } from '@gumiho/models';
import { createSampler } from '@gumiho/samplers';
import { createVerifier } from '@gumiho/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** One case of the golden fixture (fields as written by the Python script). */
export interface GoldenCase {
  readonly prompt: string;
  readonly ids: readonly number[];
  readonly last_hidden: readonly number[];
  readonly last_logits: readonly number[];
  readonly top10_ids: readonly (readonly number[])[];
  readonly top10_logits: readonly (readonly number[])[];
  readonly greedy64: readonly number[];
  readonly greedy64_text: string;
}

/** The golden fixture file. */
export interface GoldenFixture {
  readonly model: string;
  readonly cases: readonly GoldenCase[];
}

/** Options of {@link describeTargetConformance}. */
export interface TargetConformanceOptions {
  /** The model folder (default: `$GUMIHO_SHARED_DIR/models/py-llama-28m`, else `<repo>/../shared/...`). */
  readonly modelFolder?: string;
  /** The fixture file (default: `<shared>/fixtures/py-llama-28m.golden.json`). */
  readonly fixture?: string;
  /** Absolute tolerance of logits and hidden states (default 1e-3 at float32 precision, 5e-2 at float16). */
  readonly tolerance?: number;
  /** Which fixture cases to run (default all). */
  readonly cases?: readonly number[];
  /** Skip the whole suite, e.g. when the backend is not available here (give the reason). */
  readonly skip?: string | false;
}

/** The shared folder: `$GUMIHO_SHARED_DIR`, else `../shared` beside the repository root. */
export function sharedDir(): string {
  return process.env.GUMIHO_SHARED_DIR ?? fileURLToPath(new URL('../../../../shared', import.meta.url));
}

/** Reads the golden fixture. */
export function readGoldenFixture(path = `${sharedDir()}/fixtures/py-llama-28m.golden.json`): GoldenFixture {
  return JSON.parse(readFileSync(path, 'utf8')) as GoldenFixture;
}

function maxAbsDiff(actual: Float32Array, expected: readonly number[], offset = 0): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[offset + i]! - expected[i]!));
  return worst;
}

function range(start: number, count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => start + i);
}

/** Runs `ids` causally at positions `start..` and returns the result; rows stay pending. */
async function causal(target: TargetModel, ids: ArrayLike<number>, start: number, logitRows?: Int32Array) {
  return target.forward({ tokenIds: Int32Array.from(ids), positions: range(start, ids.length), logitRows });
}

/**
 * Registers the golden target suite for the backend made by `createBackend`.
 * The model is loaded once per suite; each test resets the target's cache.
 */
export function describeTargetConformance(
  name: string,
  createBackend: () => TensorBackend | Promise<TensorBackend>,
  options: TargetConformanceOptions = {},
): void {
  const modelFolder = options.modelFolder ?? `${sharedDir()}/models/py-llama-28m`;
  const fixturePath = options.fixture ?? `${sharedDir()}/fixtures/py-llama-28m.golden.json`;
  const present = existsSync(modelFolder) && existsSync(fixturePath);
  const skip = options.skip || (!present ? `model or fixture not found (${modelFolder}, ${fixturePath})` : false);

  describe.skipIf(Boolean(skip))(`target conformance: py-llama-28m on ${name}`, () => {
    let backend: TensorBackend;
    let model: LoadedModel;
    let target: LlamaTarget;
    let tolerance: number;
    const fixture = present ? readGoldenFixture(fixturePath) : { model: '', cases: [] };
    const cases = (options.cases ?? fixture.cases.map((_, index) => index)).map((index) => ({ index, label: String(index), golden: fixture.cases[index]! }));
    /** The selected case with the longest prompt (the tree tests need at least 16 prompt tokens). */
    const longest = (): GoldenCase => cases.reduce((best, { golden }) => (golden.ids.length > best.ids.length ? golden : best), cases[0]!.golden);
    const maxLength = Math.max(0, ...cases.map(({ golden }) => golden.ids.length + golden.greedy64.length));

    beforeAll(async () => {
      backend = await createBackend();
      tolerance = options.tolerance ?? (backend.capabilities.precision === 'float32' ? 1e-3 : 5e-2);
      model = await loadModelFolder(modelFolder);
      target = await createLlamaTarget({ backend, model, maxContext: Math.max(maxLength + 8, 64) });
    });
    afterAll(() => {
      target?.dispose();
      backend?.dispose();
    });

    for (const { label, golden } of cases) {
      it(`case ${label}: the tokenizer reproduces the prompt ids`, () => {
        expect(Array.from(model.tokenizer!.encode(golden.prompt))).toEqual(golden.ids);
      });
    }

    for (const { label, golden } of cases) {
      it(`case ${label}: prompt logits, hidden state and top-10 at every position`, async () => {
        target.cache.reset();
        const n = golden.ids.length;
        const result = await causal(target, golden.ids, 0, range(0, n));
        const vocab = target.config.vocabSize;
        const hidden = target.config.hiddenSize;
        expect(result.logits.length).toBe(n * vocab);
        expect(result.hidden.length).toBe(n * hidden);
        expect(maxAbsDiff(result.logits, golden.last_logits, (n - 1) * vocab)).toBeLessThan(tolerance);
        expect(maxAbsDiff(result.hidden, golden.last_hidden, (n - 1) * hidden)).toBeLessThan(tolerance);
        for (let position = 0; position < n; position++) {
          const ids = golden.top10_ids[position]!;
          const values = golden.top10_logits[position]!;
          const offset = position * vocab;
          for (let k = 0; k < ids.length; k++) {
            expect(Math.abs(result.logits[offset + ids[k]!]! - values[k]!), `position ${position}, token ${ids[k]}`).toBeLessThan(tolerance);
          }
          // The argmax must agree unless the reference itself has a near-tie at the top.
          if (values[0]! - values[1]! > 2 * tolerance) expect(argmax(result.logits, offset, vocab)).toBe(ids[0]);
        }
        target.cache.rollback();
      });
    }

    for (const { label, golden } of cases) {
      it(`case ${label}: the greedy continuation is the argmax at every position (one teacher-forced forward)`, async () => {
        target.cache.reset();
        const sequence = [...golden.ids, ...golden.greedy64];
        const n = golden.ids.length;
        const rows = range(n - 1, golden.greedy64.length);
        const result = await causal(target, sequence, 0, rows);
        const vocab = target.config.vocabSize;
        const predicted = Array.from(rows, (_, i) => argmax(result.logits, i * vocab, vocab));
        expect(predicted).toEqual(golden.greedy64);
        target.cache.rollback();
      });
    }

    for (const { label, golden } of cases) {
      it(`case ${label}: greedy64 through the decoding loop (vanilla)`, async () => {
        const decoder = createSpeculativeDecoder({
          target,
          tokenizer: model.tokenizer,
          verifier: createVerifier(),
          sampler: createSampler({ temperature: 0 }),
        });
        const result = await decoder.generate({ prompt: golden.prompt, maxNewTokens: golden.greedy64.length });
        expect(Array.from(result.tokenIds)).toEqual(golden.greedy64);
        expect(result.text).toBe(golden.greedy64_text);
        expect(result.stats.rounds).toBe(golden.greedy64.length);
      });
    }

    it('a tree forward equals causal forwards of each branch, and compaction keeps the right rows', async () => {
      const golden = longest();
      const prompt = golden.ids.slice(0, 12);
      const vocab = target.config.vocabSize;
      // Tree: root r, children a and b of r, child c of a.  Nodes in order: r, a, b, c.
      const [r, a, b, c] = [golden.ids[12]!, golden.ids[13]!, 500, golden.ids[14]!];
      const parents = [-1, 0, 0, 1];
      const depths = [0, 1, 1, 2];
      const tokens = Int32Array.of(r, a, b, c);
      const mask = new Uint8Array(16);
      for (let node = 0; node < 4; node++) for (let up = node; up >= 0; up = parents[up]!) mask[node * 4 + up] = 1;

      target.cache.reset();
      await causal(target, prompt, 0);
      target.cache.commit();
      const base = target.cache.length;
      const tree = await target.forward({
        tokenIds: tokens,
        positions: Int32Array.from(depths, (depth) => base + depth),
        treeMask: mask,
        logitRows: range(0, 4),
      });
      expect(target.cache.pending).toBe(4);

      // Reference: each root-to-leaf path run causally from a fresh prefill.
      const paths = [[r, a, c], [r, b]];
      const nodesOf = [[0, 1, 3], [0, 2]];
      for (let p = 0; p < paths.length; p++) {
        target.cache.reset();
        const reference = await causal(target, [...prompt, ...paths[p]!], 0, range(prompt.length, paths[p]!.length));
        for (let i = 0; i < paths[p]!.length; i++) {
          const node = nodesOf[p]![i]!;
          let worst = 0;
          for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(tree.logits[node * vocab + v]! - reference.logits[i * vocab + v]!));
          expect(worst, `path ${p}, node ${node}`).toBeLessThan(tolerance);
        }
      }

      // Keep the path r, b (slots 0 and 2): the next token must see exactly prompt + r + b.
      target.cache.reset();
      await causal(target, prompt, 0);
      target.cache.commit();
      await target.forward({ tokenIds: tokens, positions: Int32Array.from(depths, (depth) => base + depth), treeMask: mask });
      target.cache.compact(Int32Array.of(0, 2));
      expect(target.cache.length).toBe(prompt.length + 2);
      const next = golden.ids[15]!;
      const afterCompaction = await causal(target, [next], prompt.length + 2);
      target.cache.reset();
      const fresh = await causal(target, [...prompt, r, b, next], 0);
      let worst = 0;
      for (let v = 0; v < vocab; v++) worst = Math.max(worst, Math.abs(afterCompaction.logits[v]! - fresh.logits[v]!));
      expect(worst).toBeLessThan(tolerance);
      target.cache.reset();
    });

    it('ignores pending rows that a new forward does not own', async () => {
      const golden = longest();
      target.cache.reset();
      await causal(target, golden.ids.slice(0, 8), 0);
      target.cache.commit();
      // A speculative row left pending, then a forward at the same position: the pending row is invisible.
      await causal(target, [123], 8);
      const withPending = await causal(target, golden.ids.slice(8, 10), 8);
      target.cache.reset();
      await causal(target, golden.ids.slice(0, 8), 0);
      target.cache.commit();
      const clean = await causal(target, golden.ids.slice(8, 10), 8);
      expect(maxAbsDiff(withPending.logits, Array.from(clean.logits))).toBeLessThan(tolerance);
      target.cache.reset();
    });
  });
}
