#!/bin/sh
# Reproduce heads/py-llama-28m/{gumiho,eagle2,medusa} on CPU (times: see RESULTS.md).
# Run from tooling/train-heads. Long steps: run them under nohup and tail the logs in work/.
# --time-budget S fits the whole LR schedule into S seconds from the measured step time (capped by
# --epochs), so a faster or idler machine gets more steps than the published run.
set -e
PY=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
$PY -m train_heads check-target
# 1. teacher-forced features: the first ~3 M tokens of train.txt.xz, 92 shards of 64 x 512 tokens.
#    (The published run made the first 999,936 tokens first and the rest later, with two workers:
#    `features ... &` plus `features ... --reverse &`; its shard 31 kept 33 chunks, so 31 chunks,
#    15,872 tokens, are absent from its stage-4 data.) Stages 1-3 use only the first 999,936 tokens.
$PY -m train_heads --threads 2 features --tokens 3000000 --seq-len 512
# 2. stage 1 on the first 327,680 tokens (10 shards; what existed when stage 1 started).
#    The three kinds ran concurrently, one thread each.
$PY -m train_heads --threads 1 train --kind gumiho --tokens 327680 --epochs 3 --batch 2 --lr 1e-3 --warmup 20 --amp bf16 --ce-frac 0.25 --time-budget 5400 --log-every 10 --ckpt-every 20
$PY -m train_heads --threads 1 train --kind eagle2 --tokens 327680 --epochs 2 --batch 2 --lr 1e-3 --warmup 20 --amp bf16 --ce-frac 0.5 --time-budget 2700 --log-every 10 --ckpt-every 20
$PY -m train_heads --threads 1 train --kind medusa --tokens 327680 --epochs 2 --batch 2 --lr 1e-3 --warmup 20 --amp bf16 --ce-frac 0.25 --time-budget 2700 --log-every 10 --ckpt-every 20
# 3. stage 2 on all 999,936 tokens, starting from the stage-1 weights (fresh optimizer and schedule)
$PY -m train_heads --threads 1 train --kind gumiho --init-from work/runs/gumiho --out work/runs/gumiho2 --tokens 999936 --epochs 2 --batch 2 --lr 8e-4 --warmup 20 --amp bf16 --ce-frac 0.25 --time-budget 2880 --log-every 10 --ckpt-every 20
$PY -m train_heads --threads 1 train --kind eagle2 --init-from work/runs/eagle2 --out work/runs/eagle22 --tokens 999936 --epochs 3 --batch 2 --lr 8e-4 --warmup 20 --amp bf16 --ce-frac 0.5 --time-budget 2700 --log-every 10 --ckpt-every 20
$PY -m train_heads --threads 1 train --kind medusa --init-from work/runs/medusa --out work/runs/medusa2 --tokens 999936 --epochs 3 --batch 2 --lr 8e-4 --warmup 20 --amp bf16 --ce-frac 0.25 --time-budget 2400 --log-every 10 --ckpt-every 20
# 4. stage 3, gumiho only
$PY -m train_heads --threads 1 train --kind gumiho --init-from work/runs/gumiho2 --out work/runs/gumiho3 --tokens 999936 --epochs 2 --batch 2 --lr 5e-4 --warmup 20 --amp bf16 --ce-frac 0.25 --time-budget 1380 --log-every 10 --ckpt-every 20
# 5. stage 4 (session 2), gumiho only, alone on the machine, two threads: all ~3 M feature tokens
$PY -m train_heads --threads 2 train --kind gumiho --init-from work/runs/gumiho3 --out work/runs/gumiho4 --epochs 5 --batch 4 --lr 5e-4 --warmup 30 --amp bf16 --ce-frac 0.25 --time-budget 4500 --log-every 10 --ckpt-every 40
# 6. stage 5 (session 3 used the session-2 run): 10x soft-CE weight on the MLP heads (--mlp-p-w 1.0)
$PY -m train_heads --threads 2 train --kind gumiho --init-from work/runs/gumiho4 --out work/runs/gumiho5-mlpce --epochs 1 --batch 4 --lr 2e-4 --warmup 20 --amp bf16 --ce-frac 0.25 --mlp-p-w 1.0 --time-budget 1140
# 7. self-distillation features: chunks of 256 tokens of train.txt.xz, the first 128 kept as a prompt
#    and the rest replaced by the target's greedy continuation. Stage 6 used the first 37 shards
#    (606,208 tokens; --tokens 606208 makes exactly those), stage 7 all 49 (800,000 tokens).
mkdir -p work/features-greedy && cp work/features/tokens.u16 work/features-greedy/
$PY -m train_heads --threads 2 features --out work/features-greedy --tokens 606208 --seq-len 256 --batch 16 --greedy-prompt 128 --greedy-gen 128
# 8. stage 6: the first 1.5 M data tokens once + the greedy features twice, split to 256-token sequences
#    (--noise 0.1 at 256 tokens = the same noise amplitude as 0.2 at 512)
$PY -m train_heads --threads 2 train --kind gumiho --init-from work/runs/gumiho5-mlpce --out work/runs/gumiho6 --features work/features work/features-greedy work/features-greedy --tokens 1500000 --seq-len 256 --noise 0.1 --epochs 2 --batch 8 --lr 2e-4 --warmup 20 --amp bf16 --ce-frac 0.25 --mlp-p-w 1.0 --time-budget 2700 --log-every 10 --ckpt-every 40
# 9. stage 7: the greedy features extended to 800,000 tokens (12 more shards), the first 1 M data tokens + greedy twice
$PY -m train_heads --threads 2 features --out work/features-greedy --tokens 800000 --seq-len 256 --batch 16 --greedy-prompt 128 --greedy-gen 128
$PY -m train_heads --threads 2 train --kind gumiho --init-from work/runs/gumiho6 --out work/runs/gumiho7 --features work/features work/features-greedy work/features-greedy --tokens 1000000 --seq-len 256 --noise 0.1 --epochs 2 --batch 8 --lr 1.5e-4 --warmup 20 --amp bf16 --ce-frac 0.25 --mlp-p-w 1.0 --time-budget 1620 --log-every 10 --ckpt-every 40
# 10. stage 8 (session 4). It started from the committed stage-7 heads (bf16, exported), because the
#     stage-7 run dir did not survive between sessions; --init-from takes an exported folder and keeps
#     its stage list. Fresh self-distillation text: tokens 800,000 onwards (1.2 M tokens, 600 k of them
#     generated, ~700 tok/s: 29 min), mixed with the first 262,144 data tokens (8 shards of 64 x 512;
#     the published run stopped its data-features run after 8 shards: teacher-forced features ran at
#     only ~430 tok/s).
$PY -m train_heads --threads 2 features --out work/features-greedy2 --skip-tokens 800000 --tokens 1200000 --seq-len 256 --batch 16 --greedy-prompt 128 --greedy-gen 128
$PY -m train_heads export --run work/runs/gumiho7 --out work/exp7/gumiho   # the stage-7 heads as committed
mkdir -p work/features-8 && cp work/features/meta.json work/features/tokens.u16 work/features-8/ && \
  for i in 0 1 2 3 4 5 6 7; do ln -f work/features/shard_0000$i.pt work/features-8/; done
