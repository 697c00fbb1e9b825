"""card: write a model card (README.md) for an exported heads folder from its config.json and an
eval --json table."""
import json
import os

from .common import log

DESC = {
    "gumiho": "Gumiho hybrid draft (arXiv 2503.10135): `fc` (2H->H, bias) + 2 Llama decoder layers "
              "(layer 0 without input RMSNorm, no final norm) drafting depths 1-2 serially, and 5 MLP heads "
              "(1 + 5 SiLU blocks, input 2H) drafting depths 3-7 in parallel.",
    "eagle2": "EAGLE-1/2 draft: `fc` (2H->H, bias) + 1 Llama decoder layer (without input RMSNorm, no final "
              "norm), applied autoregressively on its own predicted features.",
    "medusa": "Medusa heads: 5 heads of residual SiLU blocks on the target's last hidden state; head i "
              "drafts depth i+1.",
}


def run_card(args):
    with open(os.path.join(args.heads, "config.json")) as f:
        cfg = json.load(f)
    kind = cfg["kind"]
    tr = cfg.get("training", {})
    size = os.path.getsize(os.path.join(args.heads, "model.safetensors"))
    tables = []
    paths = args.eval_json if isinstance(args.eval_json, list) else [args.eval_json] if args.eval_json else []
    for path in paths:
        if os.path.exists(path):
            with open(path) as f:
                tables.append(json.load(f))
    name = args.name or os.path.basename(os.path.normpath(args.heads))
    L = [f"# {cfg['target']['name']} {kind} draft heads", ""]
    L.append(DESC.get(kind, kind))
    L.append("")
    L.append(f"- Target: `{cfg['target']['name']}` (config.json sha256 `{cfg['target']['configSha256']}`); "
             "the target's frozen `lm_head` (tied to `embed_tokens`) and embeddings are used, not stored here.")
    L.append(f"- Files: `model.safetensors` (bf16, {size / 1e6:.2f} MB, {tr.get('trainableParams', 0) / 1e6:.2f} M parameters), "
             "`config.json` (format `gumiho-heads` v1, see `tooling/train-heads/README.md`).")
    L.append(f"- Shape: serialLayers {cfg['serialLayers']}, mlpHeads {cfg['mlpHeads']}, mlpBlocks {cfg['mlpBlocks']}, fcBias {str(cfg['fcBias']).lower()}.")
    L.append("")
    if tr:
        L.append("## Training")
        L.append("")
        if tr.get("stages"):
            L.append(f"- Data: {tr.get('data')} (`train.txt.xz` is the target's own training text; per stage below).")
        else:
            L.append(f"- Data: {tr.get('data')}: {tr.get('tokensPerEpoch')} tokens in chunks of {tr.get('seqLen')} "
                     f"(first {tr.get('tokensPerEpoch')} tokens of `train.txt.xz`, the target's own training text).")
        if tr.get("stages"):
            st = tr["stages"]
            L.append(f"- Budget: {tr.get('steps')} steps, {tr.get('tokensSeen')} tokens seen, in {len(st)} stages (each "
                     "continues from the previous stage's weights with a fresh optimizer and schedule):")
            for i, x in enumerate(st):
                seq = x.get("seqLen") or 512
                batch = x.get("batchSequences") or round(x["tokensSeen"] / max(1, x["steps"]) / seq)
                if "greedy" in x.get("featureModes", []):
                    n_g = x["featureModes"].count("greedy")
                    ft = x.get("folderTokens")
                    if ft:
                        n_d = sum(n for n, m in zip(ft, x["featureModes"]) if m != "greedy")
                        n_gt = next(n for n, m in zip(ft, x["featureModes"]) if m == "greedy")
                        data = (f"{x['tokensPerEpoch']} tokens: {n_d} tokens of data features "
                                f"+ {n_gt} tokens of greedy self-distillation features x{n_g}")
                    else:
                        cap = x.get("tokensCapPerFolder")
                        data = (f"{x['tokensPerEpoch']} tokens: data features{f' (first {cap} tokens)' if cap else ''} "
                                f"+ greedy self-distillation features x{n_g}")
                else:
                    data = f"the first {x['tokensPerEpoch']} feature tokens"
                extra = f", MLP soft-CE weight {x['mlpPW']}" if x.get("mlpPW") not in (None, 0.1) else ""
                # heads exported before stages recorded their lr: the last stage's is the run's own
                lr = x.get("lr") or (tr.get("lr") if i == len(st) - 1 else None) or "1e-3"
                L.append(f"  - stage {i + 1}: {x['steps']} steps of {batch} x {seq} tokens on {data} "
                         f"({x['tokensSeen'] / x['tokensPerEpoch']:.2f} epochs), peak lr {lr}{extra}, {x['seconds']} s")
        else:
            L.append(f"- Budget: {tr.get('steps')} steps of {tr.get('batchSequences')} x {tr.get('seqLen')} tokens = "
                     f"{tr.get('tokensSeen')} tokens ({tr.get('epochs')} epochs).")
        L.append(f"- Optimiser: AdamW{' (peak lr per stage above)' if tr.get('stages') else ' peak lr ' + str(tr.get('lr'))}, betas {tr.get('betas')}, weight decay {tr.get('weightDecay')}, "
                 f"warm-up {tr.get('warmup')} steps, {tr.get('schedule')}, grad clip {tr.get('gradClip')}; "
                 f"input-feature noise {tr.get('noise')} x 512/seq_len (last stage).")
        L.append(f"- Loss weights: {json.dumps(tr.get('lossWeights'))}; cross-entropy on a random fraction "
                 f"{tr.get('ceFrac')} of positions per batch; autocast {tr.get('amp')}.")
        L.append(f"- Hardware and time: {tr.get('hardware')}; {tr.get('seconds')} s of training "
                 "(features generated once and shared by all head kinds).")
        fl = tr.get("finalLosses", {})
        if fl:
            L.append("- Final training losses (mean of the last 20 steps): "
                     + ", ".join(f"{k} {v:.4f}" for k, v in fl.items() if k not in ("step", "lr", "gnorm")))
        L.append("")
    for table in tables:
        if table.get("on") == "greedy":
            L.append("## Accuracy along the target's greedy path (held-out prompts)")
            L.append("")
            L.append(f"The first {table['promptLen']} tokens of each of {table['files']} `dev.jsonl` files are a prompt; the "
                     f"target continues greedily for {table['genLen']} tokens and the draft is teacher-forced on that text "
                     "(roots inside the continuation only), which is what acceptance at T=0 sees. `acc` = the draft's top-1 "
                     "at depth d equals the target's greedy token; `all<=d` = depths 1..d all equal.")
        else:
            L.append("## Accuracy (held-out, teacher-forced on the data, greedy)")
            L.append("")
            L.append(f"{table['tokens']} tokens from {table['files']} files of `dev.jsonl` (packages the target was not "
                     f"trained on), windows of {table['windowTokens']} tokens. `acc` = the draft's top-1 at depth d "
                     "equals the target's greedy token; `all<=d` = depths 1..d all equal (single-chain acceptance proxy).")
        L.append("")
        L.append("| depth | acc | all<=d |")
        L.append("|---|---|---|")
        h = table["heads"].get(name) or next(v for v in table["heads"].values() if v["kind"] == kind)
        for d, (a, c) in enumerate(zip(h["acc"], h["cumAcc"])):
            if a is None:
                continue
            L.append(f"| {d + 1} | {a:.3f} | {c:.3f} |")
        L.append("")
        L.append(f"Chain tau proxy (1 + sum all<=d): {1 + sum(c for c in h['cumAcc'] if c is not None):.2f}. "
                 "Comparison with the other kinds: `tooling/train-heads/RESULTS.md`.")
        L.append("")
    L.append("## Reproduce")
    L.append("")
    L.append("See `tooling/train-heads/RESULTS.md` for the exact commands (features, train, export, eval).")
    L.append("")
    with open(os.path.join(args.heads, "README.md"), "w") as f:
        f.write("\n".join(L))
    log(f"wrote {os.path.join(args.heads, 'README.md')}")
