"""Training of gumiho / eagle2 / medusa heads on stored target features (see README for the recipe)."""
import contextlib
import json
import math
import os
import signal
import time

import torch
import torch.nn.functional as F

from .common import WORK, fmt_s, log, write_json
from .features import list_shards, load_shard
from .heads import DraftHeads, HeadsConfig
from .llama import config_sha256, load_llama


def load_features(fdirs, max_tokens=0, seq_len=0):
    """Load one or more feature folders (a folder named twice is used twice, i.e. up-weighted).
    `max_tokens` caps each folder; `seq_len` splits stored chunks into sequences of that length, which
    is needed when the folders were stored with different chunk lengths."""
    if isinstance(fdirs, str):
        fdirs = [fdirs]
    cache = {}
    all_ids, all_hid = [], []
    for fdir in fdirs:
        if fdir not in cache:
            cache[fdir] = _load_feature_dir(fdir, max_tokens, seq_len)
        all_ids.append(cache[fdir][0])
        all_hid.append(cache[fdir][1])
    lens = sorted({i.shape[1] for i in all_ids})
    if len(lens) > 1:
        raise SystemExit(f"feature folders store sequences of different lengths {lens}; pass --seq-len "
                         f"{lens[0]} (or a divisor of it) to split them to one length")
    if len(all_ids) == 1:
        return all_ids[0], all_hid[0]
    return torch.cat(all_ids), torch.cat(all_hid)


def _load_feature_dir(fdir, max_tokens=0, seq_len=0):
    ids, hid = [], []
    n = 0
    shards = list_shards(fdir) if os.path.isdir(fdir) else []
    if not shards:
        raise SystemExit(f"no feature shards in {fdir}: run `python -m train_heads features --out {fdir}` first")
    for s in shards:
        i, h = load_shard(os.path.join(fdir, s))
        ids.append(i)
        hid.append(h)
        n += i.numel()
        if max_tokens and n >= max_tokens:
            break
    ids = torch.cat(ids)
    hid = torch.cat(hid)
    if max_tokens:
        k = max(1, max_tokens // ids.shape[1])
        ids, hid = ids[:k], hid[:k]
    if seq_len and seq_len < ids.shape[1]:
        L = ids.shape[1] // seq_len * seq_len
        ids = ids[:, :L].reshape(-1, seq_len)
        hid = hid[:, :L].reshape(-1, seq_len, hid.shape[-1])
    return ids, hid


def soft_ce(logits, target_p):
    return -(target_p * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def pick(x, sel):
    """Flatten [B,T,...] -> [B*T,...] and keep rows `sel` (None = all)."""
    x = x.reshape(-1, *x.shape[2:])
    return x if sel is None else x[sel]


def ce_sel(n_rows, frac):
    if frac >= 1.0:
        return None
    k = max(1, int(n_rows * frac))
    return torch.randperm(n_rows)[:k]


def head_losses(model, pred, tgt_feat, frac):
    """SmoothL1(pred, tgt_feat) over all rows; soft CE against softmax(lm_head(tgt_feat)) and top-1
    agreement on a random fraction `frac` of the rows (unbiased estimate, saves lm_head work)."""
    v = F.smooth_l1_loss(pred.float(), tgt_feat)
    sel = ce_sel(pred.shape[0] * pred.shape[1], frac)
    pr = pick(pred, sel)
    tf = pick(tgt_feat, sel)
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        tp = torch.softmax(F.linear(tf.float(), model.lm_weight), dim=-1)
        targ = tp.argmax(-1)
    lg = model.lm(pr)
    p = soft_ce(lg, tp)
    acc = float((lg.argmax(-1) == targ).float().mean())
    return v, p, acc


def compute_losses(model: DraftHeads, X, Fh, args, train=True):
    """X [B,L] token ids, Fh [B,L,H] float32 target features. Returns (total, stats dict).
    Alignment (see README): the draft consumes pairs (f_p, x_{p+1}); serial output at p ~ f_{p+1};
    gumiho MLP head i at root t ~ f_{t+3+i}; medusa head i on f_t ~ f_{t+1+i}."""
    cfg = model.cfg
    B, L, H = Fh.shape
    frac = getattr(args, "ce_frac", 1.0) if train else 1.0
    st = {}
    if cfg.kind in ("gumiho", "eagle2"):
        inp_f = Fh[:, :-1]
        inp_x = X[:, 1:]
        tgt = Fh[:, 1:]
        if train and args.noise > 0:
            inp_f = inp_f + (torch.rand_like(inp_f) - 0.5) * args.noise * 512.0 / L
        h = model.serial(inp_f, inp_x)
        vloss, ploss, acc = head_losses(model, h, tgt, frac)
        total = args.v_w * vloss + args.p_w * ploss
        st["v"] = float(vloss)
        st["p"] = float(ploss)
        st["acc1"] = acc
        if cfg.kind == "gumiho":
            n = L - 1
            hm = model.fuse(inp_x[:, 1:], h[:, :-1])  # hm[t] = fc([e(x_{t+2}); h_t])
            z = torch.cat([hm[:, :-1], hm[:, 1:]], dim=-1)  # [B, n-2, 2H]
            mv, mp = 0.0, 0.0
            for i in range(cfg.mlpHeads):
                pred = model.mlp_head(i, z[:, : n - 2 - i])
                w = args.mlp_decay ** (i + 1)
                v_i, p_i, acc_i = head_losses(model, pred, tgt[:, 2 + i :], frac)
                mv = mv + w * v_i
                mp = mp + w * p_i
                st[f"acc{3 + i}"] = acc_i
            total = total + args.mlp_v_w * mv / args.mlp_loss_weight + args.mlp_p_w * mp / args.mlp_loss_weight
            st["mv"] = float(mv)
            st["mp"] = float(mp)
    else:  # medusa: head i on f_t -> f_{t+1+i} (token x_{t+2+i})
        mv, mp = 0.0, 0.0
        for i in range(cfg.mlpHeads):
            pred = model.mlp_head(i, Fh[:, : L - 1 - i])
            w = args.mlp_decay ** i
            v_i, p_i, acc_i = head_losses(model, pred, Fh[:, 1 + i :], frac)
            mv = mv + w * v_i
            mp = mp + w * p_i
            st[f"acc{1 + i}"] = acc_i
            st[f"p{1 + i}"] = float(p_i)
        total = args.mlp_v_w * mv + args.mlp_p_w * mp
        st["mv"] = float(mv)
        st["mp"] = float(mp)
    st["loss"] = float(total)
    return total, st


def amp_ctx(args):
    if getattr(args, "amp", "none") == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lr_at(step, total, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    prog = min(1.0, (step - args.warmup) / max(1, total - args.warmup))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog)))


