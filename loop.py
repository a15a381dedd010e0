"""loop.py: the training loop every stage and every method shares (paper 4.2, A.3): fit().

AdamW, linear warmup then linear decay, a dev score each epoch, early stopping, the best parameters
kept, checkpoints that --resume continues from. train.py gives it jobs: stage source one per task
(trained in one pass), stage target one (ψ), the baselines baselines.py's recipes. A tiny CPU run:
  python train.py --stage source --tasks senti_movies,colours --max-steps 20 --out runs/tiny
"""

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from amp import seed_for
from data import collate, epoch_batches, task_batches
from metrics import EVAL_BATCH, autocast, evaluate
from lib.runfiles import load_checkpoint, log, save_checkpoint


class Stop(Exception):
    """A run that cannot go on (a non-finite loss); printed as one line, exit code 1."""


@dataclass
class Job:
    """One thing trained with its own optimizer, schedule, epochs, early stopping and position."""

    key: str  # its name in the log and in ckpt.pt: "source:cb", "target", "attempt", ...
    groups: list  # [(parameters, learning rate)]
    tasks: list  # the task names it trains on; several are mixed in each batch (paper 4.2)
    prompts: Callable  # batch -> (B, l, d), each example's prompt
    prompt_of: Callable  # task id -> what evaluate() reads that task through
    done: Callable  # called once, when its best parameters are back


@dataclass
class Progress:
    """Where a job is; saved in ckpt.pt as a dict, so that --resume continues from it."""

    epoch: int = 0
    step: int = 0  # within the epoch
    global_step: int = 0
    best: list = field(default_factory=list)  # the parameters of the best dev epoch so far
    best_score: float = -math.inf
    bad: int = 0  # epochs since the best
    losses: list = field(default_factory=list)  # this epoch's


def lr_scale(g, total, warmup):
    """Step g's rate (g from 0) over the base rate (paper 4.2): linear warmup over `warmup` steps,
    then linear decay to 0 at step `total`."""
    return min((g + 1) / max(warmup, 1), max(total - g, 0) / max(total - warmup, 1))


def fit(args, env, jobs):
    """Train the jobs (paper 4.2) in one pass, taking turns, one batch each. A batch holds one job's
    examples only, so on a CPU a job ends bit for bit as if trained alone (test_amp.py checks)."""
    ckpt = os.path.join(args.out, "ckpt.pt")
    saved = load_checkpoint(ckpt) if args.resume and os.path.exists(ckpt) else {}
    state = {j.key: start(args, env, j, saved.get("jobs", {}).get(j.key)) for j in jobs}
    if saved.get("jobs"):
        torch.set_rng_state(saved["rng"])
    left = lambda p, n: p.epoch < args.epochs and p.global_step < n and p.bad < args.patience
    active = lambda j: left(state[j.key]["progress"], state[j.key]["total"])
    for j in jobs:
        if not active(j):  # resumed after its last epoch, before its files were written
            finish(j, state[j.key])
    env["model"].train()
    total = sum(s["total"] for s in state.values())
    done = sum(s["progress"].global_step for s in state.values())
    desc = f"{len(jobs)} job{'s' * (len(jobs) > 1)}"
    bar = tqdm(total=total, initial=done, desc=desc, leave=False)
    while any(active(j) for j in jobs):
        for j in [j for j in jobs if active(j)]:
            s, p = state[j.key], state[j.key]["progress"]
            if s["epoch"] != p.epoch:
                s["epoch"], s["batches"] = p.epoch, s["batches_of"](p.epoch)
            for group in s["opt"].param_groups:
                group["lr"] = group["base_lr"] * lr_scale(p.global_step, s["total"], args.warmup)
            loss = train_step(env, j, s["opt"], s["batches"][p.step], p.global_step, ckpt)
            p.losses.append(loss)
            p.step, p.global_step = p.step + 1, p.global_step + 1
            bar.update()
            bar.set_postfix_str(f"{j.key} loss {loss:.3f}")
            if p.global_step % args.ckpt_every == 0:
                checkpoint(args, ckpt, state, j.key)
            if p.step == len(s["batches"]) or p.global_step >= s["total"]:
                end_epoch(args, j, s)
                checkpoint(args, ckpt, state, j.key)
            if not active(j):
                finish(j, s)
    bar.close()


def checkpoint(args, ckpt, state, key):
    """Every job's parameters, optimizer and Progress, and the RNG state, to ckpt.pt."""
    jobs = {}
    for k, s in state.items():
        params = [p.detach().cpu() for p in s["params"]]
        jobs[k] = dict(params=params, opt=s["opt"].state_dict(), state=vars(s["progress"]))
    save_checkpoint(ckpt, dict(jobs=jobs, rng=torch.get_rng_state()))
    p = state[key]["progress"]
    log(args, event="checkpoint", key=key, epoch=p.epoch, step=p.step, global_step=p.global_step)


