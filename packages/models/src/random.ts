/**
 * Tiny random Llama checkpoints in Hugging Face layout, for tests of anything that needs a target
 * (loaders, backends, draft heads, the CLI) without the real model. Deterministic for a seed.
 *
 * Not a model anyone should generate text with.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTensor } from '@gumiho/core';
import { writeSafetensors } from '@gumiho/safetensors';

/** Options of {@link writeRandomLlama}. Sizes default to a model of a few thousand parameters. */
export interface RandomLlamaOptions {
  readonly vocabSize?: number;
  readonly hiddenSize?: number;
  readonly intermediateSize?: number;
  readonly numLayers?: number;
  readonly numHeads?: number;
  readonly numKvHeads?: number;
  readonly headDim?: number;
  readonly maxPositions?: number;
  readonly tieWordEmbeddings?: boolean;
  /** Seed of the weights (default 1). */
  readonly seed?: number;
  /** Number of shards (default 1: a single `model.safetensors`; more: an index plus shards). */
  readonly shards?: number;
  /** On-disk dtype (default `F32`). */
  readonly dtype?: 'F32' | 'BF16';
  /** Extra or overriding `config.json` fields. */
  readonly config?: Readonly<Record<string, unknown>>;
}

/** Generates the tensors of a random Llama, under Hugging Face names. */
export function randomLlamaTensors(options: RandomLlamaOptions = {}): Map<string, HostTensor<'float32'>> {
  const vocab = options.vocabSize ?? 64;
  const h = options.hiddenSize ?? 16;
  const m = options.intermediateSize ?? 24;
  const heads = options.numHeads ?? 4;
  const kvHeads = options.numKvHeads ?? 2;
  const headDim = options.headDim ?? 4;
  let state = (options.seed ?? 1) >>> 0 || 1;
  const random = (): number => {
    // xorshift32: fast and deterministic.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x100000000;
  };
  const tensors = new Map<string, HostTensor<'float32'>>();
  const add = (name: string, shape: number[], scale: number, offset = 0): void => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = offset + (random() * 2 - 1) * scale;
    tensors.set(name, { dtype: 'float32', shape, data });
  };
  add('model.embed_tokens.weight', [vocab, h], 1);
  for (let layer = 0; layer < (options.numLayers ?? 2); layer++) {
    const p = `model.layers.${layer}`;
    add(`${p}.input_layernorm.weight`, [h], 0.2, 1);
    add(`${p}.self_attn.q_proj.weight`, [heads * headDim, h], 0.5);
    add(`${p}.self_attn.k_proj.weight`, [kvHeads * headDim, h], 0.5);
    add(`${p}.self_attn.v_proj.weight`, [kvHeads * headDim, h], 0.5);
    add(`${p}.self_attn.o_proj.weight`, [h, heads * headDim], 0.3);
    add(`${p}.post_attention_layernorm.weight`, [h], 0.2, 1);
    add(`${p}.mlp.gate_proj.weight`, [m, h], 0.4);
    add(`${p}.mlp.up_proj.weight`, [m, h], 0.4);
    add(`${p}.mlp.down_proj.weight`, [h, m], 0.3);
  }
  add('model.norm.weight', [h], 0.2, 1);
  if (options.tieWordEmbeddings === false) add('lm_head.weight', [vocab, h], 1);
  return tensors;
}

/**
 * Writes a random Llama folder (`config.json` plus safetensors, sharded if asked) to `folder`
 * and returns the tensors it wrote.
 */
export async function writeRandomLlama(folder: string, options: RandomLlamaOptions = {}): Promise<Map<string, HostTensor<'float32'>>> {
  await mkdir(folder, { recursive: true });
  const tensors = randomLlamaTensors(options);
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: options.vocabSize ?? 64,
    hidden_size: options.hiddenSize ?? 16,
    intermediate_size: options.intermediateSize ?? 24,
    num_hidden_layers: options.numLayers ?? 2,
    num_attention_heads: options.numHeads ?? 4,
    num_key_value_heads: options.numKvHeads ?? 2,
    head_dim: options.headDim ?? 4,
    max_position_embeddings: options.maxPositions ?? 128,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: options.tieWordEmbeddings ?? true,
    hidden_act: 'silu',
    bos_token_id: 0,
    eos_token_id: 0,
    ...options.config,
  };
  await writeFile(join(folder, 'config.json'), JSON.stringify(config, null, 2));
  const dtype = options.dtype ?? 'F32';
  const shards = options.shards ?? 1;
  if (shards <= 1) {
    await writeSafetensors(join(folder, 'model.safetensors'), tensors, { dtype });
    return tensors;
  }
  const entries = [...tensors];
  const perShard = Math.ceil(entries.length / shards);
  const weightMap: Record<string, string> = {};
  for (let shard = 0; shard < shards; shard++) {
    const file = `model-${String(shard + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = entries.slice(shard * perShard, (shard + 1) * perShard);
    for (const [name] of part) weightMap[name] = file;
    await writeSafetensors(join(folder, file), part, { dtype });
  }
  await writeFile(join(folder, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
  return tensors;
}
