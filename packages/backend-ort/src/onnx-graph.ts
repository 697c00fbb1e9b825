/**
 * A small ONNX graph builder on top of `onnx-proto` (protobufjs static code, ONNX 1.10 schema).
 *
 * It collects nodes, graph inputs/outputs and initializers and encodes a `ModelProto`. Large
 * initializers (weights) are *external*: the proto only names them, and their bytes travel to
 * ONNX Runtime as in-memory external data (`SessionOptions.externalData`) or as files written
 * next to the model by the exporter. Small constants (shapes, axes, scales) are embedded.
 *
 * Not a general ONNX library: only what the tracer and the exporter need.
 */
import { assert } from '@gumiho/core';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type INodeProto = onnxProto.onnx.INodeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

/** ONNX element types this project emits. */
export type OnnxElementType = 'float32' | 'int32' | 'int64';

/** A dimension of a graph input or output: a number or a symbolic name. */
export type OnnxDim = number | string;

/** Attribute values a node may carry. */
export type AttributeValue = number | string | readonly number[] | { readonly float: number } | { readonly floats: readonly number[] };

/** The `com.microsoft` contrib-op domain of ONNX Runtime. */
export const MS_DOMAIN = 'com.microsoft';

const ELEMENT_TYPE: Record<OnnxElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
};

/** Bytes of an external initializer, keyed by the location its `TensorProto` names. */
export interface ExternalBlob {
  /** The `location` of the external data (a file name for exports, a key for in-memory data). */
  readonly path: string;
  /** Raw little-endian bytes (a view: not copied). */
  readonly data: Uint8Array;
}

function isNumberList(value: AttributeValue): value is readonly number[] {
  return Array.isArray(value);
}

function attribute(name: string, value: AttributeValue): IAttributeProto {
  const Type = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    assert(Number.isInteger(value), () => `ONNX attribute ${name}: ${value} is not an integer (use { float })`);
    return { name, type: Type.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: Type.STRING, s: new TextEncoder().encode(value) };
  if (isNumberList(value)) return { name, type: Type.INTS, ints: [...value] };
  if ('float' in value) return { name, type: Type.FLOAT, f: value.float };
  return { name, type: Type.FLOATS, floats: [...value.floats] };
}

function valueInfo(name: string, type: OnnxElementType, shape: readonly OnnxDim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_TYPE[type],
        shape: { dim: shape.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) },
      },
    },
  };
}

