"""train.py: AMP's two stages, adding a task, and the paper's baselines (paper 3.1-3.4, 4.2, A.3).
Read it top to bottom: the flags, the defaults, stage 1, stage 2, adding a task, main.

  python train.py --stage source    # stage 1 (paper 3.1): a source prompt P_t (+ head) per task
  python train.py --stage target    # stage 2 (paper 3.2): ψ = (W_Q, W_K, W_V) over the prompts
  python train.py --stage target --method M   # a Table 1 baseline on the same run, in OUT/M/
  python train.py --add-task NAME   # paper 3.4: NAME's source prompt, then ψ again over n+1 prompts
  python eval.py                    # every method of the run on the reporting splits; the heatmap

Defaults: the lowres demo suite (demo.py), all-MiniLM-L6-v2, a CPU, under 10 minutes. Tiny example:
  python train.py --stage source --tasks senti_movies,colours --max-steps 20 --out runs/tiny
  python train.py --stage target --max-steps 20 --out runs/tiny && python eval.py --out runs/tiny
"""

import argparse
import os
import sys
import time

import torch
from tqdm import tqdm

from lib import demo
from amp import DEFAULT_MODEL, ModelError, PromptModel, init_prompt, load_encoder, seed_for
from amp import prompts_per_example
from baselines import attempt_jobs, finetune_jobs, source_prompts, spot_init, tpt_jobs
from lib.checks import METHODS, check_flags, check_folder, fail, read_run, reported, section
from lib.checks import start_run
from dam import DAMAttention, start_near_identity
from data import DataError, load_task, parse_tasks
from loop import Job, fit
from metrics import EVAL_BATCH, evaluate, input_tokens, pick_device
from studies.psi_variants import ValueOnly, start_from_scores
from studies.probe import candidates, keep_best, mix_weights, probe_rows
from lib.runfiles import load_tensors, log, save_tensors, write_json
from lib.tokens import tokenize

# The flags, one a line with its help (a table: the formatter leaves it as written).
# fmt: off
ap = argparse.ArgumentParser(description="AMP: source prompts (stage 1), then ψ (stage 2).")
ap.add_argument("--stage", choices=["source", "target"], help="stage 1 (paper 3.1) or 2 (3.2)")
ap.add_argument("--add-task", metavar="NAME", help="paper 3.4: add task NAME to a finished run")
ap.add_argument("--preset", choices=["demo", "paper"], default="demo", help="paper: PAPER_RUN")
# What the run is: set by --stage source, read back from OUT/config.json by the later stages.
ap.add_argument("--tasks", default="lowres", help="lowres | demo | paper | a comma list of tasks")
ap.add_argument("--model", default=DEFAULT_MODEL, help="hub name or folder (paper: roberta-base)")
ap.add_argument("--data-dir", default=None, help="<task>/<split>.jsonl here (default: hub)")
ap.add_argument("--prompt-len", type=int, default=20, help="l, the prompt length (paper: 100)")
ap.add_argument("--protocol", choices=["honest", "paper"], default="honest", help="data.py")
ap.add_argument("--carve", action="store_true", help="carve a missing train split")
ap.add_argument("--max-train", type=int, help="at most this many training rows per task")
ap.add_argument("--max-eval", type=int, help="at most this many dev and reporting rows per task")
ap.add_argument("--max-tokens", type=int, help="cap on input tokens (default: the task's own, A.3)")
ap.add_argument("--seed", type=int, default=0, help="seed for prompts, heads, data order, dropout")
# How a stage trains: a flag left unset takes DEFAULTS[preset][method], below.
ap.add_argument("--out", default="runs/amp", help="the run folder")
ap.add_argument("--epochs", type=int, help="maximum epochs (demo: 15 / 3; paper: 30 / 10)")
ap.add_argument("--max-steps", type=int, help="stop after this many steps (per task in stage 1)")
ap.add_argument("--batch-size", type=int, help="examples per step (demo: 16; paper: 8)")
ap.add_argument("--lr", type=float, help="rate of P or ψ (demo: 1e-2 / 3e-4; paper: 1e-4 / 5e-5)")
ap.add_argument("--head-lr", type=float, help="rate of the task heads (demo: 3e-2; paper: = --lr)")
ap.add_argument("--warmup", type=int, help="warmup steps, then linear decay (paper: 500)")
ap.add_argument("--weight-decay", type=float, default=1e-5, help="AdamW weight decay (paper)")
ap.add_argument("--patience", type=int, default=5, help="early stopping: epochs with no better dev")
# Stage 2: the attention component ψ (paper 3.2.1), its ablations, and the baselines.
ap.add_argument("--method", choices=METHODS, default="amp", help="what stage 2 trains (README)")
ap.add_argument("--k", type=int, help="size of queries and keys (default and paper: d)")
ap.add_argument("--spot-source", default="mnli", help="SPoT-m's source task (paper)")
ap.add_argument("--select-tries", type=int, default=3, help="select: tune from this many sources")
ap.add_argument("--select-margin", type=float, default=5.0, help="select: probe gain over own")
ap.add_argument("--select-mix", action="store_true", help="select: also tune from the picks' mix")
ap.add_argument("--attn", choices=["learned", "identity"], default="learned", help="identity: A=I")
ap.add_argument("--wv", choices=["train", "fixed"], default="train", help="fixed: W_V = I")
PSI_INITS = ["identity", "orthonormal", "eye", "random", "probe"]  # not in the paper: psi_variants
ap.add_argument("--psi-init", default="identity", choices=PSI_INITS, help="A's start (near I)")
ap.add_argument("--train-heads", action="store_true", help="stage 2 trains the heads too (ours)")
ap.add_argument("--mix-temperature", type=float, default=1.0, help="r_t ∝ N_t^(1/T) (paper: T=1)")
ap.add_argument("--mix-grouped", action="store_true", help="mixed batches length-grouped (ours)")
ap.add_argument("--encoder-dropout", action="store_true", help="encoder dropout on (off: amp.py)")
ap.add_argument("--device", default="auto", help="auto (CUDA, bf16 autocast, if any) | cpu | cuda")
ap.add_argument("--ckpt-every", type=int, default=50, help="checkpoint every this many steps")
ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
ap.add_argument("--overwrite", action="store_true", help="replace what --out holds for this stage")
ap.error = fail
# fmt: on


