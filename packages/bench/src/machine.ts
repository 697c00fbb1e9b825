/**
 * Facts about the machine a benchmark ran on, and its read bandwidth, which sets the floor for
 * weight-bound decoding: every generated token reads every weight once, so vanilla decoding
 * cannot beat `weightBytes / bandwidth` seconds per token.
 */
import { cpus, totalmem } from 'node:os';

/** Where a benchmark ran. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  readonly date: string;
}

/** Describes this machine. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString().slice(0, 10),
  };
}

/**
 * Measures read bandwidth in bytes per second with a native scan (`Buffer.indexOf` of a byte
 * that is absent, which runs a vectorised memchr over the whole buffer), on a buffer much larger
 * than the last-level cache; best of `trials`. One thread: decoding reads weights from one thread
 * per kernel on the backends measured here.
 */
export function measureReadBandwidth(bytes = 512 * 2 ** 20, trials = 7): number {
  const buffer = Buffer.alloc(bytes, 1);
  let best = Infinity;
  for (let trial = 0; trial < trials; trial++) {
    const start = process.hrtime.bigint();
    const found = buffer.indexOf(2);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (found !== -1) throw new Error('bandwidth probe found an unexpected byte');
    best = Math.min(best, seconds);
  }
  return bytes / best;
}

/** The weight-bandwidth floor: milliseconds per token and the tokens/s ceiling of vanilla decoding. */
export function weightFloor(weightBytes: number, bytesPerSecond: number): { msPerToken: number; tokensPerSecond: number } {
  const seconds = weightBytes / bytesPerSecond;
  return { msPerToken: seconds * 1000, tokensPerSecond: 1 / seconds };
}
