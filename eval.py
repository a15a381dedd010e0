"""eval.py: score a run's source prompts (= prompt tuning) and target prompts (= AMP) on each task's reporting
split, and show the learned attention A (paper 3.3 inference, 5.1 Table 1, 6 Figure 6).

Inference (paper 3.3) uses only a task's target prompt and head: the same input length as prompt tuning.
Writes into the run folder:
  eval.json      {"prompt": {task: {metric: value}}, "amp": {task: {metric: value}}, ...}
  attention.png  the attention matrix as a labelled heatmap (rows: target tasks, columns: source tasks)
On the demo suite it also counts how many tasks put their largest off-diagonal attention on a task of their own
family, against what picking a source at random would give and what the mean source prompts give with no
training (their dot product, the order ψ's identity start begins from, and their cosine, SPoT's similarity).

Run (after train.py --stage source and --stage target):
  python eval.py --out runs/amp
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from amp import ModelError, PromptModel, load_encoder, load_tensors, max_positions, write_json
from data import DEMO, TARGET_MAX_TOKENS, DataError, collate, load_task, tokenize

ap = argparse.ArgumentParser(description="Evaluate a run: prompt tuning vs AMP on each reporting split.")
ap.add_argument("--out", default="runs/amp", help="the run folder that train.py wrote")
ap.add_argument("--batch-size", type=int, default=64, help="evaluation batch size")
ap.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda")


# ----------------------------------------------------------------------------------------------------------
# Metrics (paper Table 1: accuracy; Pearson for STS-B; F1a for MultiRC), in percent.
def f1(pred, gold, positive=1):
    tp = np.sum((pred == positive) & (gold == positive))
    return 100.0 * 2 * tp / max(np.sum(pred == positive) + np.sum(gold == positive), 1)


def rank(x):
    order, r = np.argsort(x, kind="stable"), np.empty(len(x))
    r[order] = np.arange(len(x))
    for v in np.unique(x):   # ties share their mean rank
        r[x == v] = r[x == v].mean()
    return r


def score(metrics, pred, gold, groups):
    """pred: predicted classes (or scores for regression); gold: labels; groups: MultiRC question ids."""
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
            out[m] = 100.0 * float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else 0.0
        elif m == "em":           # exact match: every answer of a question right
            right = {}
            for g, ok in zip(groups, pred == gold):
                right[g] = right.get(g, True) and bool(ok)
            out[m] = 100.0 * np.mean(list(right.values()))
        else:
            raise DataError(f"unknown metric '{m}'; known: accuracy, f1, f1a, macro_f1, pearson, spearman, em")
    return {m: float(v) for m, v in out.items()}


@torch.no_grad()
def evaluate(model, prompt, data, t, metrics, batch_size, device, desc=None):
    """One task's split read through one prompt (l, d) and the task's head -> {metric: value}."""
    was_training, preds = model.training, []
    model.eval()
    for i in tqdm(range(0, len(data), batch_size), desc=desc, leave=False, disable=desc is None):
        rows = [dict(data[j], task=t) for j in range(i, min(i + batch_size, len(data)))]
        b = {k: v.to(device) for k, v in collate(rows, model.pad_id).items()}
        with autocast(device):
            logits = model(prompt.expand(len(rows), *prompt.shape), b["input_ids"], b["attention_mask"],
                           b["token_type_ids"], b["task"])                       # (B, C_max)
        C = model.num_labels[t]
        preds += (logits[:, 0] if C == 1 else logits[:, :C].argmax(-1)).float().cpu().tolist()
    model.train(was_training)
    return score(metrics, preds, data["label"], data["group"])


def autocast(device):
    """bf16 autocast on CUDA (the encoder's weights stay float32); plain float32 on the CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")


def pick_device(name):
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)


def family_rate(tasks, A):
    """(hits, tasks with a sibling, expected hits when a source is picked at random) for demo-suite tasks."""
    fam = [DEMO[t][0] if t in DEMO else None for t in tasks]
    hits = counted = expected = 0
    for i, f in enumerate(fam):
        others = [j for j in range(len(tasks)) if j != i]
        siblings = [j for j in others if f is not None and fam[j] == f]
        if siblings:
            counted += 1
            hits += fam[max(others, key=lambda j: A[i][j])] == f
            expected += len(siblings) / len(others)
    return hits, counted, expected


