"""Export a trained run to the gumiho-heads format (bf16 model.safetensors + config.json)."""
import json
import os

import torch

from .common import log, write_json
from .features import list_shards
from .heads import DraftHeads, HeadsConfig
from .llama import config_sha256, load_config_dict, load_llama
from .safetensors_io import load_file, save_file

FORMAT = "gumiho-heads"
FORMAT_VERSION = 1


def heads_state_dict(model: DraftHeads):
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    for k in sd:
        assert k.startswith(("fc.", "layers.", "mlp.")), k
    return sd


def export_heads(model: DraftHeads, out_dir, target_dir, target_name=None, training=None):
    os.makedirs(out_dir, exist_ok=True)
    tcfg = load_config_dict(target_dir)
    cfg = model.cfg.to_dict()
    config = {"format": FORMAT, "formatVersion": FORMAT_VERSION}
    config.update(cfg)
    if cfg["serialLayers"] == 0:
        config["fcBias"] = False
    config["target"] = {
        "name": target_name or os.path.basename(os.path.normpath(target_dir)),
        "hiddenSize": tcfg["hidden_size"],
        "vocabSize": tcfg["vocab_size"],
        "numHiddenLayers": tcfg["num_hidden_layers"],
        "configSha256": config_sha256(target_dir),
    }
    config["training"] = training or {}
    save_file(heads_state_dict(model), os.path.join(out_dir, "model.safetensors"), dtype="BF16",
              metadata={"format": FORMAT, "kind": cfg["kind"]})
    write_json(os.path.join(out_dir, "config.json"), config)
    return config


def load_exported(heads_dir, target_model):
    """Load an exported heads folder (or a run dir with final.pt/checkpoint.pt) onto a target."""
    cfgp = os.path.join(heads_dir, "config.json")
    if os.path.exists(cfgp):
        with open(cfgp) as f:
            config = json.load(f)
        if config.get("format") != FORMAT:
            raise ValueError(f"{heads_dir}: not a {FORMAT} folder")
        hc = HeadsConfig.from_dict(config)
        sd = load_file(os.path.join(heads_dir, "model.safetensors"), torch.float32)
    else:
        p = os.path.join(heads_dir, "final.pt")
        if not os.path.exists(p):
            p = os.path.join(heads_dir, "checkpoint.pt")
        s = torch.load(p)
        hc = HeadsConfig.from_dict(s["config"])
        sd = s["model"]
        config = {"kind": hc.kind, "training": {}}
    model = DraftHeads(hc, target_model.embed_tokens.weight, target_model.lm_head_weight)
    model.load_state_dict(sd, strict=True)
    model.eval()
    return model, config


def _stage_info_file(init):
    """The full train_info.json of an earlier stage, when its run dir is still on disk."""
    src = init.get("from") if init else None
    if src:
        p = os.path.join(os.path.dirname(src), "train_info.json")
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
    return None


def _feature_metas(folders):
    metas = []
    for fdir in folders:
        mp = os.path.join(fdir, "meta.json")
        meta = {}
        if os.path.exists(mp):
            with open(mp) as f:
                meta = json.load(f)
        metas.append(meta)
    return metas


