#!/bin/bash
# --method select in Table 1's real-data setting (results/table1.sh), one CPU thread, then AMP with
# its heads trained (results/table1_ablation.sh's variant heads, in runs/t${s}_heads). Per seed:
# stage 1 in runs/t$s (table1.sh with METHODS=; skipped where done; a CPU reruns it score for
# score), then select in it at EPOCHS epochs. Kept: eval.py's prompt and select columns
# (results/table1_select_seed$s.json), the probe's dev scores (results/table1_probe_seed$s.json)
# and the sources select kept (results/table1_select_kept_seed$s.json).
# About 1 CPU-hour a seed, both parts.
#   SEED=0 results/table1_select.sh
set -e
cd "$(dirname "$0")/.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
s=${SEED:-0}; run=runs/t$s; E=${EPOCHS:-2}
SEED=$s EPOCHS=$E METHODS= results/table1.sh
[ -f $run/select/attention.json ] ||
  python train.py --stage target --method select --epochs $E --out $run \
    $([ -d $run/select ] && echo --resume)
python eval.py --out $run --methods prompt,select --json results/table1_select_seed$s.json \
  > $run.select.txt
cp $run/select/probe.json results/table1_probe_seed$s.json
cp $run/select/attention.json results/table1_select_kept_seed$s.json
SEED=$s EPOCHS=$E VARIANTS=heads results/table1_ablation.sh
