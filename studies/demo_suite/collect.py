"""studies/demo_suite/collect.py: the numbers RESULTS.md reports, read from run folders into one
JSON file.

For each run folder: its stage-target flags, the best dev score of every trained method (the mean
over tasks of each task's first metric, from log.jsonl: what chose the checkpoint and, here, the
defaults), the reporting-split scores of eval.json (read once, for the tables), and AMP's attention
(mean diagonal, family rate on the demo).

  python -m studies.demo_suite.collect runs/s0_default runs/s0_orthonormal ... \
      > studies/demo_suite/demo_seed0.json
"""

import json
import os
import sys

from eval import family_rate


def best_dev(out):
    """{job key: best dev} from log.jsonl; a multi-task job's dev is the mean over its tasks."""
    best = {}
    for line in open(os.path.join(out, "log.jsonl")):
        r = json.loads(line)
        if r.get("event") == "epoch":
            best[r["key"]] = max(best.get(r["key"], -1e9), r["dev"])
    return best


def collect(out):
    cfg = json.load(open(os.path.join(out, "config.json")))
    ev = json.load(open(os.path.join(out, "eval.json")))
    metric, tasks = ev["metric"], [t for t in ev["tasks"] if t in ev["scores"]["prompt"]]
    mean = {m: sum(s[t][metric[t]] for t in tasks) / len(tasks) for m, s in ev["scores"].items()}
    row = dict(run=out, seed=cfg["run"]["seed"], target_flags=cfg.get("target"), dev=best_dev(out))
    row.update(report_mean=mean, report=ev["scores"], ms_per_example=ev["ms_per_example"])
    for method, path in (("amp", "attention.json"), ("amp-maxpool", "amp-maxpool/attention.json")):
        if os.path.exists(os.path.join(out, path)):
            A = json.load(open(os.path.join(out, path)))
            family = list(family_rate(A["tasks"], A["A"]))  # [hits, counted, expected]
            diag = sum(A["A"][i][i] for i in range(len(A["A"]))) / len(A["A"])
            row.setdefault("attention", {})[method] = dict(diag=diag, family=family)
    return row


if __name__ == "__main__":
    print(json.dumps([collect(out) for out in sys.argv[1:]], indent=1))
