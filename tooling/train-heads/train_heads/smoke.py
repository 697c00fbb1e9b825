"""smoke: tiny random target, a few training steps per head kind, export, and reference.json
with fixed inputs and PyTorch outputs for checking the TypeScript loader (schema in README)."""
import argparse
import json
import os

import torch

from .common import log, write_json
from .export import export_heads, load_exported
from .llama import load_llama
from .safetensors_io import save_file
from .train import build_model, compute_losses

TINY = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 256,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "max_position_embeddings": 512,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "torch_dtype": "bfloat16",
}


def make_tiny_target(folder, seed):
    os.makedirs(folder, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    c = TINY
    H, I, V, nh, kvh, hd = (c[k] for k in ("hidden_size", "intermediate_size", "vocab_size",
                                           "num_attention_heads", "num_key_value_heads", "head_dim"))
    w = {"model.embed_tokens.weight": torch.randn(V, H, generator=g) * 0.5, "model.norm.weight": 1 + 0.1 * torch.randn(H, generator=g)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = torch.randn(nh * hd, H, generator=g) * 0.08
        w[p + "self_attn.k_proj.weight"] = torch.randn(kvh * hd, H, generator=g) * 0.08
        w[p + "self_attn.v_proj.weight"] = torch.randn(kvh * hd, H, generator=g) * 0.08
        w[p + "self_attn.o_proj.weight"] = torch.randn(H, nh * hd, generator=g) * 0.08
        w[p + "mlp.gate_proj.weight"] = torch.randn(I, H, generator=g) * 0.08
        w[p + "mlp.up_proj.weight"] = torch.randn(I, H, generator=g) * 0.08
        w[p + "mlp.down_proj.weight"] = torch.randn(H, I, generator=g) * 0.08
        w[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(H, generator=g)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(H, generator=g)
    save_file(w, os.path.join(folder, "model.safetensors"), dtype="BF16", metadata={"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(TINY, f, indent=2)


def tolist(t):
    return [float(x) for x in t.reshape(-1)] if t.dim() <= 1 else [tolist(r) for r in t]


@torch.no_grad()
def reference_for(model, target, input_ids, z_seed):
    n = len(input_ids) - 1
    ids = torch.tensor([input_ids])
    feats = target.hidden(ids)[0, :n]  # f_p for p = 0..n-1
    tokens = ids[0, 1:]  # x_{p+1}
    ref = {
        "kind": model.cfg.kind,
        "n": n,
        "features": tolist(feats),
        "tokens": [int(t) for t in tokens],
        "positions": list(range(n)),
    }
    H = model.cfg.hiddenSize
    if model.cfg.serialLayers > 0:
        h = model.serial(feats[None], tokens[None])[0]
        lg = model.lm(h[-1])
        top = lg.topk(5)
        ref["serialHidden"] = tolist(h)
        ref["serialLogits"] = {"ids": [int(i) for i in top.indices], "values": tolist(top.values)}
    if model.cfg.mlpHeads > 0:
        if model.cfg.kind == "gumiho":
            g = torch.Generator().manual_seed(z_seed)
            z = torch.randn(2 * H, generator=g)
            ref["mlpInput"] = tolist(z)
        else:
            z = feats[-1]
        outs = model.mlp_all(z[None])[:, 0]
        ref["mlpOutputs"] = tolist(outs)
        tops = [model.lm(o).topk(5) for o in outs]
        ref["mlpLogits"] = [{"ids": [int(i) for i in t.indices], "values": tolist(t.values)} for t in tops]
    return ref


def run_smoke(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(args.seed)
    tdir = os.path.join(out, "target")
    make_tiny_target(tdir, args.seed)
    target = load_llama(tdir)
    V = target.cfg.vocab_size
    g = torch.Generator().manual_seed(args.seed + 1)
    X = torch.randint(1, V, (4, 32), generator=g)
    with torch.no_grad():
        Fh = target.hidden(X)
    targs = argparse.Namespace(ce_frac=1.0, noise=0.2, v_w=1.0, p_w=0.1, mlp_v_w=1.0, mlp_p_w=0.1, mlp_loss_weight=9.0, mlp_decay=0.8)
    input_ids = [int(t) for t in torch.randint(1, V, (9,), generator=g)]
    reference = {
        "format": "gumiho-heads-reference",
        "formatVersion": 1,
        "target": "target",
        "targetInputIds": input_ids,
        "kinds": {},
    }
    for kind in ("gumiho", "eagle2", "medusa"):
        model = build_model(kind, target, 2 if kind == "medusa" else 0)
        # random (non-zero) start so that every weight matters in the reference
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 2:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
        losses = []
        for _ in range(args.steps):
            loss, st = compute_losses(model, X, Fh, targs)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            losses.append(round(st["loss"], 5))
        hdir = os.path.join(out, kind)
        export_heads(model, hdir, tdir, "smoke-tiny", {"smoke": True, "steps": args.steps, "losses": losses})
        loaded, _ = load_exported(hdir, target)  # bf16-rounded weights, as a loader sees them
        ref = reference_for(loaded, target, input_ids, args.seed + 7)
        ref["heads"] = kind
        reference["kinds"][kind] = ref
        log(f"smoke {kind}: losses {losses}")
    with torch.no_grad():
        ref_ids = torch.tensor([input_ids])
        lg = target(ref_ids)[0, -1]
        reference["targetLastLogitsTop5"] = {"ids": [int(i) for i in lg.topk(5).indices], "values": tolist(lg.topk(5).values)}
    write_json(os.path.join(out, "reference.json"), reference)
    log(f"smoke reference written to {os.path.join(out, 'reference.json')}")
    return reference