def _folder_tokens(fdir, meta, cap):
    """Tokens a run read from a feature folder: its shards on disk (a features run may have been stopped
    early, so meta.json's `tokens` is what was asked for), capped by train --tokens."""
    if not (os.path.isdir(fdir) and meta.get("chunks") and meta.get("shardChunks") and meta.get("seqLen")):
        return None
    n = min(len(list_shards(fdir)) * meta["shardChunks"], meta["chunks"]) * meta["seqLen"]
    return min(n, cap // meta["seqLen"] * meta["seqLen"]) if cap else n


def stage_summary(init, info):
    """One training stage for config.json: from the stage's own train_info.json when available
    (sequence length, batch, feature folders, loss weights), else from the summary its successor kept."""
    if info is None:
        return {"steps": init["steps"], "tokensSeen": init["tokensSeen"], "tokensPerEpoch": init["tokensPerEpoch"],
                "seconds": init["seconds"], "lr": init.get("lr"), "finalLosses": init.get("finalLosses")}
    a = info.get("args", {})
    folders = a.get("features") or []
    folders = folders if isinstance(folders, list) else [folders]  # runs before --features took several
    metas = _feature_metas(folders)
    modes = [m.get("mode", "data") for m in metas]
    prompts = sorted({m["greedyPrompt"] for m in metas if m.get("greedyPrompt")})  # greedy folders only
    cap = a.get("tokens") or 0
    folder_tokens = [_folder_tokens(f, m, cap) for f, m in zip(folders, metas)]
    return {"steps": info["steps"], "tokensSeen": info["tokensSeen"], "tokensPerEpoch": info["tokensPerEpoch"],
            "seconds": info["seconds"], "lr": a.get("lr"), "finalLosses": info.get("finalLosses"),
            "seqLen": info.get("seqLen"), "batchSequences": info.get("batch"),
            "features": [os.path.basename(os.path.normpath(f)) for f in folders],
            "featureModes": modes, "tokensCapPerFolder": cap or None, "mlpPW": a.get("mlp_p_w"), "noise": a.get("noise"),
            **({"folderTokens": folder_tokens} if None not in folder_tokens else {}),
            **({"greedyPrompts": prompts} if prompts else {})}


def run_export(args):
    target = load_llama(args.target)
    model, _ = load_exported(args.run, target)
    training = {}
    ip = os.path.join(args.run, "train_info.json")
    if os.path.exists(ip):
        with open(ip) as f:
            info = json.load(f)
        a = info.get("args", {})
        training = {
            "recipe": "gumiho-method.md section 4 (scaled); see tooling/train-heads/README.md",
            "data": "py-llama-28m train.txt.xz prefix, teacher-forced target features",
            "tokensPerEpoch": info["tokensPerEpoch"],
            "tokensSeen": info["tokensSeen"],
            "epochs": round(info["epochs"], 3),
            "steps": info["steps"],
            "seqLen": info["seqLen"],
            "batchSequences": info["batch"],
            "lr": a.get("lr"),
            "warmup": a.get("warmup"),
            "schedule": f"linear warm-up, cosine to {a.get('min_lr_ratio')} x lr",
            "betas": [0.9, 0.95],
            "weightDecay": a.get("weight_decay"),
            "gradClip": a.get("clip"),
            "noise": a.get("noise"),
            "ceFrac": a.get("ce_frac"),
            "amp": a.get("amp"),
            "features": "final post-norm hidden states of the target, fp16, teacher-forced",
            "lossWeights": {k: a.get(k) for k in ("v_w", "p_w", "mlp_v_w", "mlp_p_w", "mlp_loss_weight", "mlp_decay")},
            "finalLosses": info["finalLosses"],
            "seconds": info["seconds"],
            "trainableParams": info["params"],
            "initFrom": info.get("initFrom"),
            "hardware": os.environ.get("TRAIN_HEADS_HARDWARE", "2-core x86 VM (shared), PyTorch 1.13 CPU, fp32"),
        }
        chain = []
        ini = info.get("initFrom")
        while ini and ini.get("steps"):
            chain.append(ini)
            ini = ini.get("initFrom")
        stages = []
        for x in reversed(chain):
            if x.get("stages"):  # exported heads that a run started from carry their own stage list
                stages.extend(x["stages"])
            else:
                stages.append(stage_summary(x, None if x.get("exported") else _stage_info_file(x)))
        stages.append(stage_summary(None, info))
        if any("greedy" in st.get("featureModes", []) for st in stages):
            lens = sorted({p for st in stages for p in st.get("greedyPrompts", [])})
            prompt = f"{'/'.join(map(str, lens))}-token prompts" if lens else "prompts"
            training["data"] = ("py-llama-28m train.txt.xz, teacher-forced target features, and (stages marked "
                                f"`greedy`) self-distillation features: {prompt} from the same text continued "
                                "greedily by the target")
        if chain:
            # this run continued from earlier ones: report every stage and totals
            training["stages"] = stages
            training["steps"] = sum(x["steps"] or 0 for x in stages)
            training["tokensSeen"] = sum(x["tokensSeen"] or 0 for x in stages)
            training["seconds"] = round(sum(x["seconds"] or 0 for x in stages), 1)
            training["initFrom"] = "earlier stages (see stages)"
    config = export_heads(model, args.out, args.target, args.target_name, training)
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    log(f"exported {config['kind']} heads to {args.out} ({size / 1e6:.2f} MB)")
