"""A plain PyTorch Llama (HF LlamaForCausalLM compatible) used as the frozen target, plus the
decoder-layer building blocks reused by the draft heads.

Supports: config.json from transformers 4.x/5.x (rope theta from `rope_theta` or
`rope_parameters.rope_theta`, default-type RoPE only), GQA, tied or untied LM head, bf16/fp16/fp32
safetensors (single file or index + shards). Computation is float32.
"""
import hashlib
import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .safetensors_io import load_hf_folder_weights


@dataclass
class LlamaConfig:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    max_position_embeddings: int = 2048

    @staticmethod
    def from_dict(d):
        rope = d.get("rope_parameters") or {}
        theta = d.get("rope_theta", rope.get("rope_theta", 10000.0))
        if rope.get("rope_theta") is not None:
            theta = rope["rope_theta"]
        rtype = rope.get("rope_type", (d.get("rope_scaling") or {}).get("rope_type", "default"))
        if rtype not in (None, "default"):
            raise ValueError(f"unsupported rope_type {rtype}")
        if d.get("attention_bias") or d.get("mlp_bias"):
            raise ValueError("attention/mlp bias not supported")
        if d.get("hidden_act", "silu") != "silu":
            raise ValueError("only silu activation supported")
        nh = d["num_attention_heads"]
        return LlamaConfig(
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=nh,
            num_key_value_heads=d.get("num_key_value_heads") or nh,
            head_dim=d.get("head_dim") or d["hidden_size"] // nh,
            vocab_size=d["vocab_size"],
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            rope_theta=float(theta),
            tie_word_embeddings=d.get("tie_word_embeddings", True),
            max_position_embeddings=d.get("max_position_embeddings", 2048),
        )


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rope_cos_sin(positions, head_dim, theta):
    """positions: LongTensor [..., T] -> cos, sin [..., T, head_dim] (HF 'default' RoPE)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[..., None] * inv_freq
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    # x [B, heads, T, hd]; cos/sin [B or 1, T, hd]
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


def causal_mask(T, dtype=torch.float32):
    m = torch.full((T, T), torch.finfo(dtype).min, dtype=dtype)
    return torch.triu(m, diagonal=1)[None, None]


def repeat_kv(x, n):
    if n == 1:
        return x
    B, kvh, T, hd = x.shape
    return x[:, :, None].expand(B, kvh, n, T, hd).reshape(B, kvh * n, T, hd)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        H, nh, kvh, hd = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.nh, self.kvh, self.hd = nh, kvh, hd
        self.q_proj = nn.Linear(H, nh * hd, bias=False)
        self.k_proj = nn.Linear(H, kvh * hd, bias=False)
        self.v_proj = nn.Linear(H, kvh * hd, bias=False)
        self.o_proj = nn.Linear(nh * hd, H, bias=False)

    def forward(self, x, cos, sin, mask, base_kv=None, diag_kvs=(), past_kv=None):
        """Normal mode (base_kv None): causal self-attention with additive `mask` [.., T, T].

        Diagonal mode (evaluation of multi-step drafting for every root at once): row t attends to
        base_kv rows allowed by `mask` [.., T, S], to row t of every tensor pair in `diag_kvs`
        (earlier speculative steps of the same root) and to itself.
        Returns (output, (k, v)) where k, v are this call's rotated keys/values [B, kvh, T, hd]."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        rep = self.nh // self.kvh
        scale = 1.0 / math.sqrt(self.hd)
        if past_kv is not None:  # KV cache: mask must be [.., T, S_past + T]
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        if base_kv is None:
            s = torch.matmul(q, repeat_kv(k, rep).transpose(2, 3)) * scale + mask
            p = torch.softmax(s.float(), dim=-1).to(q.dtype)
            o = torch.matmul(p, repeat_kv(v, rep))
        else:
            kb, vb = base_kv
            s_base = torch.matmul(q, repeat_kv(kb, rep).transpose(2, 3)) * scale + mask
            dks = [dk for dk, _ in diag_kvs] + [k]
            dvs = [dv for _, dv in diag_kvs] + [v]
            s_diag = torch.stack([(q * repeat_kv(dk, rep)).sum(-1) * scale for dk in dks], dim=-1)
            p = torch.softmax(torch.cat([s_base, s_diag], dim=-1), dim=-1)
            S = kb.shape[2]
            o = torch.matmul(p[..., :S], repeat_kv(vb, rep))
            for j, dv in enumerate(dvs):
                o = o + p[..., S + j, None] * repeat_kv(dv, rep)
        o = o.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(o), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        H, I = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, input_norm=True):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps) if input_norm else None
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, mask, base_kv=None, diag_kvs=(), past_kv=None):
        h = self.input_layernorm(x) if self.input_layernorm is not None else x
        a, kv = self.self_attn(h, cos, sin, mask, base_kv, diag_kvs, past_kv)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, kv


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head_weight = None  # set in load; [V, H]

    def hidden(self, ids, positions=None, cache=None):
        """ids [B, T] -> final post-norm hidden states [B, T, H] (float32).
        cache: optional list (one (k, v) per layer, or empty list) extended in place."""
        B, T = ids.shape
        past = 0 if not cache else cache[0][0].shape[2]
        if positions is None:
            positions = torch.arange(past, past + T)[None]
        cos, sin = rope_cos_sin(positions, self.cfg.head_dim, self.cfg.rope_theta)
        mask = causal_mask(T)
        if past:
            mask = torch.cat([torch.zeros(1, 1, T, past), mask], dim=-1)
        x = self.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            pkv = cache[i] if past else None
            x, kv = layer(x, cos, sin, mask, past_kv=pkv)
            if cache is not None:
                if len(cache) > i:
                    cache[i] = kv
                else:
                    cache.append(kv)
        return self.norm(x)

    def logits(self, hidden):
        return F.linear(hidden, self.lm_head_weight)

    def forward(self, ids):
        return self.logits(self.hidden(ids))

    @torch.no_grad()
    def greedy_hidden(self, prompts, n):
        """Batched greedy continuation with a KV cache: prompts [B, P] -> (ids [B, P+n], hidden
        [B, P+n, H]), the last n ids being the greedy tokens and hidden the final post-norm states of
        the whole sequence (prefill, then one cached step per generated token)."""
        cache = []
        h = self.hidden(prompts, cache=cache)
        ids, hs = [prompts], [h]
        for _ in range(n):
            t = self.logits(h[:, -1]).argmax(-1, keepdim=True)
            h = self.hidden(t, cache=cache)
            ids.append(t)
            hs.append(h)
        return torch.cat(ids, 1), torch.cat(hs, 1)

    def greedy(self, ids, n):
        """Greedy continuation of one token list (n new token ids)."""
        return self.greedy_hidden(torch.tensor([list(ids)]), n)[0][0, len(ids) :].tolist()


def load_config_dict(folder):
    with open(os.path.join(folder, "config.json")) as f:
        return json.load(f)


def config_sha256(folder):
    with open(os.path.join(folder, "config.json"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_llama(folder) -> LlamaForCausalLM:
    cfg = LlamaConfig.from_dict(load_config_dict(folder))
    w = load_hf_folder_weights(folder, torch.float32)
    w = {(k[len("model.") :] if k.startswith("model.") else k): v for k, v in w.items()}
    model = LlamaForCausalLM(cfg)
    lm = w.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict(w, strict=False)
    if missing or unexpected:
        raise ValueError(f"weight mismatch: missing={missing} unexpected={unexpected}")
    if lm is None or cfg.tie_word_embeddings:
        lm = model.embed_tokens.weight.detach()
    model.lm_head_weight = lm.detach().clone()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
