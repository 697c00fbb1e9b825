#!/bin/sh
# Reproduce heads/py-llama-28m/{gumiho,eagle2,medusa} (CPU; see RESULTS.md for the times measured).
# Run from tooling/train-heads. Long steps: run them under nohup and tail the logs in work/.
set -e
PY=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
$PY -m train_heads check-target
# 1. teacher-forced features; the published heads used the first 10 shards (327,680 tokens)
$PY -m train_heads features --tokens 327680 --seq-len 512
# 2. training (the three kinds ran concurrently, one thread each; --time-budget fits the LR schedule
#    into that many seconds, so on a faster or idle machine the run gets more steps, up to --epochs)
$PY -m train_heads --threads 1 train --kind gumiho --epochs 3 --batch 2 --lr 1e-3 --warmup 20 --amp bf16 --ce-frac 0.25 --time-budget 5400 --log-every 10 --ckpt-every 20
$PY -m train_heads --threads 1 train --kind eagle2 --epochs 2 --batch 2 --lr 1e-3 --warmup 20 --amp bf16 --ce-frac 0.5 --time-budget 2700 --log-every 10 --ckpt-every 20
$PY -m train_heads --threads 1 train --kind medusa --epochs 2 --batch 2 --lr 1e-3 --warmup 20 --amp bf16 --ce-frac 0.25 --time-budget 2700 --log-every 10 --ckpt-every 20
# 3. export + evaluation + model cards
for k in gumiho eagle2 medusa; do
  $PY -m train_heads export --run work/runs/$k --out ../../heads/py-llama-28m/$k
done
$PY -m train_heads eval --heads ../../heads/py-llama-28m/gumiho ../../heads/py-llama-28m/eagle2 ../../heads/py-llama-28m/medusa \
  --max-len 512 --windows-per-file 1 --md work/eval.md --json work/eval.json
for k in gumiho eagle2 medusa; do
  $PY -m train_heads card --heads ../../heads/py-llama-28m/$k --eval-json work/eval.json
done
