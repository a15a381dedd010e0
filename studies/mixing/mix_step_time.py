"""studies/mixing/mix_step_time.py: seconds per training step on real data, stage 1 against stage 2
with the paper's mixed batches and with --mix-grouped's (the same draws, length-grouped), one CPU
thread. The data and sizes are studies/table1/table1.sh's (10 tasks from ../shared/data, 500
training rows each, inputs cut to 128 tokens, all-MiniLM-L6-v2, l = 20, batch 16). Each kind
takes its batches in order from epoch 0's list (stage 1: each task's length-grouped batches in
turn, as fit() runs them); the kinds take turns, `--steps` steps each per round, over `--rounds`
rounds; the median round gives seconds per step. Also the mean padded tokens per batch over the
whole epoch.
  OMP_NUM_THREADS=1 python -m studies.mixing.mix_step_time \
      --json studies/mixing/mix_step_time.json
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import train  # noqa: E402
from amp import prompts_per_example  # noqa: E402
from dam import DAMAttention  # noqa: E402
from data import epoch_batches, task_batches  # noqa: E402
from loop import Job, train_step  # noqa: E402

TASKS = "imdb,sst2,stsb,mrpc,rte,scitail,cb,multirc,boolq,qnli"
ap = argparse.ArgumentParser(description="Seconds per step: stage 1, stage 2 mixed and grouped.")
ap.add_argument("--data-dir", default=os.path.join(ROOT, "..", "shared", "data"))
ap.add_argument("--steps", type=int, default=10, help="steps per kind and round")
ap.add_argument("--rounds", type=int, default=3, help="rounds (kinds take turns in each)")
ap.add_argument("--json", help="write the figures here")


def step_kinds(env, names, prompt_len, B=16):
    """{kind: (batches, parameter groups, prompts of a batch)} for stage 1, stage 2 with the paper's
    mixing and stage 2 with --mix-grouped; and each task's input lengths."""
    model = env.model
    torch.manual_seed(0)
    lengths = [[len(x) for x in env.train[t]["input_ids"]] for t in range(len(names))]
    sizes = [len(x) for x in lengths]
    P = torch.randn(len(names), prompt_len, model.d) * 0.5  # (n, l, d): timing only
    own = [torch.nn.Parameter(P[t].clone()) for t in range(len(names))]
    per_task = [task_batches(L, B, 0, 0) for L in lengths]
    stage1 = [[(t, i) for i in b] for bs in zip(*per_task) for t, b in enumerate(bs)]
    psi = DAMAttention(model.d, None, "dam", True, "eye")

    def mixed(b):
        return prompts_per_example(psi(P)[0], b["task"])  # (B, l, d)

    def each(b):
        return torch.stack([own[t] for t in b["task"].tolist()])  # (B, l, d)

    grouped, W = epoch_batches(sizes, B, 0, 0, lengths=lengths), [(list(psi.parameters()), 3e-4)]
    kinds = {
        "stage 1": (stage1, [(own, 1e-2)], each),
        "stage 2, paper's mixing": (epoch_batches(sizes, B, 0, 0), W, mixed),
        "stage 2, --mix-grouped": (grouped, W, mixed),
    }
    return kinds, lengths


def main():
    a = ap.parse_args()
    argv = ["--stage", "source", "--tasks", TASKS, "--data-dir", a.data_dir, "--carve"]
    argv += ["--max-train", "500", "--max-eval", "200", "--max-tokens", "128", "--device", "cpu"]
    args = train.ap.parse_args(argv)
    args.method = "prompt"  # stage source, as train.main sets it
    train.settle(args, None)
    names = args.tasks
    env = train.setup(args, names)
    kinds, lengths = step_kinds(env, names, args.prompt_len)
    seconds, out = {k: [] for k in kinds}, {}
    for r in range(a.rounds):
        for k, (batches, groups, prompts) in kinds.items():
            job = Job(k, groups, names, prompts)
            opt = torch.optim.AdamW([p for ps, _ in groups for p in ps], lr=groups[0][1])
            t0 = time.perf_counter()
            for s in range(r * a.steps, (r + 1) * a.steps):
                train_step(env, job, opt, batches[s], s, "none")
            seconds[k].append((time.perf_counter() - t0) / a.steps)
    for k, (batches, _, _) in kinds.items():
        padded = np.mean([len(b) * max(lengths[t][i] for t, i in b) for b in batches])
        real = np.mean([sum(lengths[t][i] for t, i in b) for b in batches])
        out[k] = dict(
            s_per_step=float(np.median(seconds[k])),
            rounds=seconds[k],
            padded_tokens_per_batch=float(padded),
            real_tokens_per_batch=float(real),
        )
        sec = out[k]["s_per_step"]
        print(f"{k:26s} {sec:.3f} s/step  tokens/batch {padded:.0f} ({real:.0f} real)")
    base = out["stage 1"]["s_per_step"]
    for k in list(kinds)[1:]:
        print(f"{k}: {out[k]['s_per_step'] / base:.2f} x stage 1's step")
    out["machine"] = dict(
        cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads()
    )
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
