/**
 * A tiny WebAssembly binary assembler: just enough of the binary format (types, one imported
 * memory, functions, exports, code) and of the instruction set (i32/f32 arithmetic, control flow,
 * 128-bit SIMD) to emit the CPU backend's kernels from TypeScript at run time.
 *
 * Not a general toolchain: no validation beyond what `WebAssembly.validate` does, no text format,
 * no tables, globals or data segments. Emitting the binary from source here means the kernels need
 * no build step and no native toolchain: a fresh machine with Node 20 runs them.
 */

/** Value types used by the kernels. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
/** A value type byte. */
export type ValueType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
function u32(value: number): number[] {
  const bytes: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (v !== 0);
  return bytes;
}

/** Signed LEB128 (32-bit). */
function s32(value: number): number[] {
  const bytes: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    bytes.push(done ? byte : byte | 0x80);
    if (done) return bytes;
  }
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...u32(bytes.length), ...bytes];
}

function vector(items: number[][]): number[] {
  return [...u32(items.length), ...items.flat()];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...u32(payload.length), ...payload];
}

/** Byte offsets and alignment hints (log2) of memory instructions. */
const ALIGN_F32 = 2;

/**
 * Emits the body of one function. Locals are declared with {@link local}; instructions are
 * appended by the methods, which return `this` so code reads top to bottom.
 */
export class FunctionBuilder {
  /** Instruction bytes (without the locals header and the final `end`). */
  readonly code: number[] = [];
  private readonly localTypes: ValueType[] = [];

  constructor(readonly params: readonly ValueType[], readonly results: readonly ValueType[]) {}

