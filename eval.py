"""eval.py: score every method a run holds on each task's reporting split, print the paper's tables
and show the learned attention A (paper 3.3 inference, 5.1 Table 1, Table 2, Figure 2, 6 Figure 6).

Every method (prompt tuning = the source prompts, AMP = the target prompts, and each --method
trained beside them) is scored on the same reporting rows and the same input tokens (input_tokens:
one length per task). Inference (paper 3.3) uses only a task's prompt and head: AMP costs what
prompt tuning costs; ATTEMPT and TPT compute each example's prompt from its input. Prints Table 1
(rows: tasks and their mean, columns: methods; with several run folders, e.g. seeds, mean ± std),
Table 2 (trainable parameters by baselines.params_per_method, stored bytes per task, measured
milliseconds per example), Figure 2 (AMP minus AMP-maxpool) when both are present, and the
attention heatmap. Writes into each run folder:
  eval.json     {"scores": {method: {task: {metric: value}}}, "ms_per_example", "input_tokens", ...}
  attention.png the attention matrix as a labelled heatmap (rows: target tasks, columns: sources)
  eval_cache.json  each method's scores and time, kept while what they depend on (method_key) stays
On the demo suite it also counts how many tasks put their largest off-diagonal attention on a task
of their own family, against what picking a source at random would give and what the mean source
prompts give with no training (their dot product, the order ψ's identity start begins from, and
their cosine, SPoT's similarity).

Run (after train.py --stage source and --stage target):
  python eval.py --out runs/amp
  python eval.py --out runs/s0 runs/s1 runs/s2 --json table.json    # seeds: mean ± std, as JSON
  python eval.py --out runs/s0 runs/s1 --methods prompt,amp           # only these columns (faster)
  python eval.py --out runs/amp --rescore                             # ignore eval_cache.json
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

from amp import ModelError
from baselines import AttemptAttention, TokenBank, params_per_method, scaled_sizes, tpt_prompt
from data import DataError
from lib import demo
from metrics import EVAL_BATCH, evaluate, input_tokens, open_run, pick_device
from lib.runfiles import load_tensors, read_json, write_json
from lib.tokens import tokenize

ap = argparse.ArgumentParser(description="Score every method of a run on each reporting split.")
ap.add_argument("--out", nargs="+", default=["runs/amp"], help="run folder(s); seeds: mean ± std")
ap.add_argument("--json", help="also write the tables (every run's scores) to this JSON file")
ap.add_argument("--batch-size", type=int, default=EVAL_BATCH, help="rows per batch, by length")
ap.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda")
ap.add_argument(
    "--methods",
    help="comma list of methods to evaluate, e.g. prompt,spot-m,amp (default: every method the "
    "run holds; the run's eval.json is then left as it was)",
)
ap.add_argument("--rescore", action="store_true", help="score every method again (no cache)")


def family_rate(tasks, A):
    """(hits, tasks with a sibling, hits expected of a random pick) for demo-suite tasks."""
    fam = [demo.DEMO[t][0] if t in demo.DEMO else None for t in tasks]
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

    n, light = len(tasks), 0.6 * max(max(r) for r in A)  # white text above `light`
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    im = ax.imshow(A, cmap="Blues", vmin=0)
    ax.set_xticks(range(n), tasks, rotation=60, ha="right")
    ax.set_yticks(range(n), tasks)
    ax.set_xlabel("source task (column)")
    ax.set_ylabel("target task (row)")
    for i in range(n):
        for j in range(n):
            color = "white" if A[i][j] > light else "black"
            ax.text(j, i, f"{A[i][j]:.2f}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("AMP attention A (paper Figure 6)")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=120)
    os.replace(path + ".tmp.png", path)
    plt.close(fig)


# Table 1's columns in the paper's order, then the ablation's PT continued (results/ablation.py)
METHODS = [
    ("finetune", "fine-tuning"),
    ("prompt", "prompt tuning"),
    ("spot-s", "SPoT-s"),
    ("spot-m", "SPoT-m"),
    ("attempt", "ATTEMPT"),
    ("tpt", "TPT"),
    ("amp", "AMP"),
    ("amp-maxpool", "AMP-maxpool"),
    ("pt-continued", "PT continued"),
    ("select", "select"),
    ("amp-tuned", "AMP, then tuned"),
]
# where each method keeps its per-task files; any other method M: M/target
FOLDER = {"prompt": "source", "amp": "target"}


def task_file(out, method, task):
    """The file holding a task's prompt and head under a method, in run folder `out`."""
    return os.path.join(out, FOLDER.get(method, f"{method}/target"), f"{task}.safetensors")


