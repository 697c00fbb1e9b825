import argparse
import os
import sys

from .common import DEFAULT_DATA, DEFAULT_GOLDEN, DEFAULT_TARGET, WORK, set_threads


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m train_heads", description="Gumiho/EAGLE-2/Medusa draft-head tooling")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2 or $TRAIN_HEADS_THREADS)")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check-target", help="compare the Llama implementation with the golden fixture")
    c.add_argument("--target", default=DEFAULT_TARGET)
    c.add_argument("--golden", default=DEFAULT_GOLDEN)
    c.add_argument("--tol", type=float, default=1e-3)

    c = sub.add_parser("features", help="teacher-forced target hidden states for a token budget of train.txt.xz")
    c.add_argument("--target", default=DEFAULT_TARGET)
    c.add_argument("--data", default=DEFAULT_DATA)
    c.add_argument("--out", default=os.path.join(WORK, "features"))
    c.add_argument("--tokens", type=int, default=1_000_000)
    c.add_argument("--skip-tokens", type=int, default=0,
                   help="start after the first N tokens of the text (fresh data for a folder made earlier from the start)")
    c.add_argument("--seq-len", type=int, default=512)
    c.add_argument("--shard-chunks", type=int, default=64)
    c.add_argument("--batch", type=int, default=4)
    c.add_argument("--reverse", action="store_true",
                   help="work from the last shard back (run a second process with this flag to use two workers)")
    c.add_argument("--greedy-prompt", type=int, default=0,
                   help="self-distillation: keep the first P tokens of each chunk as a prompt ...")
    c.add_argument("--greedy-gen", type=int, default=0,
                   help="... and replace the rest with the target's greedy continuation (P + this = --seq-len)")

    c = sub.add_parser("train", help="train draft heads on stored features")
    c.add_argument("--kind", choices=["gumiho", "eagle2", "medusa"], required=True)
    c.add_argument("--target", default=DEFAULT_TARGET)
    c.add_argument("--features", default=[os.path.join(WORK, "features")], nargs="+",
                   help="feature folder(s); several are concatenated (name one twice to up-weight it)")
    c.add_argument("--out", default=None, help="run dir (default work/runs/KIND)")
    c.add_argument("--tokens", type=int, default=0, help="use only the first N feature tokens of each folder (0 = all)")
    c.add_argument("--epochs", type=float, default=1.0)
    c.add_argument("--batch", type=int, default=4, help="sequences per step")
    c.add_argument("--seq-len", type=int, default=0, help="split stored chunks into sequences of this length (0 = as stored)")
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--warmup", type=int, default=30)
    c.add_argument("--min-lr-ratio", type=float, default=0.1)
    c.add_argument("--weight-decay", type=float, default=0.0)
    c.add_argument("--clip", type=float, default=0.5)
    c.add_argument("--p-w", type=float, default=0.1, help="soft-CE weight (serial)")
    c.add_argument("--v-w", type=float, default=1.0, help="SmoothL1 weight (serial)")
    c.add_argument("--mlp-p-w", type=float, default=0.1)
    c.add_argument("--mlp-v-w", type=float, default=1.0)
    c.add_argument("--mlp-loss-weight", type=float, default=9.0, help="MLP losses are divided by this")
    c.add_argument("--mlp-decay", type=float, default=0.8, help="MLP head k weight = decay^(k+1)")
    c.add_argument("--noise", type=float, default=0.2, help="uniform input-feature noise amplitude (x 512/seq_len)")
    c.add_argument("--mlp-blocks", type=int, default=0, help="medusa: residual blocks per head (default 1)")
    c.add_argument("--ce-frac", type=float, default=1.0, help="fraction of positions (random) used for the soft-CE terms")
    c.add_argument("--amp", choices=["none", "bf16"], default="none", help="CPU autocast (bf16 matmuls, fp32 master weights)")
    c.add_argument("--init-from", default=None, help="start from the weights of a run dir or an exported heads folder (fresh optimizer/schedule)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--ckpt-every", type=int, default=50)
    c.add_argument("--log-every", type=int, default=5)
    c.add_argument("--max-seconds", type=float, default=0, help="stop (with checkpoint) after this long")
    c.add_argument("--time-budget", type=float, default=0,
                   help="seconds: shorten the LR schedule (total steps) so that training ends within this budget")

    c = sub.add_parser("export", help="export a run to bf16 safetensors + config.json")
    c.add_argument("--run", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--target", default=DEFAULT_TARGET)
    c.add_argument("--target-name", default=None)

    c = sub.add_parser("eval", help="teacher-forced per-depth top-1 accuracy on dev.jsonl")
    c.add_argument("--heads", required=True, nargs="+", help="exported head folders (or run dirs)")
    c.add_argument("--target", default=DEFAULT_TARGET)
    c.add_argument("--data", default=DEFAULT_DATA)
    c.add_argument("--max-files", type=int, default=0)
    c.add_argument("--max-len", type=int, default=512, help="tokens per window")
    c.add_argument("--max-tokens", type=int, default=0, help="stop after this many evaluated tokens (0 = all)")
    c.add_argument("--windows-per-file", type=int, default=0, help="only the first N windows of each file (0 = all)")
    c.add_argument("--depths", type=int, default=7)
    c.add_argument("--on", choices=["data", "greedy"], default="data",
                   help="data: teacher-force the file's own tokens (every position); greedy: the first "
                        "--prompt-len tokens of each file are a prompt, the target continues it greedily for "
                        "--gen-len tokens, and only roots inside that continuation count (the path T=0 decoding takes)")
    c.add_argument("--prompt-len", type=int, default=128)
    c.add_argument("--gen-len", type=int, default=128)
    c.add_argument("--md", default=None, help="write the table as markdown here")
    c.add_argument("--json", default=None)

    c = sub.add_parser("smoke", help="tiny random target + all head kinds + reference.json for the TS loader")
    c.add_argument("--out", required=True)
    c.add_argument("--steps", type=int, default=3)
    c.add_argument("--seed", type=int, default=1234)

    c = sub.add_parser("card", help="write README.md model card into an exported heads folder")
    c.add_argument("--heads", required=True)
    c.add_argument("--eval-json", default=None, nargs="+", help="eval --json tables (data and/or greedy) to include")
    c.add_argument("--name", default=None, help="name of these heads in the eval table (default: folder name)")

    args = p.parse_args(argv)
    set_threads(args.threads)
    if args.cmd == "check-target":
        from .check import run_check
        sys.exit(run_check(args))
    if args.cmd == "features":
        from .features import run_features
        run_features(args)
    elif args.cmd == "train":
        from .train import run_train
        run_train(args)
    elif args.cmd == "export":
        from .export import run_export
        run_export(args)
    elif args.cmd == "eval":
        from .evaluate import run_eval
        run_eval(args)
    elif args.cmd == "card":
        from .card import run_card
        run_card(args)
    elif args.cmd == "smoke":
        from .smoke import run_smoke
        run_smoke(args)


if __name__ == "__main__":
    main()
