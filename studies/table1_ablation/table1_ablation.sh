#!/bin/bash
# AMP's ablations on the real-data Table 1 run of seed SEED (runs/t$SEED, studies/table1/table1.sh):
# AMP's ablations on copies of its stage 1 (config, log and source prompts), each trained for EPOCHS
# epochs like the table's methods, and scored on the same reporting rows with eval.py --methods
# (prompt tuning beside the variant):
#   ptc     prompt tuning continued for the same epochs (--method pt-continued)
#   wvonly  W_V only, A = I (--attn identity)        aonly    A only, W_V = I (--wv fixed)
#   uniform AMP from a near-uniform A (--psi-init random)
#   heads   AMP with the task heads trained beside ψ (--train-heads; ours, not an ablation)
#   probet2h the lowres suite's best AMP combination on dev (ours): A started from the probe,
#           T = 2, heads trained (--psi-init probe --mix-temperature 2 --train-heads); the probe's
#           rows are select's where studies/table1_select/table1_select.sh has run, else train.py
#           probes afresh
# AMP itself is the table's AMP column (runs/t$SEED). Writes
# studies/table1_ablation/table1_ablation_<variant>_seed<SEED>.json.
#   SEED=0 VARIANTS="ptc wvonly" studies/table1_ablation/table1_ablation.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
s=${SEED:-0}; run=runs/t$s; E=${EPOCHS:-2}
for v in ${VARIANTS-ptc wvonly aonly uniform}; do
  out=${run}_$v; json=studies/table1_ablation/table1_ablation_${v}_seed$s.json
  [ -f $json ] && continue
  rm -rf $out && mkdir -p $out && cp -r $run/config.json $run/log.jsonl $run/source $out/
  case $v in
    ptc) python train.py --stage target --method pt-continued --epochs $E --out $out
         m=prompt,pt-continued;;
    *) flags=$(case $v in wvonly) echo --attn identity;; aonly) echo --wv fixed;;
                 uniform) echo --psi-init random;; heads) echo --train-heads;;
                 probet2h) echo --psi-init probe --mix-temperature 2 --train-heads;; esac)
       [ $v = probet2h ] && [ -f $run/select/probe.json ] && mkdir -p $out/probe &&
         cp $run/select/probe.json $out/probe/  # the same computation: not redone
       python train.py --stage target --overwrite --epochs $E --out $out $flags
       m=prompt,amp;;
  esac
  python eval.py --out $out --methods $m --json $json > $out.txt
done