def method_prompt(out, method, name, t, model, P_sources, device, expect):
    """What task t is read through under a method, from its saved files: the (l, d) prompt of prompt
    tuning, AMP, AMP-maxpool and SPoT; a function of the batch for ATTEMPT and TPT (their prompt
    depends on the input); an empty prompt and the task's own encoder for fine-tuning. Loads the
    task's head into the model."""
    W, _ = load_tensors(task_file(out, method, name), dict(expect, task=name))
    model.heads[t].load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
    embed = model.encoder.get_input_embeddings()
    if method == "finetune":
        model.encoder.load_state_dict({k[8:]: v for k, v in W.items() if k.startswith("encoder.")})
        return torch.zeros(0, model.d, device=device)  # (0, d): no prompt
    if method == "attempt":
        att = AttemptAttention(model.d, scaled_sizes(model.d, expect["l"])["bottleneck"]).to(device)
        path = os.path.join(out, "attempt", "attention.safetensors")
        att.load_state_dict(load_tensors(path, expect)[0])
        own = W["P"].to(device)  # (l, d)

        def prompt(b):  # (B, l, d): each example's prompt, from its input
            mine = own.expand(len(b["task"]), -1, -1)
            return att(P_sources, mine, embed(b["input_ids"]), b["attention_mask"])[0]

        return prompt
    if method == "tpt":
        bank = TokenBank(W["bank"], scaled_sizes(model.d, expect["l"])["top_k"]).to(device)
        own = W["P"].to(device)
        return lambda b: tpt_prompt(bank(embed(b["input_ids"]), b["attention_mask"])[0], own)
    return W["P"].to(device)  # (l, d)


def run_methods(out, only=None):
    """(the run's flags, the methods it holds files of for every task, among `only` if given);
    a folder with no run or no trained method stops with one line."""
    cfg_path = os.path.join(out, "config.json")
    if os.path.isfile(out):
        raise DataError(f"--out {out} is a file; give a folder")
    if not os.path.exists(cfg_path):
        raise DataError(
            f"{out} holds no run (no config.json); train one with python train.py --stage source"
        )
    run = read_json(cfg_path, need=["run"])["run"]
    has = lambda m: all(os.path.exists(task_file(out, m, t)) for t in run["tasks"])
    methods = [m for m, _ in METHODS if has(m) and (only is None or m in only)]
    if "amp" in methods:  # read before eval.json is written: a damaged one leaves the run as it was
        read_json(os.path.join(out, "attention.json"), need=["tasks", "A"])
    if methods == ["prompt"] or not methods:
        raise DataError(
            f"{out} has no trained method yet; run python train.py --stage target --out {out}"
        )
    return run, methods


CACHE = "eval_cache.json"  # {"methods": {method: {"key", "scores", "ms_per_example", "measured"}}}
digest = lambda obj: hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def file_sha(path):
    """sha256 of a file's bytes: a file damaged after scoring gets a new key, and is read again."""
    h = hashlib.sha256()
    if not os.path.exists(path):
        return None  # scoring it says it is missing
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def method_key(out, method, tasks, settings):
    """sha256 of what a method's scores depend on: the tensor files it reads (its per-task files;
    ATTEMPT: also its attention and the source prompts) and the settings (rows, batch, device)."""
    files = [task_file(out, method, t) for t in tasks]
    if method == "attempt":
        files += [os.path.join(out, "attempt", "attention.safetensors")]
        files += [task_file(out, "prompt", t) for t in tasks]
    shas = {os.path.relpath(f, out): file_sha(f) for f in files}
    return digest([shas, settings])


