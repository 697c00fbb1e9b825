"""Draft heads: Gumiho (fc + 2 serial Llama layers + 5 MLP heads), EAGLE-2 (fc + 1 layer), Medusa
(5 residual-MLP heads on the last target feature). All heads output H-vectors for the target's
frozen lm_head; the token embeddings are a frozen copy of the target's.

State-dict keys equal the export layout (see README): fc.*, layers.{i}.*, mlp.{i}.{k}.linear.*.
"""
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .llama import DecoderLayer, LlamaConfig, causal_mask, rope_cos_sin


@dataclass
class HeadsConfig:
    kind: str
    hiddenSize: int
    vocabSize: int
    intermediateSize: int
    numAttentionHeads: int
    numKeyValueHeads: int
    headDim: int
    rmsNormEps: float
    ropeTheta: float
    serialLayers: int
    mlpHeads: int
    mlpBlocks: int
    fcBias: bool

    @staticmethod
    def for_kind(kind, tcfg: LlamaConfig, mlp_blocks=0):
        if kind == "gumiho":
            sl, mh, mb = 2, 5, 6
        elif kind == "eagle2":
            sl, mh, mb = 1, 0, 0
        elif kind == "medusa":
            sl, mh, mb = 0, 5, (mlp_blocks or 1)
        else:
            raise ValueError(kind)
        return HeadsConfig(
            kind=kind,
            hiddenSize=tcfg.hidden_size,
            vocabSize=tcfg.vocab_size,
            intermediateSize=tcfg.intermediate_size,
            numAttentionHeads=tcfg.num_attention_heads,
            numKeyValueHeads=tcfg.num_key_value_heads,
            headDim=tcfg.head_dim,
            rmsNormEps=tcfg.rms_norm_eps,
            ropeTheta=tcfg.rope_theta,
            serialLayers=sl,
            mlpHeads=mh,
            mlpBlocks=mb,
            fcBias=sl > 0,
        )

    @staticmethod
    def from_dict(d):
        keys = HeadsConfig.__dataclass_fields__.keys()
        return HeadsConfig(**{k: d[k] for k in keys})

    def to_dict(self):
        return asdict(self)

    def llama(self) -> LlamaConfig:
        return LlamaConfig(
            hidden_size=self.hiddenSize,
            intermediate_size=self.intermediateSize,
            num_hidden_layers=self.serialLayers,
            num_attention_heads=self.numAttentionHeads,
            num_key_value_heads=self.numKeyValueHeads,
            head_dim=self.headDim,
            vocab_size=self.vocabSize,
            rms_norm_eps=self.rmsNormEps,
            rope_theta=self.ropeTheta,
        )


class Block(nn.Module):
    """y = SiLU(W x + b) (no residual) or y = x + SiLU(W x + b). W zero-initialised."""

    def __init__(self, din, dout, residual):
        super().__init__()
        self.linear = nn.Linear(din, dout, bias=True)
        nn.init.zeros_(self.linear.weight)
        self.residual = residual

    def forward(self, x):
        y = F.silu(self.linear(x))
        return x + y if self.residual else y


class DraftHeads(nn.Module):
    def __init__(self, cfg: HeadsConfig, embed_weight, lm_weight):
        super().__init__()
        self.cfg = cfg
        H = cfg.hiddenSize
        self.register_buffer("embed_weight", embed_weight.detach().float().clone(), persistent=False)
        self.register_buffer("lm_weight", lm_weight.detach().float().clone(), persistent=False)
        if cfg.serialLayers > 0:
            self.fc = nn.Linear(2 * H, H, bias=cfg.fcBias)
            lc = cfg.llama()
            self.layers = nn.ModuleList([DecoderLayer(lc, input_norm=(i > 0)) for i in range(cfg.serialLayers)])
        if cfg.mlpHeads > 0:
            heads = []
            for _ in range(cfg.mlpHeads):
                if cfg.kind == "gumiho":
                    blocks = [Block(2 * H, H, residual=False)] + [Block(H, H, True) for _ in range(cfg.mlpBlocks - 1)]
                else:
                    blocks = [Block(H, H, True) for _ in range(cfg.mlpBlocks)]
                heads.append(nn.ModuleList(blocks))
            self.mlp = nn.ModuleList(heads)

    # ---- pieces ----
    def lm(self, h):
        return F.linear(h, self.lm_weight)

    def embed(self, tokens):
        return F.embedding(tokens, self.embed_weight)

    def fuse(self, tokens, feats):
        """fc([e(tokens); feats])  (embedding first)."""
        return self.fc(torch.cat([self.embed(tokens), feats], dim=-1))

    def decoder(self, x, positions=None, mask=None):
        B, T, _ = x.shape
        if positions is None:
            positions = torch.arange(T)[None]
        cos, sin = rope_cos_sin(positions, self.cfg.headDim, self.cfg.ropeTheta)
        if mask is None:
            mask = causal_mask(T)
        kvs = []
        for layer in self.layers:
            x, kv = layer(x, cos, sin, mask)
            kvs.append(kv)
        return x, kvs

    def serial(self, feats, tokens, positions=None, mask=None):
        """feats [B,T,H] (f_p), tokens [B,T] (x_{p+1}) -> h [B,T,H] (~ f_{p+1})."""
        h, _ = self.decoder(self.fuse(tokens, feats), positions, mask)
        return h

    def mlp_head(self, i, x):
        for blk in self.mlp[i]:
            x = blk(x)
        return x

    def mlp_all(self, x):
        """x [..., 2H] (gumiho) or [..., H] (medusa) -> [heads, ..., H]."""
        return torch.stack([self.mlp_head(i, x) for i in range(self.cfg.mlpHeads)])

    # ---- multi-step (evaluation): every root at once, exact KV semantics ----
    def serial_steps(self, feats, tokens, next_tokens_list):
        """Teacher-forced autoregressive drafting for every root position t at once.

        Step 1: h1[t] = serial output at t over the true pairs (f_p, x_{p+1}), p <= t.
        Step d+1: input pair (h_d[t], next_tokens_list[d-1][t]) at position t+d, attending to the
        true pairs p <= t and to the speculative rows of steps 2..d of the same root.
        Returns [h1, h2, ...] (len = 1 + len(next_tokens_list)), each [B,T,H]."""
        B, T, _ = feats.shape
        x = self.fuse(tokens, feats)
        pos = torch.arange(T)[None]
        cos, sin = rope_cos_sin(pos, self.cfg.headDim, self.cfg.ropeTheta)
        mask = causal_mask(T)
        base = []
        for layer in self.layers:
            x, kv = layer(x, cos, sin, mask)
            base.append(kv)
        outs = [x]
        diag = [[] for _ in self.layers]
        h = x
        for d, nt in enumerate(next_tokens_list):
            y = self.fuse(nt, h)
            c2, s2 = rope_cos_sin(pos + d + 1, self.cfg.headDim, self.cfg.ropeTheta)
            for li, layer in enumerate(self.layers):
                y, kv = layer(y, c2, s2, mask, base_kv=base[li], diag_kvs=diag[li])
                diag[li].append(kv)
            h = y
            outs.append(h)
        return outs
