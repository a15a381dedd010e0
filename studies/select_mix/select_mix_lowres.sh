#!/bin/bash
# --method select --select-mix on the lowres suite, seeds 0, 1, 2, one CPU thread: select with one
# more try for each task with two or more picks, from the probe-weighted mix of its picks
# (probe.mix_weights). Per seed, on a copy of runs/lr${s}_select (studies/select/select_lowres.sh;
# its probe and single-source tries are exactly what this command trains again, so they are kept)
# or, without it, of stage 1 (runs/lr$s); eval.py's columns prompt and select on the reporting rows
# (studies/select_mix/select_mix_lowres_seed$s.json) and the weights of each kept start
# (studies/select_mix/select_mix_lowres_kept_seed$s.json). studies/lowres_budget/lowres_table.py
# reads both.
# --select-mix has since been removed from train.py (it won the dev tune-off in 1 of 6 cases: see
# README.md here); this script records how the files here were made and runs only with code that
# still has the flag.
#   studies/select_mix/select_mix_lowres.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for s in ${SEEDS-0 1 2}; do
  out=runs/lr${s}_selmix
  from=$([ -f runs/lr${s}_select/select/probe.json ] && echo runs/lr${s}_select || echo runs/lr$s)
  [ -d $out ] ||
    { cp -r $from $out; rm -rf $out/eval*.json $out/select/target $out/select/attention.*; }
  if ! [ -f $out/select/attention.json ]; then
    python train.py --stage target --method select --select-mix --out $out \
      $([ -d $out/select ] && echo --resume)
  fi
  python eval.py --out $out --methods prompt,select \
    --json studies/select_mix/select_mix_lowres_seed$s.json > $out.txt
  cp $out/select/attention.json studies/select_mix/select_mix_lowres_kept_seed$s.json
done
