"""transfer.py: AMP's attention held against measured transfer (paper 1 and 3.2 claim that A finds
the source tasks that help a target, with no manual search).

For each target task T of a finished run and each other task S of the run, T's prompt starts from
S's source prompt and is prompt-tuned on T with a fresh head and the run's stage-source flags
(SPoT's transfer: train.py --method spot-m --spot-source S, trained on T only, in
OUT/transfer/S/). The measured transfer of S to T is that prompt's score on T's reporting split
minus prompt tuning's (T's own source prompt, from the usual start):

    M_TS = score(T | start P_S) - score(T | start from vocabulary)

Per target, five rankings of the sources are compared with row M_T (Spearman's ρ, and whether the
top-ranked source is the best measured one):
    amp      AMP's learned attention row A_T (attention.json, without the diagonal)
    dot      mean(P_T) · mean(P_S), the order ψ's identity start begins from (dam.py)
    cosine   cos(mean P_T, mean P_S), SPoT's similarity (baselines.spot_similarity)
    attempt  ATTEMPT's attention on S, averaged over T's reporting examples (if the run has ATTEMPT)
    probe    the probe's dev score of T read through P_S (probe.py; if the run has --method select)

  python -m studies.transfer --out runs/lr0 --targets senti_food_32,para_people_32,entail_trips_32
  python -m studies.transfer --out runs/lr0 runs/lr1 --targets ... --json results/transfer.json
Writes OUT/transfer.json and OUT/transfer.png (M beside AMP's attention rows). Several run folders
(seeds) are summed up together. --jobs N trains the sub-runs in N processes at once, with the
same results. Tiny CPU example (a minute):
  python train.py --stage source --tasks senti_movies,senti_food,colours --max-steps 5 \
      --out runs/tiny3
  python train.py --stage target --max-steps 5 --out runs/tiny3
  python -m studies.transfer --out runs/tiny3 --targets senti_food --max-steps 5
"""

import argparse
import contextlib
import io
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import numpy as np
import torch

import train
from amp import ModelError, max_positions
from baselines import AttemptAttention, scaled_sizes, spot_similarity
from data import DataError, collate, parse_tasks
from lib import demo
from metrics import EVAL_BATCH, evaluate, input_tokens, open_run, pick_device
from lib.runfiles import RunFileError, load_tensors, read_json, write_json
from lib.tokens import tokenize

ap = argparse.ArgumentParser(description="Measured single-source transfer against AMP's attention.")
ap.add_argument("--out", nargs="+", default=["runs/amp"], help="run folder(s), stage target done")
ap.add_argument("--targets", required=True, help="comma list of the run's tasks to transfer into")
ap.add_argument("--max-steps", type=int, help="cap each sub-run's steps (default: stage source's)")
ap.add_argument("--json", help="also write each run's matrices, rankings and the summary here")
ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
ap.add_argument("--jobs", type=int, default=1, help="train the sub-runs in N processes at once")

# the flags of stage source that each transfer run takes (prompt tuning's own)
SAME = ["epochs", "max_steps", "batch_size", "lr", "head_lr", "warmup", "weight_decay", "patience"]


def fail(msg, code=2):
    print(f"transfer.py: error: {msg}", file=sys.stderr)
    sys.exit(code)


def transferred(out, S, T):
    """T's prompt tuned from S's source prompt: its file in sub-run S."""
    return os.path.join(out, "transfer", S, "spot-m", "target", f"{T}.safetensors")


def measure(out, targets, max_steps, jobs=1):
    """Train T from each other task's source prompt (SPoT-m on T alone), one sub-run per source S in
    OUT/transfer/S/ (a copy of the run's config and source prompts) with stage source's flags SAME;
    a finished target is kept, not redone, and a target asked for later joins the sub-runs. Each is
    made ready here (prepare), then trained here or, with jobs > 1, in a worker process."""
    cfg = read_json(os.path.join(out, "config.json"), need=["run", "source"])
    ready = ((S, prepare(out, cfg, S, targets, max_steps)) for S in cfg["run"]["tasks"])
    if jobs > 1:  # all made ready, then trained in the workers, the longer sub-runs first:
        subs = [(S, argv) for S, argv in ready if argv]  # a source that is a target trains one less
        return dispatch(sorted(subs, key=lambda sub: sub[0] in targets), jobs)
    for S, argv in ready:  # one after another, each made ready as its turn comes
        if argv:
            train.main(argv)


