#!/bin/bash
# --method select and AMP with its heads trained, in Table 1's real-data setting (results/table1.sh), one CPU
# thread. Per seed: stage 1 in runs/t$s (table1.sh with METHODS=; skipped where done; a CPU reruns it score for
# score), then select in it and AMP with --train-heads in a copy, runs/t${s}h, both at EPOCHS epochs.
# Kept: eval.py's prompt and select columns (results/table1_select_seed$s.json), the probe's dev scores
# (results/table1_probe_seed$s.json), the sources select kept (results/table1_select_kept_seed$s.json) and
# prompt with AMP, heads trained (results/table1_heads_seed$s.json). About 1 CPU-hour a seed.
#   SEED=0 results/table1_select.sh
set -e
cd "$(dirname "$0")/.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
s=${SEED:-0}; run=runs/t$s; h=runs/t${s}h; E=${EPOCHS:-2}
SEED=$s EPOCHS=$E METHODS= results/table1.sh
[ -f $run/select/attention.json ] ||
  python train.py --stage target --method select --epochs $E --out $run $([ -d $run/select ] && echo --resume)
python eval.py --out $run --methods prompt,select --json results/table1_select_seed$s.json > $run.select.txt
cp $run/select/probe.json results/table1_probe_seed$s.json
cp $run/select/attention.json results/table1_select_kept_seed$s.json
[ -d $h ] || { cp -r $run $h; rm -rf $h/select $h/eval*.json; }
[ -f $h/target/qnli.safetensors ] || python train.py --stage target --train-heads --epochs $E --out $h \
  $(grep -q '"target":' $h/config.json && echo --resume)
python eval.py --out $h --methods prompt,amp --json results/table1_heads_seed$s.json > $h.txt
