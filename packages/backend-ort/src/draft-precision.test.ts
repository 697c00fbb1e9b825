/**
 * Draft-precision programs (`precision: 'draft'`) with `draftWeights: 'int8'`: linears run with
 * per-channel int8 weights, close to float32 but not equal; exact programs are untouched.
 */
import type { ProgramDefinition } from '@gumiho/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrtBackend, type OrtBackend } from './index.js';
import { quantizeWeightInt8 } from './tracer.js';
import { mapStore, random, randomTensor } from './test-utils.js';

let int8: OrtBackend;
let exact: OrtBackend;
beforeAll(async () => {
  int8 = await createOrtBackend({ threads: 1, draftWeights: 'int8' });
  exact = await createOrtBackend({ threads: 1 });
});
afterAll(() => {
  int8.dispose();
  exact.dispose();
});

function program(precision: 'exact' | 'draft'): ProgramDefinition<'x', 'y'> {
  return {
    name: `linear-${precision}`,
    precision,
    inputs: { x: { dtype: 'float32', shape: ['n', 96] } },
    build: (ops, inputs, context) => ({ y: ops.linear(ops.silu(inputs.x), context.weight('w'), context.weight('b')) }),
  };
}

describe('draftWeights: int8', () => {
  const next = random(17);
  const weights = mapStore([['w', randomTensor([160, 96], next)], ['b', randomTensor([160], next)]]);
  const x = randomTensor([5, 96], next);

  it('quantizes per output channel, symmetric, in the [in, out] layout', () => {
    const data = Float32Array.of(1, -2, 0.5, /* row 2 */ 0, 0, 0);
    const { weights: q, scales } = quantizeWeightInt8(data, 2, 3);
    expect(Array.from(scales)).toEqual([Math.fround(2 / 127), 1]);
    expect(Array.from(q)).toEqual([64, 0, -127, 0, 32, 0]);
  });

  it('draft programs come close to float32; exact programs stay exact', async () => {
    const reference = await (await exact.compile(program('exact'), weights)).run({ x });
    const sameExact = await (await int8.compile(program('exact'), weights)).run({ x });
    const draft = await (await int8.compile(program('draft'), weights)).run({ x });
    expect(Array.from(sameExact.y.data)).toEqual(Array.from(reference.y.data));
    let maxError = 0;
    let maxValue = 0;
    for (let i = 0; i < reference.y.data.length; i++) {
      maxError = Math.max(maxError, Math.abs(draft.y.data[i]! - reference.y.data[i]!));
      maxValue = Math.max(maxValue, Math.abs(reference.y.data[i]!));
    }
    expect(maxError).toBeGreaterThan(0); // really quantized
    expect(maxError / maxValue).toBeLessThan(0.03);
  });
});
