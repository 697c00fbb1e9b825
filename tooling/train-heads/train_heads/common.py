import json
import os
import subprocess
import sys
import time

import torch

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tooling/train-heads
REPO_ROOT = os.path.dirname(os.path.dirname(PKG_ROOT))
WORK = os.path.join(PKG_ROOT, "work")
# The project's shared material sits beside the repository (`<repo>/../shared`), as in CI.
SHARED = os.environ.get("GUMIHO_SHARED_DIR", os.path.join(os.path.dirname(REPO_ROOT), "shared"))
DEFAULT_TARGET = os.environ.get("TRAIN_HEADS_TARGET", os.path.join(SHARED, "models", "py-llama-28m"))
DEFAULT_DATA = os.environ.get("TRAIN_HEADS_DATA", os.path.join(SHARED, "data", "python-code"))
DEFAULT_GOLDEN = os.environ.get("TRAIN_HEADS_GOLDEN", os.path.join(SHARED, "fixtures", "py-llama-28m.golden.json"))
TOKENIZE_JS = os.path.join(PKG_ROOT, "scripts", "tokenize.mjs")


def set_threads(n=None):
    n = n or int(os.environ.get("TRAIN_HEADS_THREADS", "2"))
    torch.set_num_threads(n)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def node_tokenize(model_dir, mode, a, b=None):
    cmd = ["node", TOKENIZE_JS, model_dir, mode, a] + ([b] if b else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise RuntimeError("tokenizer failed: " + " ".join(cmd))
    return r.stdout


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def fmt_s(s):
    s = int(s)
    return f"{s // 3600}h{(s % 3600) // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