  /** Declares a local of `type`; returns its index. */
  local(type: ValueType): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }

  /** Appends raw bytes. */
  raw(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  get(index: number): this {
    return this.raw(0x20, ...u32(index));
  }
  set(index: number): this {
    return this.raw(0x21, ...u32(index));
  }
  tee(index: number): this {
    return this.raw(0x22, ...u32(index));
  }
  i32(value: number): this {
    return this.raw(0x41, ...s32(value));
  }
  f32(value: number): this {
    const bytes = new Uint8Array(new Float32Array([value]).buffer);
    return this.raw(0x43, ...bytes);
  }

  // i32 arithmetic and comparisons.
  i32Add(): this {
    return this.raw(0x6a);
  }
  i32Sub(): this {
    return this.raw(0x6b);
  }
  i32Mul(): this {
    return this.raw(0x6c);
  }
  i32DivS(): this {
    return this.raw(0x6d);
  }
  i32And(): this {
    return this.raw(0x71);
  }
  i32Shl(): this {
    return this.raw(0x74);
  }
  i32Eqz(): this {
    return this.raw(0x45);
  }
  i32GeS(): this {
    return this.raw(0x4e);
  }
  i32GtS(): this {
    return this.raw(0x4a);
  }
  i32LtS(): this {
    return this.raw(0x48);
  }
  i32LeS(): this {
    return this.raw(0x4c);
  }
  i32Ne(): this {
    return this.raw(0x47);
  }

  // f32 scalar.
  f32Load(offset = 0): this {
    return this.raw(0x2a, ALIGN_F32, ...u32(offset));
  }
  f32Store(offset = 0): this {
    return this.raw(0x38, ALIGN_F32, ...u32(offset));
  }
  f32Add(): this {
    return this.raw(0x92);
  }
  f32Sub(): this {
    return this.raw(0x93);
  }
  f32Mul(): this {
    return this.raw(0x94);
  }
  f32Div(): this {
    return this.raw(0x95);
  }
  f32Max(): this {
    return this.raw(0x97);
  }
  f32Lt(): this {
    return this.raw(0x5d);
  }
  f32Eq(): this {
    return this.raw(0x5b);
  }
  f32Ne(): this {
    return this.raw(0x5c);
  }

  // SIMD (prefix 0xfd, LEB128 opcode).
  private simd(opcode: number, ...immediates: number[]): this {
    return this.raw(0xfd, ...u32(opcode), ...immediates);
  }
  v128Load(offset = 0): this {
    return this.simd(0x00, ALIGN_F32, ...u32(offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, ALIGN_F32, ...u32(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.simd(0x09, ALIGN_F32, ...u32(offset));
  }
  /** Pushes four copies of the float `value`. */
  f32x4Const(value: number): this {
    const bytes = new Uint8Array(new Float32Array([value, value, value, value]).buffer);
    return this.simd(0x0c, ...bytes);
  }
  f32x4Splat(): this {
    return this.simd(0x13);
  }
  f32x4ExtractLane(lane: number): this {
    return this.simd(0x1f, lane);
  }
  f32x4Gt(): this {
    return this.simd(0x44);
  }
  v128And(): this {
    return this.simd(0x4e);
  }
  f32x4Nearest(): this {
    return this.simd(0x6a);
  }
  i32x4Shl(): this {
    return this.simd(0xab);
  }
  i32x4Add(): this {
    return this.simd(0xae);
  }
  /** Pushes four copies of the i32 `value`. */
  i32x4Const(value: number): this {
    const bytes = new Uint8Array(new Int32Array([value, value, value, value]).buffer);
    return this.simd(0x0c, ...bytes);
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  f32x4Sub(): this {
    return this.simd(0xe5);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  f32x4Max(): this {
    return this.simd(0xe9);
  }
  i32x4TruncSatF32x4S(): this {
    return this.simd(0xf8);
  }

  // Control flow.
  /** `block ... end` (no result). */
  block(body: () => void): this {
    this.raw(0x02, 0x40);
    body();
    return this.raw(0x0b);
  }
  /** `loop ... end` (no result). */
  loop(body: () => void): this {
    this.raw(0x03, 0x40);
    body();
    return this.raw(0x0b);
  }
  /** `if ... end` on the i32 on the stack (no result). */
  if(then: () => void, otherwise?: () => void): this {
    this.raw(0x04, 0x40);
    then();
    if (otherwise) {
      this.raw(0x05);
      otherwise();
    }
    return this.raw(0x0b);
  }
  br(depth: number): this {
    return this.raw(0x0c, ...u32(depth));
  }
  brIf(depth: number): this {
    return this.raw(0x0d, ...u32(depth));
  }
  return(): this {
    return this.raw(0x0f);
  }
  /** `select`: pops `a`, `b`, `condition`; pushes `condition ? a : b`. */
  select(): this {
    return this.raw(0x1b);
  }

  /** `while (condition) body`; `condition` pushes an i32. Bodies must fall through. */
  while(condition: () => void, body: () => void): this {
    return this.block(() => {
      this.loop(() => {
        condition();
        this.i32Eqz().brIf(1);
        body();
        this.br(0);
      });
    });
  }

  /**
   * `for (counter = start; counter < end; counter += step) body`, with `start`, `end` and `step`
   * pushed by the given emitters (each pushes one i32; `end` is re-evaluated every iteration).
   * Bodies must fall through: there is no `continue`.
   */
  forRange(counter: number, start: () => void, end: () => void, step: number, body: () => void): this {
    start();
    this.set(counter);
    return this.block(() => {
      this.loop(() => {
        this.get(counter);
        end();
        this.i32GeS().brIf(1);
        body();
        this.get(counter).i32(step).i32Add().set(counter);
        this.br(0);
      });
    });
  }

  /** The function's code entry: locals header, body, `end`. */
  encode(): number[] {
    const groups: number[][] = [];
    for (const type of this.localTypes) groups.push([...u32(1), type]);
    const body = [...vector(groups), ...this.code, 0x0b];
    return [...u32(body.length), ...body];
  }
}

/** One exported function of a module. */
export interface FunctionSpec {
  readonly name: string;
  readonly params: readonly ValueType[];
  readonly results?: readonly ValueType[];
  /** Emits the body. */
  readonly build: (fn: FunctionBuilder) => void;
}

/** Options of {@link assembleModule}. */
export interface ModuleSpec {
  /** The memory is imported as `env.memory` with these limits (in 64 KiB pages). */
  readonly memory: { readonly initial: number; readonly maximum: number; readonly shared: boolean };
  readonly functions: readonly FunctionSpec[];
}

/** Assembles a module: one imported memory, the functions, each exported under its name. */
export function assembleModule(spec: ModuleSpec): Uint8Array<ArrayBuffer> {
  const builders = spec.functions.map((fn) => {
    const builder = new FunctionBuilder(fn.params, fn.results ?? []);
    fn.build(builder);
    return builder;
  });
  const types = spec.functions.map((fn) => [0x60, ...vector(fn.params.map((t) => [t])), ...vector((fn.results ?? []).map((t) => [t]))]);
  const { initial, maximum, shared } = spec.memory;
  const limits = [shared ? 0x03 : 0x01, ...u32(initial), ...u32(maximum)];
  const imports = vector([[...name('env'), ...name('memory'), 0x02, ...limits]]);
  const functions = vector(spec.functions.map((_, index) => u32(index)));
  const exports = vector(spec.functions.map((fn, index) => [...name(fn.name), 0x00, ...u32(index)]));
  const code = vector(builders.map((builder) => builder.encode()));
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...section(2, imports),
    ...section(3, functions),
    ...section(7, exports),
    ...section(10, code),
  ]);
}
