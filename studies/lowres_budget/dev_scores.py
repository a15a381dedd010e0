"""studies/lowres_budget/dev_scores.py: each method's score on every task's dev rows, the split that
chooses settings (the reporting rows are not read), for run folders made by train.py. The same
prompts, heads and input lengths as eval.py (eval.method_prompt); the first metric of each task.
  python -m studies.lowres_budget.dev_scores --out runs/lr0_t2 runs/lr1_t2 --methods prompt amp \
      --json x.json
Prints one line per (run, method): the mean over --small, over the others, and over all.
"""

import argparse
import json
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import eval as evaluation  # noqa: E402
from amp import max_positions  # noqa: E402
from lib import demo  # noqa: E402
from lib.tokens import tokenize  # noqa: E402
from metrics import EVAL_BATCH, evaluate, input_tokens, open_run  # noqa: E402

SMALL = "senti_food_32,para_people_32,entail_trips_32"
ap = argparse.ArgumentParser(description="Each method's dev scores, per task, of run folders.")
ap.add_argument("--out", nargs="+", required=True, help="run folders")
ap.add_argument("--methods", nargs="+", default=["prompt", "amp"], help="methods to score")
ap.add_argument("--small", default=SMALL, help="the tasks whose mean is given apart")
ap.add_argument("--json", help="write {run: {method: {task: dev score}}} here")


def dev_scores(out, methods):
    """{method: {task: first dev metric}} of one run folder, on the CPU."""
    run, _ = evaluation.run_methods(out)
    cap = run["prompt_len"], run.get("max_tokens")
    encoder, tokenizer, loaded, model, expect, P = open_run(out, run, "cpu")
    scores = {m: {} for m in methods}
    for t, x in enumerate(loaded):
        data = tokenize(
            x["dev"], tokenizer, input_tokens(x["info"], max_positions(encoder, tokenizer), *cap)
        )
        metric = x["info"]["metrics"][0]
        for m in methods:
            prompt = evaluation.method_prompt(out, m, x["name"], t, model, P, "cpu", expect)
            got = evaluate(model, prompt, data, t, [metric], EVAL_BATCH, "cpu")
            scores[m][x["name"]] = got[metric]
    return scores


def mean(s, ts):
    """The mean of {task: score} over tasks ts (nan for none)."""
    return float(np.mean([s[t] for t in ts])) if ts else float("nan")


def main():
    args = ap.parse_args()
    demo.register()
    small, found = args.small.split(","), {}
    for out in args.out:
        found[out] = dev_scores(out, args.methods)
        for m, s in found[out].items():
            rest = [t for t in s if t not in small]
            groups = f"small {mean(s, small):.2f}  others {mean(s, rest):.2f}"
            groups += f"  all {mean(s, list(s)):.2f}"
            print(f"{out} {m}: dev {groups}")
    if args.json:
        json.dump(found, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
