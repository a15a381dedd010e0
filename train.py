"""train.py: AMP's two stages and adding a task (paper 3.1, 3.2, 3.4, 4.2, A.3), the baselines on
the same run. Top to bottom: the flags, the defaults, stage 1, stage 2, adding a task, main.

  python train.py --stage source    # stage 1 (paper 3.1): a source prompt P_t (+ head) per task
  python train.py --stage target    # stage 2 (paper 3.2): ψ = (W_Q, W_K, W_V) over the prompts
  python train.py --add-task NAME   # paper 3.4: NAME's source prompt, then ψ again over n+1 prompts
  python train.py --stage target --method M   # a Table 1 baseline on the same run, in OUT/M/
  python eval.py                    # every method of the run on the reporting splits; the heatmap

Defaults: the lowres demo suite (lib/demo.py), all-MiniLM-L6-v2, a CPU. A tiny run: --max-steps 20.
"""

import argparse
import os
import sys
import time

import torch
from tqdm import tqdm

from amp import DEFAULT_MODEL, PromptModel, TargetPrompts, TaskPrompt, init_prompt, load_encoder
from amp import max_positions, seed_for
from dam import DAMAttention, start_near_identity
from data import DataError, load_task, parse_tasks
from lib import demo
from lib.checks import check_flags, check_folder, fail, read_run, reported, start_run
from lib.runfiles import METHODS, load_tensors, log, save_tensors, section, source_prompts
from lib.runfiles import write_json
from lib.tokens import tokenize
from loop import Env, Job, fit
from metrics import EVAL_BATCH, evaluate, input_tokens, pick_device

# The flags, grouped; a flag left unset takes its value from config.json or the tables below.
# fmt: off
ap = argparse.ArgumentParser(description="AMP: source prompts (stage 1), then ψ (stage 2).")
ap.error = fail
g = ap.add_argument_group("what to train")
g.add_argument("--stage", choices=["source", "target"], help="stage 1 (paper 3.1) or 2 (3.2)")
g.add_argument("--add-task", metavar="NAME", help="paper 3.4: add task NAME to a finished run")
g.add_argument("--method", choices=[m for m in METHODS if m != "prompt"], help="what --stage "
               "target trains (default: amp; the others: the baselines, docs/baselines.md)")
g = ap.add_argument_group("the run (set by --stage source, then read from OUT/config.json)")
g.add_argument("--preset", choices=["demo", "paper"], help="the table of defaults (default: demo)")
g.add_argument("--tasks", help="lowres | demo | paper | a comma list (default: lowres)")
g.add_argument("--model", help=f"hub name or folder (default: {DEFAULT_MODEL})")
g.add_argument("--data-dir", help="folders of <task>/<split> files, a comma list (default: hub)")
g.add_argument("--prompt-len", type=int, help="l, the prompt length (default: 20; paper: 100)")
g.add_argument("--protocol", choices=["honest", "paper"], help="dev rows (default: honest)")
g.add_argument("--carve", action="store_true", default=None, help="carve a missing train split")
g.add_argument("--max-train", type=int, help="at most this many training rows a task")
g.add_argument("--max-eval", type=int, help="at most this many dev and reporting rows")
g.add_argument("--max-tokens", type=int, help="cap on input tokens (default: the task's own, A.3)")
g.add_argument("--seed", type=int, help="seed of prompts, heads, order (default: 0)")
g = ap.add_argument_group("how a stage trains (default: train.DEFAULTS, by --preset and method)")
g.add_argument("--epochs", type=int, help="maximum epochs (demo: 15 source, 3 amp; paper: 30, 10)")
g.add_argument("--max-steps", type=int, help="stop after this many steps (default: no cap)")
g.add_argument("--batch-size", type=int, help="examples per step (demo: 16; paper: 8)")
g.add_argument("--lr", type=float, help="rate of P or ψ (demo: 1e-2 / 3e-4; paper: 1e-4 / 5e-5)")
g.add_argument("--head-lr", type=float, help="rate of the task heads (demo: 3e-2; paper: = --lr)")
g.add_argument("--warmup", type=int, help="warmup steps, then linear decay (demo: 10; paper: 500)")
g.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: 1e-5, the paper)")
g.add_argument("--patience", type=int, help="early stop: epochs with no better dev (default: 5)")
g.add_argument("--k", type=int, help="size of ψ's queries and keys (default and paper: d)")
g = ap.add_argument_group("where and how it runs")
g.add_argument("--out", default="runs/amp", help="the run folder (default: runs/amp)")
g.add_argument("--device", default="auto", help="auto (CUDA, bf16 autocast, if any) | cpu | cuda")
g.add_argument("--ckpt-every", type=int, help="checkpoint every this many steps (default: 50)")
g.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
g.add_argument("--overwrite", action="store_true", help="replace what --out holds for this stage")
g = ap.add_argument_group("the baselines (docs/baselines.md)")
g.add_argument("--spot-source", help="SPoT-m's source task (default: mnli, the paper's)")
g = ap.add_argument_group("studies beyond the paper (RESULTS.md, studies/)")
g.add_argument("--select-tries", type=int, help="select: tune from this many sources (default: 3)")
g.add_argument("--select-margin", type=float, help="select: probe gain over own (default: 5.0)")
g.add_argument("--attn", choices=["learned", "identity"], help="identity: A = I (default: learned)")
g.add_argument("--wv", choices=["train", "fixed"], help="fixed: W_V = I (default: train)")
g.add_argument("--psi-init", choices=["identity", "orthonormal", "eye", "random", "probe"],
               help="ψ's start (default: identity, near A = I: dam.start_near_identity)")
