/**
 * Errors of Gumiho-TS.
 *
 * Every error the library raises on purpose is a {@link GumihoError}: it names the problem and,
 * where there is one, the fix. Apps map these to exit code 2 and a one-paragraph message; any
 * other exception is a bug.
 *
 * Checks use a `Symbol.for` marker rather than `instanceof`, so they still work when two copies of
 * the package are installed side by side.
 */

const marker = Symbol.for('gumiho.error');

/** Options shared by all Gumiho errors. */
export interface GumihoErrorOptions {
  /** The underlying error, if this one wraps another. */
  cause?: unknown;
  /** What the user can do about it, appended to the message as "Fix: ...". */
  fix?: string;
}

/** Base class of every error Gumiho-TS raises on purpose. */
export class GumihoError extends Error {
  private readonly [marker] = true;
  /** Stable machine-readable code, e.g. `GUMIHO_INVALID_ARGUMENT`. */
  readonly code: string;
  /** The suggested fix, if any (also part of `message`). */
  readonly fix: string | undefined;

  constructor(message: string, options: GumihoErrorOptions & { code?: string } = {}) {
    super(options.fix ? `${message} Fix: ${options.fix}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'GUMIHO_ERROR';
    this.fix = options.fix;
  }

  /** True when `error` is a Gumiho error, from this or any other copy of the package. */
  static isInstance(error: unknown): error is GumihoError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }
}

/** A caller passed a value that makes no sense (negative temperature, empty prompt, ...). */
export class InvalidArgumentError extends GumihoError {
  /** Name of the offending argument or option. */
  readonly argument: string;
  constructor(argument: string, message: string, options: GumihoErrorOptions = {}) {
    super(message, { ...options, code: 'GUMIHO_INVALID_ARGUMENT' });
    this.argument = argument;
  }
}

/** A tensor had a different shape than expected. */
export class ShapeMismatchError extends GumihoError {
  readonly expected: readonly (number | string)[];
  readonly received: readonly (number | string)[];
  constructor(what: string, expected: readonly (number | string)[], received: readonly (number | string)[], options: GumihoErrorOptions = {}) {
    super(`${what}: expected shape [${expected.join(', ')}], received [${received.join(', ')}].`, {
      ...options,
      code: 'GUMIHO_SHAPE_MISMATCH',
    });
    this.expected = expected;
    this.received = received;
  }
}

/** A tensor had a different dtype than expected. */
export class DTypeError extends GumihoError {
  readonly expected: string;
  readonly received: string;
  constructor(what: string, expected: string, received: string, options: GumihoErrorOptions = {}) {
    super(`${what}: expected dtype ${expected}, received ${received}.`, { ...options, code: 'GUMIHO_DTYPE' });
    this.expected = expected;
    this.received = received;
  }
}

/** A model, head or weight file is missing, unreadable or malformed. */
export class ModelLoadError extends GumihoError {
  /** The path involved, if any. */
  readonly path: string | undefined;
  constructor(message: string, options: GumihoErrorOptions & { path?: string } = {}) {
    super(message, { ...options, code: 'GUMIHO_MODEL_LOAD' });
    this.path = options.path;
  }
}

/** The model or head uses an architecture or option this library does not implement. */
export class UnsupportedModelError extends GumihoError {
  constructor(message: string, options: GumihoErrorOptions = {}) {
    super(message, { ...options, code: 'GUMIHO_UNSUPPORTED_MODEL' });
  }
}

/** Draft heads were trained for a different target (hidden size, vocabulary or config hash). */
export class IncompatibleHeadsError extends GumihoError {
  constructor(message: string, options: GumihoErrorOptions = {}) {
    super(message, { ...options, code: 'GUMIHO_INCOMPATIBLE_HEADS' });
  }
}

/** One attempt to start a backend, as listed by {@link BackendUnavailableError}. */
export interface BackendAttempt {
  /** Backend or execution provider name, e.g. `ort-cuda`. */
  readonly name: string;
  /** Why it could not be used. */
  readonly reason: string;
}

/** None of the requested backends or execution providers could be started. */
export class BackendUnavailableError extends GumihoError {
  readonly attempts: readonly BackendAttempt[];
  constructor(attempts: readonly BackendAttempt[], options: GumihoErrorOptions = {}) {
    const list = attempts.map((attempt) => `${attempt.name}: ${attempt.reason}`).join('; ');
    super(`No backend could be started (tried ${list}).`, { ...options, code: 'GUMIHO_BACKEND_UNAVAILABLE' });
    this.attempts = attempts;
  }
}

/** A backend does not implement an op or a feature. Names the op and the backend. */
export class NotImplementedError extends GumihoError {
  constructor(what: string, backend: string, options: GumihoErrorOptions = {}) {
    super(`${what} is not implemented by the ${backend} backend.`, { ...options, code: 'GUMIHO_NOT_IMPLEMENTED' });
  }
}

/** A sequence would grow past the model's context (its KV cache capacity). */
export class ContextOverflowError extends GumihoError {
  constructor(message: string, options: GumihoErrorOptions = {}) {
    super(message, { ...options, code: 'GUMIHO_CONTEXT_OVERFLOW' });
  }
}

/**
 * Checks an internal invariant; a failure is a bug in Gumiho-TS, not bad input. The message is
 * built lazily so hot paths pay nothing.
 */
export function assert(condition: unknown, message: () => string): asserts condition {
  if (!condition) throw new GumihoError(`Internal invariant violated: ${message()}`, { code: 'GUMIHO_INTERNAL' });
}
