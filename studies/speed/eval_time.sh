#!/bin/bash
# eval.py's first call on a real-data run against its second on the same, unchanged run. The run
# has studies/table1/table1.sh's tasks, rows and input length (10 tasks from ../shared/data, 500
# training rows, 200 dev and 200 reporting rows at most, 128 tokens) and every Table 1 method, each
# trained for 2 steps only: what eval.py costs does not depend on how well a method was trained.
# One thread, as table1.sh. The first call scores every method (as every call did before
# eval_cache.json); the second finds every method's key unchanged. Prints both times; writes
# studies/speed/eval_time.json.
#   studies/speed/eval_time.sh            # about 20 minutes on a 2-core CPU
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
TASKS=imdb,sst2,stsb,mrpc,rte,scitail,cb,multirc,boolq,qnli
out=${OUT:-runs/eval_time}
[ -e $out ] && { echo "$out exists: remove it or set OUT"; exit 2; }
python train.py --stage source --tasks $TASKS --data-dir ../shared/data --carve --max-train 500 \
  --max-eval 200 --max-tokens 128 --max-steps 2 --out $out
for m in amp amp-maxpool spot-s spot-m attempt tpt finetune; do
  python train.py --stage target --method $m --max-steps 2 --out $out
done
t() {  # seconds of one eval.py call, its printout kept in $out/eval_$1.txt
  local s=$(date +%s.%N)
  python eval.py --out $out > $out/eval_$1.txt
  awk "BEGIN {print $(date +%s.%N) - $s}"
}
first=$(t first); second=$(t second)
table1() { sed -n '/Table 1/,/Table 2/p' $out/eval_$1.txt; }
cmp <(table1 first) <(table1 second)  # the same table
grep "scored now" $out/eval_second.txt
printf '{"first_s": %.1f, "second_s": %.1f, "threads": %s, "cpus": %s}\n' $first $second \
  $OMP_NUM_THREADS $(nproc --all) | tee studies/speed/eval_time.json
