"""loop.py: the training loop every stage and every method shares (paper 4.2, A.3): fit().

AdamW, linear warmup then linear decay, a dev score each epoch, early stopping, the best parameters
kept, checkpoints that --resume continues from. train.py gives it jobs: stage source one per task
(all trained in one pass), stage target one (ψ), the baselines the jobs of baselines.py's recipes.
fit yields each job once it has stopped, its best parameters back in place; the caller saves it.
A tiny CPU run:
  python train.py --stage source --tasks senti_movies,colours --max-steps 20 --out runs/tiny
"""

import math
import os
import sys
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from amp import seed_for
from data import collate, epoch_batches, task_batches
from lib.runfiles import load_checkpoint, log, save_checkpoint
from metrics import EVAL_BATCH, autocast, evaluate


class Stop(Exception):
    """A run that cannot go on (a non-finite loss); printed as one line, exit code 1."""


@dataclass
class Env:
    """What every job trains and is scored on (train.setup makes it)."""

    device: torch.device
    tokenizer: object
    model: torch.nn.Module  # amp.PromptModel: the frozen encoder and a head per task
    tasks: dict  # {name: data.load_task's task}
    ids: dict  # {name: t}, the task's index: its head, its rows in train and dev
    meta: dict  # what the run's files must match: model, d, l
    train: list  # [t]: the task's training rows, tokenised
    dev: list  # [t]: its dev rows, tokenised
    input_tokens: dict  # {name: its one input length}


@dataclass
class Job:
    """One thing trained with its own optimizer, schedule, epochs and early stopping."""

    key: str  # its name in the log and in ckpt.pt: "source:cb", "target", "attempt", ...
    groups: list  # [(parameters, learning rate)]
    tasks: list  # the task names it trains on; several are mixed in each batch (paper 4.2)
    prompt: object  # prompt(batch) -> (B, l, d) each example's prompt; prompt.of(t): task t's
    files: dict = field(default_factory=dict)  # {path: (tensors, meta)} to save once it stops


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


@dataclass
class Training:
    """A job being trained: its parameters, optimizer, step budget, Progress, this epoch's
    batches (None: not drawn yet)."""

    job: Job
    params: list
    opt: torch.optim.Optimizer
    total: int
    progress: Progress
    batches: list = None


def lr_scale(g, total, warmup):
    """Step g's rate (g from 0) over the base rate (paper 4.2): linear warmup over `warmup` steps,
    then linear decay to 0 at step `total`."""
    return min((g + 1) / max(warmup, 1), max(total - g, 0) / max(total - warmup, 1))


def fit(args, env, jobs):
    """Train the jobs (paper 4.2) in one pass, taking turns, one batch each, and yield each job as
    it stops. A batch holds one job's examples only, so on a CPU a job ends bit for bit as if
    trained alone (tests/test_amp.py checks)."""
    ckpt = os.path.join(args.out, "ckpt.pt")
    saved = load_checkpoint(ckpt) if args.resume and os.path.exists(ckpt) else {}
    runs = [start(args, env, j, saved.get("jobs", {}).get(j.key)) for j in jobs]
    if saved.get("jobs"):
        torch.set_rng_state(saved["rng"])
    for r in runs:
        if not going(args, r):  # resumed after its last epoch, before its files were written
            yield finish(r)
    env.model.train()
    done = sum(r.progress.global_step for r in runs)
    quiet = not sys.stderr.isatty()  # a log file gets the epoch lines, not a bar's redraws
    bar = tqdm(total=sum(r.total for r in runs), initial=done, leave=False, disable=quiet)
    while any(going(args, r) for r in runs):
        for r in [r for r in runs if going(args, r)]:
            p = r.progress
            if r.batches is None:
                r.batches = job_batches(args, env, r.job.tasks, p.epoch)
            for group in r.opt.param_groups:
                group["lr"] = group["base_lr"] * lr_scale(p.global_step, r.total, args.warmup)
            loss = train_step(env, r.job, r.opt, r.batches[p.step], p.global_step, ckpt)
            p.losses.append(loss)
            p.step, p.global_step = p.step + 1, p.global_step + 1
            bar.update()
            bar.set_postfix_str(f"{r.job.key} loss {loss:.3f}")
            if p.global_step % args.ckpt_every == 0:
                checkpoint(args, ckpt, runs, r.job.key)
            if p.step == len(r.batches) or p.global_step >= r.total:
                end_epoch(args, env, r)
                checkpoint(args, ckpt, runs, r.job.key)
            if not going(args, r):
                yield finish(r)
    bar.close()


