/**
 * The on-disk configuration of a set of draft heads (`config.json` next to `model.safetensors`),
 * as exported by the Python training tooling (`tooling/train-heads`), and its validation.
 *
 * Not a loader: reading files is in `io.ts`; this module only checks values.
 */
import { IncompatibleHeadsError, ModelLoadError, type ModelConfig } from '@gumiho/core';

/** Which architecture a set of weight-based draft heads has. */
export type DraftHeadKind = 'gumiho' | 'eagle2' | 'medusa';

/** The target a set of heads was trained for, as recorded in `config.json`. */
export interface DraftHeadsTargetInfo {
  /** Target model name (its folder name), for messages. */
  readonly name: string;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly numHiddenLayers: number;
  /** SHA-256 of the target's `config.json`, when known (empty string otherwise). */
  readonly configSha256: string;
}

/**
 * `config.json` of a draft-head folder (`format: "gumiho-heads"`, `formatVersion: 1`).
 *
 * - `serialLayers`: Llama decoder layers of the serial part (Gumiho 2, EAGLE-2 1, Medusa 0).
 * - `mlpHeads`: parallel MLP heads (Gumiho 5, Medusa any, EAGLE-2 0).
 * - `mlpBlocks`: blocks per MLP head, i.e. the number of `mlp.{i}.{k}` indices `k`
 *   (Gumiho 6: one `2H -> H` block without residual plus 5 residual blocks; Medusa: residual
 *   blocks). For Gumiho the loader also accepts the count of residual blocks only (5).
 */
export interface DraftHeadsConfig {
  readonly format: 'gumiho-heads';
  readonly formatVersion: 1;
  readonly kind: DraftHeadKind;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly intermediateSize: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly serialLayers: number;
  readonly mlpHeads: number;
  readonly mlpBlocks: number;
  /** Whether `fc` has a bias (true for every official and project checkpoint). */
  readonly fcBias: boolean;
  readonly target: DraftHeadsTargetInfo;
  /** Free-form training metadata (steps, data, losses); not interpreted. */
  readonly training?: Readonly<Record<string, unknown>>;
}

/** Overrides accepted by {@link draftHeadsConfigFor}. */
export type DraftHeadsConfigOverrides = Partial<Omit<DraftHeadsConfig, 'format' | 'formatVersion' | 'kind'>>;

const DEFAULTS: Record<DraftHeadKind, { serialLayers: number; mlpHeads: number; mlpBlocks: number }> = {
  gumiho: { serialLayers: 2, mlpHeads: 5, mlpBlocks: 6 },
  eagle2: { serialLayers: 1, mlpHeads: 0, mlpBlocks: 0 },
  medusa: { serialLayers: 0, mlpHeads: 4, mlpBlocks: 1 },
};

/**
 * A head configuration that matches `target` (sizes, RoPE theta, norm epsilon), with the usual
 * layer and head counts of `kind` (Gumiho: 2 serial layers, 5 MLP heads of 6 blocks; EAGLE-2:
 * 1 layer; Medusa: 4 heads of 1 block), changed by `overrides`.
 */
export function draftHeadsConfigFor(
  kind: DraftHeadKind,
  target: { readonly name?: string; readonly config: ModelConfig },
  overrides: DraftHeadsConfigOverrides = {},
): DraftHeadsConfig {
  const model = target.config;
  return {
    format: 'gumiho-heads',
    formatVersion: 1,
    kind,
    hiddenSize: model.hiddenSize,
    vocabSize: model.vocabSize,
    intermediateSize: model.intermediateSize,
    numAttentionHeads: model.numHeads,
    numKeyValueHeads: model.numKvHeads,
    headDim: model.headDim,
    rmsNormEps: model.rmsNormEps,
    ropeTheta: model.ropeTheta,
    ...DEFAULTS[kind],
    fcBias: true,
    target: {
      name: target.name ?? 'unknown',
      hiddenSize: model.hiddenSize,
      vocabSize: model.vocabSize,
      numHiddenLayers: model.numLayers,
      configSha256: model.configSha256 ?? '',
    },
    ...overrides,
  };
}

function positiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function nonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/**
 * Checks a parsed `config.json` and returns it typed. Throws {@link ModelLoadError} naming the
 * first bad field. `path` is only used in messages.
 */
