"""studies/lowres/ablation.py: the ablation table (where AMP's gain comes from), from finished run
folders.

Rows: prompt tuning, prompt tuning continued for stage 2's epochs, W_V only (A = I), A only
(W_V = I), AMP, AMP from a near-uniform start, AMP with the heads trained too, and SPoT-s / ATTEMPT
where a run has them. Columns: the mean reporting score over the small tasks, over the others, and
over all, each as mean ± std over seeds, and each row's difference from prompt tuning, paired by
seed (mean ± std). Every score comes from the runs' eval.json.

  python -m studies.lowres.ablation --prefix runs/lr \
      --small senti_food_32,para_people_32,entail_trips_32 --seeds 0 1 2 \
      --json studies/lowres/lowres_ablation.json
A run folder is PREFIX<seed>_<variant> (variants: default, wvonly, aonly, uniform, heads); prompt
tuning, prompt tuning continued, SPoT-s and ATTEMPT are read from the default one. A missing folder
leaves its row out for that seed (the row then says over how many seeds it is).
"""

import argparse
import json
import os

import numpy as np

ROWS = [  # (row, variant, method)
    ("prompt tuning", "default", "prompt"),
    ("PT continued", "default", "pt-continued"),
    ("W_V only (A = I)", "wvonly", "amp"),
    ("A only (W_V = I)", "aonly", "amp"),
    ("AMP", "default", "amp"),
    ("AMP, near-uniform start", "uniform", "amp"),
    ("AMP, heads trained too", "heads", "amp"),
    ("SPoT-s", "default", "spot-s"),
    ("ATTEMPT", "default", "attempt"),
]


def scores(prefix, seed, variant, method):
    """{task: first metric} of one method in one run folder, or None if it is not there."""
    path = f"{prefix}{seed}_{variant}/eval.json"
    if not os.path.exists(path):
        return None
    ev = json.load(open(path))
    s = ev["scores"].get(method)
    return None if s is None else {t: s[t][ev["metric"][t]] for t in s}


def pick(d, keep):
    """The mean of {task: score} over the tasks that keep(task) admits."""
    return np.mean([d[t] for t in d if keep(t)])


def cell(row, k):
    """One table cell: mean ± std."""
    return f"{row[k][0]:6.2f} ± {row[k][1]:4.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", default="runs/lr", help="run folders are PREFIX<seed>_<variant>")
    ap.add_argument("--small", required=True, help="comma list of the low-resource target tasks")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds to read")
    ap.add_argument("--json", help="write the table here")
    args = ap.parse_args()
    small = args.small.split(",")
    table, base = [], {s: scores(args.prefix, s, "default", "prompt") for s in args.seeds}
    print(
        "mean reporting score (mean ± std over seeds); Δ = row minus prompt tuning, paired by seed"
    )
    head = ["small tasks", "others", "all", "Δ small", "Δ all"]
    print(f"{'':26s} " + " ".join(f"{h:>14s}" for h in head) + "  seeds")
    for label, variant, method in ROWS:
        per = {s: scores(args.prefix, s, variant, method) for s in args.seeds}
        per = {s: v for s, v in per.items() if v is not None and base[s] is not None}
        if not per:
            continue
        cols = {"small": [], "others": [], "all": [], "d_small": [], "d_all": []}
        for s, v in per.items():
            cols["small"].append(pick(v, lambda t: t in small))
            cols["others"].append(pick(v, lambda t: t not in small))
            cols["all"].append(pick(v, lambda t: True))
            cols["d_small"].append(cols["small"][-1] - pick(base[s], lambda t: t in small))
            cols["d_all"].append(cols["all"][-1] - pick(base[s], lambda t: True))
        stats = {k: [float(np.mean(v)), float(np.std(v))] for k, v in cols.items()}
        row = dict(row=label, variant=variant, method=method, seeds=sorted(per), **stats)
        row["per_seed"] = {s: v for s, v in per.items()}
        table.append(row)
        print(f"{label:26s} " + " ".join(f"{cell(row, k):>14s}" for k in cols) + f"  {len(per)}")
    if args.json:
        out = dict(small=small, seeds=args.seeds, prefix=args.prefix, rows=table)
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
