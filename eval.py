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
  eval_cache.json  each method's scores and time, kept while what they depend on (method_key) stays,
                and the encoder's sizes: a call that finds every score there loads no encoder
On the demo suite it also counts how many tasks put their largest off-diagonal attention on a task
of their own family, against what picking a source at random would give and what the mean source
prompts give with no training (their dot product, the order ψ's identity start begins from, and
their cosine, SPoT's similarity). The pictures of A are lib/figures.py's.

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
import textwrap
import time

import numpy as np
import torch

from amp import ModelError, PromptModel, load_encoder, max_positions, resolve_model
from baselines import AttemptAttention, TokenBank, params_per_method, scaled_sizes, tpt_prompt
from data import MIN_REPORT, DataError, load_task
from lib import demo, runfiles
from lib.figures import column_names, draw_attention, family_rate
from lib.runfiles import RunFileError, load_tensors, read_json, task_file, write_json
from lib.tokens import tokenize
from metrics import EVAL_BATCH, evaluate, input_tokens, pick_device

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


# Table 1's columns in the paper's order, then the ablation's and the studies': (method, title)
METHODS = [(m, method.title) for m, method in runfiles.METHODS.items()]


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
    asked = [m for m, _ in METHODS if only is None or m in only]
    methods = [m for m in asked if all(os.path.exists(task_file(out, m, t)) for t in run["tasks"])]
    if "amp" in methods:  # read before eval.json is written: a damaged one leaves the run as it was
        read_json(os.path.join(out, "attention.json"), need=["tasks", "A"])
    if methods == ["prompt"] or not methods:
        raise DataError(
            f"{out} has no trained method yet; run python train.py --stage target --out {out}"
        )
    return run, methods


# {"methods": {method: {"key", "scores", "ms_per_example", "measured", "sha256"}}, "encoder":
# {"key", "positions", "d", "parameters", "sha256"}}: what a call that scores nothing needs
CACHE = "eval_cache.json"


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def file_sha(path):
    """sha256 of a file's bytes: a file damaged after scoring gets a new key, and is read again."""
    h = hashlib.sha256()
    if not os.path.exists(path):
        return None  # scoring it says it is missing
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encoder_key(name):
    """The run's encoder, known without loading it: its name and, where it is a folder (a local
    model, the packaged default), each file's name, size and time of change."""
    path = str(resolve_model(name))  # the packaged default's is a pathlib.Path
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)  # [] if no folder
    stats = [(os.path.relpath(f, path), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    return digest([name, path, stats])


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
    """The run's eval_cache.json, {"methods": {...}, "encoder": {...}}; a damaged one is ignored
    (and written anew)."""
    path = os.path.join(out, CACHE)
    try:
        cache = read_json(path, need=["methods"]) if os.path.exists(path) else {"methods": {}}
    except (RunFileError, OSError, ValueError, RecursionError):
        cache = None
    if isinstance(cache, dict) and isinstance(cache["methods"], dict):
        return cache
    print(f"{path} is damaged: it is ignored and written anew")
    return {"methods": {}}


def usable(entry, key):
    """Whether a cached entry is for this key and is what was written (its own sha256)."""
    ours = isinstance(entry, dict) and entry.get("key") == key
    return ours and entry.get("sha256") == digest({k: v for k, v in entry.items() if k != "sha256"})


def sealed(entry):
    """A cache entry with the sha256 of the rest (usable checks it)."""
    return dict(entry, sha256=digest(entry))


def open_model(out, run, loaded, device, key):
    """(the model, a head per task; its tokenizer; what the run's files must match; the source
    prompts P (n, l, d); the cache's entry of what a later call needs of the encoder)."""
    encoder, tokenizer = load_encoder(run["model"])
    model = PromptModel(encoder, [x["info"]["num_labels"] for x in loaded]).to(device)
    expect = dict(model=run["model"], d=model.d, l=run["prompt_len"])
    P = source_prompts(out, expect, run["tasks"]).to(device)
    entry = dict(key=key, positions=max_positions(encoder, tokenizer), d=model.d)
    entry.update(parameters=sum(p.numel() for p in encoder.parameters()))
    return model, tokenizer, expect, P, sealed(entry)


def source_prompts(out, expect, tasks):
    """The tasks' source prompts P (n, l, d), from OUT/source/ (read without the encoder)."""
    files = [(task_file(out, "prompt", t), dict(expect, task=t)) for t in tasks]
    return torch.stack([load_tensors(*f)[0]["P"] for f in files])


def score_methods(out, keys, reports, opened, batch_size, device):
    """Each method of keys {method: its key} on each measurable task's rows -> {method: {"scores":
    {task: {metric: value}}, "ms_per_example", "measured": today, "key", "sha256": of the rest}}."""
    model, _, expect, P_sources, _ = opened
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
    entries = {m: dict(scores=scores[m], ms_per_example=ms[m], measured=today) for m in keys}
    return {m: sealed(dict(e, key=keys[m])) for m, e in entries.items()}


def evaluate_run(out, batch_size, device, only=None, rescore=False):
    """Every method present in run folder `out`, each on the same reporting rows and the same input
    tokens -> ({"scores": {method: {task: {metric: value}}}, "ms_per_example": {method: ...},
    "measured", "notes", "tasks", "metric", ...}, the model, the source prompts P). A method whose
    key (method_key) is that of its entry in OUT/eval_cache.json is taken from there, unless
    rescore; the others are scored. When none is, no encoder is loaded: model and P are None."""
    run, methods = run_methods(out, only)
    tasks, l, cap = run["tasks"], run["prompt_len"], run.get("max_tokens")
    flags = [run[k] for k in ("data_dir", "protocol", "carve", "max_train", "max_eval")]
    loaded = [load_task(t, *flags) for t in tasks]
    cache, key = read_cache(out), encoder_key(run["model"])
    opened = None
    if not usable(cache.get("encoder"), key):  # loaded now; what later calls need of it is kept
        opened = open_model(out, run, loaded, device, key)
        cache["encoder"] = opened[-1]
    enc = cache["encoder"]
    tokens = {x["name"]: input_tokens(x["info"], enc["positions"], l, cap) for x in loaded}
    measurable = [x for x in loaded if x["measurable"]]
    info = [[x["name"], tokens[x["name"]], x["info"], x["report"][:]] for x in measurable]
    settings = dict(rows=digest(info), batch=batch_size, device=torch.device(device).type)
    settings.update(model=run["model"], encoder=key)  # what every method's scores depend on
    keys = {m: method_key(out, m, tasks, settings) for m in methods}
    fresh = {m: keys[m] for m in methods if rescore or not usable(cache["methods"].get(m), keys[m])}
    if fresh:  # tokenised now (or read back from lib.tokens' cache)
        opened = opened or open_model(out, run, loaded, device, key)
        reports = {  # measurable task -> (its index, info, its tokenised reporting rows)
            x["name"]: (t, x["info"], tokenize(x["report"], opened[1], tokens[x["name"]]))
            for t, x in enumerate(loaded)
            if x["measurable"]
        }
        cache["methods"].update(score_methods(out, fresh, reports, opened, batch_size, device))
    write_json(os.path.join(out, CACHE), cache)
    kept = ", ".join(m for m in methods if m not in fresh) or "none"
    print(f"{out}: from {CACHE}: {kept}; scored now: {', '.join(fresh) or 'none'}")
    result = {k: {m: cache["methods"][m][k] for m in methods} for k in ("scores", "ms_per_example")}
    few = {x["name"]: f"not measurable ({len(x['report'])} rows)" for x in loaded}
    result["notes"] = {x["name"]: x["note"] if x["measurable"] else few[x["name"]] for x in loaded}
    result.update(tasks=tasks, metric={x["name"]: x["info"]["metrics"][0] for x in loaded})
    labels = [x["info"]["num_labels"] for x in loaded]
    size = dict(l=l, d=enc["d"], num_labels=labels, encoder=enc["parameters"])
    result.update(size=size, protocol=run["protocol"], input_tokens=tokens)
    result["measured"] = {m: cache["methods"][m]["measured"] for m in methods}
    if only is None:
        write_json(os.path.join(out, "eval.json"), result)
    return result, opened and opened[0], opened and opened[3]


def cell(values, sign=""):
    """mean ± std over runs (seeds), or the one value; sign="+" marks differences."""
    spread = f" ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else ""
    return f"{np.mean(values):{sign}.1f}" + spread


def print_tables(results, runs):
    """Table 1 (rows: tasks and their mean, columns: methods), Table 2 (parameters, bytes, inference
    cost) and Figure 2 (AMP minus AMP-maxpool) of the paper, over one or several runs (seeds). The
    mean leaves out tasks with fewer than data.MIN_REPORT reporting rows ("not measurable")."""
    first, tasks = results[0], results[0]["tasks"]
    methods = [m for m, _ in METHODS if all(m in r["scores"] for r in results)]
    names = dict(METHODS)
    measured = [t for t in tasks if t in first["scores"][methods[0]]]

    def per(m, t):  # method m's score on task t (its first metric), one a run
        return [r["scores"][m][t][first["metric"][t]] for r in results]

    def mean(m):  # method m's mean over the measured tasks, one a run
        return [float(np.mean([per(m, t)[i] for t in measured])) for i in range(len(results))]

    widest = max((len(cell(per(m, t))) for m in methods for t in measured), default=0)
    width = max(max(len(names[m]) for m in methods), widest) + 2
    n = len(results)
    seeds = " (mean ± std over seeds)" if n > 1 else ""
    print(f"\nTable 1: reporting split (protocol {first['protocol']}), {n} run(s){seeds}")
    print(f"{'task':16s} {'metric':9s}" + "".join(f"{names[m]:>{width}s}" for m in methods))
    for t in tasks:
        row = "".join(f"{cell(per(m, t)):>{width}s}" for m in methods) if t in measured else ""
        print(f"{t:16s} {first['metric'][t]:9s}{row}  {first['notes'].get(t, '')}".rstrip())
    none = f"  not measurable (no task has {MIN_REPORT} reporting rows)"
    means = "".join(f"{cell(mean(m)):>{width}s}" for m in methods) if measured else none
    print(f"{'mean':16s} {'':9s}" + means)
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
        ms = f"{np.mean([r['ms_per_example'][m] for r in results]):.2f}" if measured else "-"
        days = sorted({r["measured"][m] for r in results})  # when each run measured it
        row = f"{own:>12,.0f} {c['total']:>13,} {c['total_with_heads']:>13,} {stored:>11,.0f}"
        print(f"{names[m]:14s} {row} {ms:>11s} {'..'.join(days[:1] + days[1:][-1:]):>10s}")
    if "amp" in methods and "amp-maxpool" in methods and measured:
        print("\nFigure 2: AMP (DAM, mean pooling) minus AMP-maxpool, per task" + seeds)
        for t in measured:
            diff = [a - b for a, b in zip(per("amp", t), per("amp-maxpool", t))]
            print(f"  {t:16s} {cell(diff, '+'):>12s}")
    table1 = {t: {m: per(m, t) for m in methods} for t in measured}
    return dict(
        methods=methods, table1=table1, mean={m: mean(m) for m in methods if measured}, runs=runs
    )


def print_attention(folder, out):
    """The learned A in run folder `out` (or its `select`: folder) as a heatmap (paper Figure 6) and
    a matrix, and on the demo suite how often a task's largest off-diagonal attention is on its own
    family, beside what the source prompts of `out` give with no training. Needs no encoder."""
    A = read_json(os.path.join(folder, "attention.json"), need=["tasks", "A"])
    tasks, png = A["tasks"], os.path.join(folder, "attention.png")
    draw_attention(tasks, A["A"], png)
    heads, width = column_names(tasks), max(len(t) for t in tasks)
    print(f"\nattention A (row: target task, column: source task), drawn in {png}")
    print(" " * width + "".join(f"{h:>8s}" for h in heads))
    for t, row in zip(tasks, A["A"]):
        print(f"{t:>{width}s}" + "".join(f"{a:8.2f}" for a in row))
    cut = [f"{h} = {t}" for h, t in zip(heads, tasks) if h != t]
    if cut:
        print(textwrap.fill("columns: " + ", ".join(cut), 100, subsequent_indent="  "))
    diag = np.mean(np.diag(A["A"]))
    print(f"\nmean attention of a task on its own source prompt (diagonal of A): {diag:.2f}")
    hits, counted, expected = family_rate(tasks, A["A"])
    if counted:
        print(
            f"{hits} of {counted} tasks put their largest off-diagonal attention on a task of "
            f"their own family (a source picked at random: {expected:.1f} of {counted})"
        )
        run = read_json(os.path.join(out, "config.json"), need=["run"])["run"]
        M = source_prompts(out, dict(model=run["model"], l=run["prompt_len"]), tasks).mean(
            1
        )  # (n, d)
        hits, counted, _ = family_rate(tasks, (M @ M.T).tolist())
        print(
            "for comparison, with no training: the dot product of mean source prompts (the order "
            f"in which ψ's identity start ranks the other sources): {hits} of {counted}"
        )
        M = torch.nn.functional.normalize(M, dim=-1)  # (n, d)
        hits, counted, _ = family_rate(tasks, (M @ M.T).tolist())
        print(f"{'':34s}their cosine (SPoT's task similarity): {hits} of {counted}")


def main(argv=None):
    args = ap.parse_args(argv)
    demo.register()
    device = pick_device(args.device)
    only = args.methods.split(",") if args.methods else None
    unknown = [m for m in only or [] if m not in dict(METHODS)]
    if unknown:
        known = ",".join(m for m, _ in METHODS)
        raise DataError(f"--methods {','.join(unknown)}: unknown; choose from {known}")
    results = [evaluate_run(o, args.batch_size, device, only, args.rescore)[0] for o in args.out]
    if len({tuple(r["tasks"]) for r in results}) > 1:
        raise DataError(
            "the runs given to --out hold different tasks; give runs of one setting (seeds)"
        )
    table = print_tables(results, args.out)
    if args.json:
        write_json(args.json, table)
        print(f"\nwritten: {args.json}")
    if "amp" in results[0]["scores"]:
        print_attention(args.out[0], args.out[0])
    if "select" in results[0]["scores"]:  # the weights of each task's start (probe.py)
        print("\nselect: each task's start, as weights of the source prompts")
        print_attention(os.path.join(args.out[0], "select"), args.out[0])


if __name__ == "__main__":
    try:
        main()
    except (DataError, ModelError, RunFileError) as e:
        print(f"eval.py: error: {e}", file=sys.stderr)
        sys.exit(2)  # as train.py: a user's mistake or a damaged run file
