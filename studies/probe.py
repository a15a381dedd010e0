"""probe.py: which source prompts help a target task, found before any tuning (ours, not the paper).

For target T and each source S (T's own source prompt included), T's training rows are read through
S's frozen source prompt: the encoder's state at the first real token, what a task head reads
(amp.PromptModel.features). A fresh head is fitted on those states (logistic regression, or ridge
regression for a regression task) and scored on T's dev rows, never its reporting rows:

    R[T, S] = dev score of T with a head fitted on T's training rows read through P_S

A source that gives T's rows states a linear head can separate is one T's prompt can start from.
For `train.py --method select`, `candidates` turns a row of R into the starts T tunes from (the
sources that beat T's own prompt on R by a margin), and `keep_best` keeps, per task, the tuned
prompt with the best dev score, T's own stage-1 prompt and head included (kept as they are).

Run (after stage source): python train.py --stage target --method select --out runs/amp
"""

import os
import shutil
import sys

import numpy as np
import torch
from tqdm import tqdm

from data import collate
from metrics import EVAL_BATCH, autocast, score
from lib.runfiles import read_json, write_json

MAX_ROWS = 1000  # rows per split a probe reads at most (the first ones of the split)


@torch.inference_mode()
def states(model, P, data, device, rows=MAX_ROWS):
    """(N, d) float64: the first real token's state of data's first N rows, read through P (l, d)"""
    N = min(len(data), rows)
    order = sorted(range(N), key=lambda i: len(data[i]["input_ids"]))  # less padding
    out = torch.zeros(N, model.d, dtype=torch.float64)
    for s in range(0, N, EVAL_BATCH):
        idx = order[s : s + EVAL_BATCH]
        rows = collate([dict(data[i], task=0) for i in idx], model.pad_id)
        b = {k: v.to(device) for k, v in rows.items()}
        with autocast(device):
            h = model.features(
                P.expand(len(idx), -1, -1), b["input_ids"], b["attention_mask"], b["token_type_ids"]
            )  # (B, d)
        out[idx] = h.double().cpu()
    return out


def fit_head(X, y, C, l2=1e-2, steps=100):
    """A linear head on standardised states X (N, d): ridge regression (C = 1) in closed form, else
    multinomial logistic regression with an L2 penalty, by L-BFGS. Returns head(X') -> (N', C)
    logits, or (N',) predictions for a regression task."""
    mu, sd = X.mean(0), X.std(0) + 1e-6

    def design(X_):  # standardised states and a column of ones for the bias (N, d + 1)
        return torch.cat([(X_ - mu) / sd, X_.new_ones(len(X_), 1)], 1)

    Z = design(X)
    y = torch.as_tensor(y, dtype=X.dtype)
    reg = l2 * len(X) * torch.eye(Z.shape[1], dtype=X.dtype)
    reg[-1, -1] = 0  # the bias is not penalised
    if C == 1:
        W = torch.linalg.solve(Z.T @ Z + reg, Z.T @ y[:, None])  # (d + 1, 1)
        return lambda X_: (design(X_) @ W)[:, 0]
    W = torch.zeros(Z.shape[1], C, dtype=X.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([W], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Z @ W, y.long()) + 0.5 * l2 * (W[:-1] ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    W = W.detach()
    return lambda X_: design(X_) @ W  # (N', C)


def probe_row(model, P, train, dev, info, device):
    """R[T, S] for each source S: P (n, l, d) the source prompts; train, dev: T's tokenised rows"""
    row, C, metric = [], info["num_labels"], info["metrics"]
    y, gold = train["label"][:MAX_ROWS], dev["label"][:MAX_ROWS]
    groups = dev["group"][:MAX_ROWS]
    for S in range(len(P)):
        out = fit_head(states(model, P[S], train, device), y, C)(states(model, P[S], dev, device))
        pred = (out if C == 1 else out.argmax(1)).tolist()
        row.append(score(metric, pred, gold, groups)[metric[0]])
    return row


def candidates(row, own, tries, margin):
    """T's starts to tune from, best first: the sources (at most `tries`) whose probe score beats
    T's own prompt's (index own) by more than `margin` points. None: T keeps its own prompt."""
    order = np.argsort(-np.asarray(row, dtype=float), kind="stable").tolist()
    return [j for j in order if j != own and row[j] > row[own] + margin][:tries]


def probe_rows(env, P, names, out):
    """R (n, n), row = target, column = source: probe_row for each task; kept in out/probe.json (a
    resumed run reads it back)."""
    path = os.path.join(out, "probe.json")
    saved = read_json(path, need=["tasks", "dev"]) if os.path.exists(path) else {}
    if saved.get("tasks") == names:  # --resume: the same tasks were probed
        return saved["dev"]
    model, device = env.model, env.device
    R = []  # (n, n) dev scores
    quiet = not sys.stderr.isatty()  # a bar only where a terminal shows it
    for i, n in enumerate(tqdm(names, desc="probe: targets", leave=False, disable=quiet)):
        R.append(probe_row(model, P, env.train[i], env.dev[i], env.tasks[n]["info"], device))
    write_json(path, {"tasks": names, "dev": R})
    return R


def one_hot(j, n):
    """The weights (n,) of a start from source j alone."""
    return [float(s == j) for s in range(n)]


def keep_best(out, names, picks):
    """select/target/<task>: of task i's own stage-1 prompt and head (source/) and what was tuned
    from each of its picks[i] (select/try<r>/), the files with the best dev score (ties: earlier).
    Writes select/attention.json: row = target, 1 at the source its kept prompt started from."""
    os.makedirs(os.path.join(out, "select", "target"), exist_ok=True)
    A = []
    for i, t in enumerate(names):
        tries = [(one_hot(j, len(names)), f"select/try{r + 1}") for r, j in enumerate(picks[i])]
        tries = [(one_hot(i, len(names)), "source")] + tries
        dev = [
            read_json(os.path.join(out, f, f"{t}.json"), need=["best_dev"])["best_dev"]
            for _, f in tries
        ]
        w, folder = tries[int(np.argmax(dev))]
        for ext in (".safetensors", ".json"):
            src, dst = (os.path.join(out, f, t + ext) for f in (folder, "select/target"))
            shutil.copyfile(src, dst + ".part")
            os.replace(dst + ".part", dst)
        A.append(w)
    write_json(os.path.join(out, "select", "attention.json"), {"tasks": names, "A": A})
