"""check-target: compare our Llama with the golden HF fixture."""
import json

import torch

from .common import log
from .llama import load_llama


def check_against_golden(target, golden_path, tol=1e-3, greedy=True, greedy_max=None):
    """Returns a list of per-case result dicts: max |logit diff|, max |hidden diff|, top10 match,
    greedy match."""
    model = load_llama(target)
    with open(golden_path) as f:
        g = json.load(f)
    results = []
    with torch.no_grad():
        for c in g["cases"]:
            ids = torch.tensor([c["ids"]])
            h = model.hidden(ids)
            lg = model.logits(h)[0]
            r = {
                "prompt": c["prompt"][:30],
                "tokens": len(c["ids"]),
                "maxLogitDiff": float((lg[-1] - torch.tensor(c["last_logits"])).abs().max()),
                "maxHiddenDiff": float((h[0, -1] - torch.tensor(c["last_hidden"])).abs().max()),
                "top10Match": lg.topk(10).indices.tolist() == c["top10_ids"],
                "maxTop10LogitDiff": float((lg.topk(10).values - torch.tensor(c["top10_logits"])).abs().max()),
            }
            if greedy:
                n = len(c["greedy64"]) if greedy_max is None else min(greedy_max, len(c["greedy64"]))
                r["greedyMatch"] = model.greedy(c["ids"], n) == c["greedy64"][:n]
                r["greedyTokensChecked"] = n
            r["ok"] = r["maxLogitDiff"] <= tol and r["maxTop10LogitDiff"] <= tol and r["top10Match"] and r.get("greedyMatch", True)
            results.append(r)
    return results


def run_check(args):
    res = check_against_golden(args.target, args.golden, args.tol)
    ok = True
    for r in res:
        log(json.dumps(r))
        ok = ok and r["ok"]
    log("check-target:", "OK" if ok else "FAILED", f"(tolerance {args.tol})")
    return 0 if ok else 1
