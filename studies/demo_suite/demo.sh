#!/bin/bash
# The demo-suite runs of RESULTS.md (2 CPU cores): stage 1 for seeds 0-2, then stage 2 variants on
# copies of each seed's stage-1 run (defaults chosen on their dev scores), AMP-maxpool (Figure 2),
# and the Table 1 baselines.
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
# one thread: see README, Performance
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
seeds=${SEEDS:-"0 1 2"}
for s in $seeds; do   # stage 1 = prompt tuning
  [ -f runs/s$s/config.json ] && ! [ -f runs/s$s/ckpt.pt ] &&
    [ $(ls runs/s$s/source/*.safetensors | wc -l) = 8 ] ||
    python train.py --stage source --seed $s --out runs/s$s \
      $([ -f runs/s$s/config.json ] && echo --resume)
done
# variant NAME FLAGS...: stage 2 with FLAGS on a copy of the seed's stage-1 run, then eval
variant() {
  local out=runs/s${s}_$1; shift
  [ -f $out/eval.json ] && return
  rm -rf $out && cp -r runs/s$s $out
  python train.py --stage target --out $out "$@" && python eval.py --out $out > $out.txt
}
for s in $seeds; do
  variant default
  variant orthonormal --psi-init orthonormal
  variant fixed --wv fixed
  variant lr1e-3 --lr 1e-3
done
# method RUN M FLAGS...: method M beside AMP in runs/s<seed>_RUN
# (continued with --resume if cut short)
method() {
  local out=runs/s${s}_$1 m=$2; shift 2
  [ -f $out/$m/target/colours.safetensors ] && return
  python train.py --stage target --method $m --out $out $([ -d $out/$m ] && echo --resume) "$@"
}
for s in $seeds; do   # Figure 2 with one start for both scorers: the orthonormal one
  method orthonormal amp-maxpool --psi-init orthonormal
  python eval.py --out runs/s${s}_orthonormal > runs/s${s}_orthonormal.txt
done
# (Seed 0's results: to use both cores, AMP-maxpool ran in its own copy of the stage-1 run
#  instead, beside the variants: cp -r runs/s0 runs/s0_maxpool && python train.py --stage target
#  --method amp-maxpool --psi-init orthonormal --out runs/s0_maxpool && python eval.py --out
#  runs/s0_maxpool. Same inputs, same result.)
# Table 1's baselines beside the default AMP run (SPoT-m's source: senti_movies)
for s in ${BASELINE_SEEDS:-0}; do
  for m in amp-maxpool spot-s spot-m attempt tpt finetune; do
    method default $m --spot-source senti_movies
  done
  python eval.py --out runs/s${s}_default > runs/s${s}_default.txt
done
