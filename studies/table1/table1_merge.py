"""studies/table1/table1_merge.py: Table 1 over seeds from the JSON files that `eval.py --json`
wrote, without the checkpoints. Each file holds some methods on some runs (one run folder per
seed); this joins them by run folder and method, prints Table 1 (mean ± std over the seeds a column
has), each method's difference from prompt tuning (or from --minus's column) paired by seed (the
mean of all tasks, of the four small-split tasks, of the others, and each of those four), and
Figure 2 (AMP minus AMP-maxpool per task, paired by seed). A run and method present in two files
must hold the same scores (a rerun that reproduces); if not, this says so and keeps the first
file's.

The ablations (studies/table1_ablation/table1_ablation.sh) train AMP's variants in copies of a
seed's stage 1, runs/t<s>_<v>: their "amp" column is read as method <v> of runs/t<s> (wvonly,
aonly, uniform, heads, probet2h; ptc's column is pt-continued), and their prompt tuning column must
equal that of runs/t<s>, which checks that the copy held the same source prompts.

  T=studies/table1 A=studies/table1_ablation
  python -m studies.table1.table1_merge $T/table1_seed0.json $T/table1_seeds.json \
      $T/table1_seed1.json $T/table1_seed2.json --json $T/table1_seeds_all.json
  python -m studies.table1.table1_merge $T/table1_seed?.json $T/table1_seeds.json \
      $A/table1_ablation_*.json --methods prompt,pt-continued,wvonly,aonly,amp,uniform \
      --json $A/table1_ablations.json
  python -m studies.table1.table1_merge $T/table1_seed?.json $T/table1_seeds.json \
      $A/table1_ablation_*.json --methods prompt,pt-continued,wvonly,aonly,amp,uniform \
      --minus amp     # each row paired with AMP instead
"""

import argparse
import json

import numpy as np

from eval import METHODS, cell

# the variants that studies/table1_ablation/table1_ablation.sh trains
ABLATION = {"wvonly": "W_V only", "aonly": "A only", "uniform": "AMP uniform"}
ABLATION["heads"] = "AMP, heads"  # ours: --train-heads, beside the ablations
ABLATION["probet2h"] = "AMP, probe"  # ours: lowres' best AMP combination on dev
NAMES = dict(METHODS, **ABLATION)  # Table 1's columns in eval.py's order, then the variants
SMALL = ["cb", "rte", "mrpc", "stsb"]  # the tasks whose reporting splits are small


def merge(paths):
    """{method: {run: {task: score}}} from eval.py's JSON files; the tasks in the first file's
    order."""
    joined, tasks = {}, None
    for path in paths:
        d = json.load(open(path))
        tasks = tasks or list(d["table1"])
        for i, folder in enumerate(d["runs"]):
            base, _, variant = folder.rpartition("_")
            run = base if variant in ABLATION or variant == "ptc" else folder
            for m in d["methods"]:
                new = {t: d["table1"][t][m][i] for t in d["table1"]}
                m = variant if m == "amp" and variant in ABLATION else m
                old = joined.setdefault(m, {}).setdefault(run, new)
                worst = max(abs(old[t] - new[t]) for t in old)
                if worst > 1e-6:
                    print(
                        f"note: {m} in {run} differs between files by up to {worst:.1f} points; "
                        "keeping the first"
                    )
    return joined, tasks


def minus(joined, tasks, methods, base, mean):
    """Each method minus column `base`, paired by seed, over all tasks, the small four, the others
    and each small task -> {method: {column: [per seed]}}."""
    print(f"\nminus {NAMES[base]}, paired by seed (mean ± std over seeds)")
    small = [t for t in SMALL if t in tasks]
    cols = [("all", tasks), ("small four", small), ("other", [t for t in tasks if t not in small])]
    cols += [(t, [t]) for t in small]
    print(f"{'method':14s}" + "".join(f"{c:>14s}" for c, _ in cols) + "  per seed (all tasks)")
    diffs = {}
    for m in methods:
        paired = [r for r in joined[m] if r in joined[base]]
        if m == base or not paired:
            continue
        diffs[m] = {c: [mean(m, r, ts) - mean(base, r, ts) for r in paired] for c, ts in cols}
        seeds = " / ".join(f"{v:+.1f}" for v in diffs[m]["all"])
        row = "".join(f"{cell(diffs[m][c], '+'):>14s}" for c, _ in cols)
        print(f"{NAMES[m]:14s}{row}  {seeds}")
    return diffs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="JSON files written by eval.py --json")
    ap.add_argument("--methods", help="the columns to show, a comma list in order (default: all)")
    ap.add_argument(
        "--minus", default="prompt", help="the column subtracted from every other one, by seed"
    )
    ap.add_argument("--json", help="write the merged table (every seed's score) here")
    args = ap.parse_args()
    joined, tasks = merge(args.files)
    methods = args.methods.split(",") if args.methods else [m for m in NAMES if m in joined]
    for m in methods + [args.minus]:
        if m not in joined:
            ap.error(f"no column {m!r} in these files; they have: {', '.join(joined)}")
    runs = sorted({r for m in methods for r in joined[m]})

    def mean(m, r, ts):  # method m's mean over tasks ts in run r
        return float(np.mean([joined[m][r][t] for t in ts]))

    def row(f):  # one cell per column
        return "".join(f"{f(m):>15s}" for m in methods)

    print(f"Table 1: reporting split, mean ± std over the seeds (runs: {', '.join(runs)})")
    print(f"{'task':9s}" + row(lambda m: NAMES[m]))
    for t in tasks:
        print(f"{t:9s}" + row(lambda m: cell([joined[m][r][t] for r in joined[m]])))
    print(f"{'mean':9s}" + row(lambda m: cell([mean(m, r, tasks) for r in joined[m]])))
    print(f"{'seeds':9s}" + "".join(f"{len(joined[m]):>15d}" for m in methods))
    diffs = minus(joined, tasks, methods, args.minus, mean)
    figure2 = {}
    if "amp" in joined and "amp-maxpool" in joined:
        amp, maxpool = joined["amp"], joined["amp-maxpool"]
        paired = [r for r in amp if r in maxpool]
        figure2 = {t: [amp[r][t] - maxpool[r][t] for r in paired] for t in tasks}
        figure2["mean"] = [mean("amp", r, tasks) - mean("amp-maxpool", r, tasks) for r in paired]
        print(f"\nFigure 2: AMP minus AMP-maxpool, paired by seed ({len(paired)} seeds)")
        print("  " + "   ".join(f"{t} {cell(v, '+')}" for t, v in figure2.items()))
    if args.json:
        out = dict(files=args.files, tasks=tasks, runs=runs, scores=joined)
        out.update({f"minus_{args.minus}": diffs}, figure2=figure2)
        json.dump(out, open(args.json, "w"), indent=1)
        print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
