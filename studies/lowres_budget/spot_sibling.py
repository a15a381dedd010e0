"""studies/lowres_budget/spot_sibling.py: two transfer rows of the lowres table, for each 32-row
target T:
- SPoT-m from T's best sibling: T's prompt and a fresh head tuned on T from the source prompt of a
  full-size task of T's own family (SPoT's transfer, as transfer.py trains it), the sibling chosen
  on T's dev rows where the family has two (senti_food_32: senti_movies or senti_gadgets);
- the measured best single source: the best of all seven sources on T's reporting rows (an oracle,
  chosen on the rows it is scored on).
Dev scores from transfer.py's sub-runs (OUT/transfer/S/spot-m/target/T.json); reporting scores
from studies/transfer_runs/transfer_lowres_seed<s>.json (prompt tuning's score plus the measured
transfer).
  python -m studies.lowres_budget.spot_sibling \
      --runs runs/lr0_heads3 runs/lr1_heads3 runs/lr2_heads3 \
      --json studies/lowres_budget/spot_sibling_lowres.json
"""

import argparse
import json
import os

import numpy as np

from lib.demo import DEMO

STUDIES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURED = os.path.join(STUDIES, "transfer_runs")  # transfer_lowres_seed<s>.json

ap = argparse.ArgumentParser(description="SPoT-m from the best sibling, and the best source.")
ap.add_argument("--runs", nargs="+", required=True, help="lowres run folders, seeds 0, 1, 2, ...")
ap.add_argument("--json", help="write the rows here")


def sibling_rows(run, seed):
    """{T: {"sibling", "dev": {S: dev}, "test": SPoT-m's, "best": (S, test), "pt": PT's test}}."""
    measured = json.load(open(os.path.join(MEASURED, f"transfer_lowres_seed{seed}.json")))["runs"]
    m = next(iter(measured.values()))  # the seed's one run
    rows = {}
    for T in m["targets"]:
        family = DEMO[T.removesuffix("_32")][0]
        siblings = [S for S in m["sources"] if S in DEMO and DEMO[S][0] == family and S != T]
        dev = {}  # read only where there is a choice
        for S in siblings if len(siblings) > 1 else []:
            path = os.path.join(run, "transfer", S, "spot-m", "target", f"{T}.json")
            dev[S] = json.load(open(path))["best_dev"]
        S = max(siblings, key=lambda s: dev.get(s, 0))  # a tie: the first in the suite's order
        best = max(m["measured"][T], key=m["measured"][T].get)
        test = {s: m["pt"][T] + m["measured"][T][s] for s in (S, best)}
        rows[T] = dict(sibling=S, dev=dev, test=test[S], best=[best, test[best]], pt=m["pt"][T])
    return rows


def main():
    args = ap.parse_args()
    out, small = {}, {"pt": [], "spot-m sibling": [], "best single source": []}
    for run in args.runs:
        seed = json.load(open(os.path.join(run, "config.json")))["run"]["seed"]
        rows = sibling_rows(run, seed)
        out[f"seed{seed}"] = rows
        for k, f in [("pt", "pt"), ("spot-m sibling", "test"), ("best single source", "best")]:
            small[k].append(
                float(np.mean([r[f][1] if k.startswith("best") else r[f] for r in rows.values()]))
            )
        for T, r in rows.items():
            print(
                f"seed {seed} {T:16s} PT {r['pt']:5.1f}  sibling {r['sibling']} {r['test']:5.1f} "
                f"(dev {r['dev']})  best {r['best'][0]} {r['best'][1]:5.1f}"
            )
    for k, v in small.items():
        each = ", ".join(f"{x:.1f}" for x in v)
        print(f"small tasks, {k}: {np.mean(v):.2f} ± {np.std(v):.2f} ({each})")
    for k in ("spot-m sibling", "best single source"):
        d = np.array(small[k]) - np.array(small["pt"])
        out[f"{k} - pt, small"] = dict(mean=float(d.mean()), std=float(d.std()), n=len(d))
        print(f"{k} - prompt tuning, small: {d.mean():+.2f} ± {d.std():.2f}")
    out["small"] = small
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
