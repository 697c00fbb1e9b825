"""Teacher-forced per-depth top-1 accuracy of draft heads against the target's greedy tokens."""
import json
import os

import torch

from .common import WORK, log, node_tokenize, write_json
from .export import load_exported
from .llama import load_llama


def dev_tokens(target, data_dir):
    os.makedirs(WORK, exist_ok=True)
    cache = os.path.join(WORK, "dev_tokens.json")
    src = os.path.join(data_dir, "dev.jsonl")
    if not os.path.exists(cache) or os.path.getmtime(cache) < os.path.getmtime(src):
        node_tokenize(target, "jsonl", src, cache)
    with open(cache) as f:
        return json.load(f)


@torch.no_grad()
def depth_predictions(model, X, Fh, depths):
    """X [1,T], Fh [1,T,H]. Returns list over depth d=1..D of (pred [T'], valid_len) where pred[t]
    is the draft's top-1 token for position t+d+1 given root t (context ..t, root x_{t+1})."""
    kind = model.cfg.kind
    T = X.shape[1]
    res = []
    if kind in ("gumiho", "eagle2"):
        inp_f = Fh[:, :-1]
        inp_x = X[:, 1:]
        n = inp_x.shape[1]
        n_serial = 2 if kind == "gumiho" else depths
        nts = []
        for d in range(1, n_serial):
            nt = torch.zeros_like(inp_x)
            nt[:, : n - d] = inp_x[:, d:]
            nts.append(nt)
        hs = model.serial_steps(inp_f, inp_x, nts)
        for h in hs:
            res.append(model.lm(h)[0].argmax(-1))
        if kind == "gumiho":
            h1, h2 = hs
            x2 = torch.zeros_like(inp_x)
            x2[:, : n - 1] = inp_x[:, 1:]  # x_{t+2}
            x3 = torch.zeros_like(inp_x)
            x3[:, : n - 2] = inp_x[:, 2:]  # x_{t+3}
            z = torch.cat([model.fuse(x2, h1), model.fuse(x3, h2)], dim=-1)
            outs = model.mlp_all(z)
            for i in range(model.cfg.mlpHeads):
                res.append(model.lm(outs[i])[0].argmax(-1))
    else:
        outs = model.mlp_all(Fh)
        for i in range(model.cfg.mlpHeads):
            res.append(model.lm(outs[i])[0].argmax(-1))
    return res[:depths]