export function parseDraftHeadsConfig(json: unknown, path = 'config.json'): DraftHeadsConfig {
  const fail = (problem: string, fix = 're-export the heads with `python -m train_heads export`.'): never => {
    throw new ModelLoadError(`Draft-head config ${path}: ${problem}.`, { path, fix });
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('it is not a JSON object');
  const raw = json as Record<string, unknown>;
  if (raw.format !== 'gumiho-heads') fail(`"format" must be "gumiho-heads", got ${JSON.stringify(raw.format)}`);
  if (raw.formatVersion !== 1) {
    fail(`"formatVersion" ${JSON.stringify(raw.formatVersion)} is not supported (this version reads 1)`, 'upgrade @gumiho/draft-heads, or export the heads in format version 1.');
  }
  const kind = raw.kind;
  if (kind !== 'gumiho' && kind !== 'eagle2' && kind !== 'medusa') {
    fail(`"kind" must be "gumiho", "eagle2" or "medusa", got ${JSON.stringify(kind)}`);
  }
  const k = kind as DraftHeadKind;
  for (const field of ['hiddenSize', 'vocabSize'] as const) {
    if (!positiveInteger(raw[field])) fail(`"${field}" must be a positive integer, got ${JSON.stringify(raw[field])}`);
  }
  const serial = k !== 'medusa';
  if (serial) {
    for (const field of ['intermediateSize', 'numAttentionHeads', 'numKeyValueHeads', 'headDim', 'serialLayers'] as const) {
      if (!positiveInteger(raw[field])) fail(`"${field}" must be a positive integer for ${k} heads, got ${JSON.stringify(raw[field])}`);
    }
    for (const field of ['rmsNormEps', 'ropeTheta'] as const) {
      if (typeof raw[field] !== 'number' || !((raw[field] as number) > 0)) fail(`"${field}" must be a positive number, got ${JSON.stringify(raw[field])}`);
    }
    if ((raw.numAttentionHeads as number) % (raw.numKeyValueHeads as number) !== 0) {
      fail(`"numAttentionHeads" (${String(raw.numAttentionHeads)}) must be a multiple of "numKeyValueHeads" (${String(raw.numKeyValueHeads)})`);
    }
  }
  if (k !== 'eagle2') {
    for (const field of ['mlpHeads', 'mlpBlocks'] as const) {
      if (!positiveInteger(raw[field])) fail(`"${field}" must be a positive integer for ${k} heads, got ${JSON.stringify(raw[field])}`);
    }
  }
  const target = raw.target as Record<string, unknown> | undefined;
  if (typeof target !== 'object' || target === null) fail('"target" (the model the heads were trained for) is missing');
  for (const field of ['hiddenSize', 'vocabSize'] as const) {
    if (!positiveInteger(target![field])) fail(`"target.${field}" must be a positive integer, got ${JSON.stringify(target![field])}`);
  }
  const number = (value: unknown, fallback: number): number => (typeof value === 'number' ? value : fallback);
  return {
    format: 'gumiho-heads',
    formatVersion: 1,
    kind: k,
    hiddenSize: raw.hiddenSize as number,
    vocabSize: raw.vocabSize as number,
    intermediateSize: number(raw.intermediateSize, 0),
    numAttentionHeads: number(raw.numAttentionHeads, 0),
    numKeyValueHeads: number(raw.numKeyValueHeads, 0),
    headDim: number(raw.headDim, 0),
    rmsNormEps: number(raw.rmsNormEps, 1e-6),
    ropeTheta: number(raw.ropeTheta, 10000),
    serialLayers: serial ? (raw.serialLayers as number) : 0,
    mlpHeads: nonNegativeInteger(raw.mlpHeads) ? raw.mlpHeads : 0,
    mlpBlocks: nonNegativeInteger(raw.mlpBlocks) ? raw.mlpBlocks : 0,
    fcBias: raw.fcBias !== false,
    target: {
      name: typeof target!.name === 'string' ? target!.name : 'unknown',
      hiddenSize: target!.hiddenSize as number,
      vocabSize: target!.vocabSize as number,
      numHiddenLayers: number(target!.numHiddenLayers, 0),
      configSha256: typeof target!.configSha256 === 'string' ? target!.configSha256 : '',
    },
    ...(typeof raw.training === 'object' && raw.training !== null ? { training: raw.training as Record<string, unknown> } : {}),
  };
}

/**
 * Throws {@link IncompatibleHeadsError} when heads configured by `config` cannot run on `target`
 * (hidden size or vocabulary differ). Names both values and the fix.
 */
export function checkHeadsMatchTarget(
  config: DraftHeadsConfig,
  target: { readonly name?: string; readonly config: ModelConfig },
): void {
  const model = target.config;
  const targetName = target.name ?? 'the target';
  const problems: string[] = [];
  if (config.hiddenSize !== model.hiddenSize) problems.push(`hidden size ${config.hiddenSize} (target: ${model.hiddenSize})`);
  if (config.vocabSize !== model.vocabSize) problems.push(`vocabulary size ${config.vocabSize} (target: ${model.vocabSize})`);
  if (problems.length > 0) {
    throw new IncompatibleHeadsError(
      `These ${config.kind} draft heads were trained for "${config.target.name}" and have ${problems.join(' and ')}, so they cannot draft for "${targetName}".`,
      { fix: `use heads trained for "${targetName}", or train them with \`python -m train_heads train --target <${targetName} folder>\`.` },
    );
  }
}

/**
 * When both the heads and the target carry a `config.json` hash and the hashes differ, returns a
 * message saying so (the heads still run and decoding stays lossless, but they were trained for
 * another checkpoint of this shape and will likely accept fewer tokens); otherwise `undefined`.
 */
export function otherTargetWarning(
  config: DraftHeadsConfig,
  target: { readonly name?: string; readonly config: ModelConfig },
): string | undefined {
  const trained = config.target.configSha256;
  const actual = target.config.configSha256;
  if (!trained || !actual || trained === actual) return undefined;
  return (
    `These ${config.kind} draft heads were trained for "${config.target.name}" (config.json SHA-256 ${trained.slice(0, 12)}…), ` +
    `but "${target.name ?? 'the target'}" has config.json SHA-256 ${actual.slice(0, 12)}…. They fit its shape and decoding stays lossless, ` +
    'but they may accept few tokens; train heads for this target with `python -m train_heads` (tooling/train-heads).'
  );
}
