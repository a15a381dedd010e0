#!/bin/bash
# Checks that a change of code changed no result: a lowres run at seed 0 (stage source, stage target, eval.py)
# made by the code at commit REF and by the working tree, each on one CPU thread, must give bit-identical
# tensors (the sha256 every prompt, head and ψ file carries), attention.json and eval.py scores.
#   tools/same_scores.sh 3f03631      # about 20 minutes per side on one core; a side already run is reused
set -euo pipefail
cd "$(dirname "$0")/.."
ref=$(git rev-parse --short "${1:?usage: tools/same_scores.sh COMMIT}")
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
py=$(pwd)/.venv/bin/python; [ -x "$py" ] || py=python
mkdir -p runs
[ -d runs/same_code_$ref ] || git worktree add --detach runs/same_code_$ref "$ref" >/dev/null
side() {  # side CODE_DIR RUN_DIR: the three quickstart commands, skipped where RUN_DIR already has eval.json
  [ -f "$2/eval.json" ] && return
  rm -rf "$2"
  (cd "$1" && $py train.py --stage source --seed 0 --out "$2" && $py train.py --stage target --out "$2" &&
   $py eval.py --out "$2") > "$2.log" 2>&1
}
side runs/same_code_$ref "$(pwd)/runs/same_$ref" &
side . "$(pwd)/runs/same_now"
wait
$py - "runs/same_$ref" runs/same_now <<'PY'
import glob, json, os, sys
from safetensors import safe_open
old, new = sys.argv[1:]
def sums(run):   # {file: sha256 of its tensors} for every tensor file of the run
    out = {}
    for p in sorted(glob.glob(os.path.join(run, "**", "*.safetensors"), recursive=True)):
        with safe_open(p, "pt") as f:
            out[os.path.relpath(p, run)] = json.loads(f.metadata()["sha256"])
    return out
checks = {"tensor files": sums,
          "attention.json": lambda r: json.load(open(os.path.join(r, "attention.json"))),
          "eval.py scores": lambda r: json.load(open(os.path.join(r, "eval.json")))["scores"]}
bad = [name for name, read in checks.items() if read(old) != read(new)]
n = len(sums(old))
print(f"{'DIFFER: ' + ', '.join(bad) if bad else 'identical'}: {n} tensor files, attention.json, "
      f"eval.py scores ({old} vs {new})")
sys.exit(1 if bad else 0)
PY
