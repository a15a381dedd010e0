#!/bin/bash
# Issue 12 on the low-resource demo suite (--tasks lowres: senti_food_32, para_people_32 and entail_trips_32 have 32
# training rows beside their full-size siblings), one seed after another on one CPU thread:
#   stage 1 (prompt tuning), then on copies of it: AMP (default), the ablations (W_V only = --attn identity,
#   A only = --wv fixed, near-uniform start = --psi-init random), prompt tuning continued for stage 2's epochs,
#   SPoT-s, SPoT-m and ATTEMPT beside the default AMP, eval.py, and the measured transfer (transfer.py).
# Every step skips what its folder already holds, so the script can be rerun after a stop.
#   SEEDS="0 1 2" results/lowres.sh        # then: python results/collect.py ... (see RESULTS.md)
set -e
cd "$(dirname "$0")/.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SMALL=senti_food_32,para_people_32,entail_trips_32
for s in ${SEEDS:-0 1 2}; do
  run=runs/lr$s
  [ -f $run/config.json ] && ! [ -f $run/ckpt.pt ] && [ $(ls $run/source/*.safetensors | wc -l) = 8 ] ||
    python train.py --stage source --tasks lowres --seed $s --out $run $([ -f $run/config.json ] && echo --resume)
  for v in default wvonly aonly uniform; do   # stage 2 variants, each on its own copy of stage 1
    out=${run}_$v
    [ -f $out/eval.json ] && continue
    rm -rf $out && cp -r $run $out
    flags=$(case $v in wvonly) echo --attn identity;; aonly) echo --wv fixed;; uniform) echo --psi-init random;; esac)
    python train.py --stage target --out $out $flags
    python eval.py --out $out > $out.txt
  done
  for m in pt-continued spot-s spot-m attempt; do   # beside the default AMP run
    [ -f ${run}_default/$m/target/colours.safetensors ] && continue
    python train.py --stage target --method $m --spot-source senti_movies --out ${run}_default \
      $(grep -q "\"$m\":" ${run}_default/config.json && echo --resume)
  done
  python eval.py --out ${run}_default > ${run}_default.txt
  [ -f ${run}_default/transfer.json ] || python transfer.py --out ${run}_default --targets $SMALL > ${run}_transfer.txt
done