def method_defaults(source, target, finetune):
    """{method: its flags when left unset}: prompt tuning, the prompt baselines and AMP then tuned
    train at stage source's settings, AMP at stage target's; PT continued: source's rates for
    target's epochs."""
    prompts = dict.fromkeys("prompt spot-s spot-m attempt tpt select amp-tuned".split(), source)
    tuned_on = dict(source, epochs=target["epochs"])
    amp = {"amp": target, "amp-maxpool": target}
    return {**prompts, **amp, "finetune": finetune, "pt-continued": tuned_on}


# fmt: off
PAPER_RUN = dict(model="roberta-base", tasks="paper", prompt_len=100)  # paper 4.1, 4.2
DEFAULTS = {  # (source, target, fine-tuning); demo: chosen on dev (README); paper: 4.2 and A.3
    "demo": method_defaults(dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
                            dict(epochs=3, lr=3e-4, head_lr=3e-2, batch_size=16, warmup=10),
                            dict(epochs=15, lr=5e-5, head_lr=5e-5, batch_size=16, warmup=10)),
    "paper": method_defaults(dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
                             dict(epochs=10, lr=5e-5, head_lr=5e-5, batch_size=8, warmup=500),
                             dict(epochs=10, lr=2e-5, head_lr=2e-5, batch_size=8, warmup=500)),
}  # fine-tuning's rates are ours: the paper gives none
RUN_KEYS = ["preset", "tasks", "model", "data_dir", "prompt_len", "protocol", "carve", "max_train",
            "max_eval", "max_tokens", "seed"]  # what the run is: config.json["run"]
STAGE_KEYS = ["epochs", "max_steps", "batch_size", "lr", "head_lr", "warmup", "weight_decay",
              "patience", "k", "scores", "wv", "attn", "psi_init", "train_heads", "encoder_dropout",
              "ckpt_every", "spot_source", "select_tries", "select_margin", "select_mix",
              "mix_temperature", "mix_grouped"]  # config.json[method]
# fmt: on