def draw_attention(tasks, A, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(tasks)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    im = ax.imshow(A, cmap="Blues", vmin=0)
    ax.set_xticks(range(n), tasks, rotation=60, ha="right")
    ax.set_yticks(range(n), tasks)
    ax.set_xlabel("source task (column)")
    ax.set_ylabel("target task (row)")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{A[i][j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if A[i][j] > 0.6 * max(max(r) for r in A) else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("AMP attention A (paper Figure 6)")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=120)
    os.replace(path + ".tmp.png", path)
    plt.close(fig)


def main(argv=None):
    args = ap.parse_args(argv)
    cfg_path = os.path.join(args.out, "config.json")
    if not os.path.exists(cfg_path):
        raise DataError(f"{args.out} holds no run (no config.json); train one with python train.py --stage source")
    cfg = json.load(open(cfg_path))
    run, tasks = cfg["run"], cfg["run"]["tasks"]
    if not os.path.exists(os.path.join(args.out, "psi.safetensors")):
        raise DataError(f"{args.out} has no target prompts yet; run python train.py --stage target --out {args.out}")
    device = pick_device(args.device)
    encoder, tokenizer = load_encoder(run["model"])
    loaded = [load_task(t, run["data_dir"], run["protocol"], run["carve"], run["max_train"], run["max_eval"])
              for t in tasks]
    model = PromptModel(encoder, [x["info"]["num_labels"] for x in loaded]).to(device)
    expect = dict(model=run["model"], d=model.d, l=run["prompt_len"])
    results, notes, mean_prompt = {"prompt": {}, "amp": {}}, {}, {}
    for t, x in enumerate(loaded):
        name, info = x["name"], x["info"]
        if not x["measurable"]:
            notes[name] = f"not measurable: {len(x['report'])} reporting rows"
            continue
        for method, folder, max_tokens in (("prompt", "source", info["max_tokens"]), ("amp", "target", TARGET_MAX_TOKENS)):
            W, _ = load_tensors(os.path.join(args.out, folder, f"{name}.safetensors"), dict(expect, task=name))
            if folder == "source":
                mean_prompt[name] = W["P"].mean(0)                               # (d,)
            model.heads[t].load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
            data = tokenize(x["report"], tokenizer, min(max_tokens, max_positions(encoder, tokenizer) - run["prompt_len"]))
            results[method][name] = evaluate(model, W["P"].to(device), data, t, info["metrics"], args.batch_size,
                                             device, desc=f"{method} {name}")
        if x["note"]:
            notes[name] = x["note"]
    write_json(os.path.join(args.out, "eval.json"), dict(results, notes=notes))

    # The table: the first metric of each task, prompt tuning beside AMP, and the mean over measured tasks.
    first = {x["name"]: x["info"]["metrics"][0] for x in loaded}
    print(f"\n{'task':16s} {'metric':9s} {'prompt':>8s} {'AMP':>8s}   (reporting split, protocol {run['protocol']})")
    for name, m in first.items():
        scores = [f"{results[k][name][m]:8.1f}" if name in results[k] else f"{'-':>8s}" for k in ("prompt", "amp")]
        print(f"{name:16s} {m:9s} {' '.join(scores)}  {notes.get(name, '')}".rstrip())
    means = [np.mean([results[k][n][first[n]] for n in results[k]]) for k in ("prompt", "amp")]
    print(f"{'mean':16s} {'':9s} {means[0]:8.1f} {means[1]:8.1f}")

    A = json.load(open(os.path.join(args.out, "attention.json")))
    draw_attention(A["tasks"], A["A"], os.path.join(args.out, "attention.png"))
    width = max(len(t) for t in A["tasks"])
    print(f"\nattention A (row: target task, column: source task), drawn in {os.path.join(args.out, 'attention.png')}")
    print(" " * width + " " + " ".join(f"{j:>5d}" for j in range(len(A["tasks"]))))
    for i, (t, row) in enumerate(zip(A["tasks"], A["A"])):
        print(f"{t:>{width}s} " + " ".join(f"{a:5.2f}" for a in row) + f"   {i}")
    print(f"\nmean attention of a task on its own source prompt (diagonal of A): {np.mean(np.diag(A['A'])):.2f}")
    hits, counted, expected = family_rate(A["tasks"], A["A"])
    if counted:
        print(f"{hits} of {counted} tasks put their largest off-diagonal attention on a task of their own family "
              f"(a source picked at random: {expected:.1f} of {counted})")
        names = [t for t in A["tasks"] if t in mean_prompt]
        M = torch.stack([mean_prompt[t] for t in names])   # (n, d)
        hits, counted, _ = family_rate(names, (M @ M.T).tolist())
        print(f"for comparison, with no training: the dot product of mean source prompts (the order in which "
              f"ψ's identity start ranks the other sources): {hits} of {counted}")
        M = torch.nn.functional.normalize(M, dim=-1)   # (n, d)
        hits, counted, _ = family_rate(names, (M @ M.T).tolist())
        print(f"                                  their cosine (SPoT's task similarity): {hits} of {counted}")


if __name__ == "__main__":
    try:
        main()
    except (DataError, ModelError) as e:
        sys.exit(f"eval.py: error: {e}")
