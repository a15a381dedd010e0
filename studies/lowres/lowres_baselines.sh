#!/bin/bash
# SPoT-s and ATTEMPT on the lowres suite beside the paper's AMP of each seed (runs/lr${s}_default,
# as studies/lowres/lowres.sh makes it), at stage source's defaults (15 epochs, prompt tuning's
# rates), on one CPU thread. The run's eval.json (every method it holds, reporting rows) is kept as
# studies/lowres/lowres_baselines_seed$s.json, which studies/lowres_budget/lowres_table.py reads.
# Seed 0's came from lowres.sh.
#   SEEDS="1 2" studies/lowres/lowres_baselines.sh   # about 1.5 hours a seed; seeds can run side
#                                                    # by side
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for s in ${SEEDS-1 2}; do
  out=runs/lr${s}_default
  [ -f $out/psi.safetensors ] ||
    { echo "$out: no AMP run; make it with studies/lowres/lowres.sh"; exit 1; }
  for m in spot-s attempt; do  # each continued with --resume if it was cut short
    [ -f $out/$m/target/colours.safetensors ] ||
      python train.py --stage target --method $m --out $out \
        $(grep -q "\"$m\":" $out/config.json && echo --resume)
  done
  python eval.py --out $out > $out.txt
  cp $out/eval.json studies/lowres/lowres_baselines_seed$s.json
done