def settle(args, argv, cfg):
    """Every flag's value, settled in one place: the flags given; then, for a run that exists, what
    its config.json says the run is (a flag that contradicts it stops) and, with --resume, how the
    stage trained; then the preset's defaults (PAPER_RUN, DEFAULTS)."""
    given = lambda k: any(x.split("=")[0] == "--" + k.replace("_", "-") for x in argv)
    if args.preset == "paper":
        for k, v in PAPER_RUN.items():
            setattr(args, k, getattr(args, k) if given(k) else v)
    if args.stage != "target":
        args.method = "prompt"  # stage 1 (and a new task's stage 1) is prompt tuning
    args.scores = "maxpool" if args.method == "amp-maxpool" else "dam"
    try:
        if cfg and not (args.stage == "source" and args.overwrite):
            run = cfg["run"]
            if args.data_dir and run["data_dir"] not in (None, args.data_dir):
                fail(f"--data-dir {args.data_dir} differs from the run's {run['data_dir']}")
            args.data_dir = args.data_dir or run["data_dir"]
            if given("tasks"):
                args.tasks = parse_tasks(args.tasks, args.data_dir)
            for k in RUN_KEYS:
                was = run.get(k, "demo" if k == "preset" else None)  # older runs: demo, no cap
                if given(k) and k != "data_dir" and getattr(args, k) != was:
                    flag, path = f"--{k.replace('_', '-')} {getattr(args, k)}", args.out
                    why = "later stages take it from there"
                    fail(f"{flag} differs from the run's {was} ({path}/config.json); {why}")
                setattr(args, k, args.data_dir if k == "data_dir" else was)
            trained = cfg.get(section(args.method)) if args.resume else None
            for k in STAGE_KEYS if trained else []:  # unless given again (a lower --lr after a NaN)
                setattr(args, k, getattr(args, k) if given(k) else trained.get(k, getattr(args, k)))
        tasks = args.tasks if isinstance(args.tasks, str) else ",".join(args.tasks)
        args.tasks = parse_tasks(tasks, args.data_dir)
        if args.add_task:
            parse_tasks(args.add_task, args.data_dir)
    except DataError as e:
        fail(str(e))
    for k, v in DEFAULTS[args.preset][args.method].items():
        setattr(args, k, v if getattr(args, k) is None else getattr(args, k))


def stage_source(args, env, names, folder="source", init=None, new_heads=True):
    """Paper 3.1, prompt tuning: P_t (l, d) and the task's head are the only trained weights. Every
    task is a job of fit(), so all train in one pass; a task's files are written when it stops.
    init: {task: (l, d)} starting prompts (SPoT), else tokens of common vocabulary (paper 4.2).
    new_heads: start each head afresh (False: go on from the head in the model, PT continued)."""
    model, device, jobs = env["model"], env["device"], []
    for name in names:
        path = os.path.join(args.out, folder, f"{name}.safetensors")
        if os.path.exists(path):
            continue
        t, seed = env["ids"][name], seed_for(args.seed, name)
        torch.manual_seed(seed)
        if init:
            P = init[name].clone()
        else:
            g = torch.Generator().manual_seed(seed)
            P = init_prompt(model.encoder, env["tokenizer"], args.prompt_len, g)
        P = torch.nn.Parameter(P.to(device))  # (l, d)
        if new_heads:
            model.heads[t].reset_parameters()
        head = list(model.heads[t].parameters())
        n_head = sum(p.numel() for p in head)
        print(f"{name}: trains {P.numel():,} prompt parameters (l·d) + {n_head:,} in its head")
        prompts = lambda b, P=P: P.expand(len(b["task"]), -1, -1)  # (B, l, d): P_t for each
        prompt_of = lambda t, P=P: P.detach()
        done = lambda n=name, P=P, p=path: save_source(env, n, P, p)
        groups = [([P], args.lr), (head, args.head_lr)]
        key = f"{folder.removesuffix('/target')}:{name}"  # "source:cb", "select/try2:cb", ...
        jobs.append(Job(key, groups, [name], prompts, prompt_of, done))
    fit(args, env, jobs)


def save_source(env, name, P, path):
    """A task's prompt and head, and its dev scores beside them."""
    model, t = env["model"], env["ids"][name]
    head, m = model.heads[t], env["tasks"][name]["info"]["metrics"]
    tensors = {"P": P, "head.weight": head.weight, "head.bias": head.bias}
    save_tensors(path, tensors, dict(env["meta"], task=name))
    scores = evaluate(model, P.detach(), env["dev"][t], t, m, EVAL_BATCH, env["device"])
    write_json(path.replace(".safetensors", ".json"), dict(dev=scores, best_dev=scores[m[0]]))
    tqdm.write(f"{name}: best dev {m[0]} {scores[m[0]]:.2f} -> {path}")


