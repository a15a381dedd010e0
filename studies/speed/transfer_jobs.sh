#!/bin/bash
# python -m studies.transfer --jobs 2 against --jobs 1 on the same tunings: the 7 tunings into
# senti_food_32 (one from each other task's source prompt) of lowres seed 1's stage-2 run
# (runs/lr1_heads3, as studies/lowres_budget/lowres_budget.sh makes it), at stage source's flags
# (15 epochs, early stopping), each in a fresh copy of that run without its transfer/ folder.
# Prints both wall times and whether the tuned prompts and heads are identical tensors. Run it with
# both cores free. THREADS=1 holds the command to one thread (OMP_NUM_THREADS=1, as every study
# script runs): --jobs 1 then uses one core, and each of --jobs 2's processes one; unset, torch's
# threads already use both cores in one process. TARGETS (comma-separated, default senti_food_32)
# names the targets: all three small tasks make 21 tunings, so that the last of them leaves a core
# idle for a smaller share of the time.
#   studies/speed/transfer_jobs.sh              # -> studies/speed/transfer_jobs.json
#   THREADS=1 studies/speed/transfer_jobs.sh    # -> studies/speed/transfer_jobs_1thread.json
#   THREADS=1 TARGETS=senti_food_32,entail_trips_32,para_people_32 studies/speed/transfer_jobs.sh
#                                         # -> studies/speed/transfer_jobs_1thread_3targets.json
set -e
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1
[ -n "$THREADS" ] && export OMP_NUM_THREADS=$THREADS
T=${TARGETS:-senti_food_32}; nt=$(echo ${T//,/ } | wc -w)
json=studies/speed/transfer_jobs${THREADS:+_${THREADS}thread}
json=$json$([ $nt = 1 ] || echo _${nt}targets).json
src=runs/lr1_heads3
for j in 1 2; do
  rm -rf runs/tj$j && cp -r $src runs/tj$j && rm -rf runs/tj$j/transfer runs/tj$j/transfer.json
  t0=$(date +%s.%N)
  python -m studies.transfer --out runs/tj$j --targets $T --jobs $j > runs/tj$j.txt 2>&1
  echo "$j $t0 $(date +%s.%N)" >> runs/tj_times.txt
done
JSON=$json NT=$nt python - <<'EOF'
import glob, json, os
rows = [line.split() for line in open("runs/tj_times.txt").read().split("\n") if line][-2:]
times = {j: float(end) - float(start) for j, start, end in rows}
files = lambda j: sorted(glob.glob(f"runs/tj{j}/transfer/*/spot-m/target/*.safetensors"))
from safetensors.torch import load_file
pairs = [(load_file(a), load_file(b)) for a, b in zip(files(1), files(2))]
same = len(pairs) == 7 * int(os.environ["NT"]) and all(
    all(x[k].equal(y[k]) for k in x) for x, y in pairs)
out = dict(seconds_jobs1=times["1"], seconds_jobs2=times["2"], identical=same,
           speedup=times["1"] / times["2"], cores=os.cpu_count(), load=os.getloadavg(),
           omp_num_threads=os.environ.get("OMP_NUM_THREADS"), tunings=len(pairs))
json.dump(out, open(os.environ["JSON"], "w"), indent=1)
print(out)
EOF
rm -f runs/tj_times.txt
