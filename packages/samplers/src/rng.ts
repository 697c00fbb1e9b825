/**
 * A small seeded random number generator: xoshiro128** (Blackman and Vigna) seeded through
 * splitmix32, written with 32-bit integer operations only (`Math.imul`, shifts), so the same seed
 * gives the same stream on every JavaScript engine.
 */
import { InvalidArgumentError, type Rng } from '@gumiho/core';

/** A seeded {@link Rng} that can also hand out raw 32-bit words and copies of itself. */
export interface SeededRng extends Rng {
  /** The seed it was created with. */
  readonly seed: number;
  /** Uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number;
  /** Uniform unsigned 32-bit integer. */
  nextUint32(): number;
  /** An independent copy in the current state (draws the same stream from here on). */
  clone(): SeededRng;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

function splitmix32(state: { value: number }): number {
  state.value = (state.value + 0x9e3779b9) | 0;
  let z = state.value;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

class Xoshiro128 implements SeededRng {
  constructor(
    readonly seed: number,
    private s0: number,
    private s1: number,
    private s2: number,
    private s3: number,
  ) {}

  nextUint32(): number {
    const s1 = this.s1;
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * TWO_POW_26 + low) / TWO_POW_53;
  }

  clone(): SeededRng {
    return new Xoshiro128(this.seed, this.s0, this.s1, this.s2, this.s3);
  }
}

/** Checks that `seed` is a safe integer; throws {@link InvalidArgumentError} otherwise. */
export function validateSeed(seed: unknown, argument = 'seed'): asserts seed is number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new InvalidArgumentError(argument, `The seed must be a safe integer, got ${String(seed)}.`, {
      fix: 'pass an integer such as 0 or 1234 (or omit it for a random seed).',
    });
  }
}

/** A random safe-integer seed from the platform's cryptographic source. */
export function randomSeed(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (words[0]! & 0x1fffff) * TWO_POW_32 + words[1]!;
}

/**
 * Creates a seeded RNG (xoshiro128**). The same seed reproduces the same stream; any safe integer
 * (negative too) is a valid seed, and its high and low 32-bit halves both matter.
 *
 * @example
 * const rng = createRng(42);
 * rng.nextFloat(); // same value on every run
 */
export function createRng(seed: number): SeededRng {
  validateSeed(seed);
  const low = seed >>> 0;
  const high = Math.floor(seed / TWO_POW_32) >>> 0;
  const state = { value: low ^ Math.imul(high, 0x27d4eb2f) ^ 0x5bd1e995 };
  let s0 = splitmix32(state);
  const s1 = splitmix32(state);
  const s2 = splitmix32(state);
  const s3 = splitmix32(state);
  // xoshiro must not start from the all-zero state.
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  return new Xoshiro128(seed, s0, s1, s2, s3);
}
