import { describe, expect, it } from 'vitest';
import { GumihoError } from './errors.js';
import { HostKvCache } from './kv-cache.js';

function fill(cache: HostKvCache, rows: number, base: number): void {
  const size = cache.rowSize;
  for (let layer = 0; layer < cache.spec.layers; layer++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < size; c++) {
        cache.keys(layer)[(cache.used + r) * size + c] = base + r + layer * 1000;
        cache.values(layer)[(cache.used + r) * size + c] = -(base + r + layer * 1000);
      }
    }
  }
  cache.appendPending(rows);
}

describe('HostKvCache', () => {
  const spec = { layers: 2, kvHeads: 2, headDim: 3, capacity: 16 };

  it('commits, compacts only the accepted rows, and rolls back', () => {
    const cache = new HostKvCache(spec);
    fill(cache, 4, 0); // rows 0..3
    cache.commit();
    expect(cache.length).toBe(4);
    fill(cache, 6, 100); // tree rows 100..105 at slots 0..5
    expect(cache.pending).toBe(6);
    cache.compact([0, 2, 5]);
    expect(cache.length).toBe(7);
    expect(cache.pending).toBe(0);
    for (const layer of [0, 1]) {
      const row = (i: number) => cache.keys(layer)[i * cache.rowSize];
      expect([0, 1, 2, 3, 4, 5, 6].map(row)).toEqual([0, 1, 2, 3, 100, 102, 105].map((v) => v + layer * 1000));
      expect(cache.values(layer)[6 * cache.rowSize + 2]).toBe(-(105 + layer * 1000));
    }
    fill(cache, 3, 200);
    cache.rollback();
    expect(cache.used).toBe(7);
    cache.truncate(5);
    expect(cache.length).toBe(5);
  });

  it('rejects overflow and bad slots with clear errors', () => {
    const cache = new HostKvCache(spec);
    expect(() => cache.appendPending(17)).toThrow(/exceed the capacity of 16/);
    fill(cache, 3, 0);
    expect(() => cache.compact([0, 3])).toThrow(/not a pending row/);
    expect(() => cache.compact([1, 0])).toThrow(/strictly increasing/);
    expect(() => cache.commit(4)).toThrow(/only 3 rows are pending/);
    try {
      new HostKvCache({ ...spec, capacity: 0 });
      expect.unreachable();
    } catch (error) {
      expect(GumihoError.isInstance(error)).toBe(true);
    }
  });
});
