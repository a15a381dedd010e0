#!/bin/bash
# Stage 1 end to end, the code at commit bf413da (tasks one after another, random batches padded
# per batch, eval at batch 16 with autograd) against today's (all tasks in one pass, length-grouped
# batches, eval under inference_mode at batch 64), same tasks and flags, both at once, each pinned
# to its own core with one thread, so that both see the same machine. Writes
# studies/speed/speed_stage1.json.
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
data=$(realpath ../shared/data) tmp=$(mktemp -d)
git archive bf413da | tar -x -C $tmp && mkdir $tmp/new && git archive HEAD | tar -x -C $tmp/new
FLAGS="--stage source --tasks rte,mrpc,sst2 --data-dir $data"
FLAGS="$FLAGS --max-train 1000 --max-eval 200 --epochs 2 --seed 0"
(cd $tmp && /usr/bin/time -f "%e" -o $tmp/old.time taskset -c 1 \
   python train.py $FLAGS --out $tmp/old_run > $tmp/old.log 2>&1) &
(cd $tmp/new && /usr/bin/time -f "%e" -o $tmp/new.time taskset -c 0 \
   python train.py $FLAGS --out $tmp/new_run > $tmp/new.log 2>&1)
wait
python - $tmp <<'PY'
import json, sys
tmp = sys.argv[1]
r = {"command": "studies/speed/speed_stage1.sh",
     "flags": "--tasks rte,mrpc,sst2 --max-train 1000 --max-eval 200 --epochs 2 --seed 0",
     "machine": "2-core AMD EPYC (Zen 3, AVX2), torch 2.13 CPU, all-MiniLM-L6-v2, "
                "one thread per run, both runs at once"}
for side in ("old", "new"):
    run = f"{tmp}/{side}_run/source" if side == "old" else f"{tmp}/new_run/source"
    r[side] = dict(seconds=float(open(f"{tmp}/{side}.time").read().split()[-1]),
                   best_dev={t: json.load(open(f"{run}/{t}.json"))["best_dev"]
                             for t in ("rte", "mrpc", "sst2")})
r["speedup"] = round(r["old"]["seconds"] / r["new"]["seconds"], 2)
json.dump(r, open("studies/speed/speed_stage1.json", "w"), indent=1)
print(json.dumps(r, indent=1))
PY