def run_eval(args):
    target = load_llama(args.target)
    files = dev_tokens(args.target, args.data)
    if args.max_files:
        files = files[: args.max_files]
    models = []
    for hd in args.heads:
        m, cfg = load_exported(hd, target)
        models.append((os.path.basename(os.path.normpath(hd)) or hd, m))
    D = args.depths
    stats = {name: {"correct": [0] * D, "cum": [0] * D, "n": [0] * D} for name, _ in models}
    data_agree = [0, 0]
    evaluated = 0
    greedy = getattr(args, "on", "data") == "greedy"
    for fi, f in enumerate(files):
        ids = f["ids"]
        if greedy:
            if len(ids) < args.prompt_len + 1:
                continue
            prompt = ids[: args.prompt_len]
            windows = [prompt + target.greedy(prompt, args.gen_len)]
        else:
            starts = list(range(0, len(ids), args.max_len))
            if args.windows_per_file:
                starts = starts[: args.windows_per_file]
            windows = [ids[s : s + args.max_len] for s in starts]
        for w in windows:
            T = len(w)
            if T < D + 3:
                continue
            # roots t: context x_0..x_t, root token x_{t+1}; in greedy mode x_{t+1} must be generated
            lo = len(prompt) - 1 if greedy else 0
            X = torch.tensor([w])
            with torch.no_grad():
                Fh = target.hidden(X)
                G = target.logits(Fh)[0].argmax(-1)  # G[p] = greedy token for position p+1
            data_agree[0] += int((G[lo:-1] == X[0, lo + 1 :]).sum())
            data_agree[1] += T - 1 - lo
            for name, m in models:
                preds = depth_predictions(m, X, Fh, D)
                st = stats[name]
                # root t: depth d predicts position t+1+d, compared with G[t+d]; valid t <= T-1-D
                # (same root set for every depth, so cumulative columns are consistent)
                R = T - D - lo
                allok = torch.ones(R, dtype=torch.bool)
                for d in range(1, len(preds) + 1):
                    ok = preds[d - 1][lo : lo + R] == G[lo + d : lo + d + R]
                    allok = allok & ok
                    st["correct"][d - 1] += int(ok.sum())
                    st["cum"][d - 1] += int(allok.sum())
                    st["n"][d - 1] += R
            evaluated += T
            if args.max_tokens and evaluated >= args.max_tokens:
                break
        log(f"eval file {fi + 1}/{len(files)} {f['path']}: {evaluated} tokens so far")
        if args.max_tokens and evaluated >= args.max_tokens:
            break
    table = {"on": "greedy" if greedy else "data", "tokens": evaluated, "files": fi + 1, "windowTokens": args.max_len,
             "promptLen": args.prompt_len if greedy else None, "genLen": args.gen_len if greedy else None,
             "dataEqualsGreedy": data_agree[0] / max(1, data_agree[1]), "heads": {}}
    for name, m in models:
        st = stats[name]
        table["heads"][name] = {
            "kind": m.cfg.kind,
            "acc": [c / n if n else None for c, n in zip(st["correct"], st["n"])],
            "cumAcc": [c / n if n else None for c, n in zip(st["cum"], st["n"])],
            "positions": st["n"][0],
        }
    md = format_md(table, D)
    print(md)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    if args.json:
        write_json(args.json, table)
    return table


def format_md(table, D):
    names = list(table["heads"])
    if table.get("on") == "greedy":
        head = (f"Top-1 accuracy along the target's own greedy path: the first {table['promptLen']} tokens of each of "
                f"{table['files']} held-out files (dev.jsonl) are a prompt, the target continues greedily for "
                f"{table['genLen']} tokens, and the draft is teacher-forced on that text; only roots inside the "
                f"continuation count ({next(iter(table['heads'].values()))['positions'] if names else 0} roots). "
                f"This is what acceptance means at T=0. `acc` = depth-d draft token equals the target's greedy token; "
                f"`all<=d` = depths 1..d all equal (a proxy for chain acceptance).")
    else:
        head = (f"Teacher-forced top-1 accuracy vs the target's greedy token, {table['tokens']} tokens of "
                f"{table['files']} held-out files (dev.jsonl), windows of {table['windowTokens']} tokens. "
                f"`acc` = depth-d draft token equals the target's greedy token; `all<=d` = depths 1..d all equal "
                f"(a proxy for chain acceptance). Data token equals greedy token at {table['dataEqualsGreedy']:.3f} of positions.")
    lines = [
        head,
        "",
        "| depth | " + " | ".join(f"{n} acc | {n} all<=d" for n in names) + " |",
        "|---|" + "---|---|" * len(names),
    ]
    for d in range(D):
        cells = []
        for n in names:
            h = table["heads"][n]
            a = h["acc"][d] if d < len(h["acc"]) else None
            c = h["cumAcc"][d] if d < len(h["cumAcc"]) else None
            cells.append("-" if a is None else f"{a:.3f}")
            cells.append("-" if c is None else f"{c:.3f}")
        lines.append(f"| {d + 1} | " + " | ".join(cells) + " |")
    taus = []
    for n in names:
        h = table["heads"][n]
        taus.append(f"{n}: {1 + sum(c for c in h['cumAcc'] if c is not None):.2f}")
    lines.append("")
    lines.append("Chain proxy tau = 1 + sum_d all<=d (single greedy chain, bonus token included): " + ", ".join(taus))
    return "\n".join(lines) + "\n"
