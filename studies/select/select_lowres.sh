#!/bin/bash
# --method select on the lowres suite, seeds 0, 1, 2, on one CPU thread. Per seed: stage 1 in
# runs/lr$s (as studies/lowres/lowres.sh makes it), select on a copy of it (runs/lr${s}_select),
# then eval.py's columns prompt and select on the reporting rows, as
# studies/select/select_lowres_seed$s.json, and the probe's dev scores and the sources select kept
# beside them. Last, studies/select/select_lowres.json: per seed, the mean over the three 32-row
# tasks and over the five others and colours, for prompt tuning and select, and their paired
# difference.
#   studies/select/select_lowres.sh        # stage 1 is skipped where runs/lr$s holds it
#   SEEDS=0 studies/select/select_lowres.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for s in ${SEEDS-0 1 2}; do
  run=runs/lr$s out=runs/lr${s}_select
  [ -f $run/config.json ] && ! [ -f $run/ckpt.pt ] &&
    [ $(ls $run/source/*.safetensors | wc -l) = 8 ] ||
    python train.py --stage source --tasks lowres --seed $s --out $run \
      $([ -f $run/config.json ] && echo --resume)
  [ -d $out ] || { cp -r $run $out; rm -f $out/eval.json $out/eval_cache.json; }
  if ! [ -f $out/select/attention.json ]; then
    python train.py --stage target --method select --out $out $([ -d $out/select ] && echo --resume)
  fi
  python eval.py --out $out --methods prompt,select \
    --json studies/select/select_lowres_seed$s.json > $out.txt
  cp $out/select/probe.json studies/select/select_lowres_probe_seed$s.json
  cp $out/select/attention.json studies/select/select_lowres_kept_seed$s.json
done
python - <<'EOF'
import json, os
import numpy as np
SMALL = ["senti_food_32", "para_people_32", "entail_trips_32"]
out = {}
for s in range(3):
    path = f"studies/select/select_lowres_seed{s}.json"
    if not os.path.exists(path):
        continue
    T = json.load(open(path))["table1"]
    mean = lambda m, ts: float(np.mean([T[t][m][0] for t in ts]))
    rest = [t for t in T if t not in SMALL]
    out[f"seed{s}"] = {f"{m} {g}": mean(m, ts) for m in ("prompt", "select")
                       for g, ts in (("small", SMALL), ("rest", rest))}
seeds = list(out.values())
for g in ("small", "rest"):
    d = [v[f"select {g}"] - v[f"prompt {g}"] for v in seeds]
    out[f"select - prompt, {g}"] = dict(mean=float(np.mean(d)), std=float(np.std(d)), n=len(d))
json.dump(out, open("studies/select/select_lowres.json", "w"), indent=1)
print(json.dumps(out, indent=1))
EOF