def read_cache(out):
    """{method: entry} of the run's eval_cache.json; a damaged one is ignored (and written anew)."""
    path = os.path.join(out, CACHE)
    try:
        methods = read_json(path, need=["methods"])["methods"] if os.path.exists(path) else {}
    except (ModelError, OSError, ValueError, RecursionError):
        methods = None
    if not isinstance(methods, dict):
        print(f"{path} is damaged: it is ignored and written anew")
    return methods if isinstance(methods, dict) else {}


def usable(entry, key):
    """Whether a cached entry is for this key and is what was written (its own sha256)."""
    ours = isinstance(entry, dict) and entry.get("key") == key
    return ours and entry.get("sha256") == digest({k: v for k, v in entry.items() if k != "sha256"})


def score_methods(out, keys, reports, model, P_sources, batch_size, device, expect):
    """Each method of keys {method: its key} on each measurable task's rows -> {method: {"scores":
    {task: {metric: value}}, "ms_per_example", "measured": today, "key", "sha256": of the rest}}."""
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()}  # fine-tuning swaps them
    scores, seconds = {m: {} for m in keys}, dict.fromkeys(keys, 0.0)
    for name, (t, info, data) in reports.items():
        for m in keys:  # the same tokens for every method
            prompt = method_prompt(out, m, name, t, model, P_sources, device, expect)
            t0 = time.perf_counter()
            scores[m][name] = evaluate(
                model, prompt, data, t, info["metrics"], batch_size, device, desc=f"{m} {name}"
            )
            seconds[m] += time.perf_counter() - t0
            if m == "finetune":
                model.encoder.load_state_dict(frozen)
    rows, today = sum(len(d) for _, _, d in reports.values()), datetime.date.today().isoformat()
    ms = {m: 1000 * s / max(rows, 1) for m, s in seconds.items()}
    entry = lambda m: dict(scores=scores[m], ms_per_example=ms[m], measured=today, key=keys[m])
    return {m: dict(entry(m), sha256=digest(entry(m))) for m in keys}


def evaluate_run(out, batch_size, device, only=None, rescore=False):
    """Every method present in run folder `out`, each on the same reporting rows and the same input
    tokens -> {"scores": {method: {task: {metric: value}}}, "ms_per_example": {method: ...},
    "measured", "notes", "tasks", "metric", ...}. A method whose key (method_key) is that of its
    entry in OUT/eval_cache.json is taken from there, unless rescore; the others are scored."""
    run, methods = run_methods(out, only)
    tasks, cap = run["tasks"], (run["prompt_len"], run.get("max_tokens"))
    encoder, tokenizer, loaded, model, expect, P_sources = open_run(out, run, device)
    tokens = {x["name"]: input_tokens(x["info"], encoder, tokenizer, *cap) for x in loaded}
    unmeasured = lambda x: f"not measurable: {len(x['report'])} reporting rows"
    notes = {x["name"]: x["note"] if x["measurable"] else unmeasured(x) for x in loaded}
    reports = {  # measurable task -> (its index, info, its tokenised reporting rows)
        x["name"]: (t, x["info"], tokenize(x["report"], tokenizer, tokens[x["name"]]))
        for t, x in enumerate(loaded)
        if x["measurable"]
    }
    # each row's input ids, token types, label and group: d[:] holds every column of the rows
    rows = [[n, tokens[n], i["metrics"], i["num_labels"], d[:]] for n, (_, i, d) in reports.items()]
    settings = dict(rows=digest(rows), batch=batch_size, device=torch.device(device).type)
    settings.update(model=run["model"])  # what every method's scores depend on, besides its files
    cache, keys = read_cache(out), {m: method_key(out, m, tasks, settings) for m in methods}
    fresh = {m: keys[m] for m in methods if rescore or not usable(cache.get(m), keys[m])}
    cache.update(score_methods(out, fresh, reports, model, P_sources, batch_size, device, expect))
    write_json(os.path.join(out, CACHE), dict(methods=cache))
    kept = ", ".join(m for m in methods if m not in fresh) or "none"
    print(f"{out}: from {CACHE}: {kept}; scored now: {', '.join(fresh) or 'none'}")
    pick = lambda k: {m: cache[m][k] for m in methods}
    metric = {x["name"]: x["info"]["metrics"][0] for x in loaded}
    weights = sum(p.numel() for p in encoder.parameters())
    size = dict(l=run["prompt_len"], d=model.d, num_labels=model.num_labels, encoder=weights)
    result = dict(scores=pick("scores"), ms_per_example=pick("ms_per_example"), notes=notes)
    result.update(tasks=tasks, metric=metric, size=size, protocol=run["protocol"])
    result.update(input_tokens=tokens, measured=pick("measured"))
    if only is None:
        write_json(os.path.join(out, "eval.json"), result)
    return result, model, P_sources


