#!/bin/bash
# AMP and its ablations on the low-resource demo suite (--tasks lowres: senti_food_32,
# para_people_32 and entail_trips_32 have 32 training rows beside their full-size siblings), on one
# CPU thread. Per seed: stage 1 (prompt tuning); on copies of it, stage 2 as AMP (default) and as
# the ablations (VARIANTS: W_V only = --attn identity, A only = --wv fixed, near-uniform start =
# --psi-init random, heads trained too = --train-heads); prompt tuning continued for stage 2's
# epochs (--method pt-continued). For TRANSFER_SEEDS: the measured transfer (transfer.py). For
# BASELINE_SEEDS: SPoT-s and ATTEMPT beside the default AMP, then the transfer study again (it adds
# ATTEMPT's ranking). Every step skips what its folder already holds, so the script can be rerun
# after a stop. RESULTS.md's runs:
#   SEEDS=0 studies/lowres/lowres.sh
#   SEEDS="1 2" VARIANTS="default wvonly aonly uniform" TRANSFER_SEEDS= BASELINE_SEEDS= \
#     studies/lowres/lowres.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SMALL=senti_food_32,para_people_32,entail_trips_32
method() {  # method M: M beside the default AMP of seed $s (continued with --resume if cut short)
  [ -f runs/lr${s}_default/$1/target/colours.safetensors ] ||
    python train.py --stage target --method $1 --out runs/lr${s}_default \
      $(grep -q "\"$1\":" runs/lr${s}_default/config.json && echo --resume)
}
has() { [[ " $1 " == *" $2 "* ]]; }   # has "LIST" ITEM
for s in ${SEEDS-0 1 2}; do
  run=runs/lr$s
  [ -f $run/config.json ] && ! [ -f $run/ckpt.pt ] &&
    [ $(ls $run/source/*.safetensors | wc -l) = 8 ] ||
    python train.py --stage source --tasks lowres --seed $s --out $run \
      $([ -f $run/config.json ] && echo --resume)
  # stage 2 variants, each on a copy of stage 1
  for v in ${VARIANTS-default wvonly aonly uniform heads}; do
    out=${run}_$v
    [ -f $out/eval.json ] && continue
    rm -rf $out && cp -r $run $out
    flags=$(case $v in wvonly) echo --attn identity;; aonly) echo --wv fixed;;
            uniform) echo --psi-init random;; heads) echo --train-heads;; esac)
    python train.py --stage target --out $out $flags
    python eval.py --out $out > $out.txt
  done
  method pt-continued
  python eval.py --out ${run}_default > ${run}_default.txt
  if has "${TRANSFER_SEEDS-0}" $s && ! [ -f ${run}_default/transfer.json ]; then
    python -m studies.transfer --out ${run}_default --targets $SMALL > ${run}_transfer.txt
  fi
  if has "${BASELINE_SEEDS-0}" $s; then
    method spot-s
    method attempt
    python eval.py --out ${run}_default > ${run}_default.txt
    python -m studies.transfer --out ${run}_default --targets $SMALL > ${run}_transfer.txt
  fi
done
