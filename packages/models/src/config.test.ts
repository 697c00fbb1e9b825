import { readFileSync } from 'node:fs';
import { GumihoError, ModelLoadError, UnsupportedModelError } from '@gumiho/core';
import { describe, expect, it } from 'vitest';
import { expectedLlamaWeights, parseModelConfig } from './config.js';

const SHARED_CONFIG = new URL('../../../../shared/models/py-llama-28m/config.json', import.meta.url);

describe('parseModelConfig', () => {
  it('reads the default model config', () => {
    const config = parseModelConfig(JSON.parse(readFileSync(SHARED_CONFIG, 'utf8')));
    expect(config).toMatchObject({
      modelType: 'llama',
      vocabSize: 8192,
      hiddenSize: 384,
      intermediateSize: 1024,
      numLayers: 16,
      numHeads: 6,
      numKvHeads: 2,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      maxPositions: 2048,
      tieWordEmbeddings: true,
      bosTokenId: 0,
      eosTokenIds: [0],
    });
  });

  const base = {
    model_type: 'llama',
    vocab_size: 10,
    hidden_size: 8,
    intermediate_size: 12,
    num_hidden_layers: 1,
    num_attention_heads: 2,
  };

  it('defaults head_dim, kv heads, and reads rope theta from rope_parameters and eos lists', () => {
    const config = parseModelConfig({ ...base, rope_parameters: { rope_theta: 500000, rope_type: 'default' }, eos_token_id: [2, 3] });
    expect(config.headDim).toBe(4);
    expect(config.numKvHeads).toBe(2);
    expect(config.ropeTheta).toBe(500000);
    expect(config.eosTokenIds).toEqual([2, 3]);
    expect(parseModelConfig({ ...base, rope_theta: 1234 }).ropeTheta).toBe(1234);
  });

  it('rejects other architectures, naming the supported ones', () => {
    const error = (() => {
      try {
        parseModelConfig({ ...base, model_type: 'mistral' });
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(UnsupportedModelError);
    expect(GumihoError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/"mistral".*supported model types: llama/);
    expect((error as GumihoError).fix).toBeTruthy();
  });

  it('rejects rope scaling, biases and other activations', () => {
    expect(() => parseModelConfig({ ...base, rope_scaling: { rope_type: 'llama3' } })).toThrow(UnsupportedModelError);
    expect(() => parseModelConfig({ ...base, attention_bias: true })).toThrow(UnsupportedModelError);
    expect(() => parseModelConfig({ ...base, hidden_act: 'gelu' })).toThrow(UnsupportedModelError);
  });

  it('names a missing or malformed field', () => {
    const { hidden_size: _, ...noHidden } = base;
    expect(() => parseModelConfig(noHidden)).toThrow(ModelLoadError);
    expect(() => parseModelConfig(noHidden)).toThrow(/"hidden_size" must be a positive integer/);
    expect(() => parseModelConfig({ ...base, num_key_value_heads: 3 })).toThrow(/not a multiple/);
  });

  it('lists the expected tensors with their shapes', () => {
    const config = parseModelConfig({ ...base, num_key_value_heads: 1, tie_word_embeddings: false });
    const expected = expectedLlamaWeights(config);
    expect(expected.get('model.layers.0.self_attn.k_proj.weight')).toEqual([4, 8]);
    expect(expected.get('model.layers.0.mlp.down_proj.weight')).toEqual([8, 12]);
    expect(expected.get('lm_head.weight')).toEqual([10, 8]);
    expect(expected.size).toBe(1 + 9 + 1 + 1);
  });
});