def prepare(out, cfg, S, targets, max_steps):
    """Sub-run S's folder made ready (its config.json and the source prompts it needs) -> the
    train.py arguments that train it (--resume if it had begun), or None if it has nothing to do."""
    ts = [t for t in targets if t != S]
    sub = os.path.join(out, "transfer", S)
    if not ts or all(os.path.exists(transferred(out, S, t)) for t in ts):
        return None
    mine = os.path.join(sub, "config.json")
    resume = os.path.exists(mine)  # begun: it goes on from its checkpoint
    fresh = dict(run=dict(cfg["run"], tasks=[]), source=cfg["source"])  # a sub-run of no task yet
    sub_cfg = read_json(mine, need=["run"]) if resume else fresh
    new = [t for t in ts if t not in sub_cfg["run"]["tasks"]]
    if new:  # a run of the targets alone, with the run's flags and source prompts
        src, dst = os.path.join(out, "source"), os.path.join(sub, "source")
        os.makedirs(dst, exist_ok=True)
        for t in new + [S]:
            for ext in (".safetensors", ".json"):
                shutil.copy(os.path.join(src, t + ext), os.path.join(dst, t + ext))
        sub_cfg["run"]["tasks"] += new
        write_json(mine, sub_cfg)
    print(f"transfer: {', '.join(ts)} from {S}'s source prompt")
    flags = dict(cfg["source"], max_steps=max_steps or cfg["source"].get("max_steps"))
    given = [k for k in SAME if flags.get(k) is not None]
    same = [x for k in given for x in ("--" + k.replace("_", "-"), str(flags[k]))]
    spot = ["--stage", "target", "--method", "spot-m", "--spot-source", S, "--out", sub]
    return [*spot, *(["--resume"] if resume else []), *same]


def run_sub(argv):
    """train.main(argv) in a worker -> None, or (exit code, train.py's one line) if it stopped; its
    stderr, less the progress bars (lines that \\r rewrites), passes on."""
    err, code = io.StringIO(), 0
    try:
        with contextlib.redirect_stderr(err):
            train.main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    lines = [y for x in err.getvalue().split("\n") if (y := x.split("\r")[-1].strip())]
    if code:
        return code, (lines or [f"train.py exited with {code}"])[-1]
    sys.stderr.write("".join(x + "\n" for x in lines))


