"""train.py: AMP's two training stages, and adding a task (paper 3.1, 3.2, 3.4; setup 4.2 and A.3).

  python train.py --stage source    # stage 1 (paper 3.1): a source prompt P_t (+ head) per task = prompt tuning
  python train.py --stage target    # stage 2 (paper 3.2): ψ = (W_Q, W_K, W_V) over the frozen source prompts
  python eval.py                    # prompt tuning vs AMP on the reporting splits; the attention heatmap
  python train.py --add-task NAME   # paper 3.4: NAME's source prompt, then ψ again over n+1 prompts;
                                    # only NAME's target prompt is written, the others stay byte-identical

The defaults run the offline demo suite (data.py) on all-MiniLM-L6-v2 on a CPU in minutes; their learning
rates and epochs were chosen by measurement (README.md). --preset paper is the paper's setting (roberta-base,
the 11 tasks, l = 100, AdamW at 1e-4 / 5e-5, 30 / 10 epochs, batch 8, 500 warmup steps) for a GPU and the hub.
Tiny CPU example (a minute):
  python train.py --stage source --tasks senti_movies,colours --max-steps 20 --out runs/tiny
  python train.py --stage target --max-steps 20 --out runs/tiny && python eval.py --out runs/tiny
A run lives in one folder (--out); see README.md for its layout. --resume continues a killed run from its last
checkpoint; a folder that holds a run is never overwritten without --overwrite.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time
import zlib

import torch
from tqdm import tqdm

from amp import (DEFAULT_MODEL, DAMAttention, ModelError, PromptModel, atomic, init_prompt, load_encoder, load_tensors,
                 max_positions, prompts_per_example, save_tensors, write_json)
from data import K_CAP, TARGET_MAX_TOKENS, DataError, collate, epoch_batches, load_task, parse_tasks, tokenize
from eval import autocast, evaluate, pick_device

ap = argparse.ArgumentParser(description="AMP: train source prompts (stage 1) or the attention component (stage 2).")
ap.add_argument("--stage", choices=["source", "target"], help="source: stage 1, one prompt per task (paper 3.1); "
                "target: stage 2, the attention component ψ over the source prompts (paper 3.2)")
ap.add_argument("--add-task", metavar="NAME", help="paper 3.4: add task NAME to a finished run (its source prompt, "
                "then ψ over n+1 prompts from the saved ψ); only NAME's target prompt is written")
ap.add_argument("--preset", choices=["demo", "paper"], default="demo", help="paper: roberta-base, the 11 tasks, "
                "l=100, batch 8, 500 warmup steps, lr 1e-4 / 5e-5, 30 / 10 epochs (paper 4.2, A.3)")
# What the run is: fixed by --stage source, read back from OUT/config.json by the later stages.
ap.add_argument("--tasks", default="demo", help="demo (8 generated tasks) | paper (the 11) | comma list, custom "
                "folders of --data-dir included")
ap.add_argument("--model", default=DEFAULT_MODEL, help="encoder: hub name or local folder (paper: roberta-base)")
ap.add_argument("--data-dir", default=None, help="folder of <task>/<split>.jsonl (default: the hub; demo needs none)")
ap.add_argument("--prompt-len", type=int, default=20, help="l, the prompt length (paper: 100)")
ap.add_argument("--protocol", choices=["honest", "paper"], default="honest", help="honest: select on a dev split "
                "apart from the reported one (ATTEMPT's); paper: select and report on validation (paper A.3)")
ap.add_argument("--carve", action="store_true", help="carve a missing train split from the reporting split (marked †)")
ap.add_argument("--max-train", type=int, help="at most this many training examples per task (the same ones each run)")
ap.add_argument("--max-eval", type=int, help="at most this many dev and reporting examples per task")
ap.add_argument("--seed", type=int, default=0, help="seed for prompt init, heads, data order and dropout")
# How a stage trains.
ap.add_argument("--out", default="runs/amp", help="the run folder")
ap.add_argument("--epochs", type=int, help="maximum epochs (default: source 15, target 3; paper: 30 / 10)")
ap.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (per task in stage source)")
ap.add_argument("--batch-size", type=int, default=16, help="examples per step (paper: 4 or 8)")
ap.add_argument("--lr", type=float, help="AdamW learning rate of the prompt (stage source) or ψ (stage target) "
                "(default: source 0.01, target 3e-4; paper: 1e-4 / 5e-5)")
ap.add_argument("--head-lr", type=float, help="learning rate of the task heads (default: 0.03; paper: = --lr)")
ap.add_argument("--warmup", type=int, default=10, help="linear warmup steps, then linear decay (paper: 500)")
ap.add_argument("--weight-decay", type=float, default=1e-5, help="AdamW weight decay (paper: 1e-5)")
ap.add_argument("--patience", type=int, default=5, help="early stopping: epochs without a better dev score")
# Stage 2, the attention component (paper 3.2.1).
ap.add_argument("--k", type=int, help="size of queries and keys (default: d, as the paper's k = 768 = d)")
ap.add_argument("--scores", choices=["dam", "maxpool"], default="dam", help="dam (paper 3.2.1) | maxpool (Figure 2)")
ap.add_argument("--wv", choices=["train", "fixed"], default="train", help="W_V: train = a d×d matrix trained from I "
                "(paper, default); fixed = I, each target prompt a convex combination of source prompts")
ap.add_argument("--psi-init", choices=["identity", "eye", "random"], default="identity", help="W_Q, W_K at start: "
                "identity = s·I with s set so that A starts with a mean diagonal of 0.9 (default, chosen by measurement); "
                "eye = I (scores are mean-prompt dot products); random = N(0, 1/d). eye and random start A near uniform")
ap.add_argument("--train-heads", action="store_true", help="stage 2 trains the task heads too (paper: only ψ)")
ap.add_argument("--encoder-dropout", action="store_true", help="run the frozen encoder with its dropout while "
                "training (default off: measured to slow prompt tuning badly on the demo suite, see amp.py)")
# Running.
ap.add_argument("--device", default="auto", help="auto (CUDA with bf16 autocast when present) | cpu | cuda")
ap.add_argument("--ckpt-every", type=int, default=50, help="checkpoint every this many steps (and every epoch)")
ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, with its "
                "flags (those given again override them, e.g. a lower --lr)")
ap.add_argument("--overwrite", action="store_true", help="replace what --out holds for this stage")

PAPER = dict(model="roberta-base", tasks="paper", prompt_len=100, batch_size=8, warmup=500)
STAGE_DEFAULTS = {  # flags left unset: the demo's values were chosen by measurement (README), the paper's are 4.2/A.3
    "demo": {"source": dict(epochs=15, lr=1e-2, head_lr=3e-2), "target": dict(epochs=3, lr=3e-4, head_lr=3e-2)},
    "paper": {"source": dict(epochs=30, lr=1e-4, head_lr=1e-4), "target": dict(epochs=10, lr=5e-5, head_lr=5e-5)}}
RUN_KEYS = ["tasks", "model", "data_dir", "prompt_len", "protocol", "carve", "max_train", "max_eval", "seed"]
STAGE_KEYS = ["epochs", "max_steps", "batch_size", "lr", "head_lr", "warmup", "weight_decay", "patience", "k", "scores",
              "wv", "psi_init", "train_heads", "encoder_dropout", "ckpt_every"]
OUTPUTS = {"source": ["config.json", "log.jsonl", "source", "ckpt.pt"],
           "target": ["target", "psi.safetensors", "attention.json", "eval.json", "attention.png", "ckpt.pt"]}


class Stop(Exception):
    """A run that cannot go on (a non-finite loss); printed as one line, exit code 1."""


def fail(msg):
    print(f"train.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def parse(argv):
    """Flags -> (args, run config). Every mistake a user can make on the command line stops here, with one line and
    exit code 2, before a model is loaded."""
    ap.error = fail
    a = ap.parse_args(argv)
    given = lambda k: any(x == "--" + k.replace("_", "-") or x.startswith("--" + k.replace("_", "-") + "=") for x in argv)
    for k, v in (PAPER.items() if a.preset == "paper" else ()):
        setattr(a, k, getattr(a, k) if given(k) else v)
    if (a.stage is None) == (a.add_task is None):
        fail("say what to train: --stage source, --stage target, or --add-task NAME")
    for k in ["prompt_len", "batch_size", "epochs", "max_steps", "k", "patience", "ckpt_every", "max_train", "max_eval"]:
        if getattr(a, k) is not None and getattr(a, k) <= 0:
            fail(f"--{k.replace('_', '-')} must be positive, got {getattr(a, k)}")
    if any(x is not None and x <= 0 for x in (a.lr, a.head_lr)) or a.warmup < 0 or a.weight_decay < 0:
        fail("--lr and --head-lr must be positive, --warmup and --weight-decay not negative")
    if a.resume and a.overwrite:
        fail("--resume continues a run and --overwrite replaces it: give one of them")
    stage, cfg_path = a.stage or "source", os.path.join(a.out, "config.json")
    cfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else None
    has = lambda *f: os.path.exists(os.path.join(a.out, *f))
    if a.stage == "source" and cfg is None and os.path.isdir(a.out) and os.listdir(a.out):
        fail(f"{a.out} exists and does not hold an amp run (no config.json); choose another --out")
    if a.stage == "source" and cfg and not (a.resume or a.overwrite):
        fail(f"{a.out} already holds a run: pass --resume to continue it, --overwrite to replace it, or another --out")
    if cfg is None and (a.resume or a.stage != "source"):
        fail(f"{a.out} holds no source prompts; run python train.py --stage source --out {a.out} first")
    try:
        if cfg and not (a.stage == "source" and a.overwrite):   # a run exists: it says what the run is
            if a.data_dir and cfg["run"]["data_dir"] not in (None, a.data_dir):
                fail(f"--data-dir {a.data_dir} differs from the run's {cfg['run']['data_dir']}")
            a.data_dir = a.data_dir or cfg["run"]["data_dir"]
            a.tasks = cfg["run"]["tasks"] if not given("tasks") else parse_tasks(a.tasks, a.data_dir)
            for k in RUN_KEYS:
                if given(k) and k != "data_dir" and getattr(a, k) != cfg["run"][k]:
                    fail(f"--{k.replace('_', '-')} {getattr(a, k)} differs from the run's {cfg['run'][k]} "
                         f"({cfg_path}); later stages take it from there")
                setattr(a, k, a.data_dir if k == "data_dir" else cfg["run"][k])
            if a.resume and cfg.get(stage):     # the run's flags, unless given again (a lower --lr after a NaN)
                for k in STAGE_KEYS:
                    setattr(a, k, getattr(a, k) if given(k) else cfg[stage][k])
        a.tasks = parse_tasks(a.tasks if isinstance(a.tasks, str) else ",".join(a.tasks), a.data_dir)
        if a.add_task:
            parse_tasks(a.add_task, a.data_dir)
    except DataError as e:
        fail(str(e))
    if a.stage == "target":
        missing = [t for t in a.tasks if not has("source", f"{t}.safetensors")]
        if missing:
            fail(f"stage source is not finished in {a.out} (no source prompt for {', '.join(missing)}); "
                 f"continue it with python train.py --stage source --resume --out {a.out}")
        if (has("psi.safetensors") or cfg.get("target")) and not (a.resume or a.overwrite):
            fail(f"{a.out} already has stage target: pass --resume to continue it or --overwrite to redo it")
        if a.resume and has("psi.safetensors") and not has("ckpt.pt"):
            fail(f"stage target in {a.out} has finished: nothing to resume (--overwrite redoes it)")
        if cfg.get("adding"):
            fail(f"{a.out} is adding task {cfg['adding']}: continue with --add-task {cfg['adding']} --resume")
    if a.add_task:
        if not has("psi.safetensors"):
            fail(f"{a.out} has no trained ψ yet; run python train.py --stage target --out {a.out} first")
        if a.add_task in a.tasks:
            fail(f"task {a.add_task} is already in the run")
        if cfg.get("adding") not in (None, a.add_task) or (cfg.get("adding") and not a.resume):
            fail(f"adding task {cfg['adding']} to {a.out} was interrupted; continue it with --add-task "
                 f"{cfg['adding']} --resume")
    return a, cfg


def seed_for(a, name):
    return a.seed * 2**20 + zlib.crc32(name.encode()) % 2**20  # one stream per task, whatever the task order


# ----------------------------------------------------------------------------------------------------------
def fit(a, env, key, groups, task_ids, prompts_for, dev_score):
    """The loop both stages share (paper 4.2): AdamW, linear warmup then linear decay, a dev score each epoch,
    early stopping, the best parameters kept. A checkpoint (ckpt.pt: parameters, optimizer, RNG, position in the
    epoch) every --ckpt-every steps and each epoch lets --resume continue exactly where a killed run stopped."""
    model, device, train = env["model"], env["device"], env["train"]
    sizes = [len(train[t]) for t in task_ids]
    per_epoch = math.ceil(sum(min(n, K_CAP) for n in sizes) / a.batch_size)
    total = min(per_epoch * a.epochs, a.max_steps or per_epoch * a.epochs)
    params = [p for ps, _ in groups for p in ps]           # groups: [(parameters, learning rate)]
    opt = torch.optim.AdamW([dict(params=[p for p in ps if p.requires_grad], lr=lr, base_lr=lr) for ps, lr in groups],
                            weight_decay=a.weight_decay)
    st = dict(epoch=0, step=0, global_step=0, best=[p.detach().clone() for p in params], best_score=-math.inf, bad=0)
    ckpt = os.path.join(a.out, "ckpt.pt")
    if a.resume and os.path.exists(ckpt):
        c = torch.load(ckpt, weights_only=True)
        if c["key"] == key:
            for p, v in zip(params, c["params"]):
                p.data.copy_(v)
            opt.load_state_dict(c["opt"])
            for group, (_, lr) in zip(opt.param_groups, groups):
                group["base_lr"] = lr
            torch.set_rng_state(c["rng"])
            st = c["state"]
            print(f"{key}: resumed at epoch {st['epoch'] + 1}, step {st['step']} (global step {st['global_step']})")

    def checkpoint():
        c = dict(key=key, params=[p.detach().cpu() for p in params], opt=opt.state_dict(), rng=torch.get_rng_state(),
                 state=st)
        atomic(ckpt, lambda tmp: torch.save(c, tmp))
        log(a, event="checkpoint", key=key, epoch=st["epoch"], step=st["step"], global_step=st["global_step"])

    model.train()
    while st["epoch"] < a.epochs and st["global_step"] < total and st["bad"] < a.patience:
        t0, losses = time.time(), []
        batches = epoch_batches(sizes, a.batch_size, a.seed, st["epoch"])
        bar = tqdm(total=len(batches), initial=st["step"], desc=f"{key} epoch {st['epoch'] + 1}", leave=False)
        for pairs in batches[st["step"]:]:
            g = st["global_step"]
            for group in opt.param_groups:   # linear warmup, then linear decay to 0 at the last step
                group["lr"] = group["base_lr"] * min((g + 1) / max(a.warmup, 1), max(total - g, 0) / max(total - a.warmup, 1))
            rows = [dict(train[task_ids[p]][i], task=task_ids[p]) for p, i in pairs]
            b = {k: v.to(device) for k, v in collate(rows, model.pad_id).items()}
            with autocast(device):
                logits = model(prompts_for(b["task"]), b["input_ids"], b["attention_mask"], b["token_type_ids"], b["task"])
            loss = model.loss(logits, b["labels"], b["task"])
            if not torch.isfinite(loss):
                raise Stop(f"the loss is {loss.item()} at step {g + 1} of {key}; the last good checkpoint stays in "
                           f"{ckpt}: continue from it with --resume and a lower --lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            st["step"], st["global_step"] = st["step"] + 1, g + 1
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if st["global_step"] % a.ckpt_every == 0:
                checkpoint()
            if st["global_step"] >= total:
                break
        bar.close()
        dev = dev_score()
        if dev > st["best_score"]:
            st["best"], st["best_score"], st["bad"] = [p.detach().clone() for p in params], dev, 0
        else:
            st["bad"] += 1
        st["epoch"], st["step"] = st["epoch"] + 1, 0
        loss_mean = sum(losses) / max(len(losses), 1)
        print(f"{key:24s} epoch {st['epoch']:3d}/{a.epochs}  loss {loss_mean:.4f}  dev {dev:6.2f}  "
              f"(best {st['best_score']:6.2f})  {time.time() - t0:5.1f} s")
        log(a, event="epoch", key=key, epoch=st["epoch"], global_step=st["global_step"], loss=loss_mean, dev=dev)
        checkpoint()
    for p, v in zip(params, st["best"]):
        p.data.copy_(v)
    return st["best_score"]


def log(a, **record):
    with open(os.path.join(a.out, "log.jsonl"), "a") as f:
        f.write(json.dumps(dict(time=round(time.time(), 2), **record)) + "\n")


# ----------------------------------------------------------------------------------------------------------
def stage_source(a, env, names):
    """Paper 3.1: prompt tuning, one task at a time; P_t (l, d) and the task's head are the only trained weights."""
    model, device = env["model"], env["device"]
    for name in names:
        path = os.path.join(a.out, "source", f"{name}.safetensors")
        if os.path.exists(path):
            continue
        t, x = env["ids"][name], env["tasks"][name]
        torch.manual_seed(seed_for(a, name))
        P = torch.nn.Parameter(init_prompt(model.encoder, env["tokenizer"], a.prompt_len,
                                           torch.Generator().manual_seed(seed_for(a, name))).to(device))  # (l, d)
        model.heads[t].reset_parameters()
        head = list(model.heads[t].parameters())
        print(f"{name}: trains {P.numel():,} prompt parameters (l·d) + {sum(p.numel() for p in head):,} in its head")
        dev = lambda: evaluate(model, P.detach(), env["dev"][t], t, x["info"]["metrics"], 64, device)
        best = fit(a, env, f"source:{name}", [([P], a.lr), (head, a.head_lr)], [t], lambda task: P.expand(len(task), -1, -1),
                   lambda: dev()[x["info"]["metrics"][0]])
        save_tensors(path, {"P": P, "head.weight": head[0], "head.bias": head[1]}, dict(env["meta"], task=name))
        write_json(os.path.join(a.out, "source", f"{name}.json"), dict(dev=dev(), best_dev=best))
        print(f"{name}: best dev {x['info']['metrics'][0]} {best:.2f} -> {path}")


