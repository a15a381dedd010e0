"""studies/probe_study/probe_variants.py: is there a better probe than probe.py's? Variants of the
probe held against the transfer measured on the dev rows (never the reporting rows), lowres suite.

For each 32-row target T whose measured transfer is complete (transfer.py's 7 tunings, one from
each other task's source prompt, in runs/lr<s>_heads3/transfer:
studies/transfer_runs/transfer_probe_lowres.sh for seeds 1 and 2,
`python -m studies.transfer --out runs/lr0_heads3 --targets senti_food_32` for seed 0's one
target), the measured dev transfer of source S is the tuning's best dev score minus T's own
stage-1 best dev score. Each variant ranks the sources by a head fitted on T's
training rows read through P_S (probe.py) and differs in
  features: the first real token's state (probe.py, what the task heads read) or the mean over the
            real tokens' states;
  L2:       the logistic regression's penalty (probe.py: 1e-2);
  score:    dev accuracy (probe.py) or the dev rows' mean log-probability of the gold label.
Per variant: Spearman ρ against the measured dev transfer, averaged over the targets, and how often
its top source is the best measured one. Writes studies/probe_study/probe_variants.json. About 5
minutes on one thread.
  python -m studies.probe_study.probe_variants --seeds 0 1 2
"""

import argparse
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository root, which holds runs/
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from baselines import source_prompts  # noqa: E402
from data import collate  # noqa: E402
from lib import demo  # noqa: E402
from metrics import EVAL_BATCH  # noqa: E402
from studies.probe import MAX_ROWS, fit_head  # noqa: E402
from studies.transfer import spearman  # noqa: E402
from train import setup  # noqa: E402

SMALL = ["senti_food_32", "para_people_32", "entail_trips_32"]
L2 = [1e-2, 1e-1, 1.0]
ap = argparse.ArgumentParser(description="Probe variants against measured dev transfer (lowres).")
ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="lowres seeds (runs/lr<s>)")
ap.add_argument("--json", default=os.path.join(HERE, "probe_variants.json"), help="write here")


@torch.inference_mode()
def states(model, P, data):
    """{first, mean}: (N, d) states of data's first N rows read through P (l, d)."""
    N = min(len(data), MAX_ROWS)
    out = {k: torch.zeros(N, model.d, dtype=torch.float64) for k in ("first", "mean")}
    for s in range(0, N, EVAL_BATCH):
        idx = list(range(s, min(N, s + EVAL_BATCH)))
        b = collate([dict(data[i], task=0) for i in idx], model.pad_id)
        inputs = b["input_ids"], b["attention_mask"], b["token_type_ids"]
        H = model.hidden(P.expand(len(idx), -1, -1), *inputs)  # (B, T, d) the real tokens
        m = b["attention_mask"][:, :, None].to(H.dtype)  # (B, T, 1)
        out["first"][idx] = H[:, 0].double()
        out["mean"][idx] = ((H * m).sum(1) / m.sum(1)).double()
    return out


def measured(run, s, T):
    """{S: best dev of T tuned from P_S minus T's own stage-1 best dev}; None if incomplete."""

    def read(path):
        return json.load(open(path))["best_dev"]

    own, folder = read(f"{run}/source/{T}.json"), f"{run}_heads3/transfer"
    found = {S: f"{folder}/{S}/spot-m/target/{T}.json" for S in sorted(os.listdir(folder))}
    M = {S: read(p) - own for S, p in found.items() if S != T and os.path.exists(p)}
    return M if len(M) == 7 else None


def variants(model, P, names, train, dev, C):
    """{variant: {source: probe score}} for one target."""
    y, gold = train["label"][:MAX_ROWS], torch.as_tensor(dev["label"][:MAX_ROWS]).long()
    X = {S: (states(model, P[i], train), states(model, P[i], dev)) for i, S in enumerate(names)}
    out = {}
    for feat in ("first", "mean"):
        for l2 in L2:
            for S, (tr, dv) in X.items():
                logp = torch.log_softmax(fit_head(tr[feat], y, C, l2)(dv[feat]), 1)  # (N, C)
                acc = (logp.argmax(1) == gold).double().mean().item() * 100
                ll = logp.gather(1, gold[:, None]).mean().item()
                out.setdefault(f"{feat}, L2 {l2:g}, accuracy", {})[S] = acc
                out.setdefault(f"{feat}, L2 {l2:g}, log-probability", {})[S] = ll
    return out


def main():
    args, per = ap.parse_args(), {}
    demo.register()  # the lowres suite's tasks
    torch.set_num_threads(1)
    for s in args.seeds:
        run = os.path.join(ROOT, "runs", f"lr{s}")
        cfg = json.load(open(f"{run}/config.json"))["run"]
        names = cfg["tasks"]
        env = setup(argparse.Namespace(**cfg, device="cpu"), names)
        P = source_prompts(run, env, names)  # (n, l, d)
        for T in SMALL:
            M, i = measured(run, s, T), names.index(T)
            if M is None:
                continue
            C = env.tasks[T]["info"]["num_labels"]
            V = variants(env.model.eval(), P, names, env.train[i], env.dev[i], C)
            src = list(M)
            per[f"seed {s} {T}"] = {
                v: dict(rho=spearman([R[S] for S in src], [M[S] for S in src]),
                        top1=bool(M[max(src, key=R.get)] == max(M.values())))
                for v, R in V.items()
            }  # fmt: skip
            print(f"seed {s} {T}: measured dev transfer {M}", flush=True)
    rows = {
        v: dict(rho=float(np.mean([p[v]["rho"] for p in per.values()])),
                rho_std=float(np.std([p[v]["rho"] for p in per.values()])),
                top1=sum(p[v]["top1"] for p in per.values()), targets=len(per))
        for v in next(iter(per.values()))
    }  # fmt: skip
    for v, r in rows.items():
        top1 = f"top-1 {r['top1']} of {r['targets']}"
        print(f"{v:34s} ρ {r['rho']:+.2f} ± {r['rho_std']:.2f}  {top1}")
    json.dump(dict(variants=rows, targets=per), open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