def train_step(env, job, opt, batch, g, ckpt):
    """One optimizer step of a job on one batch [(task, row)]; returns the loss (paper 3.1, 3.2)."""
    model, train = env["model"], env["train"]
    rows = [dict(train[t][i], task=t) for t, i in batch]
    b = {k: v.to(env["device"]) for k, v in collate(rows, model.pad_id).items()}
    prompts = job.prompts(b)  # (B, l, d), in float32 (ψ outside autocast)
    with autocast(env["device"]):
        logits = model(prompts, b["input_ids"], b["attention_mask"], b["token_type_ids"], b["task"])
    loss = model.loss(logits, b["labels"], b["task"])
    if not torch.isfinite(loss):
        msg = f"the loss is {loss.item()} at step {g + 1} of {job.key}; the last good checkpoint "
        msg += f"stays in {ckpt}: continue from it with --resume and a lower --lr"
        raise Stop(msg)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def start(args, env, job, saved):
    """A job's optimizer, batches, step budget and Progress: new, or as ckpt.pt saved them."""
    params = [p for ps, _ in job.groups for p in ps]
    trainable = [[p for p in ps if p.requires_grad] for ps, _ in job.groups]
    groups = [dict(params=t, lr=lr, base_lr=lr) for t, (_, lr) in zip(trainable, job.groups)]
    opt = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    batches_of = job_batches(args, env, job.tasks)
    batches = batches_of(0)
    total = min(len(batches) * args.epochs, args.max_steps or len(batches) * args.epochs)
    progress = Progress(best=[p.detach().clone() for p in params])
    if saved:
        for p, v in zip(params, saved["params"]):
            p.data.copy_(v)
        opt.load_state_dict(saved["opt"])
        for group, (_, lr) in zip(opt.param_groups, job.groups):
            group["base_lr"] = lr
        progress = Progress(**saved["state"])
        at = f"epoch {progress.epoch + 1}, step {progress.step}"
        print(f"{job.key}: resumed at {at} (global step {progress.global_step})")
    s = dict(params=params, opt=opt, batches_of=batches_of, epoch=0, batches=batches, total=total)
    return dict(s, progress=progress, dev=mean_dev(env, job.tasks, job.prompt_of))


def end_epoch(args, job, s):
    """Score dev; keep the parameters if best so far (early stopping counts the rest)."""
    p, t0 = s["progress"], time.time()
    dev = s["dev"]()
    if dev > p.best_score:
        p.best, p.best_score, p.bad = [q.detach().clone() for q in s["params"]], dev, 0
    else:
        p.bad += 1
    p.epoch, p.step = p.epoch + 1, 0
    loss, p.losses = sum(p.losses) / max(len(p.losses), 1), []
    line = f"{job.key:24s} epoch {p.epoch:3d}/{args.epochs}  loss {loss:.4f}  dev {dev:6.2f}"
    tqdm.write(f"{line}  (best {p.best_score:6.2f})  dev in {time.time() - t0:4.1f} s")
    at = dict(key=job.key, epoch=p.epoch, global_step=p.global_step)
    log(args, event="epoch", **at, loss=loss, dev=dev)


def finish(job, s):
    """The best parameters back, then the job's files."""
    for q, v in zip(s["params"], s["progress"].best):
        q.data.copy_(v)
    job.done()


def job_batches(args, env, names):
    """epoch -> [[(task, row), ...], ...]: one task's rows length-grouped (a function of seed, task
    and epoch), or the named tasks mixed, examples-proportional (paper 4.2; --mix-temperature and
    --mix-grouped: ours)."""
    ids, B = [env["ids"][n] for n in names], args.batch_size
    if len(ids) == 1:
        lengths = [len(x) for x in env["train"][ids[0]]["input_ids"]]
        seed = seed_for(args.seed, names[0])
        return lambda e: [[(ids[0], i) for i in b] for b in task_batches(lengths, B, seed, e)]
    sizes = [len(env["train"][t]) for t in ids]
    lengths = [[len(x) for x in env["train"][t]["input_ids"]] for t in ids if args.mix_grouped]
    mix = dict(T=args.mix_temperature, lengths=lengths or None)  # read only when grouping
    batches = lambda e: epoch_batches(sizes, B, args.seed, e, **mix)
    return lambda e: [[(ids[p], i) for p, i in b] for b in batches(e)]


def mean_dev(env, names, prompt_of):
    """() -> the mean of the named tasks' first dev metrics, task t read through prompt_of(t)."""

    def score(n):
        t, m, data = env["ids"][n], env["tasks"][n]["info"]["metrics"], env["dev"][env["ids"][n]]
        return evaluate(env["model"], prompt_of(t), data, t, m, EVAL_BATCH, env["device"])[m[0]]

    return lambda: sum([score(n) for n in names]) / len(names)