def stage_target(a, env, names, new=None):
    """Paper 3.2: P' = DAMAttention(P) over the frozen source prompts, trained on all tasks at once
    (examples-proportional mixing). With new (paper 3.4), ψ starts from the saved one and only new's target
    prompt is written."""
    model, device, P = env["model"], env["device"], []          # model task t is row t of P: setup() got names
    for t, n in enumerate(names):
        W, _ = load_tensors(os.path.join(a.out, "source", f"{n}.safetensors"), dict(env["meta"], task=n))
        model.heads[t].load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
        P.append(W["P"])
    P = torch.stack(P).to(device)                                                # (n, l, d) frozen
    torch.manual_seed(seed_for(a, "target"))
    psi = DAMAttention(model.d, a.k, scores=a.scores, train_wv=a.wv == "train",
                       init="eye" if a.psi_init == "identity" else a.psi_init).to(device)
    psi_meta = dict(model=env["meta"]["model"], d=model.d, k=a.k or model.d, scores=a.scores, wv=a.wv)
    psi_path = os.path.join(a.out, "psi.safetensors")
    if new:
        psi.load_state_dict(load_tensors(psi_path, psi_meta)[0])
    elif a.psi_init == "identity":
        print(f"stage target: W_Q = W_K = {psi.start_near_identity(P):.3f}·I, so that A starts near identity")
    heads = list(model.heads.parameters())
    for p in heads:
        p.requires_grad_(a.train_heads)
    groups = [(list(psi.parameters()), a.lr)] + ([(heads, a.head_lr)] if a.train_heads else [])
    print(f"stage target: ψ has {psi.num_parameters():,} trainable parameters (2dk{' + d²' if a.wv == 'train' else ''}"
          f"; paper A.1){f' + heads {sum(p.numel() for p in heads):,}' if a.train_heads else ''}")

    def dev():
        with torch.no_grad():
            P_target = psi(P)[0]                                                 # (n, l, d)
        metrics = [env["tasks"][n]["info"]["metrics"] for n in names]
        return sum(evaluate(model, P_target[t], env["dev"][t], t, m, 64, device)[m[0]] for t, m in enumerate(metrics)) \
            / len(names)
    fit(a, env, "target" + (f"+{new}" if new else ""), groups, list(range(len(names))),
        lambda task: prompts_per_example(psi(P)[0], task), dev)                  # (B, l, d): P'_task per example
    with torch.no_grad():
        P_target, A = psi(P)                                                     # (n, l, d), (n, n)
    for i, n in enumerate(names):
        if new is None or n == new:
            head = model.heads[i]
            save_tensors(os.path.join(a.out, "target", f"{n}.safetensors"),
                         {"P": P_target[i], "head.weight": head.weight, "head.bias": head.bias, "A": A[i]},
                         dict(env["meta"], task=n, sources=names))
    save_tensors(psi_path, psi.state_dict(), psi_meta)
    rows = []   # each row as stored with its target prompt; a source added later has weight 0 in older rows
    for n in names:
        W, meta = load_tensors(os.path.join(a.out, "target", f"{n}.safetensors"), {})
        weights = dict(zip(meta["sources"], W["A"].tolist()))
        rows.append([weights.get(m, 0.0) for m in names])
    write_json(os.path.join(a.out, "attention.json"), {"tasks": names, "A": rows})


