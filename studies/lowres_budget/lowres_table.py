"""studies/lowres_budget/lowres_table.py: the lowres suite's table of every method, from committed
JSON alone: prompt tuning, AMP's variants (lowres_budget.sh, this folder), SPoT-s and ATTEMPT
(studies/lowres/lowres_baselines_seed<s>.json, studies/lowres/lowres_baselines.sh), SPoT-m from
each 32-row target's best sibling and the measured best single source (spot_sibling_lowres.json,
this folder; 32-row tasks only), select (studies/select/select_lowres.sh) and select with the
picks' mix (studies/select_mix/select_mix_lowres.sh). Per row: the test mean over the three 32-row
tasks, the other five, all eight; each minus prompt tuning, paired by seed (mean ± std over the
seeds the row has); and for AMP's variants the same on dev, which picks "the best AMP
combination": the variant with the highest dev mean over all eight tasks (ties: the one listed
first).
  python -m studies.lowres_budget.lowres_table --json studies/lowres_budget/lowres_table.json
"""

import argparse
import glob
import json
import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STUDIES = os.path.dirname(HERE)  # the other study folders this table reads
SMALL = ["senti_food_32", "para_people_32", "entail_trips_32"]
PROBE_HEADS = "the probe, +3 epochs, ψ and heads"
VARIANTS = [  # (variant of lowres_budget.sh, row, budget)
    ("default", "AMP (paper)", "+3 epochs, ψ"),
    ("e15", "AMP (paper), 15 epochs", "+15 epochs, ψ"),
    ("heads3", "AMP, heads trained (ours)", "+3 epochs, ψ and heads"),
    ("e15h", "AMP, heads trained, 15 epochs (ours)", "+15 epochs, ψ and heads"),
    ("grouped", "AMP, --mix-grouped (ours)", "+3 epochs, ψ"),
    ("t2", "AMP, --mix-temperature 2 (ours)", "+3 epochs, ψ"),
    ("t2h", "AMP, T = 2, heads trained (ours)", "+3 epochs, ψ and heads"),
    ("e15t2h", "AMP, T = 2, heads trained, 15 epochs (ours)", "+15 epochs, ψ and heads"),
    ("tuned", "AMP, then tuned (ours)", "+3 epochs ψ, then +15 a task"),
    ("probe", "AMP, A from the probe (ours)", "the probe, +3 epochs, ψ"),
    ("probeh", "AMP, A from the probe, heads trained (ours)", PROBE_HEADS),
    ("probet2h", "AMP, A from the probe, T = 2, heads trained (ours)", PROBE_HEADS),
]
ap = argparse.ArgumentParser(description="The lowres table of every method, from studies' JSON.")
ap.add_argument("--json", help="write the table here")


def test_scores(path, column):
    """{task: test score} of one column of an eval.py --json file (its first run)."""
    J = json.load(open(path))
    if "table1" in J:
        return {t: r[column][0] for t, r in J["table1"].items() if column in r}
    return {t: next(iter(m.values())) for t, m in J["scores"][column].items()}


def means(scores):
    """(small, others, all) means of {task: score}; None where the tasks are missing."""
    rest = [t for t in scores if t not in SMALL]

    def mean(ts):
        return float(np.mean([scores[t] for t in ts])) if ts else None

    return mean([t for t in SMALL if t in scores]), mean(rest), mean(list(scores))


def row(per_seed, pt):
    """{seeds, small, others, all: mean ± std over seeds; d_*: minus prompt tuning, paired;
    by_seed: the small-task mean of each seed}."""
    out = dict(seeds=sorted(per_seed), by_seed={s: m[0] for s, m in per_seed.items()})
    for i, g in enumerate(["small", "others", "all"]):
        x = {s: m[i] for s, m in per_seed.items() if m[i] is not None}
        if x:
            d = [x[s] - pt[s][i] for s in x]
            out[g] = [float(np.mean(list(x.values()))), float(np.std(list(x.values())))]
            out["d_" + g] = [float(np.mean(d)), float(np.std(d))]
    return out


def seed(path):
    """The seed a JSON file's name gives."""
    return int(re.search(r"seed(\d)", path).group(1))


def budget(v):
    """lowres_budget.sh's reporting-row files of variant v (a glob pattern)."""
    files = glob.glob(os.path.join(HERE, f"lowres_budget_{v}_seed[0-9].json"))
    return [p for p in files if "_dev_" not in p]


