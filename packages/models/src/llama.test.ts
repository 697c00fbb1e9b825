import { MASK_MIN } from '@gumiho/core';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { buildAttentionMask, createLlamaProgram, fuseLlamaWeights, gateUpWeightName, qkvWeightName } from './llama.js';
import { MapWeightStore } from '@gumiho/safetensors';
import { randomLlamaTensors } from './random.js';

describe('buildAttentionMask', () => {
  it('is causal over the new rows with all committed rows visible', () => {
    const mask = buildAttentionMask(3, 2, 0);
    const V = 0;
    const X = Math.fround(MASK_MIN);
    expect(Array.from(mask)).toEqual([V, V, V, X, X, V, V, V, V, X, V, V, V, V, V]);
  });

  it('hides pending rows and follows the tree mask', () => {
    // Root 0 with children 1 and 2 (siblings).
    const tree = Uint8Array.from([1, 0, 0, 1, 1, 0, 1, 0, 1]);
    const mask = buildAttentionMask(3, 1, 2, tree);
    const X = Math.fround(MASK_MIN);
    expect(Array.from(mask)).toEqual([0, X, X, 0, X, X, 0, X, X, 0, 0, X, 0, X, X, 0, X, 0]);
  });
});

describe('fuseLlamaWeights', () => {
  it('concatenates q/k/v and gate/up along the output rows and shares the rest', () => {
    const tensors = randomLlamaTensors({ numLayers: 1 });
    const config = parseModelConfig({
      model_type: 'llama', vocab_size: 64, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1,
      num_attention_heads: 4, num_key_value_heads: 2, head_dim: 4,
    });
    const fused = fuseLlamaWeights(new MapWeightStore(tensors), config);
    const qkv = fused.get(qkvWeightName(0))!;
    expect(qkv.shape).toEqual([16 + 8 + 8, 16]);
    const v = tensors.get('model.layers.0.self_attn.v_proj.weight')!;
    expect(Array.from(qkv.data.subarray(24 * 16))).toEqual(Array.from(v.data));
    expect(fused.get(gateUpWeightName(0))!.shape).toEqual([48, 16]);
    expect(fused.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
    expect(fused.get('model.embed_tokens.weight')).toBe(tensors.get('model.embed_tokens.weight'));
  });

  it('declares symbolic inputs and one cache', () => {
    const config = parseModelConfig({ model_type: 'llama', vocab_size: 8, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 3, num_attention_heads: 2 });
    const program = createLlamaProgram(config, 32);
    expect(program.inputs).toEqual({
      ids: { dtype: 'int32', shape: ['n'] },
      positions: { dtype: 'int32', shape: ['n'] },
      mask: { dtype: 'float32', shape: ['n', 't'] },
      logitRows: { dtype: 'int32', shape: ['r'] },
    });
    expect(program.caches).toEqual({ target: { layers: 3, kvHeads: 2, headDim: 4, capacity: 32 } });
  });
});