g.add_argument("--train-heads", action="store_true", default=None, help="stage 2 trains the heads")
g.add_argument("--mix-temperature", type=float, help="r_t ∝ N_t^(1/T) (default and paper: T = 1)")
g.add_argument("--mix-grouped", action="store_true", default=None, help="length-grouped mixed "
               "batches (default: off, the paper's batches)")

# What a run is, by preset (paper 4.1, 4.2); stage source writes it to config.json["run"].
RUN = {
    "demo":  dict(tasks="lowres", model=DEFAULT_MODEL,  prompt_len=20,  protocol="honest", seed=0),
    "paper": dict(tasks="paper",  model="roberta-base", prompt_len=100, protocol="honest", seed=0),
}
RUN_ALL = dict(data_dir=None, carve=False, max_train=None, max_eval=None, max_tokens=None)
# How each method trains, by preset: demo chosen on dev (docs/decisions.md); paper 4.2 and A.3
# (fine-tuning's rates are ours: the paper gives none). Prompt tuning and the methods that tune a
# prompt train at stage source's settings, AMP at stage target's; PT continued: source's rates
# for target's epochs. config.json[section] keeps what a stage used.
DEFAULTS = {
    "demo": {
        "prompt":       dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
        "amp":          dict(epochs=3,  lr=3e-4, head_lr=3e-2, batch_size=16, warmup=10),
        "amp-maxpool":  dict(epochs=3,  lr=3e-4, head_lr=3e-2, batch_size=16, warmup=10),
        "spot-s":       dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
        "spot-m":       dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
        "attempt":      dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
        "tpt":          dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
        "finetune":     dict(epochs=15, lr=5e-5, head_lr=5e-5, batch_size=16, warmup=10),
        "pt-continued": dict(epochs=3,  lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
        "select":       dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
        "amp-tuned":    dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
    },
    "paper": {
        "prompt":       dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
        "amp":          dict(epochs=10, lr=5e-5, head_lr=5e-5, batch_size=8, warmup=500),
        "amp-maxpool":  dict(epochs=10, lr=5e-5, head_lr=5e-5, batch_size=8, warmup=500),
        "spot-s":       dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
        "spot-m":       dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
        "attempt":      dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
        "tpt":          dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
        "finetune":     dict(epochs=10, lr=2e-5, head_lr=2e-5, batch_size=8, warmup=500),
        "pt-continued": dict(epochs=10, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
        "select":       dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
        "amp-tuned":    dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
    },
}
STAGE_ALL = dict(max_steps=None, weight_decay=1e-5, patience=5, k=None, ckpt_every=50,
                 spot_source="mnli", select_tries=3, select_margin=5.0, attn="learned", wv="train",
                 psi_init="identity", train_heads=False, mix_temperature=1.0, mix_grouped=False)
# fmt: on


def settle(args, cfg):
    """Every flag's value: the flag as given; else what the run's config.json says the run is (a
    given flag that contradicts it stops) and, with --resume, how this stage trained; else the
    tables above."""
    fresh = cfg is None or (args.stage == "source" and args.overwrite)
    run = {} if fresh else dict(cfg["run"], preset=cfg["run"].get("preset", "demo"))
    trained = cfg.get(section(args.method), {}) if cfg and args.resume else {}
    try:
        args.preset = args.preset or run.get("preset", "demo")
        check_same_as_run(args, run, "preset", args.preset)
        for k, default in {**RUN[args.preset], **RUN_ALL}.items():
            value = getattr(args, k)
            if value is None:
                value = run.get(k, default)
            else:
                if k == "tasks" and run:  # as the run stores it: a list
                    value = parse_tasks(value, args.data_dir or run["data_dir"])
                check_same_as_run(args, run, k, value)
            setattr(args, k, value)
        tasks = args.tasks if isinstance(args.tasks, str) else ",".join(args.tasks)
        args.tasks = parse_tasks(tasks, args.data_dir)
        if args.add_task:
            parse_tasks(args.add_task, args.data_dir)
    except DataError as e:
        fail(str(e))
    for k, default in {**STAGE_ALL, **DEFAULTS[args.preset][args.method]}.items():
        setattr(args, k, trained.get(k, default) if getattr(args, k) is None else getattr(args, k))
    args.scores = "maxpool" if args.method == "amp-maxpool" else "dam"


def check_same_as_run(args, run, k, value):
    """A given flag saying what the run is agrees with config.json (or gives --data-dir for hub)."""
    was = run.get(k, value)
    if value != was and not (k == "data_dir" and was is None):
        flag, why = f"--{k.replace('_', '-')} {value}", "later stages take it from there"
        fail(f"{flag} differs from the run's {was} ({args.out}/config.json); {why}")


def stage_source(args, env, names, folder="source", init=None, new_heads=True):
    """Paper 3.1, prompt tuning: P_t (l, d) and the task's head are the only trained weights. Every
    task is a job of fit(), so all train in one pass; a task's files are written when it stops.
    init: {task: (l, d)} starting prompts (SPoT), else tokens of common vocabulary (paper 4.2).
    new_heads: start each head afresh (False: go on from the head in the model, PT continued)."""
    model, device, jobs = env.model, env.device, []
    for name in names:
        path = os.path.join(args.out, folder, f"{name}.safetensors")
        if os.path.exists(path):
            continue
        t, seed = env.ids[name], seed_for(args.seed, name)
        torch.manual_seed(seed)
        if init:
            P = init[name].clone()
        else:
            P = init_prompt(model.encoder, env.tokenizer, args.prompt_len,
                            torch.Generator().manual_seed(seed))  # fmt: skip
        P = torch.nn.Parameter(P.to(device))  # (l, d)
        if new_heads:
            model.heads[t].reset_parameters()
        head = model.heads[t]
        n_head = sum(p.numel() for p in head.parameters())
        print(f"{name}: trains {P.numel():,} prompt parameters (l·d) + {n_head:,} in its head")
        W = {"P": P, "head.weight": head.weight, "head.bias": head.bias}
        files = {path: (W, dict(env.meta, task=name))}
        groups = [([P], args.lr), (list(head.parameters()), args.head_lr)]
        key = f"{folder.removesuffix('/target')}:{name}"  # "source:cb", "select/try2:cb", ...
        jobs.append(Job(key, groups, [name], TaskPrompt(P), files))
    for job in fit(args, env, jobs):
        save_source(env, job)


def save_source(env, job):
    """A task's prompt and head, and its dev scores beside them."""
    name, (path, (W, meta)) = job.tasks[0], next(iter(job.files.items()))
    save_tensors(path, W, meta)
    t, m = env.ids[name], env.tasks[name]["info"]["metrics"]
    scores = evaluate(env.model, W["P"].detach(), env.dev[t], t, m, EVAL_BATCH, env.device)
    write_json(path.replace(".safetensors", ".json"), dict(dev=scores, best_dev=scores[m[0]]))
    tqdm.write(f"{name}: best dev {m[0]} {scores[m[0]]:.2f} -> {path}")


def stage_target(args, env, names, new=None, folder=""):
    """Paper 3.2: target prompts P' = ψ(P) over the frozen source prompts P (n, l, d), ψ trained on
    all tasks at once (examples-proportional mixing, paper 4.2):

        P'_i = sum_j A_ij (P_j W_V),   A = softmax_j(S'),   S'_ij = DAM(P_i W_Q, P_j W_K)

    With new (paper 3.4) ψ starts from the saved one and only new's target prompt is written.
    folder: where the files go ("" for AMP, "amp-maxpool" for Figure 2's ablation)."""
    model, device, out = env.model, env.device, os.path.join(args.out, folder)
    P = source_prompts(args.out, env, names)  # (n, l, d), frozen
    torch.manual_seed(seed_for(args.seed, "target"))
    psi = make_psi(args, model.d).to(device)
    meta = dict(model=env.meta["model"], d=model.d, k=args.k or model.d, scores=args.scores,
                wv=args.wv)  # fmt: skip
    if new:
        psi.load_state_dict(load_tensors(os.path.join(out, "psi.safetensors"), meta)[0])
    elif args.attn == "learned" and args.psi_init in ("identity", "orthonormal", "probe"):
        print(f"stage target: {start_psi(args, env, psi, P, names)}")
    heads = list(model.heads.parameters())
    for p in heads:
        p.requires_grad_(args.train_heads)
    groups = [(list(psi.parameters()), args.lr)]
    if args.train_heads:
        groups.append((heads, args.head_lr))
    formula = "2dk + d²" if args.wv == "train" else "2dk"
    formula = "d², W_V only" if args.attn == "identity" else formula
    extra = f" + heads {sum(p.numel() for p in heads):,}" if args.train_heads else ""
    print(f"stage target: ψ has {psi.num_parameters():,} parameters to train ({formula}){extra}")
    key = (folder or "target") + (f"+{new}" if new else "")
    for _ in fit(args, env, [Job(key, groups, names, TargetPrompts(psi, P))]):
        save_target(env, psi, P, names, new, out, meta)


def make_psi(args, d):
    """ψ of paper 3.2.1 (dam.DAMAttention), or the ablation A = I (--attn identity, a study)."""
    if args.attn == "identity":
        from studies.psi_variants import ValueOnly

        return ValueOnly(d)
    init = "random" if args.psi_init == "random" else "eye"
    return DAMAttention(d, args.k, args.scores, args.wv == "train", init)


def start_psi(args, env, psi, P, names):
    """ψ's start, near A = I (dam.start_near_identity; the paper does not say how ψ starts), or
    from the probe's ranking (--psi-init probe, a study). One line saying what it did."""
    try:
        if args.psi_init != "probe":
            how = "auto" if args.psi_init == "identity" else args.psi_init
            return start_near_identity(psi, P, names=names, basis=how)
        from studies.probe import probe_rows
        from studies.psi_variants import start_from_scores

        R = probe_rows(env, P, names, os.path.join(args.out, "probe"))  # (n, n) dev scores
        return start_from_scores(psi, P, R)
    except ValueError as e:  # no sound start for these prompts: the message says what to do
        fail(f"ψ's start: {e}")


@torch.no_grad()
def save_target(env, psi, P, names, new, out, meta):
    """Each target prompt P'_i with its head and its row of A, ψ, and attention.json (row: target,
    column: source; a source added later has weight 0 in the rows written before it)."""
    P_target, A = psi(P)  # (n, l, d), (n, n)
    for i, n in enumerate(names):
        if new is None or n == new:
            head = env.model.heads[i]
            W = {"P": P_target[i], "head.weight": head.weight, "head.bias": head.bias, "A": A[i]}
            path = os.path.join(out, "target", f"{n}.safetensors")
            save_tensors(path, W, dict(env.meta, task=n, sources=names))
    save_tensors(os.path.join(out, "psi.safetensors"), psi.state_dict(), meta)
    rows = []
    for n in names:
        W, saved = load_tensors(os.path.join(out, "target", f"{n}.safetensors"), {})
        weights = dict(zip(saved["sources"], W["A"].tolist()))
        rows.append([weights.get(m, 0.0) for m in names])
    write_json(os.path.join(out, "attention.json"), {"tasks": names, "A": rows})


def add_task(args, cfg, env):
    """Paper 3.4: the new task's source prompt, then ψ over all n+1 source prompts, each stage with
    the flags the run's stages were trained with; the old tasks' files are not touched."""
    names = args.tasks + [args.add_task]
    stage_source(trained_as(args, cfg, "source"), env, [args.add_task])
    stage_target(trained_as(args, cfg, "target"), env, names, new=args.add_task)
    cfg["run"]["tasks"], cfg["adding"] = names, None
    write_json(os.path.join(args.out, "config.json"), cfg)


def trained_as(args, cfg, part):  # the flags as the run's stage `part` was trained with them
    return argparse.Namespace(**{**vars(args), **cfg.get(part, {})})


def select(args, env):
    """A study (studies/probe.py): each task tunes a prompt and a fresh head from each of its best
    sources on the probe (--select-tries, --select-margin); keeps the best on dev."""
    from studies.probe import candidates, keep_best, probe_rows

    P = source_prompts(args.out, env, args.tasks)  # (n, l, d)
    R = probe_rows(env, P, args.tasks, os.path.join(args.out, "select"))  # (n, n) dev scores
    picks = [candidates(row, i, args.select_tries, args.select_margin) for i, row in enumerate(R)]
    for r in range(args.select_tries):
        init = {t: P[c[r]] for t, c in zip(args.tasks, picks) if len(c) > r}  # (l, d) each
        stage_source(args, env, list(init), folder=f"select/try{r + 1}", init=init)
    keep_best(args.out, args.tasks, picks)


def baseline(args, cfg, env):
    """A method of Table 1 other than AMP, on the run's source prompts (baselines.py)."""
    import baselines

    if args.method in ("spot-s", "spot-m"):
        if args.method == "spot-m":
            stage_source(trained_as(args, cfg, "source"), env, [args.spot_source])
        init = baselines.spot_init(args.method, args.out, env, args.tasks, args.spot_source)
        return stage_source(args, env, args.tasks, folder=f"{args.method}/target", init=init)
    if args.method == "select":
        return select(args, env)
    if args.method in ("pt-continued", "amp-tuned"):  # each task's source (AMP's target) prompt
        part = "source" if args.method == "pt-continued" else "target"  # and head, tuned on
        init = dict(zip(args.tasks, source_prompts(args.out, env, args.tasks, part)))
        folder = f"{args.method}/target"
        return stage_source(args, env, args.tasks, folder=folder, init=init, new_heads=False)
    recipe = getattr(baselines, f"{args.method}_jobs")  # attempt_jobs, tpt_jobs, finetune_jobs
    for jobs in recipe(args, env, args.tasks):
        for job in fit(args, env, jobs):
            for path, (W, meta) in job.files.items():
                save_tensors(path, W, meta)


def needed(args):
    """The tasks a command reads: the run's, a new task, SPoT-m's source task if not a task."""
    extra = [args.add_task] if args.add_task else []
    if args.method == "spot-m" and args.spot_source not in args.tasks:
        extra.append(args.spot_source)
    return args.tasks + extra


def setup(args, names):
    """The named tasks' data (checked before a model loads), the encoder, and the data tokenised at
    one input length per task (every stage, method and eval.py read the same tokens)."""
    split = (args.data_dir, args.protocol, args.carve, args.max_train, args.max_eval)
    tasks = {n: load_task(n, *split) for n in names}
    device = pick_device(args.device)
    encoder, tokenizer = load_encoder(args.model)
    model = PromptModel(encoder, [tasks[n]["info"]["num_labels"] for n in names]).to(device)
    for n in [n for n in names if tasks[n]["note"]]:
        print(f"{n}: {tasks[n]['note']}")
    positions, l, cap = max_positions(encoder, tokenizer), args.prompt_len, args.max_tokens
    length = {n: input_tokens(tasks[n]["info"], positions, l, cap) for n in names}
    train = [tokenize(tasks[n]["train"], tokenizer, length[n]) for n in names]
    dev = [tokenize(tasks[n]["dev"], tokenizer, length[n]) for n in names]
    ids = {n: i for i, n in enumerate(names)}
    meta = dict(model=args.model, d=model.d, l=args.prompt_len)
    return Env(device, tokenizer, model, tasks, ids, meta, train, dev, input_tokens=length)


def recorded(args, env):
    """What config.json records: what the run is, how this stage trains, and each task's label
    names and input length (predict.py reads them)."""
    run = {k: getattr(args, k) for k in ["preset", *RUN["demo"], *RUN_ALL]}
    flags = {k: getattr(args, k) for k in [*DEFAULTS["demo"]["amp"], *STAGE_ALL, "scores"]}
    labels = {n: t["info"]["labels"] and list(t["info"]["labels"]) for n, t in env.tasks.items()}
    return run, flags, dict(labels=labels, input_tokens=env.input_tokens)


def main(argv=None):
    args = ap.parse_args(sys.argv[1:] if argv is None else list(argv))
    demo.register()
    check_flags(args)
    args.method = (args.method or "amp") if args.stage == "target" else "prompt"  # stage 1: PT
    cfg = read_run(args)
    settle(args, cfg)
    check_folder(args, cfg)
    t0 = time.time()
    with reported(args):  # a failure is one line, and what is finished stays
        env = setup(args, needed(args))  # the data and the model: checked before --out is touched
        cfg = start_run(args, cfg, *recorded(args, env))
        if args.add_task:
            add_task(args, cfg, env)
        elif args.method == "prompt":
            stage_source(args, env, args.tasks)
        elif args.method in ("amp", "amp-maxpool"):
            stage_target(args, env, args.tasks, folder="" if args.method == "amp" else args.method)
        else:
            baseline(args, cfg, env)
    log(args, event="done", stage=args.stage or "add-task", seconds=round(time.time() - t0, 1))
    nxt = "train.py --stage target" if args.stage == "source" else "eval.py"
    print(f"done in {time.time() - t0:.0f} s. Next: python {nxt} --out {args.out}")


if __name__ == "__main__":
    main()
