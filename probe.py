"""probe.py: which source prompts help a target task, found before any tuning (ours, not the paper).

For target T and each source S (T's own source prompt included), T's training rows are read through
S's frozen source prompt: the encoder's state at the first real token, what a task head reads
(amp.PromptModel.features). A fresh head is fitted on those states (logistic regression, or ridge
regression for a regression task) and scored on T's dev rows, never its reporting rows:

    R[T, S] = dev score of T with a head fitted on T's training rows read through P_S

A source that gives T's rows states a linear head can separate is one T's prompt can start from.
`start_weights` turns a row of R into the start of T's prompt for `train.py --method select`:
the top sources that beat T's own prompt on R, weighted by how far; T's own prompt where none does.

Run (after stage source): python train.py --stage target --method select --out runs/amp
"""

import os

import numpy as np
import torch

from data import collate
from metrics import EVAL_BATCH, autocast, score
from runfiles import read_json, write_json

MAX_ROWS = 1000  # rows per split a probe reads at most (the first ones of the split)


@torch.inference_mode()
def states(model, P, data, device, rows=MAX_ROWS):
    """(N, d) float64: the first real token's state of data's first N rows, read through P (l, d)"""
    N = min(len(data), rows)
    order = sorted(range(N), key=lambda i: len(data[i]["input_ids"]))  # less padding
    out = torch.zeros(N, model.d, dtype=torch.float64)
    for s in range(0, N, EVAL_BATCH):
        idx = order[s : s + EVAL_BATCH]
        b = {k: v.to(device) for k, v in collate([dict(data[i], task=0) for i in idx], 0).items()}
        with autocast(device):
            h = model.features(
                P.expand(len(idx), -1, -1), b["input_ids"], b["attention_mask"], b["token_type_ids"]
            )  # (B, d)
        out[idx] = h.double().cpu()
    return out


def fit_head(X, y, C, l2=1e-2, steps=100):
    """A linear head on standardised states X (N, d): ridge regression (C = 1) in closed form, else
    multinomial logistic regression with an L2 penalty, by L-BFGS. Returns predict(X') -> labels."""
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Z = torch.cat([(X - mu) / sd, torch.ones(len(X), 1, dtype=X.dtype)], 1)  # (N, d + 1)
    y = torch.as_tensor(y, dtype=X.dtype)
    reg = l2 * len(X) * torch.eye(Z.shape[1], dtype=X.dtype)
    reg[-1, -1] = 0  # the bias is not penalised
    if C == 1:
        W = torch.linalg.solve(Z.T @ Z + reg, Z.T @ y[:, None])  # (d + 1, 1)
        return lambda X_: (
            torch.cat([(X_ - mu) / sd, torch.ones(len(X_), 1, dtype=X.dtype)], 1) @ W
        )[:, 0]
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
    return lambda X_: (
        torch.cat([(X_ - mu) / sd, torch.ones(len(X_), 1, dtype=X.dtype)], 1) @ W
    ).argmax(1)


def probe_row(model, P, train, dev, info, device):
    """R[T, S] for each source S: P (n, l, d) the source prompts; train, dev: T's tokenised rows"""
    row, C, metric = [], info["num_labels"], info["metrics"]
    y, gold = train["label"][:MAX_ROWS], dev["label"][:MAX_ROWS]
    groups = dev["group"][:MAX_ROWS]
    for S in range(len(P)):
        predict = fit_head(states(model, P[S], train, device), y, C)
        pred = predict(states(model, P[S], dev, device)).tolist()
        row.append(score(metric, pred, gold, groups)[metric[0]])
    return row


def start_weights(row, own, top=1):
    """T's start from its probe row: the `top` best sources that beat T's own prompt (index own) on
    the probe, each weighted by how far it beats it; T's own prompt alone where none does."""
    row = np.asarray(row, dtype=float)
    w = np.zeros(len(row))
    for j in np.argsort(-row, kind="stable")[:top]:
        if j != own and row[j] > row[own]:
            w[j] = row[j] - row[own]
    if w.sum() == 0:
        w[own] = 1.0
    return (w / w.sum()).tolist()


def probe_starts(env, P, names, top, out):
    """W (n, n), row = target, column = source: each task's start (start_weights of its probe row).
    Writes out/probe.json (R) and out/attention.json (W); a run that has them reuses them."""
    path = os.path.join(out, "attention.json")
    if os.path.exists(path):  # --resume: the starts already chosen
        W = read_json(path, need=["tasks", "A"])["A"]
    else:
        model, device = env["model"], env["device"]
        R = []  # (n, n) dev scores
        for i, n in enumerate(names):
            R.append(
                probe_row(model, P, env["train"][i], env["dev"][i], env["tasks"][n]["info"], device)
            )
        W = [start_weights(row, i, top) for i, row in enumerate(R)]
        write_json(os.path.join(out, "probe.json"), {"tasks": names, "dev": R})
        write_json(path, {"tasks": names, "A": W})
    return torch.tensor(W, dtype=P.dtype, device=P.device)