def build_model(kind, target_model, mlp_blocks=0):
    hc = HeadsConfig.for_kind(kind, target_model.cfg, mlp_blocks)
    return DraftHeads(hc, target_model.embed_tokens.weight, target_model.lm_head_weight)


def init_from_exported(model, folder, kind, target, target_dir):
    """Load exported heads (config.json + bf16 model.safetensors) as the starting weights of a new stage.
    Their recorded training (and its stages) is kept so that an export of the new run lists every stage."""
    from .export import load_exported

    loaded, config = load_exported(folder, target)
    if config.get("kind") != kind:
        raise SystemExit(f"--init-from {folder}: holds {config.get('kind')} heads, not --kind {kind}")
    want, have = (config.get("target") or {}).get("configSha256"), config_sha256(target_dir)
    if want and want != have:
        raise SystemExit(f"--init-from {folder}: trained for a target whose config hash is {want[:12]}, "
                         f"but --target {target_dir} has {have[:12]}; train from scratch for this target")
    model.load_state_dict(loaded.state_dict(), strict=True)
    t = config.get("training") or {}
    return {"from": os.path.abspath(folder), "exported": True, "steps": t.get("steps"), "tokensSeen": t.get("tokensSeen"),
            "tokensPerEpoch": t.get("tokensPerEpoch"), "seconds": t.get("seconds"), "finalLosses": t.get("finalLosses"),
            "lr": t.get("lr"), "stages": t.get("stages"), "initFrom": None}


