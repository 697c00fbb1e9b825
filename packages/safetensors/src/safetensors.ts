/**
 * safetensors files: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets}}` (plus an optional `__metadata__`), then raw
 * little-endian tensor bytes. Reads bf16, f16, f32 (converted to float32) and i32/i64; writes
 * f32 and bf16.
 *
 * Not a lazy or memory-mapped reader: tensors are converted to float32 on read, which is what the
 * backends compute in.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import {
  ModelLoadError,
  bf16ToF32,
  f16ToF32,
  type HostTensor,
  type WeightStore,
} from '@gumiho/core';

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly dataOffsets: readonly [number, number];
}

/** A parsed safetensors header. */
export interface SafetensorsHeader {
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte offset of the data section in the file. */
  readonly dataStart: number;
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, F64: 8 };

/** Parses the header of a safetensors file held in `bytes`. `path` is only used in errors. */
export function parseSafetensorsHeader(bytes: Uint8Array, path = '<buffer>'): SafetensorsHeader {
  const fail = (problem: string): never => {
    throw new ModelLoadError(`${path} is not a valid safetensors file: ${problem}.`, {
      path,
      fix: 're-download or re-export the file; it may be truncated or not a safetensors file.',
    });
  };
  if (bytes.length < 8) fail('it is shorter than 8 bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength <= 0 || 8 + headerLength > bytes.length) fail(`its header length ${headerLength} does not fit in ${bytes.length} bytes`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch (error) {
    return fail(`its header is not JSON (${(error as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof entry?.dtype !== 'string' || !Array.isArray(entry.shape) || !Array.isArray(entry.data_offsets)) {
      fail(`tensor "${name}" has no dtype, shape or data_offsets`);
    }
    const [begin, end] = entry.data_offsets as [number, number];
    const width = BYTES[entry.dtype as string];
    if (width === undefined) fail(`tensor "${name}" has unsupported dtype ${String(entry.dtype)}`);
    const count = (entry.shape as number[]).reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end >= begin && end <= dataLength) || end - begin !== count * width!) {
      fail(`tensor "${name}" (${String(entry.dtype)} [${(entry.shape as number[]).join(', ')}]) has data offsets [${begin}, ${end}) that do not match its size or the file (${dataLength} data bytes)`);
    }
    tensors.set(name, { dtype: entry.dtype as string, shape: entry.shape as number[], dataOffsets: [begin, end] });
  }
  return { tensors, metadata, dataStart };
}

/** Decodes one tensor of a safetensors file held in `bytes` to float32 (integers are converted too). */
export function decodeTensor(bytes: Uint8Array, header: SafetensorsHeader, name: string): HostTensor<'float32'> {
  const entry = header.tensors.get(name);
  if (!entry) throw new ModelLoadError(`Tensor "${name}" is not in the safetensors file.`);
  const begin = header.dataStart + entry.dataOffsets[0];
  const end = header.dataStart + entry.dataOffsets[1];
  // Copy to an aligned buffer before viewing it as 16/32-bit words.
  const raw = new Uint8Array(end - begin);
  raw.set(bytes.subarray(begin, end)); // (Buffer.slice would not copy)
  let data: Float32Array;
  switch (entry.dtype) {
    case 'F32':
      data = new Float32Array(raw.buffer, 0, raw.length / 4);
      break;
    case 'BF16':
      data = bf16ToF32(new Uint16Array(raw.buffer, 0, raw.length / 2));
      break;
    case 'F16':
      data = f16ToF32(new Uint16Array(raw.buffer, 0, raw.length / 2));
      break;
    case 'F64':
      data = Float32Array.from(new Float64Array(raw.buffer, 0, raw.length / 8));
      break;
    case 'I32':
      data = Float32Array.from(new Int32Array(raw.buffer, 0, raw.length / 4));
      break;
    case 'I64':
      data = Float32Array.from(new BigInt64Array(raw.buffer, 0, raw.length / 8), (value) => Number(value));
      break;
    default:
      throw new ModelLoadError(`Tensor "${name}" has unsupported dtype ${entry.dtype}.`);
  }
  return { dtype: 'float32', shape: [...entry.shape], data };
}

/** A {@link WeightStore} backed by a `Map`; also lets loaders add or rename tensors. */
export class MapWeightStore implements WeightStore {
  readonly tensors = new Map<string, HostTensor<'float32'>>();
  /** Original dtype of each tensor as stored on disk (`BF16`, `F32`, ...), when known. */
  readonly sourceDTypes = new Map<string, string>();

  constructor(entries?: Iterable<readonly [string, HostTensor<'float32'>]>) {
    if (entries) for (const [name, tensor] of entries) this.tensors.set(name, tensor);
  }

  get(name: string): HostTensor<'float32'> | undefined {
    return this.tensors.get(name);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  names(): IterableIterator<string> {
    return this.tensors.keys();
  }

  set(name: string, tensor: HostTensor<'float32'>): this {
    this.tensors.set(name, tensor);
    return this;
  }
}

/** A store that looks names up in several stores, first match wins (a head's weights over its target's). */
export class LayeredWeightStore implements WeightStore {
  constructor(private readonly layers: readonly WeightStore[]) {}

  get(name: string): HostTensor<'float32'> | undefined {
    for (const layer of this.layers) {
      const tensor = layer.get(name);
      if (tensor) return tensor;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.layers.some((layer) => layer.has(name));
  }

  *names(): IterableIterator<string> {
    const seen = new Set<string>();
    for (const layer of this.layers) {
      for (const name of layer.names()) {
        if (!seen.has(name)) {
          seen.add(name);
          yield name;
        }
      }
    }
  }
}

/** Reads a whole safetensors file into `store` (a new one by default). */
export async function readSafetensors(path: string, store: MapWeightStore = new MapWeightStore()): Promise<MapWeightStore> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ModelLoadError(`Cannot read ${path}: ${(error as Error).message}.`, {
      path,
      cause: error,
      fix: 'check that the file exists and is readable.',
    });
  }
  const header = parseSafetensorsHeader(bytes, path);
  for (const [name, entry] of header.tensors) {
    store.set(name, decodeTensor(bytes, header, name));
    store.sourceDTypes.set(name, entry.dtype);
  }
  return store;
}

/** Rounds float32 to bfloat16 bits (round to nearest even). */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = 0x7fc0; // NaN
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** One tensor already in its on-disk encoding, for {@link assembleSafetensors}. */
export interface RawSafetensorsEntry {
  readonly name: string;
  /** safetensors dtype, e.g. `F32`, `BF16`, `I32`. */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Little-endian bytes of the tensor. */
  readonly bytes: Uint8Array;
}

/** Lays out a safetensors file from tensors already encoded to bytes (header, padding, data). */
export function assembleSafetensors(entries: Iterable<RawSafetensorsEntry>, metadata?: Record<string, string>): Uint8Array {
  const chunks: Uint8Array[] = [];
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const entry of entries) {
    header[entry.name] = { dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, offset + entry.bytes.length] };
    chunks.push(entry.bytes);
    offset += entry.bytes.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.length;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.length;
  }
  return out;
}

/** Serialises tensors to safetensors bytes, as `F32` or `BF16`. */
export function encodeSafetensors(
  tensors: Iterable<readonly [string, HostTensor<'float32'>]>,
  options: { dtype?: 'F32' | 'BF16'; metadata?: Record<string, string> } = {},
): Uint8Array {
  const dtype = options.dtype ?? 'F32';
  const entries: RawSafetensorsEntry[] = [];
  for (const [name, tensor] of tensors) {
    const values = Float32Array.from(tensor.data);
    const bytes = dtype === 'F32' ? new Uint8Array(values.buffer) : new Uint8Array(f32ToBf16(values).buffer);
    entries.push({ name, dtype, shape: tensor.shape, bytes });
  }
  return assembleSafetensors(entries, options.metadata);
}

/** Writes tensors to `path` atomically (temporary file, then rename). */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<readonly [string, HostTensor<'float32'>]>,
  options: { dtype?: 'F32' | 'BF16'; metadata?: Record<string, string> } = {},
): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, encodeSafetensors(tensors, options));
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