def dispatch(subs, jobs):
    """Train the sub-runs [(S, train.py arguments)] in `jobs` spawned processes, each starting with
    its share of this process's threads; each sub-run has its own random stream and folder, so the
    files are those of --jobs 1. The first to stop ends the command with its line once the running
    ones are done; the ones not begun wait for a rerun, which resumes every unfinished sub-run."""
    threads, stopped = max(1, torch.get_num_threads() // jobs), None
    pool = ProcessPoolExecutor(jobs, get_context("spawn"), torch.set_num_threads, (threads,))
    try:
        running = {pool.submit(run_sub, argv): S for S, argv in subs}
        for f in as_completed(running):
            try:
                res = None if f.cancelled() else f.result()
            except Exception as e:  # a bug, or a worker killed (out of memory, a signal)
                res = 1, f"{type(e).__name__}: {e}"
            if res and not stopped:
                stopped = running[f], res
                pool.shutdown(wait=False, cancel_futures=True)
    finally:  # on an interrupt too: the sub-runs not begun are not begun
        pool.shutdown(cancel_futures=True)
    if stopped:
        fail(f"transfer from {stopped[0]}: {stopped[1][1]}", stopped[1][0])


def ranks(x):
    """Average ranks (1 = smallest) of a 1-d array, ties sharing their mean rank."""
    x = np.asarray(x, dtype=float)
    order, r = np.argsort(x, kind="stable"), np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        r[x == v] = r[x == v].mean()
    return r


def spearman(x, y):
    """Spearman's ρ: Pearson's correlation of the average ranks; nan if either side is constant."""
    a, b = ranks(x) - ranks(x).mean(), ranks(y) - ranks(y).mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


@torch.no_grad()
def study(out, targets, device):
    """-> {"targets", "sources", "measured": {T: {S: M_TS}}, "pt": {T: score}, "rankings": {kind:
    {T: {S: v}}}, "metric", "spearman": {kind: {T: ρ}}, "top1": {kind: {T: bool}}, "top1_gain":
    {kind: {T: M of the top pick}}} for one run."""
    run = read_json(os.path.join(out, "config.json"), need=["run"])["run"]
    tasks, cap = run["tasks"], (run["prompt_len"], run.get("max_tokens"))
    encoder, tokenizer, loaded, model, expect, P = open_run(out, run, device)  # P: (n, l, d)
    loaded = dict(zip(tasks, loaded))
    A = read_json(os.path.join(out, "attention.json"), need=["tasks", "A"])
    if A["tasks"] != tasks:
        over = f"{out}/attention.json is over {A['tasks']}, the run over {tasks}"
        raise DataError(f"{over}; redo stage target")
    mean = P.float().mean(dim=1)  # (n, d)
    dot, cos = (mean @ mean.T).tolist(), spot_similarity(P).tolist()  # (n, n) each
    rankings = dict(amp={}, dot={}, cosine={})
    metric = {t: loaded[t]["info"]["metrics"][0] for t in targets}
    res = dict(targets=targets, sources=tasks, measured={}, pt={}, rankings=rankings, metric=metric)

    def score(path, T):
        t, info = tasks.index(T), loaded[T]["info"]
        W, _ = load_tensors(path, dict(expect, task=T))
        model.heads[t].load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
        n = input_tokens(info, max_positions(encoder, tokenizer), *cap)
        data = tokenize(loaded[T]["report"], tokenizer, n)
        scores = evaluate(model, W["P"].to(device), data, t, info["metrics"], EVAL_BATCH, device)
        return scores[info["metrics"][0]]

    for T in targets:
        i, others = tasks.index(T), [S for S in tasks if S != T]
        res["pt"][T] = score(os.path.join(out, "source", f"{T}.safetensors"), T)
        res["measured"][T] = {S: score(transferred(out, S, T), T) - res["pt"][T] for S in others}
        for kind, M in (("amp", A["A"]), ("dot", dot), ("cosine", cos)):
            rankings[kind][T] = {S: M[i][tasks.index(S)] for S in others}
    if os.path.exists(os.path.join(out, "attempt", "attention.safetensors")):
        rankings["attempt"] = attempt_rows(
            out, run, targets, loaded, model, tokenizer, P, expect, device
        )
    if os.path.exists(path := os.path.join(out, "select", "probe.json")):
        R = read_json(path, need=["tasks", "dev"])
        R = {T: dict(zip(R["tasks"], row)) for T, row in zip(R["tasks"], R["dev"])}  # dev scores
        rankings["probe"] = {T: {S: R[T][S] for S in tasks if S != T} for T in targets}
    return compare(res)


def compare(res):
    """Each ranking of the sources held against the measured transfer, per target: Spearman's ρ,
    whether its top pick is the best measured source, and that pick's measured transfer."""
    targets, measured = res["targets"], res["measured"]
    best = {T: max(measured[T].values()) for T in targets}
    res["spearman"], res["top1"], res["top1_gain"] = {}, {}, {}
    for k, r in res["rankings"].items():
        rho = {T: spearman(list(r[T].values()), [measured[T][S] for S in r[T]]) for T in targets}
        top = {T: measured[T][max(r[T], key=r[T].get)] for T in targets}  # M of the top pick
        res["spearman"][k], res["top1"][k] = rho, {T: top[T] == best[T] for T in targets}
        res["top1_gain"][k] = top
    return res


def attempt_rows(out, run, targets, loaded, model, tokenizer, P, expect, device):
    """{T: {S: ATTEMPT's weight on S's source prompt, averaged over T's reporting examples}}."""
    tasks, cap = run["tasks"], (run["prompt_len"], run.get("max_tokens"))
    att = AttemptAttention(model.d, scaled_sizes(model.d, run["prompt_len"])["bottleneck"])
    att = att.to(device)
    path = os.path.join(out, "attempt", "attention.safetensors")
    att.load_state_dict(load_tensors(path, expect)[0])
    embed, rows = model.encoder.get_input_embeddings(), {}
    for T in targets:
        info, path = loaded[T]["info"], os.path.join(out, "attempt", "target", f"{T}.safetensors")
        own = load_tensors(path, dict(expect, task=T))[0]["P"]
        n = input_tokens(info, max_positions(model.encoder, tokenizer), *cap)
        data = tokenize(loaded[T]["report"], tokenizer, n)
        total = torch.zeros(len(tasks) + 1)  # the n sources and T's own prompt
        for s in range(0, len(data), EVAL_BATCH):
            end = min(s + EVAL_BATCH, len(data))
            b = collate([dict(data[j], task=tasks.index(T)) for j in range(s, end)], model.pad_id)
            ids, mask = b["input_ids"].to(device), b["attention_mask"].to(device)
            mine = own.to(device).expand(len(ids), -1, -1)  # (B, l, d)
            total += att(P, mine, embed(ids), mask)[1].sum(0).float().cpu()
        rows[T] = {S: float(total[j]) / len(data) for j, S in enumerate(tasks) if S != T}
    return rows


def per_target(results, targets):
    """{T: mean ± std over the runs (seeds) of the best and of a random source's transfer and of
    each ranking's ρ, and "agreement": Spearman's ρ between two runs' measured rows M_T (each pair
    of runs), which says whether the measured transfer itself repeats from seed to seed.} Printed
    when there are several runs."""
    rs, out = list(results.values()), {}

    def stat(x):  # mean and std over the runs
        return [float(np.mean(x)), float(np.std(x))]

    for T in targets:
        S = list(rs[0]["measured"][T])
        rows = [[r["measured"][T][s] for s in S] for r in rs]  # (runs, sources)
        kinds = [k for k in rs[0]["spearman"] if all(k in r["spearman"] for r in rs)]
        pairs = [(i, j) for i in range(len(rs)) for j in range(i + 1, len(rs))]
        agreement = [spearman(rows[i], rows[j]) for i, j in pairs]
        o = out[T] = dict(
            best=stat([max(x) for x in rows]),
            random=stat([np.mean(x) for x in rows]),
            spearman={k: stat([r["spearman"][k][T] for r in rs]) for k in kinds},
            agreement=agreement,
        )
        if len(rs) > 1:
            rho = ", ".join(f"{k} {m:+.2f} ± {v:.2f}" for k, (m, v) in o["spearman"].items())
            agree = "seed-to-seed ρ of M_T " + ", ".join(f"{x:+.2f}" for x in agreement)
            best, random = (f"{m:+.1f} ± {v:.1f}" for m, v in (o["best"], o["random"]))
            print(f"  {T}: best source {best}, random {random}; ρ {rho}; {agree}")
    return out


def draw(res, path):
    """The measured transfer M (targets × sources) beside AMP's attention rows for the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T, S = res["targets"], res["sources"]
    M = np.array([[res["measured"][t].get(s, np.nan) for s in S] for t in T])
    A = np.array([[res["rankings"]["amp"][t].get(s, np.nan) for s in S] for t in T])
    size = (2 + 1.1 * len(S), 1.5 + 0.6 * len(T))
    fig, axes = plt.subplots(1, 2, figsize=size, constrained_layout=True)
    lim = np.nanmax(np.abs(M)) or 1.0
    panels = [
        (M, "measured transfer (points vs prompt tuning)", dict(cmap="RdBu", vmin=-lim, vmax=lim)),
        (A, "AMP attention A (off-diagonal)", dict(cmap="viridis")),
    ]
    for ax, (X, title, kw) in zip(axes, panels):
        im = ax.imshow(X, **kw)
        ax.set_xticks(range(len(S)), S, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(T)), T, fontsize=8)
        ax.set_title(title, fontsize=9)
        for (r, c), v in np.ndenumerate(X):
            if not np.isnan(v):
                label = f"{v:.1f}" if X is M else f"{v:.2f}"
                ax.text(c, r, label, ha="center", va="center", fontsize=7)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def check(outs, targets):
    """Each run folder holds a finished stage target over the targets, or the command stops with one
    line; -> the last run's config."""
    for out in outs:
        if not os.path.exists(os.path.join(out, "config.json")):
            fail(f"{out} holds no run; train one with python train.py --stage source --out {out}")
        cfg = read_json(os.path.join(out, "config.json"), need=["run"])
        missing = [t for t in targets if t not in cfg["run"]["tasks"]]
        if missing:
            have = ", ".join(cfg["run"]["tasks"])
            fail(f"--targets {', '.join(missing)} not in the run's tasks {have}")
        if not os.path.exists(os.path.join(out, "attention.json")):
            fail(f"{out} has no stage target yet; run python train.py --stage target --out {out}")
    return cfg


def summarize(results, targets):
    """Print, over every run and target, the transfer of the best and of a random source, each
    ranking's ρ and top-1 hits, and each run's best source -> the summary written by --json."""
    cells = [(r, T) for r in results.values() for T in targets]

    def random(r, T):  # a random source's transfer: the mean over the sources
        return np.mean(list(r["measured"][T].values()))

    summary = dict(best_gain=float(np.mean([max(r["measured"][T].values()) for r, T in cells])))
    summary["mean_gain"] = float(np.mean([random(r, T) for r, T in cells]))
    s = f"  transfer of the best source {summary['best_gain']:+.2f} points on average; of a source"
    print(s + f" picked at random {summary['mean_gain']:+.2f}")
    chance = float(np.mean([1 / (len(r["sources"]) - 1) for r in results.values()]))
    for kind in ["amp", "dot", "cosine", "attempt", "probe"]:
        runs = [r for r in results.values() if kind in r["spearman"]]
        if not runs:
            continue
        rho = [r["spearman"][kind][T] for r in runs for T in targets]
        hit = [r["top1"][kind][T] for r in runs for T in targets]
        gain = float(np.mean([r["top1_gain"][kind][T] for r in runs for T in targets]))
        over = [r["top1_gain"][kind][T] - random(r, T) for r in runs for T in targets]
        s = dict(spearman_mean=float(np.nanmean(rho)), spearman_std=float(np.nanstd(rho)))
        s.update(top1_gain=gain, top1=int(sum(hit)), pairs=len(hit), chance_top1=chance * len(hit))
        s.update(over_random_mean=float(np.mean(over)), over_random_std=float(np.std(over)))
        summary[kind] = s
        print(
            f"  {kind:8s} Spearman ρ {s['spearman_mean']:+.2f} ± {s['spearman_std']:.2f}   "
            f"top-1 = best measured: {sum(hit)} of {len(hit)} (chance {s['chance_top1']:.1f}); "
            f"transfer of its top pick {gain:+.2f}, minus a random source's "
            f"{np.mean(over):+.2f} ± {np.std(over):.2f}"
        )
    summary["targets"] = per_target(results, targets)
    for out, r in results.items():
        for T in targets:
            best, amp_row = max(r["measured"][T], key=r["measured"][T].get), r["rankings"]["amp"][T]
            s = f"  {out} {T}: prompt tuning {r['pt'][T]:.2f}; best source {best} "
            print(s + f"({r['measured'][T][best]:+.2f}); AMP's top {max(amp_row, key=amp_row.get)}")
    return summary


def main(argv=None):
    args = ap.parse_args(argv)
    demo.register()
    targets = args.targets.split(",")
    try:
        cfg = check(args.out, targets)
        parse_tasks(args.targets, cfg["run"]["data_dir"])
        results = {}
        for out in args.out:
            measure(out, targets, args.max_steps, args.jobs)
            results[out] = study(out, targets, pick_device(args.device))
            write_json(os.path.join(out, "transfer.json"), results[out])
            draw(results[out], os.path.join(out, "transfer.png"))
    except (DataError, ModelError, RunFileError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted; the same command goes on where the sub-runs stopped", 130)
    print("\nmeasured transfer: the target's score from each source minus prompt tuning's")
    summary = summarize(results, targets)
    if args.json:
        write_json(args.json, dict(runs=results, summary=summary))


if __name__ == "__main__":
    main()