def run_train(args):
    out = args.out or os.path.join(WORK, "runs", args.kind)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(args.seed)
    target = load_llama(args.target)
    model = build_model(args.kind, target, args.mlp_blocks)
    X, Fh = load_features(args.features, args.tokens, args.seq_len)
    nseq, L = X.shape
    steps_per_epoch = nseq // args.batch
    total_steps = max(1, int(round(args.epochs * steps_per_epoch)))
    max_steps = total_steps
    params = [p for p in model.parameters() if p.requires_grad]
    nparams = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    ck = os.path.join(out, "checkpoint.pt")
    init_info = None
    step = 0
    history = []
    elapsed_before = 0.0
    if os.path.exists(ck):
        s = torch.load(ck)
        model.load_state_dict(s["model"])
        opt.load_state_dict(s["opt"])
        step = s["step"]
        total_steps = s.get("total_steps", total_steps)
        history = s["history"]
        init_info = s.get("init")
        elapsed_before = s["elapsed"]
        log(f"resumed from {ck} at step {step}")
    elif args.init_from:
        if os.path.exists(os.path.join(args.init_from, "config.json")):
            src = args.init_from
            init_info = init_from_exported(model, src, args.kind, target, args.target)
        else:
            src = os.path.join(args.init_from, "final.pt")
            if not os.path.exists(src):
                src = os.path.join(args.init_from, "checkpoint.pt")
            s = torch.load(src)
            model.load_state_dict(s["model"])
            prev = {}
            ip = os.path.join(args.init_from, "train_info.json")
            if os.path.exists(ip):
                with open(ip) as f:
                    prev = json.load(f)
            init_info = {"from": os.path.abspath(src), "steps": prev.get("steps"), "tokensSeen": prev.get("tokensSeen"),
                         "tokensPerEpoch": prev.get("tokensPerEpoch"), "seconds": prev.get("seconds"),
                         "finalLosses": prev.get("finalLosses"), "lr": (prev.get("args") or {}).get("lr"),
                         "initFrom": prev.get("initFrom")}
        log(f"initialised weights from {src} (optimizer and schedule fresh)")
    del target
    log(f"train {args.kind}: {nparams / 1e6:.2f} M params, {nseq} sequences x {L} tokens "
        f"({nseq * L} tokens), {total_steps} steps of {args.batch} seqs, {args.epochs} epochs")

    stop = {"flag": False}

    def on_sig(signum, frame):
        stop["flag"] = True
        log(f"signal {signum}: will checkpoint and stop")

    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)

    def save(final=False):
        state = {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "step": step,
            "total_steps": total_steps,
            "history": history,
            "init": init_info,
            "elapsed": elapsed_before + (time.time() - t0),
            "config": model.cfg.to_dict(),
            "args": vars(args),
        }
        torch.save(state, ck + ".tmp")
        os.replace(ck + ".tmp", ck)
        if final:
            info = {
                "kind": args.kind,
                "config": model.cfg.to_dict(),
                "targetConfigSha256": config_sha256(args.target),
                "steps": step,
                "totalSteps": total_steps,
                "epochs": step / steps_per_epoch,
                "tokensPerEpoch": nseq * L,
                "tokensSeen": step * args.batch * L,
                "seqLen": L,
                "batch": args.batch,
                "params": nparams,
                "seconds": round(state["elapsed"], 1),
                "args": {k: v for k, v in vars(args).items() if k not in ("cmd",)},
                "finalLosses": avg_last(history, 20),
                "initFrom": init_info,
                "history": history,
            }
            write_json(os.path.join(out, "train_info.json"), info)
            torch.save({"model": model.state_dict(), "config": model.cfg.to_dict()}, os.path.join(out, "final.pt"))

    t0 = time.time()
    start_step = step
    t_last = t0
    tok_since = 0
    model.train()
    while step < total_steps and not stop["flag"]:
        epoch = step // steps_per_epoch
        g = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        perm = torch.randperm(nseq, generator=g)
        j = step % steps_per_epoch
        idx = perm[j * args.batch : (j + 1) * args.batch]
        xb = X[idx]
        fb = Fh[idx].float()
        lr = lr_at(step, total_steps, args)
        for gr in opt.param_groups:
            gr["lr"] = lr
        with amp_ctx(args):
            loss, st = compute_losses(model, xb, fb, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        step += 1
        tok_since += xb.numel()
        st["step"] = step
        st["lr"] = lr
        st["gnorm"] = float(gn)
        history.append({k: (round(v, 5) if isinstance(v, float) else v) for k, v in st.items()})
        if step % args.log_every == 0 or step == total_steps or step == 1:
            now = time.time()
            rate = tok_since / (now - t_last)
            t_last, tok_since = now, 0
            left = (total_steps - step) * args.batch * L / max(rate, 1e-9)
            recent = avg_last(history, args.log_every)
            keys = [k for k in recent if k not in ("step", "lr", "gnorm")]
            log(f"step {step}/{total_steps} ep {step / steps_per_epoch:.2f} lr {lr:.2e} "
                + " ".join(f"{k} {recent[k]:.4f}" for k in keys)
                + f" | {rate:.0f} tok/s ETA {fmt_s(left)}")
        if args.time_budget and step % 10 == 0:
            # shrink the schedule so that training (incl. the cosine decay) ends within the budget
            spent = elapsed_before + time.time() - t0
            per_step = (time.time() - t0) / max(1, step - start_step)
            fit = max(step + 1, min(max_steps, step + int(max(0.0, args.time_budget - spent) / per_step)))
            if fit != total_steps:
                total_steps = fit
                log(f"time budget: schedule set to {total_steps} steps")
        if step % args.ckpt_every == 0:
            save()
        if args.max_seconds and time.time() - t0 > args.max_seconds:
            log("max-seconds reached")
            break
    save(final=step >= total_steps or True)
    log(f"saved {out} at step {step}/{total_steps}")


def avg_last(history, n):
    h = history[-n:]
    if not h:
        return {}
    keys = [k for k in h[-1] if isinstance(h[-1][k], (int, float))]
    return {k: round(sum(x.get(k, 0) for x in h) / len(h), 5) for k in keys}