def stage_target(args, env, names, new=None, folder=""):
    """Paper 3.2: target prompts P' = ψ(P) over the frozen source prompts P (n, l, d), ψ trained on
    all tasks at once (examples-proportional mixing, paper 4.2):

        P'_i = sum_j A_ij (P_j W_V),   A = softmax_j(S'),   S'_ij = DAM(P_i W_Q, P_j W_K)

    With new (paper 3.4) ψ starts from the saved one and only new's target prompt is written.
    folder: where the files go ("" for AMP, "amp-maxpool" for Figure 2's ablation)."""
    model, device = env["model"], env["device"]
    P = source_prompts(args.out, env, names)  # (n, l, d), frozen
    torch.manual_seed(seed_for(args.seed, "target"))
    if args.attn == "identity":
        psi = ValueOnly(model.d).to(device)
    else:
        init, train_wv = "random" if args.psi_init == "random" else "eye", args.wv == "train"
        psi = DAMAttention(model.d, args.k, args.scores, train_wv, init).to(device)
    k = args.k or model.d
    meta = dict(model=env["meta"]["model"], d=model.d, k=k, scores=args.scores, wv=args.wv)
    out = os.path.join(args.out, folder)
    if new:
        psi.load_state_dict(load_tensors(os.path.join(out, "psi.safetensors"), meta)[0])
    elif args.psi_init in ("identity", "orthonormal", "probe") and args.attn == "learned":
        try:
            if args.psi_init == "probe":
                R = lambda: probe_rows(env, P, names, os.path.join(args.out, "probe"))
                line = start_from_scores(psi, P, R)
            else:
                how = "auto" if args.psi_init == "identity" else args.psi_init
                line = start_near_identity(psi, P, names=names, basis=how)
            print(f"stage target: {line}")
        except ValueError as e:  # no sound start for these prompts: the message says what to do
            raise ModelError(f"ψ's start: {e}") from None
    heads = list(model.heads.parameters())
    for p in heads:
        p.requires_grad_(args.train_heads)
    groups = [(list(psi.parameters()), args.lr)]
    groups += [(heads, args.head_lr)] if args.train_heads else []
    formula = "2dk + d²" if args.wv == "train" else "2dk"
    formula = "d², W_V only" if args.attn == "identity" else formula
    extra = f" + heads {sum(p.numel() for p in heads):,}" if args.train_heads else ""
    print(f"stage target: ψ has {psi.num_parameters():,} parameters to train ({formula}){extra}")
    key = (folder or "target") + (f"+{new}" if new else "")
    prompts = lambda b: prompts_per_example(psi(P)[0], b["task"])  # (B, l, d): P'_task for each
    prompt_of = lambda t: psi(P)[0][t].detach()
    done = lambda: save_target(env, psi, P, names, new, out, meta)
    fit(args, env, [Job(key, groups, names, prompts, prompt_of, done)])


@torch.no_grad()
def save_target(env, psi, P, names, new, out, meta):
    """Each target prompt P'_i with its head and its row of A, ψ, and attention.json (row: target,
    column: source; a source added later has weight 0 in the rows written before it)."""
    P_target, A = psi(P)  # (n, l, d), (n, n)
    for i, n in enumerate(names):
        if new is None or n == new:
            head = env["model"].heads[i]
            W = {"P": P_target[i], "head.weight": head.weight, "head.bias": head.bias, "A": A[i]}
            path = os.path.join(out, "target", f"{n}.safetensors")
            save_tensors(path, W, dict(env["meta"], task=n, sources=names))
    save_tensors(os.path.join(out, "psi.safetensors"), psi.state_dict(), meta)
    rows = []
    for n in names:
        W, saved = load_tensors(os.path.join(out, "target", f"{n}.safetensors"), {})
        weights = dict(zip(saved["sources"], W["A"].tolist()))
        rows.append([weights.get(m, 0.0) for m in names])
    write_json(os.path.join(out, "attention.json"), {"tasks": names, "A": rows})


def add_task(args, cfg):
    """Paper 3.4: the new task's source prompt, then ψ over all n+1 source prompts, each stage with
    the flags the run's stages were trained with; the old tasks' files are not touched."""
    names = args.tasks + [args.add_task]
    env = setup(trained_as(args, cfg, "source"), names)
    stage_source(trained_as(args, cfg, "source"), env, [args.add_task])
    stage_target(trained_as(args, cfg, "target"), env, names, new=args.add_task)
    cfg["run"]["tasks"], cfg["adding"] = names, None
    write_json(os.path.join(args.out, "config.json"), cfg)


