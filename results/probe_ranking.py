"""results/probe_ranking.py: the probe's source ranking held against the measured transfer, from
committed JSON alone: the probe's dev scores (results/select_lowres_probe_seed<s>.json, written by
results/select_lowres.sh) against the transfer measured on the reporting rows by transfer.py
(results/transfer_lowres_seed<s>.json), per target: Spearman's ρ over the other sources, whether the
probe's top source is the best measured one, and that source's measured transfer. Both runs start
from the same stage 1 (results/lowres.sh's, one seed): prompt tuning's test scores are compared to
check it. transfer.py gives the same numbers for a run holding both (its "probe" ranking).
  python results/probe_ranking.py --seeds 0
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from transfer import spearman  # noqa: E402

ap = argparse.ArgumentParser(description="The probe's ranking against measured transfer.")
ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="lowres seeds with both files")


def main():
    args, rho, hits = ap.parse_args(), [], 0
    for s in args.seeds:
        probe = json.load(open(os.path.join(HERE, f"select_lowres_probe_seed{s}.json")))
        R = {T: dict(zip(probe["tasks"], row)) for T, row in zip(probe["tasks"], probe["dev"])}
        run = list(
            json.load(open(os.path.join(HERE, f"transfer_lowres_seed{s}.json")))["runs"].values()
        )[0]
        pt = json.load(open(os.path.join(HERE, f"select_lowres_seed{s}.json")))["table1"]
        for T, M in run["measured"].items():
            assert pt[T]["prompt"][0] == run["pt"][T], f"seed {s}: not the same stage 1 ({T})"
            sources = list(M)
            r = spearman([R[T][S] for S in sources], [M[S] for S in sources])
            top, best = max(sources, key=lambda S: R[T][S]), max(sources, key=M.get)
            rho.append(r)
            hits += M[top] == M[best]  # as transfer.py counts it: a tie with the best is a hit
            print(
                f"seed {s} {T:16s} ρ {r:+.2f}  probe's top {top} ({M[top]:+.1f}), "
                f"best {best} ({M[best]:+.1f})"
            )
    print(
        f"mean ρ {np.mean(rho):+.2f} over {len(rho)} targets; "
        f"top-1 = best measured: {hits} of {len(rho)}"
    )


if __name__ == "__main__":
    main()
