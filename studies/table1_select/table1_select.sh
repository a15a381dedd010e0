#!/bin/bash
# --method select in Table 1's real-data setting (studies/table1/table1.sh), one CPU thread, then
# AMP with its heads trained (studies/table1_ablation/table1_ablation.sh's variant heads, in
# runs/t${s}_heads). Per seed: stage 1 in runs/t$s (table1.sh with METHODS=; skipped where done; a
# CPU reruns it score for score), then select in it at EPOCHS epochs. Kept, in this folder
# (studies/table1_select/): eval.py's prompt and select columns (table1_select_seed$s.json), the
# probe's dev scores (table1_probe_seed$s.json) and the sources select kept
# (table1_select_kept_seed$s.json).
# About 1 CPU-hour a seed, both parts.
#   SEED=0 studies/table1_select/table1_select.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
R=studies/table1_select  # this folder, from the repository root
s=${SEED:-0}; run=runs/t$s; E=${EPOCHS:-2}
SEED=$s EPOCHS=$E METHODS= studies/table1/table1.sh
[ -f $run/select/attention.json ] ||
  python train.py --stage target --method select --epochs $E --out $run \
    $([ -d $run/select ] && echo --resume)
python eval.py --out $run --methods prompt,select --json $R/table1_select_seed$s.json \
  > $run.select.txt
cp $run/select/probe.json $R/table1_probe_seed$s.json
cp $run/select/attention.json $R/table1_select_kept_seed$s.json
SEED=$s EPOCHS=$E VARIANTS=heads studies/table1_ablation/table1_ablation.sh