def baseline(args, cfg):
    """A method of Table 1 other than AMP, on the run's source prompts (baselines.py)."""
    if args.method in ("spot-s", "spot-m"):  # SPoT-m's source task joins the data if not a task
        extra = args.method == "spot-m" and args.spot_source not in args.tasks
        env = setup(args, args.tasks + [args.spot_source] * extra)
        if args.method == "spot-m":
            stage_source(trained_as(args, cfg, "source"), env, [args.spot_source])
        init = spot_init(args.method, args.out, env, args.tasks, args.spot_source)
        return stage_source(args, env, args.tasks, folder=f"{args.method}/target", init=init)
    env = setup(args, args.tasks)
    if args.method == "select":
        return select(args, env)
    if args.method in ("pt-continued", "amp-tuned"):  # each task's source (AMP's target) prompt
        part = "source" if args.method == "pt-continued" else "target"  # and head, tuned on
        init = dict(zip(args.tasks, source_prompts(args.out, env, args.tasks, part)))
        folder = f"{args.method}/target"
        return stage_source(args, env, args.tasks, folder=folder, init=init, new_heads=False)
    recipe = {"attempt": attempt_jobs, "tpt": tpt_jobs, "finetune": finetune_jobs}[args.method]
    for jobs in recipe(args, env, args.tasks):
        fit(args, env, jobs)


def select(args, env):
    """Ours: each task tunes a prompt and a fresh head from each of its best sources on the probe
    (probe.py; --select-tries, --select-margin); keeps the best on dev, its stage-1 files too."""
    P = source_prompts(args.out, env, args.tasks)  # (n, l, d)
    R = probe_rows(env, P, args.tasks, os.path.join(args.out, "select"))  # (n, n) dev scores
    picks = [candidates(row, i, args.select_tries, args.select_margin) for i, row in enumerate(R)]
    for r in range(args.select_tries):
        init = {t: P[c[r]] for t, c in zip(args.tasks, picks) if len(c) > r}  # (l, d) each
        stage_source(args, env, list(init), folder=f"select/try{r + 1}", init=init)
    two = [(i, t, c) for i, (t, c) in enumerate(zip(args.tasks, picks)) if len(c) > 1]
    mixes = {t: mix_weights(R[i], i, c) for i, t, c in two} if args.select_mix else {}
    init = {t: torch.einsum("j,jld->ld", torch.tensor(w).to(P), P) for t, w in mixes.items()}
    if init:  # (l, d) each
        stage_source(args, env, list(init), folder="select/mix", init=init)
    keep_best(args.out, args.tasks, picks, mixes)


def setup(args, names):
    """The named tasks' data (checked before a model loads), the encoder, and the data tokenised at
    one input length per task (every stage, method and eval.py read the same tokens)."""
    split = (args.data_dir, args.protocol, args.carve, args.max_train, args.max_eval)
    tasks = {n: load_task(n, *split) for n in names}
    device = pick_device(args.device)
    encoder, tokenizer = load_encoder(args.model)
    labels = [tasks[n]["info"]["num_labels"] for n in names]
    model = PromptModel(encoder, labels, args.encoder_dropout).to(device)
    for n in [n for n in names if tasks[n]["note"]]:
        print(f"{n}: {tasks[n]['note']}")
    lengths = (encoder, tokenizer, args.prompt_len, args.max_tokens)
    length = {n: input_tokens(tasks[n]["info"], *lengths) for n in names}
    train = [tokenize(tasks[n]["train"], tokenizer, length[n]) for n in names]
    dev = [tokenize(tasks[n]["dev"], tokenizer, length[n]) for n in names]
    ids = {n: i for i, n in enumerate(names)}
    meta = dict(model=args.model, d=model.d, l=args.prompt_len)
    env = dict(device=device, tokenizer=tokenizer, model=model, tasks=tasks, ids=ids)
    return dict(env, train=train, dev=dev, meta=meta)


def trained_as(args, cfg, part):
    """The flags as a run's earlier stage was trained with them (config.json[part])."""
    return argparse.Namespace(**{**vars(args), **cfg.get(part, {})})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    demo.register()
    check_flags(args)
    cfg = read_run(args)
    settle(args, argv, cfg)
    check_folder(args, cfg)
    flags = lambda keys: {k: getattr(args, k) for k in keys}
    cfg = start_run(args, cfg, flags(RUN_KEYS), flags(STAGE_KEYS))
    t0 = time.time()
    with reported(args):  # a failure is one line, and what is finished stays
        if args.add_task:
            add_task(args, cfg)
        elif args.method == "prompt":
            stage_source(args, setup(args, args.tasks), args.tasks)
        elif args.method in ("amp", "amp-maxpool"):
            folder = "" if args.method == "amp" else args.method
            stage_target(args, setup(args, args.tasks), args.tasks, folder=folder)
        else:
            baseline(args, cfg)
    log(args, event="done", stage=args.stage or "add-task", seconds=round(time.time() - t0, 1))
    nxt = "train.py --stage target" if args.stage == "source" else "eval.py"
    print(f"done in {time.time() - t0:.0f} s. Next: python {nxt} --out {args.out}")


if __name__ == "__main__":
    main()
