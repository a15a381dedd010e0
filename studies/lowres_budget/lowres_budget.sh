#!/bin/bash
# AMP's options on the lowres suite, seeds 0-2, one CPU thread a run. Each variant is stage target
# on a copy of its seed's stage 1 (runs/lr$s, as studies/lowres/lowres.sh makes it), scored with
# prompt tuning by eval.py on the reporting rows (lowres_budget_<variant>_seed$s.json, in this
# folder, studies/lowres_budget/) and by dev_scores.py on the dev rows, which choose settings
# (lowres_budget_<variant>_dev_seed$s.json):
#   default  (no flag)                       the paper's AMP at its demo default, 3 epochs,
#                                            heads frozen
#   heads3   --train-heads                   3 epochs, the heads trained too (ours)
#   e15      --epochs 15                     prompt tuning's, SPoT's and ATTEMPT's 15 epochs,
#                                            heads frozen
#   e15h     --epochs 15 --train-heads       15 epochs, the heads trained too
#   grouped  --mix-grouped                   3 epochs, the same draws in length-grouped batches
#                                            (ours)
#   t2       --mix-temperature 2             3 epochs, temperature mixing r_t ∝ N_t^(1/2) (ours)
#   t2h      --mix-temperature 2 --train-heads
#   e15t2h   --epochs 15 --mix-temperature 2 --train-heads
#   tuned    --method amp-tuned              on a copy of `default`: each task tuned from AMP's
#                                            P'_t (ours)
#   probe    --psi-init probe                3 epochs, A started from the probe's dev scores (ours)
#   probeh   --psi-init probe --train-heads
#   probet2h --psi-init probe --mix-temperature 2 --train-heads
# Last, studies/lowres_budget/lowres_budget.json: per variant and seed, the mean over the three
# 32-row tasks and over the other five, on test and on dev, and the paired difference to prompt
# tuning (mean ± std over the seeds run).
#   VARIANTS="heads3" studies/lowres_budget/lowres_budget.sh
#   SEEDS="0" VARIANTS="e15 e15h" studies/lowres_budget/lowres_budget.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
R=studies/lowres_budget  # this folder, from the repository root
for s in ${SEEDS-0 1 2}; do
  run=runs/lr$s
  [ -f $run/config.json ] && ! [ -f $run/ckpt.pt ] &&
    [ $(ls $run/source/*.safetensors | wc -l) = 8 ] ||
    python train.py --stage source --tasks lowres --seed $s --out $run \
      $([ -f $run/config.json ] && echo --resume)
  for v in ${VARIANTS-default heads3 e15 e15h grouped t2 t2h e15t2h}; do
    out=${run}_$v json=$R/lowres_budget_${v}_seed$s.json
    dev=$R/lowres_budget_${v}_dev_seed$s.json
    m=$([ $v = tuned ] && echo amp-tuned || echo amp)   # the method the variant trains
    if ! [ -f $json ]; then
      flags=$(case $v in heads3) echo --train-heads;; e15) echo --epochs 15;;
              e15h) echo --epochs 15 --train-heads;; grouped) echo --mix-grouped;;
              t2) echo --mix-temperature 2;; t2h) echo --mix-temperature 2 --train-heads;;
              e15t2h) echo --epochs 15 --mix-temperature 2 --train-heads;;
              tuned) echo --method amp-tuned;; probe) echo --psi-init probe;;
              probeh) echo --psi-init probe --train-heads;;
              probet2h) echo --psi-init probe --mix-temperature 2 --train-heads;; esac)
      [ $v = tuned ] && ! [ -d $out ] && cp -r ${run}_default $out && rm -f $out/eval*.json
      [ -d $out ] || cp -r $run $out
      python train.py --stage target --out $out $flags $([ -f $out/ckpt.pt ] && echo --resume)
      python eval.py --out $out --methods prompt,$m --json $json > $out.txt
    fi
    [ -f $dev ] ||
      python -m studies.lowres_budget.dev_scores --out $out --methods prompt $m --json $dev \
        >> $out.txt
  done
done
python - <<'EOF'
import glob, json, re
import numpy as np
SMALL = ["senti_food_32", "para_people_32", "entail_trips_32"]
rows = {}
R = "studies/lowres_budget"
for path in sorted(glob.glob(f"{R}/lowres_budget_*_seed*.json")):
    v, dev, s = re.match(rf"{R}/lowres_budget_(\w+?)(_dev)?_seed(\d)\.json", path).groups()
    J = json.load(open(path))
    T = (next(iter(J.values())) if dev
         else {t: {m: x[0] for m, x in r.items()} for t, r in J["table1"].items()})
    rename = lambda m: "amp" if m == "amp-tuned" else m  # tuned: AMP then tuned, in the column amp
    T = ({rename(k): v for k, v in T.items()} if dev
         else {t: {rename(m): x for m, x in r.items()} for t, r in T.items()})
    get = (lambda m, t: T[m][t]) if dev else (lambda m, t: T[t][m])
    split = "dev" if dev else "test"
    mean = lambda m, ts: float(np.mean([get(m, t) for t in ts]))
    rest = [t for t in (T["prompt"] if dev else T) if t not in SMALL]
    seed = rows.setdefault(v, {}).setdefault(f"seed{s}", {})
    seed.update({f"{m} {g} {split}": mean(m, ts) for m in ("prompt", "amp")
                 for g, ts in (("small", SMALL), ("rest", rest))})
out = {}
for v, seeds in rows.items():
    out[v] = dict(seeds)
    for g in ("small", "rest"):
        for split in ("test", "dev"):
            d = [x[f"amp {g} {split}"] - x[f"prompt {g} {split}"]
                 for x in seeds.values() if f"amp {g} {split}" in x]
            sd = float(np.std(d)) if d else None  # over seeds, as RESULTS.md gives it
            out[v][f"amp - prompt, {g}, {split}"] = d and dict(
                mean=float(np.mean(d)), std=sd, n=len(d))
json.dump(out, open(f"{R}/lowres_budget.json", "w"), indent=1)
print(json.dumps({v: {k: x for k, x in r.items() if " - " in k} for v, r in out.items()}, indent=1))
EOF
