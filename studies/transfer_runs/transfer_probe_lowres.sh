#!/bin/bash
# The measured transfer into the lowres suite's three 32-row tasks for seeds 1 and 2, with the
# probe's ranking beside AMP's: transfer.py on runs/lr${s}_heads3 (stage 1 and AMP with trained
# heads, studies/lowres_budget/lowres_budget.sh), given the probe's dev scores of
# runs/lr${s}_select (studies/select/select_lowres.sh). One CPU thread. Seed 0's measured transfer
# is studies/transfer_runs/transfer_lowres_seed0.json (on runs/lr0_default of
# studies/lowres/lowres.sh, AMP with frozen heads). Then studies/probe_study/probe_ranking.py holds
# the probe's ranking against the measured transfer of every seed.
#   studies/transfer_runs/transfer_probe_lowres.sh          # 21 tunings a seed
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SMALL=senti_food_32,para_people_32,entail_trips_32
for s in ${SEEDS-1 2}; do
  out=runs/lr${s}_heads3
  mkdir -p $out/select && cp runs/lr${s}_select/select/probe.json $out/select/probe.json
  python -m studies.transfer --out $out --targets $SMALL \
    --json studies/transfer_runs/transfer_lowres_seed$s.json \
    > ${out}_transfer.txt
done
python -m studies.probe_study.probe_ranking --seeds 0 ${SEEDS-1 2}
