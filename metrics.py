"""metrics.py: the paper's metrics, a task's split scored through a prompt and the task's head, and
each task's input length, and a finished run opened for scoring (open_run). The training loop
(loop.py: dev scores each epoch), eval.py and transfer.py (the reporting split) all score through
evaluate.

Metrics (paper Table 1): accuracy; Pearson for STS-B; F1a for MultiRC; all in percent.
Run: python -m pytest -q test_amp.py -k metrics
"""

import sys

import numpy as np
import torch
from tqdm import tqdm

from amp import PromptModel, load_encoder
from data import DataError, collate, load_task
from lib.runfiles import load_tensors, task_file

# evaluation batches: no gradients are kept, so they can be larger than training batches
EVAL_BATCH = 64


def f1(pred, gold, positive=1):
    """F1 of one class, in percent."""
    tp = np.sum((pred == positive) & (gold == positive))
    return 100.0 * 2 * tp / max(np.sum(pred == positive) + np.sum(gold == positive), 1)


def rank(x):
    """Ranks from 0 (the smallest), ties sharing their mean rank."""
    order, r = np.argsort(x, kind="stable"), np.empty(len(x))
    r[order] = np.arange(len(x))
    for v in np.unique(x):
        r[x == v] = r[x == v].mean()
    return r


def score(metrics, pred, gold, groups):
    """-> {metric: value in percent}. pred: predicted classes (or scores for regression); gold:
    labels; groups: MultiRC question ids."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    out = {}
    for m in metrics:
        if m == "accuracy":
            out[m] = 100.0 * np.mean(pred == gold)
        elif m in ("f1", "f1a"):  # f1a: binary F1 over all answer options (MultiRC)
            out[m] = f1(pred, gold)
        elif m == "macro_f1":
            out[m] = float(np.mean([f1(pred, gold, c) for c in np.unique(gold)]))
        elif m in ("pearson", "spearman"):
            a, b = (pred, gold) if m == "pearson" else (rank(pred), rank(gold))
            varied = np.std(a) > 0 and np.std(b) > 0  # a constant side correlates with nothing: 0
            out[m] = 100.0 * float(np.corrcoef(a, b)[0, 1]) if varied else 0.0
        elif m == "em":  # exact match: every answer of a question right
            right = {}
            for g, ok in zip(groups, pred == gold):
                right[g] = right.get(g, True) and bool(ok)
            out[m] = 100.0 * np.mean(list(right.values()))
        else:
            known = "accuracy, f1, f1a, macro_f1, pearson, spearman, em"
            raise DataError(f"unknown metric '{m}'; known: {known}")
    return {m: float(v) for m, v in out.items()}


def input_tokens(info, positions, l, cap=None):
    """The one input length of a task, for every stage and every method, in training and in
    evaluation: the task's max tokens (paper A.3: 256, MultiRC 348), or the run's --max-tokens cap
    if lower, cut so that l + input <= positions (amp.max_positions, the encoder's). The paper
    trains stage 2 at 384 tokens for every task; this code does not, so that every method of a
    table reads the same tokens."""
    return min(info["max_tokens"], cap or info["max_tokens"], positions - l)


@torch.inference_mode()
def evaluate(model, prompt, data, t, metrics, batch_size, device, desc=None):
    """One task's split read through a prompt and the task's head -> {metric: value}. prompt: one
    (l, d) for every example, or a function of the batch giving each example's (ATTEMPT, TPT):
    b -> (B, l', d). Rows go through in order of length (less padding), and their predictions
    back to the split's order."""
    was_training, preds = model.training, [None] * len(data)
    model.eval()
    lengths = [len(x) for x in data["input_ids"]]
    order = sorted(range(len(data)), key=lambda i: lengths[i])
    quiet = desc is None or not sys.stderr.isatty()  # a bar only where a terminal shows it
    for i in tqdm(range(0, len(data), batch_size), desc=desc, leave=False, disable=quiet):
        idx = order[i : i + batch_size]
        rows = [dict(data[j], task=t) for j in idx]
        b = {k: v.to(device) for k, v in collate(rows, model.pad_id).items()}
        P = prompt(b) if callable(prompt) else prompt.expand(len(rows), *prompt.shape)  # (B, l, d)
        with autocast(device):  # P stays float32
            ids, mask = b["input_ids"], b["attention_mask"]
            logits = model(P, ids, mask, b["token_type_ids"], b["task"])  # (B, C_max)
        C = model.num_labels[t]
        out = logits[:, 0] if C == 1 else logits[:, :C].argmax(-1)  # (B,): a score or a class
        for j, p in zip(idx, out.float().cpu().tolist()):
            preds[j] = p
    model.train(was_training)
    return score(metrics, preds, data["label"], data["group"])


def autocast(device):
    """bf16 autocast on CUDA (the encoder's weights stay float32); plain float32 on the CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")


def pick_device(name):
    """The device --device names; auto: CUDA when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def open_run(out, run, device):
    """Run folder `out` (its config's "run" block) opened for scoring -> (encoder, tokenizer, the
    tasks as load_task gives them, the model with a head per task, what its files must match,
    the source prompts P (n, l, d) from OUT/source/)."""
    encoder, tokenizer = load_encoder(run["model"])
    flags = [run[k] for k in ("data_dir", "protocol", "carve", "max_train", "max_eval")]
    loaded = [load_task(t, *flags) for t in run["tasks"]]
    model = PromptModel(encoder, [x["info"]["num_labels"] for x in loaded]).to(device)
    expect = dict(model=run["model"], d=model.d, l=run["prompt_len"])
    P = [
        load_tensors(task_file(out, "prompt", t), dict(expect, task=t))[0]["P"]
        for t in run["tasks"]
    ]
    return encoder, tokenizer, loaded, model, expect, torch.stack(P).to(device)  # P: (n, l, d)
