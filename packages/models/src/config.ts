/**
 * Parsing of a Hugging Face `config.json` into core's {@link ModelConfig}, with the checks that
 * reject architectures and options this package does not implement. Only the Llama family is
 * supported (`model_type: "llama"`, default RoPE, SiLU MLP, no biases).
 *
 * Not a general transformers config reader: fields that do not change the computation are ignored.
 */
import { ModelLoadError, UnsupportedModelError, type ModelConfig } from '@gumiho/core';

/** The `model_type` values {@link parseModelConfig} accepts. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ['llama'];

type Json = Record<string, unknown>;

function positiveInteger(json: Json, key: string, path: string, fallback?: number): number {
  const value = json[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ModelLoadError(`${path}: "${key}" must be a positive integer, got ${JSON.stringify(value)}.`, {
      path,
      fix: `set "${key}" in config.json to the value the checkpoint was trained with.`,
    });
  }
  return value;
}

function positiveNumber(json: Json, key: string, path: string, fallback: number): number {
  const value = json[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ModelLoadError(`${path}: "${key}" must be a positive number, got ${JSON.stringify(value)}.`, {
      path,
      fix: `set "${key}" in config.json to a positive number.`,
    });
  }
  return value;
}

function tokenIds(value: unknown, key: string, path: string): number[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new ModelLoadError(`${path}: "${key}" must be a token id or a list of token ids, got ${JSON.stringify(value)}.`, {
        path,
        fix: `fix "${key}" in config.json.`,
      });
    }
  }
  return list as number[];
}

/**
 * Reads a parsed `config.json` object. `path` is used in error messages.
 *
 * @throws UnsupportedModelError for a `model_type` other than `llama`, a RoPE scaling type other
 *   than `default`, biases in attention or MLP, or an activation other than SiLU.
 * @throws ModelLoadError for missing or malformed fields.
 */
export function parseModelConfig(json: unknown, path = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelLoadError(`${path} does not hold a JSON object.`, { path, fix: 'use the config.json written by transformers.' });
  }
  const config = json as Json;
  const modelType = config.model_type;
  if (typeof modelType !== 'string' || !SUPPORTED_MODEL_TYPES.includes(modelType)) {
    throw new UnsupportedModelError(
      `${path}: model_type ${JSON.stringify(modelType)} is not supported; supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}.`,
      { fix: 'use a Llama-family checkpoint (LlamaForCausalLM), or add an implementation for this architecture.' },
    );
  }
  const rope = (typeof config.rope_parameters === 'object' && config.rope_parameters !== null ? config.rope_parameters : {}) as Json;
  const scaling = (typeof config.rope_scaling === 'object' && config.rope_scaling !== null ? config.rope_scaling : {}) as Json;
  const ropeType = rope.rope_type ?? scaling.rope_type ?? scaling.type ?? 'default';
  if (ropeType !== 'default') {
    throw new UnsupportedModelError(`${path}: RoPE type ${JSON.stringify(ropeType)} is not supported; only "default" RoPE is.`, {
      fix: 'use a checkpoint with plain RoPE (no rope scaling).',
    });
  }
  if (config.attention_bias === true || config.mlp_bias === true) {
    throw new UnsupportedModelError(`${path}: attention or MLP biases are not supported (attention_bias/mlp_bias is true).`, {
      fix: 'use a Llama checkpoint without projection biases.',
    });
  }
  const act = config.hidden_act ?? 'silu';
  if (act !== 'silu') {
    throw new UnsupportedModelError(`${path}: hidden_act ${JSON.stringify(act)} is not supported; only "silu" is.`, {
      fix: 'use a Llama checkpoint with a SwiGLU (silu) MLP.',
    });
  }
  const hiddenSize = positiveInteger(config, 'hidden_size', path);
  const numHeads = positiveInteger(config, 'num_attention_heads', path);
  const numKvHeads = positiveInteger(config, 'num_key_value_heads', path, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLoadError(`${path}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads}).`, {
      path,
      fix: 'fix the head counts in config.json.',
    });
  }
  const headDimDefault = Number.isInteger(hiddenSize / numHeads) ? hiddenSize / numHeads : undefined;
  const headDim = positiveInteger(config, 'head_dim', path, headDimDefault);
  const ropeThetaValue = rope.rope_theta ?? config.rope_theta ?? 10000;
  const ropeTheta = positiveNumber({ rope_theta: ropeThetaValue }, 'rope_theta', path, 10000);
  const bos = tokenIds(config.bos_token_id, 'bos_token_id', path);
  return {
    modelType,
    vocabSize: positiveInteger(config, 'vocab_size', path),
    hiddenSize,
    intermediateSize: positiveInteger(config, 'intermediate_size', path),
    numLayers: positiveInteger(config, 'num_hidden_layers', path),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(config, 'rms_norm_eps', path, 1e-6),
    ropeTheta,
    maxPositions: positiveInteger(config, 'max_position_embeddings', path, 2048),
    tieWordEmbeddings: config.tie_word_embeddings === undefined ? true : config.tie_word_embeddings === true,
    bosTokenId: bos[0],
    eosTokenIds: tokenIds(config.eos_token_id, 'eos_token_id', path),
  };
}

/** Shape of each weight a Llama checkpoint must hold, by Hugging Face name. */
export function expectedLlamaWeights(config: ModelConfig): Map<string, readonly number[]> {
  const { hiddenSize: h, intermediateSize: m, numHeads, numKvHeads, headDim, vocabSize } = config;
  const expected = new Map<string, readonly number[]>();
  expected.set('model.embed_tokens.weight', [vocabSize, h]);
  for (let layer = 0; layer < config.numLayers; layer++) {
    const prefix = `model.layers.${layer}`;
    expected.set(`${prefix}.input_layernorm.weight`, [h]);
    expected.set(`${prefix}.self_attn.q_proj.weight`, [numHeads * headDim, h]);
    expected.set(`${prefix}.self_attn.k_proj.weight`, [numKvHeads * headDim, h]);
    expected.set(`${prefix}.self_attn.v_proj.weight`, [numKvHeads * headDim, h]);
    expected.set(`${prefix}.self_attn.o_proj.weight`, [h, numHeads * headDim]);
    expected.set(`${prefix}.post_attention_layernorm.weight`, [h]);
    expected.set(`${prefix}.mlp.gate_proj.weight`, [m, h]);
    expected.set(`${prefix}.mlp.up_proj.weight`, [m, h]);
    expected.set(`${prefix}.mlp.down_proj.weight`, [h, m]);
  }
  expected.set('model.norm.weight', [h]);
  if (!config.tieWordEmbeddings) expected.set('lm_head.weight', [vocabSize, h]);
  return expected;
}