def cell(values, sign=""):
    """mean ± std over runs (seeds), or the one value; sign="+" marks differences."""
    spread = f" ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else ""
    return f"{np.mean(values):{sign}.1f}" + spread


def print_tables(results, runs):
    """Table 1 (rows: tasks and their mean, columns: methods), Table 2 (parameters, bytes, inference
    cost) and Figure 2 (AMP minus AMP-maxpool) of the paper, over one or several runs (seeds)."""
    first, tasks = results[0], results[0]["tasks"]
    methods = [m for m, _ in METHODS if all(m in r["scores"] for r in results)]
    names = dict(METHODS)
    measured = [t for t in tasks if t in first["scores"][methods[0]]]
    score = lambda r, m, t: r["scores"][m][t][first["metric"][t]]
    per = lambda m, t: [score(r, m, t) for r in results]
    mean = lambda m: [np.mean([score(r, m, t) for t in measured]) for r in results]
    widest = max(len(cell(per(m, t))) for m in methods for t in measured)
    width = max(max(len(names[m]) for m in methods), widest) + 2
    n = len(results)
    seeds = " (mean ± std over seeds)" if n > 1 else ""
    print(f"\nTable 1: reporting split (protocol {first['protocol']}), {n} run(s){seeds}")
    print(f"{'task':16s} {'metric':9s}" + "".join(f"{names[m]:>{width}s}" for m in methods))
    for t in tasks:
        row = "".join(f"{cell(per(m, t)):>{width}s}" for m in methods) if t in measured else ""
        print(f"{t:16s} {first['metric'][t]:9s}{row}  {first['notes'].get(t, '')}".rstrip())
    print(f"{'mean':16s} {'':9s}" + "".join(f"{cell(mean(m)):>{width}s}" for m in methods))
    l, d = first["size"]["l"], first["size"]["d"]
    counts = params_per_method(l, d, first["size"]["num_labels"], encoder=first["size"]["encoder"])
    print(
        f"\nTable 2: trainable parameters (l = {l}, d = {d}, {len(tasks)} tasks; per task: its own "
        "plus its share of the shared ones), stored bytes per task, inference time per reporting "
        "example (measured on the date shown, kept in each run's eval_cache.json)"
    )
    print(
        f"{'method':14s} {'per task':>12s} {'all tasks':>13s} {'with heads':>13s} "
        f"{'bytes/task':>11s} {'ms/example':>11s} {'measured':>10s}"
    )
    for m in methods:
        c = counts[m]
        own = c["per_task"] + c["shared"] / len(tasks)
        stored = np.mean([os.path.getsize(task_file(runs[0], m, t)) for t in tasks])
        ms = np.mean([r["ms_per_example"][m] for r in results])
        days = sorted({r["measured"][m] for r in results})  # when each run measured it
        row = f"{own:>12,.0f} {c['total']:>13,} {c['total_with_heads']:>13,} {stored:>11,.0f}"
        print(f"{names[m]:14s} {row} {ms:>11.2f} {'..'.join(days[:1] + days[1:][-1:]):>10s}")
    if "amp" in methods and "amp-maxpool" in methods:
        print("\nFigure 2: AMP (DAM, mean pooling) minus AMP-maxpool, per task" + seeds)
        for t in measured:
            diff = [a - b for a, b in zip(per("amp", t), per("amp-maxpool", t))]
            print(f"  {t:16s} {cell(diff, '+'):>12s}")
    table1 = {t: {m: per(m, t) for m in methods} for t in measured}
    return dict(methods=methods, table1=table1, mean={m: mean(m) for m in methods}, runs=runs)


