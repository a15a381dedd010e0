"""loop.py: the training loop every stage and every method shares (paper 4.2, A.3): fit().

AdamW, linear warmup then linear decay, a dev score each epoch, early stopping, the best parameters kept, and
checkpoints that --resume continues from. train.py gives it jobs: stage source one per task (all trained in one
pass), stage target one (ψ), the baselines what baselines.py's recipes yield. It runs through train.py; a tiny
CPU example that trains two tasks in one pass (a minute):
  python train.py --stage source --tasks senti_movies,colours --max-steps 20 --out runs/tiny
"""
import json
import math
import os
import time

import torch
from tqdm import tqdm

from amp import seed_for
from data import collate, epoch_batches, task_batches
from metrics import EVAL_BATCH, autocast, evaluate
from runfiles import atomic, load_checkpoint


class Stop(Exception):
    """A run that cannot go on (a non-finite loss); printed as one line, exit code 1."""


def lr_scale(g, total, warmup):
    """The learning rate of step g (0-based) over the base rate (paper 4.2): linear warmup over `warmup` steps,
    then linear decay to 0 at step `total`."""
    return min((g + 1) / max(warmup, 1), max(total - g, 0) / max(total - warmup, 1))


# ----------------------------------------------------------------------------------------------------------
def fit(a, env, jobs):
    """The loop every stage shares (paper 4.2): AdamW, linear warmup then linear decay, a dev score each epoch,
    early stopping (--patience), the best parameters kept. A job is one thing trained with its own optimizer,
    schedule, epochs, early stopping and checkpointed position: stage source has one job per task, stage target
    one job (ψ). A job is a dict: key; groups [(parameters, lr)]; tasks, the names it trains on (one task: its rows
    in length-grouped batches, data.task_batches; several: batches that mix them, data.epoch_batches, paper 4.2);
    prompts(batch) -> (B, l, d) for training; prompt_of(t) -> what evaluate() reads task t through (its dev score
    is the mean of the tasks' first metrics); done(), called once its best parameters are restored.

    All jobs train in one pass: they take turns, one batch each. A batch holds one job's examples only, so a job's
    updates depend on its own batches alone, and on a CPU its result is bit for bit the result of training it by
    itself (test_amp.py checks it). Only the order of the log lines differs, and, with --encoder-dropout, the
    dropout masks (all jobs draw from one random stream). ckpt.pt (every --ckpt-every steps and at each job's
    epoch end) holds every job's parameters, optimizer and position, so --resume continues where a run stopped."""
    model, device, train = env["model"], env["device"], env["train"]
    ckpt = os.path.join(a.out, "ckpt.pt")
    c = load_checkpoint(ckpt) if a.resume and os.path.exists(ckpt) else dict(jobs={})
    saved = c.get("jobs", {})          # a checkpoint of an older version: start the stage again
    for j in jobs:
        j["batches"], j["dev"] = job_batches(a, env, j["tasks"]), mean_dev(env, j["tasks"], j["prompt_of"])
        j["params"] = [p for ps, _ in j["groups"] for p in ps]
        j["opt"] = torch.optim.AdamW([dict(params=[p for p in ps if p.requires_grad], lr=lr, base_lr=lr)
                                      for ps, lr in j["groups"]], weight_decay=a.weight_decay)
        j["epoch_batches"] = (0, j["batches"](0))
        per_epoch = len(j["epoch_batches"][1])
        j["total"] = min(per_epoch * a.epochs, a.max_steps or per_epoch * a.epochs)
        j["st"] = dict(epoch=0, step=0, global_step=0, best=[p.detach().clone() for p in j["params"]],
                       best_score=-math.inf, bad=0, losses=[])
        if j["key"] in saved:
            was = saved[j["key"]]
            for p, v in zip(j["params"], was["params"]):
                p.data.copy_(v)
            j["opt"].load_state_dict(was["opt"])
            for group, (_, lr) in zip(j["opt"].param_groups, j["groups"]):
                group["base_lr"] = lr
            j["st"] = was["state"]
            print(f"{j['key']}: resumed at epoch {j['st']['epoch'] + 1}, step {j['st']['step']} "
                  f"(global step {j['st']['global_step']})")
    if saved:
        torch.set_rng_state(c["rng"])
    active = lambda j: j["st"]["epoch"] < a.epochs and j["st"]["global_step"] < j["total"] and j["st"]["bad"] < a.patience

    def checkpoint(j):
        c = {k["key"]: dict(params=[p.detach().cpu() for p in k["params"]], opt=k["opt"].state_dict(), state=k["st"])
             for k in jobs}
        atomic(ckpt, lambda tmp: torch.save(dict(jobs=c, rng=torch.get_rng_state()), tmp))
        st = j["st"]
        log(a, event="checkpoint", key=j["key"], epoch=st["epoch"], step=st["step"], global_step=st["global_step"])

    def end_epoch(j):
        st, t0 = j["st"], time.time()
        dev = j["dev"]()
        if dev > st["best_score"]:
            st["best"], st["best_score"], st["bad"] = [p.detach().clone() for p in j["params"]], dev, 0
        else:
            st["bad"] += 1
        st["epoch"], st["step"] = st["epoch"] + 1, 0
        loss = sum(st["losses"]) / max(len(st["losses"]), 1)
        st["losses"] = []
        tqdm.write(f"{j['key']:24s} epoch {st['epoch']:3d}/{a.epochs}  loss {loss:.4f}  dev {dev:6.2f}  "
                   f"(best {st['best_score']:6.2f})  dev in {time.time() - t0:4.1f} s")
        log(a, event="epoch", key=j["key"], epoch=st["epoch"], global_step=st["global_step"], loss=loss, dev=dev)
        checkpoint(j)

    def finish(j):   # the best parameters back, then the job's files
        for p, v in zip(j["params"], j["st"]["best"]):
            p.data.copy_(v)
        j["done"]()

    for j in [j for j in jobs if not active(j)]:   # resumed after its last epoch, before its files were written
        finish(j)
    model.train()
    bar = tqdm(total=sum(j["total"] for j in jobs), initial=sum(j["st"]["global_step"] for j in jobs),
               desc=f"{len(jobs)} job{'s' * (len(jobs) > 1)}", leave=False)
    steps = 0
    while any(active(j) for j in jobs):
        for j in [j for j in jobs if active(j)]:
            st, opt = j["st"], j["opt"]
            if j["epoch_batches"][0] != st["epoch"]:
                j["epoch_batches"] = (st["epoch"], j["batches"](st["epoch"]))
            batches, g = j["epoch_batches"][1], st["global_step"]
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * lr_scale(g, j["total"], a.warmup)
            rows = [dict(train[t][i], task=t) for t, i in batches[st["step"]]]
            b = {k: v.to(device) for k, v in collate(rows, model.pad_id).items()}
            prompts = j["prompts"](b)                             # (B, l, d), in float32 (ψ outside autocast)
            with autocast(device):
                logits = model(prompts, b["input_ids"], b["attention_mask"], b["token_type_ids"], b["task"])
            loss = model.loss(logits, b["labels"], b["task"])
            if not torch.isfinite(loss):
                raise Stop(f"the loss is {loss.item()} at step {g + 1} of {j['key']}; the last good checkpoint stays "
                           f"in {ckpt}: continue from it with --resume and a lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            st["losses"].append(loss.item())
            st["step"], st["global_step"], steps = st["step"] + 1, g + 1, steps + 1
            bar.update()
            bar.set_postfix_str(f"{j['key']} loss {st['losses'][-1]:.3f}")
            if st["global_step"] % a.ckpt_every == 0:
                checkpoint(j)
            if st["step"] == len(batches) or st["global_step"] >= j["total"]:
                end_epoch(j)
            if not active(j):
                finish(j)
    bar.close()


def job_batches(a, env, names):
    """epoch -> [[(task, row), ...], ...]: one task's rows length-grouped (a function of seed, task and epoch), or
    the named tasks mixed, examples-proportional (paper 4.2)."""
    ids = [env["ids"][n] for n in names]
    if len(ids) == 1:
        lengths = [len(x) for x in env["train"][ids[0]]["input_ids"]]
        return lambda e: [[(ids[0], i) for i in b] for b in task_batches(lengths, a.batch_size, seed_for(a.seed, names[0]), e)]
    sizes = [len(env["train"][t]) for t in ids]
    return lambda e: [[(ids[p], i) for p, i in b] for b in epoch_batches(sizes, a.batch_size, a.seed, e)]


def mean_dev(env, names, prompt_of):
    """() -> the mean over the named tasks of their first dev metric, each task t read through prompt_of(t)."""
    def dev():
        scores = []
        for n in names:
            t, m = env["ids"][n], env["tasks"][n]["info"]["metrics"]
            scores.append(evaluate(env["model"], prompt_of(t), env["dev"][t], t, m, EVAL_BATCH, env["device"])[m[0]])
        return sum(scores) / len(scores)
    return dev


def log(a, **record):
    with open(os.path.join(a.out, "log.jsonl"), "a") as f:
        f.write(json.dumps(dict(time=round(time.time(), 2), **record)) + "\n")


# ----------------------------------------------------------------------------------------------------------
