#!/bin/bash
# The README first run's three commands, timed as a new user runs them (default threads), on the
# lowres suite. Run it on a quiet machine: anything else running is measured too.
#   studies/speed/quickstart_time.sh       # the suite's settings: quickstart_time.json
#   FLAGS="--max-train 150 --max-eval 50 --epochs 8" studies/speed/quickstart_time.sh
#                                          # README's first run (stage source's flags):
#                                          # quickstart_first_run.json
cd "$(dirname "$0")/../.."
. .venv/bin/activate 2>/dev/null || true
export HF_HUB_OFFLINE=1
out=${OUT:-runs/qs}
rm -rf $out
json=studies/speed/quickstart_time.json
[ -n "${FLAGS:-}" ] && json=studies/speed/quickstart_first_run.json
{ /usr/bin/time -f "stage source %e s" python train.py --stage source ${FLAGS:-} --out $out
  /usr/bin/time -f "stage target %e s" python train.py --stage target --out $out
  /usr/bin/time -f "eval %e s" python eval.py --out $out; } > $out.txt 2> $out.err
python - $out.err "$json" "${FLAGS:-}" <<'PY'
import datetime, json, re, sys
t = dict(re.findall(r"(stage source|stage target|eval) ([0-9.]+) s", open(sys.argv[1]).read()))
r = {k: float(v) for k, v in t.items()}
r.update(total=round(sum(r.values()), 1), suite="lowres", threads="torch default (2)",
         source_flags=sys.argv[3], date=datetime.date.today().isoformat(),
         machine="2-core AMD EPYC, torch 2.13 CPU, all-MiniLM-L6-v2, nothing else running")
json.dump(r, open(sys.argv[2], "w"), indent=1)
print(r)
PY
