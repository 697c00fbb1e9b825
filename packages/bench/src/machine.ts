/**
 * Facts about the machine a benchmark ran on, and its read bandwidth, which sets the floor for
 * weight-bound decoding: every generated token reads every weight once, so vanilla decoding
 * cannot beat `weightBytes / bandwidth` seconds per token.
 */
import { cpus, totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';

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

const PROBE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const buffer = Buffer.alloc(workerData.bytes, 1);
const flag = new Int32Array(workerData.flag);
parentPort.postMessage('ready');
const times = [];
for (let trial = 0; trial < workerData.trials; trial++) {
  Atomics.wait(flag, 0, trial);
  const start = process.hrtime.bigint();
  if (buffer.indexOf(2) !== -1) throw new Error('unexpected byte');
  times.push(Number(process.hrtime.bigint() - start) / 1e9);
  Atomics.add(flag, 1, 1);
  Atomics.notify(flag, 1);
}
parentPort.postMessage(times);
`;

/**
 * Read bandwidth with `threads` threads scanning their own buffers at the same time (bytes per
 * second, all threads together; best of `trials` simultaneous scans). With all cores this is the
 * bandwidth a multi-threaded matmul can draw on, and so the stricter floor.
 */
export async function measureParallelReadBandwidth(threads = cpus().length, bytesPerThread = 256 * 2 ** 20, trials = 7): Promise<number> {
  if (threads <= 1) return measureReadBandwidth(bytesPerThread, trials);
  const flagBuffer = new SharedArrayBuffer(8);
  const flag = new Int32Array(flagBuffer);
  const workers = Array.from({ length: threads }, () => new Worker(PROBE_WORKER, { eval: true, workerData: { bytes: bytesPerThread, trials, flag: flagBuffer } }));
  const results: Promise<number[]>[] = [];
  const ready = workers.map(
    (worker) =>
      new Promise<void>((resolveReady, reject) => {
        let first = true;
        results.push(
          new Promise<number[]>((resolveTimes) => {
            worker.on('message', (message: unknown) => {
              if (first) {
                first = false;
                resolveReady();
              } else resolveTimes(message as number[]);
            });
          }),
        );
        worker.on('error', reject);
      }),
  );
  await Promise.all(ready);
  for (let trial = 0; trial < trials; trial++) {
    Atomics.store(flag, 1, 0);
    Atomics.store(flag, 0, trial + 1);
    Atomics.notify(flag, 0);
    while (Atomics.load(flag, 1) < threads) await new Promise((resolveTick) => setTimeout(resolveTick, 1));
  }
  const times = await Promise.all(results);
  await Promise.all(workers.map((worker) => worker.terminate()));
  let best = Infinity;
  for (let trial = 0; trial < trials; trial++) best = Math.min(best, Math.max(...times.map((list) => list[trial]!)));
  return (threads * bytesPerThread) / best;
}
