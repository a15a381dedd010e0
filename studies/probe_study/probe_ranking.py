"""studies/probe_study/probe_ranking.py: the probe's source ranking held against the measured
transfer, from committed JSON alone: the probe's dev scores against the transfer measured on the
reporting rows by studies/transfer.py, per target: Spearman's ρ over the other sources, whether
the probe's top source is the best measured one, and that source's measured transfer. Per suite
(FILES): lowres, the probe of studies/select/select_lowres.sh against
studies/transfer_runs/transfer_lowres_seed<s>.json; real, the probe of
studies/table1_select/table1_select.sh against studies/transfer_runs/transfer_real.json (the
real-data transfer runs). Both sides start from the same stage 1 (one seed): prompt tuning's
reporting scores are compared to check it. transfer.py gives the same numbers for a run holding
both (its "probe" ranking). Also printed, per seed: the sources select tries for each task by its
rule (probe.candidates at select's defaults).
  python -m studies.probe_study.probe_ranking --seeds 0 1 2
  python -m studies.probe_study.probe_ranking --suite real --seeds 0 1 2
"""

import argparse
import json
import os

import numpy as np

from studies.probe import candidates
from studies.transfer import spearman
from train import STAGE_ALL

STUDIES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRIES, MARGIN = STAGE_ALL["select_tries"], STAGE_ALL["select_margin"]  # select's defaults

FILES = {  # suite: the probe's dev scores, the measured transfer, prompt tuning's scores (seed s),
    # each in its study folder under studies/
    "lowres": ["select/select_lowres_probe_seed{s}.json",
               "transfer_runs/transfer_lowres_seed{s}.json", "select/select_lowres_seed{s}.json"],
    "real": ["table1_select/table1_probe_seed{s}.json", "transfer_runs/transfer_real.json",
             "table1_select/table1_select_seed{s}.json"],
}  # fmt: skip
ap = argparse.ArgumentParser(description="The probe's ranking against measured transfer.")
ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds with all three files")
ap.add_argument("--suite", choices=list(FILES), default="lowres", help="which runs (FILES)")


def measured(path, s):
    """transfer.py's run of seed s in path: the one run of a one-seed file, else runs/t<s>'s."""
    runs = json.load(open(path))["runs"]
    return runs[f"runs/t{s}"] if len(runs) > 1 else next(iter(runs.values()))


def main():
    args, rho, hits, per_target = ap.parse_args(), [], 0, {}
    for s in args.seeds:
        paths = [os.path.join(STUDIES, f.format(s=s)) for f in FILES[args.suite]]
        probe, run = json.load(open(paths[0])), measured(paths[1], s)
        R = {T: dict(zip(probe["tasks"], row)) for T, row in zip(probe["tasks"], probe["dev"])}
        pt = json.load(open(paths[2]))["table1"]
        names = probe["tasks"]
        for i, (T, row) in enumerate(zip(names, probe["dev"])):  # select's rule, its defaults
            if picks := [names[j] for j in candidates(row, i, TRIES, MARGIN)]:
                print(f"seed {s} {T:16s} select tries: {', '.join(picks)}")
        for T, M in run["measured"].items():
            same = abs(pt[T]["prompt"][0] - run["pt"][T]) < 1e-9
            assert same, f"seed {s}: not the same stage 1 ({T})"
            sources = list(M)
            r = spearman([R[T][S] for S in sources], [M[S] for S in sources])
            top, best = max(sources, key=lambda S: R[T][S]), max(sources, key=M.get)
            rho.append(r)
            per_target.setdefault(T, []).append(r)
            hits += M[top] == M[best]  # as transfer.py counts it: a tie with the best is a hit
            print(
                f"seed {s} {T:16s} ρ {r:+.2f}  probe's top {top} ({M[top]:+.1f}), "
                f"best {best} ({M[best]:+.1f})"
            )
    for T, r in per_target.items():  # as transfer.py's per-target summary: mean ± std over seeds
        print(f"{T:16s} ρ {np.mean(r):+.2f} ± {np.std(r):.2f} over {len(r)} seed(s)")
    print(
        f"mean ρ {np.mean(rho):+.2f} ± {np.std(rho):.2f} over {len(rho)} targets; "
        f"top-1 = best measured: {hits} of {len(rho)}"
    )


if __name__ == "__main__":
    main()
