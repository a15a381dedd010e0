#!/bin/bash
# The four methods that mix tasks in a batch (AMP, AMP-maxpool, ATTEMPT, TPT) at the setting of
# studies/table1/table1.sh with --mix-grouped, on seed SEED's stage 1 (runs/t$SEED, made by
# table1.sh), one CPU thread a run, two runs at once: AMP, AMP-maxpool and ATTEMPT in
# runs/t${SEED}g, TPT in runs/t${SEED}h. Per method: the seconds stage target took (its "done" line
# in log.jsonl) and each task's dev score (studies/lowres_budget/dev_scores.py; the reporting rows
# are not read), into studies/mixing/table1_grouped_seed$SEED.json. Compared with the "done in"
# seconds of RESULTS.md's Table 1 section, measured the same way with the paper's batches.
#   SEED=0 studies/mixing/table1_grouped.sh
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
s=${SEED:-0}; run=runs/t$s
[ -f $run/source/qnli.safetensors ] ||
  { echo "no stage 1 in $run: run SEED=$s METHODS= studies/table1/table1.sh first"; exit 1; }
train() {  # $1 the run copy, then its methods; each method's seconds in $1/seconds.txt
  out=$1; shift
  [ -d $out ] || cp -r $run $out
  for m in "$@"; do
    grep -q "^$m " $out/seconds.txt 2>/dev/null && continue
    part=$([ $m = amp ] && echo target || echo $m)
    python train.py --stage target --method $m --epochs 2 --mix-grouped --out $out \
      $(grep -q "\"$part\":" $out/config.json && echo --resume) > $out.$m.txt 2>&1
    echo "$m $(grep '"done"' $out/log.jsonl | tail -1 | python -c 'import json,sys;
print(json.loads(sys.stdin.read())["seconds"])')" >> $out/seconds.txt
  done
}
train ${run}g amp amp-maxpool attempt &
train ${run}h tpt &
wait
python -m studies.lowres_budget.dev_scores --out ${run}g --methods prompt amp amp-maxpool attempt \
  --small cb,rte --json /tmp/t1g_$s.json
python -m studies.lowres_budget.dev_scores --out ${run}h --methods tpt --small cb,rte \
  --json /tmp/t1h_$s.json
python - $run $s <<'EOF'
import json, sys
run, s = sys.argv[1:]
J = {"seconds": {}, "dev": {}}
for v in "gh":
    for line in open(f"{run}{v}/seconds.txt"):
        m, sec = line.split()
        J["seconds"][m] = float(sec)
    J["dev"].update(json.load(open(f"/tmp/t1{v}_{s}.json"))[run + v])
json.dump(J, open(f"studies/mixing/table1_grouped_seed{s}.json", "w"), indent=1)
print(json.dumps(J["seconds"]))
EOF