def amp_rows(rows, pt):
    """AMP's variants on test into rows, and on dev (minus prompt tuning and minus the paper's
    AMP, paired by seed); the best AMP combination on dev. Returns {row: {seed: dev means}}."""
    dev_pt, dev_rows, test_rows = {}, {}, {}
    for v, name, cost in VARIANTS:
        col = "amp-tuned" if v == "tuned" else "amp"
        found = {seed(p): means(test_scores(p, col)) for p in budget(v)}
        if not found:
            continue
        rows[name], test_rows[name] = dict(row(found, pt), budget="stage 1, then " + cost), found
        devs = glob.glob(os.path.join(HERE, f"lowres_budget_{v}_dev_seed*.json"))
        dev = {seed(p): next(iter(json.load(open(p)).values())) for p in devs}
        dev_pt.update({s: means(d["prompt"]) for s, d in dev.items()})
        dev_rows[name] = {s: means(d[col]) for s, d in dev.items()}
    paper = VARIANTS[0][1]
    for name, d in dev_rows.items():  # minus prompt tuning, and minus the paper's AMP, by seed
        rows[name]["dev"] = row(d, dev_pt)
        rows[name]["dev"]["vs paper"] = row(d, {s: dev_rows[paper][s] for s in d})
        both = [s for s in d if s in test_rows[name] and s in test_rows[paper]]  # paired
        rows[name]["vs paper"] = row({s: test_rows[name][s] for s in both}, test_rows[paper])
    full = {n: r for n, r in dev_rows.items() if len(r) == 3}  # every seed scored on dev
    best = max(full, key=lambda n: rows[n]["dev"]["all"][0]) if full else None
    rows["best AMP combination (on dev)"] = dict(rows[best], picked=best) if best else {}
    return dev_rows


def transfer_rows(rows, pt):
    """SPoT-s, ATTEMPT, SPoT-m from the best sibling, the best single source and select."""
    base = glob.glob(os.path.join(STUDIES, "lowres", "lowres_baselines_seed[0-9].json"))
    for m, name in [("spot-s", "SPoT-s"), ("attempt", "ATTEMPT")]:
        per = {seed(p): means(test_scores(p, m)) for p in base}
        rows[name] = dict(row(per, pt), budget="stage 1, then 15 epochs")
    sib = json.load(open(os.path.join(HERE, "spot_sibling_lowres.json")))
    seeds = {int(s[4:]): v for s, v in sib.items() if s.startswith("seed")}
    for key, name in [("test", "SPoT-m from the best sibling"), ("best", "best single source")]:
        per = {  # 32-row tasks only
            s: (float(np.mean([r[key][1] if key == "best" else r[key] for r in v.values()])), None,
                None)
            for s, v in seeds.items()
        }  # fmt: skip
        rows[name] = dict(row(per, pt), budget="stage 1, then 15 epochs on the target")
    for folder, name, n in [("select", "select (ours)", 3),
                            ("select_mix", "select --select-mix (ours)", 4)]:  # fmt: skip
        v = folder.removeprefix("select")
        sel = glob.glob(os.path.join(STUDIES, folder, f"select{v}_lowres_seed[0-9].json"))
        per = {seed(p): means(test_scores(p, "select")) for p in sel}
        if per:
            cost = f"stage 1, then 15 epochs per try (0-{n} tries)"
            rows[name] = dict(row(per, pt), budget=cost)


def main():
    args, rows = ap.parse_args(), {}
    pt = {seed(p): means(test_scores(p, "prompt")) for p in budget("*")}  # one stage 1 a seed
    rows["prompt tuning"] = dict(row(pt, pt), budget="15 epochs, prompt and head")
    dev_rows = amp_rows(rows, pt)
    transfer_rows(rows, pt)
    print_tables(rows, dev_rows)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


def cell(r, k):
    """One table cell: mean ± std, or empty."""
    return f"{r[k][0]:.1f} ± {r[k][1]:.1f}" if k in r else ""


def print_tables(rows, dev_rows):
    """Every row on test; the paired rows the text quotes; AMP's variants on dev."""
    print("| row | seeds | small (3) | others (5) | all (8) | Δ small | Δ all | budget |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        cells = [cell(r, k) for k in ("small", "others", "all", "d_small", "d_all")]
        label = name + (f": {r['picked']}" if "picked" in r else "")
        print(
            f"| {label} | {len(r.get('seeds', []))} | {' | '.join(cells)} | {r.get('budget', '')} |"
        )
    best = "best AMP combination (on dev)"
    print("\nPaired by seed on the small tasks (mean ± std over seeds; the seeds' values):")
    e15t2h = "AMP, T = 2, heads trained, 15 epochs (ours)"
    for a, b in [("SPoT-s", "AMP (paper)"), ("ATTEMPT", "AMP (paper)"), (best, "SPoT-s"),
                 (best, "ATTEMPT"), ("select (ours)", "best single source"),
                 ("select (ours)", best), (best, e15t2h)]:  # fmt: skip
        x, y = rows[a]["by_seed"], rows[b]["by_seed"]
        d = [x[s] - y[s] for s in sorted(x) if s in y]
        each = ", ".join(f"{v:+.1f}" for v in d)
        print(f"  {a} − {b}: {np.mean(d):+.1f} ± {np.std(d):.1f} ({each})")
    print("\nAMP's variants on dev (they pick the best combination), and minus the paper's AMP:")
    print("| row | seeds | small | others | all | Δ small | Δ all | − paper's, all: dev | test |")
    for name in dev_rows:
        r, vs = rows[name]["dev"], [rows[name]["dev"]["vs paper"], rows[name]["vs paper"]]
        cells = [cell(r, k) for k in ("small", "others", "all", "d_small", "d_all")]
        cells += [cell(x, "d_all") for x in vs]
        print(f"| {name} | {len(r['seeds'])} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