def going(args, r):
    """Whether a job trains on: epochs and steps left, and dev still improving lately."""
    p = r.progress
    return p.epoch < args.epochs and p.global_step < r.total and p.bad < args.patience


def train_step(env, job, opt, batch, g, ckpt):
    """One optimizer step of a job on one batch [(task, row)]; returns the loss (paper 3.1, 3.2)."""
    model, train = env.model, env.train
    rows = [dict(train[t][i], task=t) for t, i in batch]
    b = {k: v.to(env.device) for k, v in collate(rows, model.pad_id).items()}
    prompts = job.prompt(b)  # (B, l, d), in float32 (ψ outside autocast)
    with autocast(env.device):
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
    """A job's optimizer, step budget and Progress: new, or as ckpt.pt saved them."""
    params = [p for ps, _ in job.groups for p in ps]
    trainable = [[p for p in ps if p.requires_grad] for ps, _ in job.groups]
    groups = [dict(params=t, lr=lr, base_lr=lr) for t, (_, lr) in zip(trainable, job.groups)]
    opt = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    per_epoch = len(job_batches(args, env, job.tasks, 0))
    total = min(per_epoch * args.epochs, args.max_steps or per_epoch * args.epochs)
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
    return Training(job, params, opt, total, progress)


def checkpoint(args, ckpt, runs, key):
    """Every job's parameters, optimizer and Progress, and the RNG state, to ckpt.pt."""
    jobs = {}
    for r in runs:
        params = [p.detach().cpu() for p in r.params]
        jobs[r.job.key] = dict(params=params, opt=r.opt.state_dict(), state=vars(r.progress))
    save_checkpoint(ckpt, dict(jobs=jobs, rng=torch.get_rng_state()))
    p = next(r.progress for r in runs if r.job.key == key)
    log(args, event="checkpoint", key=key, epoch=p.epoch, step=p.step, global_step=p.global_step)


def end_epoch(args, env, r):
    """Score dev; keep the parameters if best so far (early stopping counts the rest)."""
    p, t0 = r.progress, time.time()
    dev = mean_dev(env, r.job)
    if dev > p.best_score:
        p.best, p.best_score, p.bad = [q.detach().clone() for q in r.params], dev, 0
    else:
        p.bad += 1
    p.epoch, p.step, r.batches = p.epoch + 1, 0, None
    loss, p.losses = sum(p.losses) / max(len(p.losses), 1), []
    line = f"{r.job.key:24s} epoch {p.epoch:3d}/{args.epochs}  loss {loss:.4f}  dev {dev:6.2f}"
    tqdm.write(f"{line}  (best {p.best_score:6.2f})  dev in {time.time() - t0:4.1f} s")
    at = dict(key=r.job.key, epoch=p.epoch, global_step=p.global_step)
    log(args, event="epoch", **at, loss=loss, dev=dev)


def finish(r):
    """The best parameters back in place; the job, for its caller to save."""
    for q, v in zip(r.params, r.progress.best):
        q.data.copy_(v)
    return r.job


def job_batches(args, env, names, epoch):
    """An epoch's batches [[(task, row), ...], ...]: one task's rows length-grouped (a function of
    seed, task and epoch), or the named tasks mixed, examples-proportional (paper 4.2;
    --mix-temperature and --mix-grouped: ours)."""
    ids, B = [env.ids[n] for n in names], args.batch_size
    if len(ids) == 1:
        lengths = [len(x) for x in env.train[ids[0]]["input_ids"]]
        batches = task_batches(lengths, B, seed_for(args.seed, names[0]), epoch)
        return [[(ids[0], i) for i in b] for b in batches]
    sizes = [len(env.train[t]) for t in ids]
    lengths = None  # --mix-grouped: each task's rows' token counts
    if args.mix_grouped:
        lengths = [[len(x) for x in env.train[t]["input_ids"]] for t in ids]
    batches = epoch_batches(sizes, B, args.seed, epoch, T=args.mix_temperature, lengths=lengths)
    return [[(ids[p], i) for p, i in b] for b in batches]


def mean_dev(env, job):
    """The mean of the job's tasks' first dev metrics, task t read through job.prompt.of(t)."""
    scores = []
    for n in job.tasks:
        t, metrics = env.ids[n], env.tasks[n]["info"]["metrics"]
        dev = evaluate(env.model, job.prompt.of(t), env.dev[t], t, metrics, EVAL_BATCH,
                       env.device)  # fmt: skip
        scores.append(dev[metrics[0]])
    return sum(scores) / len(scores)