$PY -m train_heads --threads 2 train --kind gumiho --init-from work/exp7/gumiho --out work/runs/gumiho8 --features work/features-8 work/features-greedy2 work/features-greedy2 --seq-len 256 --noise 0.1 --epochs 2 --batch 8 --lr 1e-4 --warmup 20 --amp bf16 --ce-frac 0.25 --mlp-p-w 1.0 --time-budget 3300 --log-every 10 --ckpt-every 40
# 11. export, evaluation (teacher-forced on the data, and along the target's greedy path), model cards
$PY -m train_heads export --run work/runs/gumiho8 --out ../../heads/py-llama-28m/gumiho
$PY -m train_heads export --run work/runs/eagle22 --out ../../heads/py-llama-28m/eagle2
$PY -m train_heads export --run work/runs/medusa2 --out ../../heads/py-llama-28m/medusa
$PY -m train_heads eval --heads ../../heads/py-llama-28m/gumiho ../../heads/py-llama-28m/eagle2 ../../heads/py-llama-28m/medusa \
  --max-len 512 --windows-per-file 1 --md work/eval.md --json work/eval.json
$PY -m train_heads eval --on greedy --heads ../../heads/py-llama-28m/gumiho ../../heads/py-llama-28m/eagle2 ../../heads/py-llama-28m/medusa \
  --prompt-len 128 --gen-len 128 --md work/eval-greedy.md --json work/eval-greedy.json
for k in gumiho eagle2 medusa; do
  $PY -m train_heads card --heads ../../heads/py-llama-28m/$k --eval-json work/eval.json work/eval-greedy.json
done