function bytesOf(array: Float32Array | Int32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Builds one ONNX graph. */
export class GraphBuilder {
  private readonly nodes: INodeProto[] = [];
  private readonly initializers: ITensorProto[] = [];
  private readonly inputs: IValueInfoProto[] = [];
  private readonly outputs: IValueInfoProto[] = [];
  private readonly blobs: ExternalBlob[] = [];
  private readonly constants = new Map<string, string>();
  private readonly usedNames = new Set<string>();
  private counter = 0;

  /** A fresh value name starting with `prefix`. */
  fresh(prefix: string): string {
    let name = `${prefix}_${this.counter++}`;
    while (this.usedNames.has(name)) name = `${prefix}_${this.counter++}`;
    this.usedNames.add(name);
    return name;
  }

  /** Reserves an exact name (graph inputs and outputs); throws if it is taken. */
  reserve(name: string): string {
    assert(!this.usedNames.has(name), () => `ONNX value name "${name}" is used twice`);
    this.usedNames.add(name);
    return name;
  }

  /** Declares a graph input. */
  input(name: string, type: OnnxElementType, shape: readonly OnnxDim[]): string {
    this.reserve(name);
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Declares an existing value as a graph output. */
  output(name: string, type: OnnxElementType, shape: readonly OnnxDim[]): void {
    this.outputs.push(valueInfo(name, type, shape));
  }

  /**
   * Adds a node and returns its output names. `outputs` is a count (fresh names derived from the
   * op type) or explicit names (`''` marks an optional output that is not produced).
   */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: number | readonly string[] = 1,
    attributes: Readonly<Record<string, AttributeValue>> = {},
    domain = '',
  ): string[] {
    const names = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : [...outputs];
    this.nodes.push({
      opType,
      domain,
      name: this.fresh(`n_${opType}`),
      input: [...inputs],
      output: names,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return names;
  }

  /** Adds a node with one output and returns its name. */
  op(opType: string, inputs: readonly string[], attributes: Readonly<Record<string, AttributeValue>> = {}, domain = ''): string {
    return this.node(opType, inputs, 1, attributes, domain)[0]!;
  }

  /** An embedded int64 constant (deduplicated by value), e.g. a shape or axes. */
  int64(values: readonly number[], shape: readonly number[] = [values.length]): string {
    const key = `i64:${shape.join('x')}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const_i64');
      this.initializers.push({
        name,
        dataType: ELEMENT_TYPE.int64,
        dims: [...shape],
        rawData: bytesOf(BigInt64Array.from(values, (value) => BigInt(value))).slice(),
      });
      this.constants.set(key, name);
    }
    return name;
  }

  /** The values of an int64 constant made by {@link int64}, or `undefined`. */
  int64Values(name: string): number[] | undefined {
    for (const [key, value] of this.constants) {
      if (value === name && key.startsWith('i64:')) return key.slice(key.lastIndexOf(':') + 1).split(',').map(Number);
    }
    return undefined;
  }

  /** An embedded float32 constant (deduplicated by value). Keep these small. */
  float32(values: ArrayLike<number>, shape: readonly number[] = [values.length]): string {
    const array = Float32Array.from(values as ArrayLike<number>);
    const key = `f32:${shape.join('x')}:${Array.from(array).join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const_f32');
      this.initializers.push({ name, dataType: ELEMENT_TYPE.float32, dims: [...shape], rawData: bytesOf(array).slice() });
      this.constants.set(key, name);
    }
    return name;
  }

  /**
   * A large float32 initializer stored as external data: the proto references `location` at
   * offset 0, and the bytes (a zero-copy view of `data`) are returned by {@link externalData}.
   */
  externalFloat32(name: string, data: Float32Array, shape: readonly number[], location: string): string {
    this.reserve(name);
    const bytes = bytesOf(data);
    this.initializers.push({
      name,
      dataType: ELEMENT_TYPE.float32,
      dims: [...shape],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: '0' },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    });
    this.blobs.push({ path: location, data: bytes });
    return name;
  }

  /** An int8 initializer embedded in the proto (quantized draft weights; copied once when encoded). */
  embeddedInt8(name: string, data: Int8Array, shape: readonly number[]): string {
    this.reserve(name);
    this.initializers.push({ name, dataType: onnx.TensorProto.DataType.INT8, dims: [...shape], rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /**
   * A large float32 initializer embedded in the proto (`raw_data` is a view of `data`; the bytes
   * are copied once, when the model is encoded).
   */
  embeddedFloat32(name: string, data: Float32Array, shape: readonly number[]): string {
    this.reserve(name);
    this.initializers.push({ name, dataType: ELEMENT_TYPE.float32, dims: [...shape], rawData: bytesOf(data) });
    return name;
  }

  /**
   * Rows `[rowStart, rowEnd)` of an external 2-D initializer added with {@link externalFloat32},
   * as a new initializer over the same bytes (an offset into the same external location: no copy).
   * Returns `undefined` when `source` is not such an initializer.
   */
  externalRows(source: string, rowStart: number, rowEnd: number): string | undefined {
    const initializer = this.initializers.find((candidate) => candidate.name === source);
    const location = initializer?.externalData?.find((entry) => entry.key === 'location')?.value;
    const dims = initializer?.dims?.map(Number);
    if (!initializer || !location || !dims || dims.length !== 2) return undefined;
    const cols = dims[1]!;
    const name = this.fresh(`${source}.rows_${rowStart}_${rowEnd}`);
    this.initializers.push({
      name,
      dataType: ELEMENT_TYPE.float32,
      dims: [rowEnd - rowStart, cols],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(rowStart * cols * 4) },
        { key: 'length', value: String((rowEnd - rowStart) * cols * 4) },
      ],
    });
    return name;
  }

  /** The external initializers' bytes, in the order they were added. */
  externalData(): readonly ExternalBlob[] {
    return this.blobs;
  }

  /** Number of nodes so far. */
  get nodeCount(): number {
    return this.nodes.length;
  }

  /** The nodes (read-only view for graph rewrites). */
  get graphNodes(): INodeProto[] {
    return this.nodes;
  }

  /** Names of the graph inputs and outputs so far. */
  get boundaryNames(): Set<string> {
    return new Set([...this.inputs, ...this.outputs].map((info) => info.name!));
  }

  /** Encodes the model. `opsets` maps domains to versions. */
  encode(graphName: string, opsets: Readonly<Record<string, number>>, irVersion = 8): Uint8Array {
    // Drop initializers that rewrites left unused (ONNX Runtime would warn about each).
    const used = new Set<string>();
    for (const node of this.nodes) for (const input of node.input ?? []) used.add(input);
    for (const output of this.outputs) used.add(output.name!);
    const initializers = this.initializers.filter((initializer) => used.has(initializer.name!));
    const model = onnx.ModelProto.create({
      irVersion,
      producerName: 'gumiho-ts',
      producerVersion: '0.1.0',
      opsetImport: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
