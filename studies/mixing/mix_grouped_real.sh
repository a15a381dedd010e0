#!/bin/bash
# --mix-grouped on a small real-data run, seeds 0-2, one CPU thread a run: CB, RTE, MRPC and STS-B
# from ../shared/data (300 training rows each at most, 200 dev and 200 reporting rows at most,
# inputs cut to 128 tokens), stage 1 for 2 epochs in runs/mg$s, then stage target (AMP, 2 epochs)
# with the paper's mixed batches in a copy (runs/mg${s}_paper) and with --mix-grouped in another
# (runs/mg${s}_grouped). Per run: each task's dev score (studies/lowres_budget/dev_scores.py) and
# stage target's seconds (its "done" line in log.jsonl), into
# studies/mixing/mix_grouped_real_<paper|grouped>_seed$s.json; the reporting rows are not read.
#   studies/mixing/mix_grouped_real.sh
#   SEEDS=0 studies/mixing/mix_grouped_real.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
TASKS=cb,rte,mrpc,stsb
for s in ${SEEDS-0 1 2}; do
  run=runs/mg$s
  [ -f $run/config.json ] && ! [ -f $run/ckpt.pt ] &&
    [ $(ls $run/source/*.safetensors | wc -l) = 4 ] ||
    python train.py --stage source --tasks $TASKS --data-dir ../shared/data --max-train 300 \
      --max-eval 200 --max-tokens 128 --epochs 2 --seed $s --out $run \
      $([ -f $run/config.json ] && echo --resume)
  for v in paper grouped; do
    out=${run}_$v json=studies/mixing/mix_grouped_real_${v}_seed$s.json
    [ -f $json ] && continue
    [ -d $out ] || cp -r $run $out
    python train.py --stage target --epochs 2 --out $out $([ $v = grouped ] && echo --mix-grouped) \
      $([ -f $out/ckpt.pt ] && echo --resume)
    python -m studies.lowres_budget.dev_scores --out $out --methods prompt amp --small cb,rte \
      --json $json.tmp
    python - $out $json <<'EOF'
import json, sys
out, path = sys.argv[1:]
done = [json.loads(x) for x in open(f"{out}/log.jsonl") if '"done"' in x]
seconds = [d["seconds"] for d in done if d["stage"] == "target"][-1]
J = dict(dev=json.load(open(path + ".tmp"))[out], target_seconds=seconds)
json.dump(J, open(path, "w"), indent=1)
EOF
    rm $json.tmp
  done
done
# Last, studies/mixing/mix_grouped_real.json: per seed, AMP's mean dev score over the four tasks
# with each kind of batch and stage target's seconds; the paired difference (grouped - paper) over
# the seeds.
python - <<'EOF2'
import glob, json
import numpy as np
seeds, out = {}, {}
for path in sorted(glob.glob("studies/mixing/mix_grouped_real_paper_seed*.json")):
    s = path[-6]
    P, G = (json.load(open(path.replace("paper", v))) for v in ("paper", "grouped"))
    mean = lambda J: float(np.mean(list(J["dev"]["amp"].values())))
    seeds[s] = dict(paper=mean(P), grouped=mean(G), paper_seconds=P["target_seconds"],
                    grouped_seconds=G["target_seconds"])
d = [x["grouped"] - x["paper"] for x in seeds.values()]
r = [x["paper_seconds"] / x["grouped_seconds"] for x in seeds.values()]
paper_spread = float(np.std([x["paper"] for x in seeds.values()]))  # AMP's own, over the seeds
out = dict(seeds=seeds, grouped_minus_paper=dict(mean=float(np.mean(d)), std=float(np.std(d))),
           paper_seed_std=paper_spread,
           speedup=dict(mean=float(np.mean(r)), min=min(r), max=max(r)))
json.dump(out, open("studies/mixing/mix_grouped_real.json", "w"), indent=1)
print(json.dumps(out, indent=1))
EOF2
