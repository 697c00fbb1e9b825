import { describe, expect, it } from 'vitest';
import { isExactBf16, packBf16 } from './kernel-module.js';
import { WasmRuntime } from './runtime.js';

function runtime(): WasmRuntime {
  const created = WasmRuntime.create();
  if (!created) throw new Error('WebAssembly SIMD is unavailable');
  return created;
}

describe('WasmRuntime memory', () => {
  it('hands out views it owns, reuses released blocks and zeroes reused memory', () => {
    const rt = runtime();
    const a = rt.allocate(1000)!;
    const b = rt.allocate(1000)!;
    expect(rt.owns(a) && rt.owns(b)).toBe(true);
    expect(rt.owns(new Float32Array(4))).toBe(false);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + a.byteLength);
    a.fill(7);
    rt.release(a);
    const c = rt.allocate(500)!;
    expect(c.byteOffset).toBe(a.byteOffset); // first fit in the released block
    expect(Array.from(c).every((v) => v === 0)).toBe(true);
    const dirty = rt.allocate(100, false)!; // rest of the released block, not zeroed on request
    expect(dirty.byteOffset).toBeGreaterThan(c.byteOffset);
    rt.dispose();
  });

  it('coalesces neighbouring free blocks and keeps views valid across growth', () => {
    const rt = runtime();
    const blocks = Array.from({ length: 4 }, () => rt.allocate(16384)!);
    blocks[0]!.fill(1);
    rt.release(blocks[1]!);
    rt.release(blocks[2]!);
    const merged = rt.allocate(32768)!; // fits only in blocks 1 and 2 together
    expect(merged.byteOffset).toBe(blocks[1]!.byteOffset);
    const before = rt.reservedBytes;
    const big = rt.allocate(8 * 1024 * 1024)!; // grows the memory
    expect(rt.reservedBytes).toBeGreaterThan(before);
    expect(blocks[0]![5]).toBe(1); // an old view still reads the same memory
    expect(rt.owns(big) && rt.owns(blocks[0]!)).toBe(true);
    rt.dispose();
    expect(rt.allocate(4)).toBeUndefined();
  });
});

describe('bfloat16 packing', () => {
  it('recognises exact bfloat16 values and packs groups of eight as shift/mask pairs', () => {
    const values = Float32Array.from([1, -2, 0.5, 3, 1.5, -0.25, 8, 0]);
    expect(isExactBf16(values)).toBe(true);
    expect(isExactBf16(Float32Array.of(1 / 3))).toBe(false);
    const packed = new Uint32Array(4);
    packBf16(values, packed);
    const bits = new Uint32Array(values.buffer);
    for (let j = 0; j < 4; j++) {
      // Low half: element j; high half: element 4 + j.
      expect(packed[j]! << 16 >>> 0).toBe(bits[j]);
      expect((packed[j]! & 0xffff0000) >>> 0).toBe(bits[4 + j]);
    }
  });

  it('packs weights as bf16 only when exact and k is a multiple of 8', () => {
    const rt = runtime();
    const exact = Float32Array.from({ length: 32 }, (_, i) => i - 16);
    expect(rt.packWeight(exact, 4, 8, true)!.format).toBe('bf16');
    expect(rt.packWeight(exact, 8, 4, true)!.format).toBe('f32');
    expect(rt.packWeight(exact, 4, 8, false)!.format).toBe('f32');
    expect(rt.packWeight(Float32Array.from({ length: 32 }, (_, i) => i / 3), 4, 8, true)!.format).toBe('f32');
    rt.dispose();
  });
});
