"""Teacher-forced target features: token ids + final post-norm hidden states (fp16), in shards.

Layout of FEATURES_DIR:
  meta.json             {target, configSha256, seqLen, shardChunks, tokensRequested, ...}
  tokens.u16            the tokenized training-text prefix (uint16 LE)
  shard_00000.pt        {"ids": int16 [n, seqLen] (stored as int32-safe via uint16 view), "hidden": fp16 [n, seqLen, H]}
Resumable: existing complete shards are skipped.
"""
import json
import lzma
import os
import signal
import time

import numpy as np
import torch

from .common import log, node_tokenize, write_json, fmt_s
from .llama import load_llama, config_sha256


def tokenize_prefix(data_dir, target, out_path, n_chars):
    if os.path.exists(out_path):
        return np.fromfile(out_path, dtype="<u2")
    log(f"reading {n_chars} chars of train.txt.xz")
    with lzma.open(os.path.join(data_dir, "train.txt.xz"), "rt", encoding="utf8") as f:
        text = f.read(n_chars)
    # cut at the last document separator so no document is truncated mid-way
    cut = text.rfind("<|endoftext|>")
    if cut > 0:
        text = text[:cut]
    tmp_txt = out_path + ".txt"
    with open(tmp_txt, "w", encoding="utf8") as f:
        f.write(text)
    log("tokenizing with node ...")
    info = node_tokenize(target, "stream", tmp_txt, out_path + ".tmp")
    os.replace(out_path + ".tmp", out_path)
    os.remove(tmp_txt)
    log("tokenized:", info.strip())
    return np.fromfile(out_path, dtype="<u2")


def list_shards(fdir):
    return sorted(f for f in os.listdir(fdir) if f.startswith("shard_") and f.endswith(".pt"))


def load_shard(path):
    d = torch.load(path)
    return d["ids"].long(), d["hidden"]


def run_features(args):
    T = args.seq_len
    greedy = getattr(args, "greedy_gen", 0)
    if greedy or getattr(args, "greedy_prompt", 0):
        if not 0 < args.greedy_prompt < T or greedy != T - args.greedy_prompt:
            raise SystemExit(f"--greedy-prompt {args.greedy_prompt} --greedy-gen {greedy}: need 0 < P < --seq-len {T} "
                             f"and P + greedy-gen == seq-len; e.g. --seq-len 256 --greedy-prompt 128 --greedy-gen 128")
    os.makedirs(args.out, exist_ok=True)
    target = args.target
    model = load_llama(target)
    H = model.cfg.hidden_size
    T = args.seq_len
    skip = getattr(args, "skip_tokens", 0)
    if skip < 0:
        raise SystemExit(f"--skip-tokens {skip}: must be >= 0")
    n_chars = int((skip + args.tokens) * 3.9) + 200000
    toks = tokenize_prefix(args.data, target, os.path.join(args.out, "tokens.u16"), n_chars)[skip:]
    n_chunks = min(args.tokens // T, len(toks) // T)
    if n_chunks < args.tokens // T:
        log(f"warning: only {len(toks) + skip} tokens tokenized ({len(toks)} after --skip-tokens); using {n_chunks} chunks")
    chunks = torch.from_numpy(toks[: n_chunks * T].astype(np.int64)).view(n_chunks, T)
    meta = {
        "target": os.path.abspath(target),
        "configSha256": config_sha256(target),
        "seqLen": T,
        "shardChunks": args.shard_chunks,
        "chunks": n_chunks,
        "tokens": n_chunks * T,
        "hiddenSize": H,
        "source": os.path.join(os.path.abspath(args.data), "train.txt.xz") + (
            f" (tokens {skip} onwards, in order)" if skip else " (prefix, in order)"),
        "skipTokens": skip,
    }
    if greedy:
        meta["mode"] = "greedy"
        meta["greedyPrompt"] = args.greedy_prompt
        meta["greedyGen"] = greedy
        meta["source"] += (f"; each chunk keeps its first {args.greedy_prompt} tokens as a prompt and the "
                           f"target's greedy continuation of {greedy} tokens replaces the rest (self-distillation)")
    meta_path = os.path.join(args.out, "meta.json")
    if os.path.exists(meta_path) and list_shards(args.out):
        with open(meta_path) as f:
            old = json.load(f)
        for key in ("seqLen", "shardChunks", "skipTokens", "mode", "greedyPrompt", "configSha256"):
            if old.get(key, 0 if key == "skipTokens" else None) != meta.get(key):
                raise SystemExit(f"{args.out} already holds shards made with {key} = {old.get(key)!r}, not {meta.get(key)!r}; "
                                 f"resume with the same settings or use another --out folder")
    write_json(meta_path, meta)
    n_shards = (n_chunks + args.shard_chunks - 1) // args.shard_chunks
    order = range(n_shards - 1, -1, -1) if getattr(args, "reverse", False) else range(n_shards)
    stop = {"flag": False}

    def on_sig(signum, frame):
        stop["flag"] = True
        log(f"signal {signum}: stopping after the current batch (finished shards are kept; rerun to resume)")

    old_handlers = {sig: signal.signal(sig, on_sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _write_shards(args, model, chunks, order, n_chunks, n_shards, T, greedy, stop)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    if stop["flag"]:
        log("features stopped by signal; rerun the same command to resume")
        return
    log("features done:", meta["tokens"], "tokens in", n_shards, "shards at", args.out)


def _write_shards(args, model, chunks, order, n_chunks, n_shards, T, greedy, stop):
    t0 = time.time()
    done_tokens = 0
    for s in order:
        path = os.path.join(args.out, f"shard_{s:05d}.pt")
        if os.path.exists(path):
            continue
        c = chunks[s * args.shard_chunks : (s + 1) * args.shard_chunks]
        hs = []
        with torch.no_grad():
            if greedy:
                cs = []
                for i in range(0, len(c), args.batch):
                    if stop["flag"]:
                        return
                    gi, gh = model.greedy_hidden(c[i : i + args.batch, : args.greedy_prompt], greedy)
                    cs.append(gi)
                    hs.append(gh.half())
                c = torch.cat(cs)
            else:
                for i in range(0, len(c), args.batch):
                    if stop["flag"]:
                        return
                    hs.append(model.hidden(c[i : i + args.batch]).half())
        hidden = torch.cat(hs)
        tmp = f"{path}.{os.getpid()}.tmp"  # per-process, so two workers (one --reverse) can share a folder
        torch.save({"ids": c.to(torch.int16), "hidden": hidden}, tmp)
        os.replace(tmp, path)
        done_tokens += c.numel()
        el = time.time() - t0
        rate = done_tokens / el
        left = sum(
            min(args.shard_chunks, n_chunks - j * args.shard_chunks) * T
            for j in range(n_shards)
            if not os.path.exists(os.path.join(args.out, f"shard_{j:05d}.pt"))
        )
        log(f"features shard {s + 1}/{n_shards}: {done_tokens} tokens this run, {rate:.0f} tok/s, ETA {fmt_s(left / rate)}")