# ----------------------------------------------------------------------------------------------------------
def setup(a, names, stage):
    """Encoder, data of the named tasks tokenised for this stage, and what every saved tensor must match."""
    device = pick_device(a.device)
    encoder, tokenizer = load_encoder(a.model)
    tasks = {n: load_task(n, a.data_dir, a.protocol, a.carve, a.max_train, a.max_eval) for n in names}
    room = max_positions(encoder, tokenizer) - a.prompt_len
    if room < 8:
        raise ModelError(f"--prompt-len {a.prompt_len} leaves {room} of the encoder's positions for the input")
    model = PromptModel(encoder, [tasks[n]["info"]["num_labels"] for n in names], a.encoder_dropout).to(device)
    length = lambda n: min(TARGET_MAX_TOKENS if stage == "target" else tasks[n]["info"]["max_tokens"], room)
    for n in names:
        if tasks[n]["note"]:
            print(f"{n}: {tasks[n]['note']}")
    return dict(device=device, tokenizer=tokenizer, model=model, tasks=tasks, ids={n: i for i, n in enumerate(names)},
                train=[tokenize(tasks[n]["train"], tokenizer, length(n)) for n in names],
                dev=[tokenize(tasks[n]["dev"], tokenizer, length(n)) for n in names],
                meta=dict(model=a.model, d=model.d, l=a.prompt_len))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a, cfg = parse(argv)
    stage = a.stage or "source"
    for k, v in STAGE_DEFAULTS[a.preset][stage].items():
        setattr(a, k, v if getattr(a, k) is None else getattr(a, k))
    if a.overwrite and cfg:
        for f in OUTPUTS[stage] + (OUTPUTS["target"] if stage == "source" else []):
            p = os.path.join(a.out, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p) if os.path.exists(p) else None
        cfg = None if stage == "source" else cfg
    os.makedirs(a.out, exist_ok=True)
    cfg = cfg or {"run": {k: getattr(a, k) for k in RUN_KEYS}}
    if a.add_task:   # --add-task trains with the flags its run's stages were trained with
        cfg["adding"] = a.add_task
    else:
        cfg[stage] = {k: getattr(a, k) for k in STAGE_KEYS}
    write_json(os.path.join(a.out, "config.json"), cfg)
    t0 = time.time()
    try:
        if a.add_task:   # paper 3.4: the new task's source prompt, then ψ over all n+1 source prompts
            names = a.tasks + [a.add_task]
            a_source = argparse.Namespace(**{**vars(a), **cfg["source"]})
            stage_source(a_source, setup(a_source, names, "source"), [a.add_task])
            a_target = argparse.Namespace(**{**vars(a), **cfg.get("target", {})})
            stage_target(a_target, setup(a_target, names, "target"), names, new=a.add_task)
            cfg["run"]["tasks"], cfg["adding"] = names, None
            write_json(os.path.join(a.out, "config.json"), cfg)
        elif stage == "source":
            stage_source(a, setup(a, a.tasks, "source"), a.tasks)
        else:
            stage_target(a, setup(a, a.tasks, "target"), a.tasks)
    except (DataError, ModelError) as e:
        fail(str(e))
    except (Stop, OSError) as e:   # OSError: a full disk, an unwritable folder; the last checkpoint is intact
        why = e if isinstance(e, Stop) else f"cannot write {e.filename or a.out}: {e.strerror}; fix that, then --resume"
        print(f"train.py: stopped: {why}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ntrain.py: interrupted; continue with the same command and --resume", file=sys.stderr)
        sys.exit(130)
    if os.path.exists(os.path.join(a.out, "ckpt.pt")):   # the stage is done; its outputs are written
        os.remove(os.path.join(a.out, "ckpt.pt"))
    log(a, event="done", stage="add-task" if a.add_task else stage, seconds=round(time.time() - t0, 1))
    nxt = "train.py --stage target" if stage == "source" and not a.add_task else "eval.py"
    print(f"done in {time.time() - t0:.0f} s. Next: python {nxt} --out {a.out}")


if __name__ == "__main__":
    main()