def print_attention(out, P_sources):
    """The learned A of AMP (paper Figure 6) as a heatmap, and on the demo suite how often a task's
    largest off-diagonal attention is on its own family, beside what the source prompts give with
    no training."""
    A = read_json(os.path.join(out, "attention.json"), need=["tasks", "A"])
    png = os.path.join(out, "attention.png")
    draw_attention(A["tasks"], A["A"], png)
    width = max(len(t) for t in A["tasks"])
    print(f"\nattention A (row: target task, column: source task), drawn in {png}")
    print(" " * width + " " + " ".join(f"{j:>5d}" for j in range(len(A["tasks"]))))
    for i, (t, row) in enumerate(zip(A["tasks"], A["A"])):
        print(f"{t:>{width}s} " + " ".join(f"{a:5.2f}" for a in row) + f"   {i}")
    diag = np.mean(np.diag(A["A"]))
    print(f"\nmean attention of a task on its own source prompt (diagonal of A): {diag:.2f}")
    hits, counted, expected = family_rate(A["tasks"], A["A"])
    if counted:
        print(
            f"{hits} of {counted} tasks put their largest off-diagonal attention on a task of "
            f"their own family (a source picked at random: {expected:.1f} of {counted})"
        )
        M = P_sources.mean(1).cpu()  # (n, d)
        hits, counted, _ = family_rate(A["tasks"], (M @ M.T).tolist())
        print(
            "for comparison, with no training: the dot product of mean source prompts (the order "
            f"in which ψ's identity start ranks the other sources): {hits} of {counted}"
        )
        M = torch.nn.functional.normalize(M, dim=-1)  # (n, d)
        hits, counted, _ = family_rate(A["tasks"], (M @ M.T).tolist())
        print(f"{'':34s}their cosine (SPoT's task similarity): {hits} of {counted}")


def main(argv=None):
    args = ap.parse_args(argv)
    demo.register()
    device = pick_device(args.device)
    results, P = [], None
    only = args.methods.split(",") if args.methods else None
    unknown = [m for m in only or [] if m not in dict(METHODS)]
    if unknown:
        known = ",".join(m for m, _ in METHODS)
        raise DataError(f"--methods {','.join(unknown)}: unknown; choose from {known}")
    for out in args.out:
        r, _, P_out = evaluate_run(out, args.batch_size, device, only, args.rescore)
        results.append(r)
        P = P if P is not None else P_out
    tasks = {tuple(r["tasks"]) for r in results}
    if len(tasks) > 1:
        raise DataError(
            "the runs given to --out hold different tasks; give runs of one setting (seeds)"
        )
    table = print_tables(results, args.out)
    if args.json:
        write_json(args.json, table)
        print(f"\nwritten: {args.json}")
    if "amp" in results[0]["scores"]:
        print_attention(args.out[0], P)
    if "select" in results[0]["scores"]:  # the weights of each task's start (probe.py)
        print("\nselect: each task's start, as weights of the source prompts")
        print_attention(os.path.join(args.out[0], "select"), P)


if __name__ == "__main__":
    try:
        main()
    except (DataError, ModelError) as e:
        print(f"eval.py: error: {e}", file=sys.stderr)
        sys.exit(2)  # as train.py: a user's mistake or a damaged run file
