"""train.py: AMP's two training stages, adding a task, and the paper's baselines (paper 3.1, 3.2, 3.4, 4.2, A.3).

  python train.py --stage source    # stage 1 (paper 3.1): a source prompt P_t (+ head) per task = prompt tuning
  python train.py --stage target    # stage 2 (paper 3.2): ψ = (W_Q, W_K, W_V) over the frozen source prompts
  python train.py --stage target --method M    # a Table 1 baseline on the same run: amp-maxpool (Figure 2),
                                    # spot-s, spot-m, attempt, tpt, finetune (baselines.py); each in OUT/M/
  python eval.py                    # every method of the run on the reporting splits; the attention heatmap
  python train.py --add-task NAME   # paper 3.4: NAME's source prompt, then ψ again over n+1 prompts;
                                    # only NAME's target prompt is written, the others stay byte-identical

Stage 1 trains every task's prompt in one pass (loop.fit: the tasks take turns, one batch each, each task with
its own schedule, early stopping and checkpointed position). The defaults run the offline low-resource demo suite
(data.py, --tasks lowres) on all-MiniLM-L6-v2 on a CPU in under 10 minutes; their learning rates and epochs were
chosen on dev scores of the full-size demo suite (README.md).
--preset paper is the paper's setting (roberta-base, the 11 tasks, l = 100, AdamW at 1e-4 / 5e-5, 30 / 10
epochs, batch 8, 500 warmup steps) for a GPU and the hub; the run remembers it for its later stages.
Tiny CPU example (a minute):
  python train.py --stage source --tasks senti_movies,colours --max-steps 20 --out runs/tiny
  python train.py --stage target --max-steps 20 --out runs/tiny && python eval.py --out runs/tiny
A run lives in one folder (--out); see README.md for its layout. --resume continues a killed run from its last
checkpoint; a folder that holds a run is never overwritten without --overwrite.
"""
import argparse
import os
import shutil
import sys
import time

import torch
from tqdm import tqdm

from amp import DEFAULT_MODEL, ModelError, PromptModel, init_prompt, load_encoder, prompts_per_example, seed_for
from dam import DAMAttention
from psi_variants import ValueOnly, start_near_identity
from runfiles import load_tensors, read_json, save_tensors, write_json
from baselines import attempt_jobs, finetune_jobs, source_prompts, spot_init, tpt_jobs
from data import DataError, load_task, parse_tasks, tokenize
import demo  # noqa: F401  (adds the demo suites, the default tasks, to data.py)
from metrics import EVAL_BATCH, evaluate, input_tokens, pick_device
from loop import Stop, fit, log

METHODS = ["amp", "amp-maxpool", "spot-s", "spot-m", "attempt", "tpt", "finetune", "pt-continued"]
ap = argparse.ArgumentParser(description="AMP: train source prompts (stage 1) or the attention component (stage 2).")
ap.add_argument("--stage", choices=["source", "target"], help="source: stage 1, one prompt per task (paper 3.1); "
                "target: stage 2, the attention component ψ over the source prompts (paper 3.2)")
ap.add_argument("--add-task", metavar="NAME", help="paper 3.4: add task NAME to a finished run (its source prompt, "
                "then ψ over n+1 prompts from the saved ψ); only NAME's target prompt is written")
ap.add_argument("--preset", choices=["demo", "paper"], default="demo", help="paper: roberta-base, the 11 tasks, "
                "l=100, batch 8, 500 warmup steps, lr 1e-4 / 5e-5, 30 / 10 epochs (paper 4.2, A.3)")
# What the run is: fixed by --stage source, read back from OUT/config.json by the later stages.
ap.add_argument("--tasks", default="lowres", help="lowres (8 generated tasks, 3 with 32 training rows; the default) | "
                "demo (the 8 at full size) | paper (the 11) | comma list, custom "
                "folders of --data-dir included")
ap.add_argument("--model", default=DEFAULT_MODEL, help="encoder: hub name or local folder (paper: roberta-base)")
ap.add_argument("--data-dir", default=None, help="folder of <task>/<split>.jsonl (default: the hub; demo needs none)")
ap.add_argument("--prompt-len", type=int, default=20, help="l, the prompt length (paper: 100)")
ap.add_argument("--protocol", choices=["honest", "paper"], default="honest", help="honest: select on a dev split "
                "apart from the reported one (ATTEMPT's); paper: select and report on validation (paper A.3)")
ap.add_argument("--carve", action="store_true", help="carve a missing train split from the reporting split (marked †)")
ap.add_argument("--max-train", type=int, help="at most this many training examples per task (the same ones each run)")
ap.add_argument("--max-eval", type=int, help="at most this many dev and reporting examples per task")
ap.add_argument("--max-tokens", type=int, help="cut every task's input to this many tokens (default: the task's own, "
                "paper A.3: 256; MultiRC 348), in every stage, method and eval.py")
ap.add_argument("--seed", type=int, default=0, help="seed for prompt init, heads, data order and dropout")
# How a stage trains.
ap.add_argument("--out", default="runs/amp", help="the run folder")
ap.add_argument("--epochs", type=int, help="maximum epochs (default: source 15, target 3; paper: 30 / 10)")
ap.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (per task in stage source)")
ap.add_argument("--batch-size", type=int, help="examples per step (default: 16; paper: 8)")
ap.add_argument("--lr", type=float, help="AdamW learning rate of the prompt (stage source) or ψ (stage target) "
                "(default: source 0.01, target 3e-4; paper: 1e-4 / 5e-5)")
ap.add_argument("--head-lr", type=float, help="learning rate of the task heads (default: 0.03; paper: = --lr)")
ap.add_argument("--warmup", type=int, help="linear warmup steps, then linear decay (default: 10; paper: 500)")
ap.add_argument("--weight-decay", type=float, default=1e-5, help="AdamW weight decay (paper: 1e-5)")
ap.add_argument("--patience", type=int, default=5, help="early stopping: epochs without a better dev score")
# Stage 2, the attention component (paper 3.2.1).
ap.add_argument("--k", type=int, help="size of queries and keys (default: d, as the paper's k = 768 = d)")
ap.add_argument("--method", choices=METHODS, default="amp", help="what stage target trains (paper Table 1): amp (DAM, "
                "the default), amp-maxpool (Figure 2), spot-s, spot-m, attempt, tpt, finetune; pt-continued (an ablation: each "
                "source prompt and head tuned on for stage target's epochs); each writes into OUT/METHOD/, "
                "amp into OUT/")
ap.add_argument("--spot-source", default="mnli", help="SPoT-m's source task (paper: MNLI); trained first if the run lacks it")
ap.add_argument("--attn", choices=["learned", "identity"], default="learned", help="A: learned = softmax of the "
                "scores (paper); identity = A fixed to I, P'_i = P_i W_V (an ablation: W_V without transfer)")
ap.add_argument("--wv", choices=["train", "fixed"], default="train", help="W_V: train = a d×d matrix trained from I "
                "(paper, default); fixed = I, each target prompt a convex combination of source prompts")
ap.add_argument("--psi-init", choices=["identity", "orthonormal", "eye", "random"], default="identity", help="W_Q, "
                "W_K at start (not in the paper): identity = s·I, s set for a mean diagonal of 0.9 in A, kept when every "
                "task keeps >= 0.5 of its own row, else orthonormal; orthonormal = s·B with the pooled prompts made "
                "orthonormal, every row's diagonal 0.9; eye = I; random = N(0, 1/d) (eye, random: A near uniform)")
ap.add_argument("--train-heads", action="store_true", help="stage 2 trains the task heads too (paper: only ψ)")
ap.add_argument("--encoder-dropout", action="store_true", help="run the frozen encoder with its dropout while "
                "training (default off: measured to slow prompt tuning badly on the demo suite, see amp.py)")
# Running.
ap.add_argument("--device", default="auto", help="auto (CUDA with bf16 autocast when present) | cpu | cuda")
ap.add_argument("--ckpt-every", type=int, default=50, help="checkpoint every this many steps (and every epoch)")
ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, with its "
                "flags (those given again override them, e.g. a lower --lr)")
ap.add_argument("--overwrite", action="store_true", help="replace what --out holds for this stage")

PAPER = dict(model="roberta-base", tasks="paper", prompt_len=100)   # what a paper run is (paper 4.1, 4.2)
STAGE_DEFAULTS = {  # flags left unset. Demo: chosen by measurement (README). Paper: 4.2 / A.3; patience is ours.
    "demo": {"source": dict(epochs=15, lr=1e-2, head_lr=3e-2, batch_size=16, warmup=10),
             "target": dict(epochs=3, lr=3e-4, head_lr=3e-2, batch_size=16, warmup=10)},
    "paper": {"source": dict(epochs=30, lr=1e-4, head_lr=1e-4, batch_size=8, warmup=500),
              "target": dict(epochs=10, lr=5e-5, head_lr=5e-5, batch_size=8, warmup=500)}}
STAGE_DEFAULTS["demo"]["finetune"] = dict(epochs=15, lr=5e-5, head_lr=5e-5, batch_size=16, warmup=10)   # ours, not
STAGE_DEFAULTS["paper"]["finetune"] = dict(epochs=10, lr=2e-5, head_lr=2e-5, batch_size=8, warmup=500)  # the paper's
for _p in STAGE_DEFAULTS.values():   # prompt tuning continued: stage source's rates for stage target's epochs
    _p["pt-continued"] = dict(_p["source"], epochs=_p["target"]["epochs"])
KIND = {"amp-maxpool": "target", "finetune": "finetune", "pt-continued": "pt-continued"}   # the defaults a method takes; SPoT, ATTEMPT, TPT: source's
RUN_KEYS = ["preset", "tasks", "model", "data_dir", "prompt_len", "protocol", "carve", "max_train", "max_eval",
            "max_tokens", "seed"]
STAGE_KEYS = ["epochs", "max_steps", "batch_size", "lr", "head_lr", "warmup", "weight_decay", "patience", "k", "scores",
              "wv", "attn", "psi_init", "train_heads", "encoder_dropout", "ckpt_every", "method", "spot_source"]
OUTPUTS = {"source": ["config.json", "log.jsonl", "source", "ckpt.pt", *METHODS[1:]],
           "target": ["psi.safetensors", "target", "attention.json", "eval.json", "attention.png", "ckpt.pt"],
           **{m: [m, "eval.json", "ckpt.pt"] for m in METHODS[1:]}}     # what --overwrite removes (first: "done")


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
    for k in ["prompt_len", "batch_size", "epochs", "max_steps", "k", "patience", "ckpt_every", "max_train", "max_eval",
              "max_tokens"]:
        if getattr(a, k) is not None and getattr(a, k) <= 0:
            fail(f"--{k.replace('_', '-')} must be positive, got {getattr(a, k)}")
    if any(x is not None and x <= 0 for x in (a.lr, a.head_lr)) or (a.warmup or 0) < 0 or a.weight_decay < 0:
        fail("--lr and --head-lr must be positive, --warmup and --weight-decay not negative")
    if a.resume and a.overwrite:
        fail("--resume continues a run and --overwrite replaces it: give one of them")
    stage, cfg_path = a.stage or "source", os.path.join(a.out, "config.json")
    a.part = a.method if stage == "target" and a.method != "amp" else stage   # its flags: config.json[a.part]
    a.scores = "maxpool" if a.method == "amp-maxpool" else "dam"
    if a.method != "amp" and stage != "target":
        fail("--method chooses what --stage target trains; stage source is always prompt tuning")
    if os.path.isfile(a.out):
        fail(f"--out {a.out} is a file; give a folder")
    try:
        cfg = read_json(cfg_path, need=["run"]) if os.path.exists(cfg_path) else None
    except ModelError as e:   # a damaged config.json: only --stage source --overwrite may replace the run
        if not (a.stage == "source" and a.overwrite):
            fail(str(e))
        cfg = {"damaged": True}   # a run, so that main() removes its files before starting again
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
                was = cfg["run"].get(k, "demo" if k == "preset" else None)   # older runs: demo, no cap
                if given(k) and k != "data_dir" and getattr(a, k) != was:
                    fail(f"--{k.replace('_', '-')} {getattr(a, k)} differs from the run's {was} "
                         f"({cfg_path}); later stages take it from there")
                setattr(a, k, a.data_dir if k == "data_dir" else was)
            if a.resume and cfg.get(a.part):    # the run's flags, unless given again (a lower --lr after a NaN)
                for k in STAGE_KEYS:
                    setattr(a, k, getattr(a, k) if given(k) else cfg[a.part].get(k, getattr(a, k)))
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
        try:   # read the source prompts now, before --overwrite removes anything
            [load_tensors(os.path.join(a.out, "source", f"{t}.safetensors"), {}) for t in a.tasks]
        except ModelError as e:
            fail(str(e))
        if (has(OUTPUTS[a.part][0]) or cfg.get(a.part)) and not (a.resume or a.overwrite):
            fail(f"{a.out} already has stage target{'' if a.method == 'amp' else ' of ' + a.method}: pass --resume to "
                 f"continue it or --overwrite to redo it")
        if a.resume and a.method == "amp" and has("psi.safetensors") and not has("ckpt.pt"):
            fail(f"stage target in {a.out} has finished: nothing to resume (--overwrite redoes it)")
        if cfg.get("adding"):
            fail(f"{a.out} is adding task {cfg['adding']}: continue with --add-task {cfg['adding']} --resume")
    if a.add_task:
        if not has("psi.safetensors"):
            fail(f"{a.out} has no trained ψ yet; run python train.py --stage target --out {a.out} first")
        try:   # read ψ now, before anything of the new task is written
            load_tensors(os.path.join(a.out, "psi.safetensors"), {})
        except ModelError as e:
            fail(str(e))
        if a.add_task in a.tasks:
            fail(f"task {a.add_task} is already in the run")
        if cfg.get("adding") not in (None, a.add_task) or (cfg.get("adding") and not a.resume):
            fail(f"adding task {cfg['adding']} to {a.out} was interrupted; continue it with --add-task "
                 f"{cfg['adding']} --resume")
    return a, cfg


def stage_source(a, env, names, folder="source", init=None, new_heads=True):
    """Paper 3.1: prompt tuning; P_t (l, d) and the task's head are the only trained weights. Every task is a job
    of fit(), so all of them train in one pass; a finished task's files are written as soon as it stops.
    init: {task: (l, d)} starting prompts (SPoT), else tokens sampled from common vocabulary (paper 4.2).
    new_heads: start each head afresh (False: go on from the head in the model, pt-continued)."""
    model, device, jobs = env["model"], env["device"], []
    for name in names:
        path = os.path.join(a.out, folder, f"{name}.safetensors")
        if os.path.exists(path):
            continue
        t, metrics = env["ids"][name], env["tasks"][name]["info"]["metrics"]
        torch.manual_seed(seed_for(a.seed, name))
        P = init[name].clone() if init else init_prompt(model.encoder, env["tokenizer"], a.prompt_len,
                                                         torch.Generator().manual_seed(seed_for(a.seed, name)))
        P = torch.nn.Parameter(P.to(device))                                     # (l, d)
        if new_heads:
            model.heads[t].reset_parameters()
        head = list(model.heads[t].parameters())
        print(f"{name}: trains {P.numel():,} prompt parameters (l·d) + {sum(p.numel() for p in head):,} in its head")

        def done(name=name, P=P, head=head, path=path, t=t, m=metrics):
            save_tensors(path, {"P": P, "head.weight": head[0], "head.bias": head[1]}, dict(env["meta"], task=name))
            scores = evaluate(model, P.detach(), env["dev"][t], t, m, EVAL_BATCH, device)
            write_json(path.replace(".safetensors", ".json"), dict(dev=scores, best_dev=scores[m[0]]))
            tqdm.write(f"{name}: best dev {m[0]} {scores[m[0]]:.2f} -> {path}")
        jobs.append(dict(key=f"{folder.split('/')[0]}:{name}", groups=[([P], a.lr), (head, a.head_lr)], tasks=[name],
                         prompts=lambda b, P=P: P.expand(len(b["task"]), -1, -1), prompt_of=lambda t, P=P: P.detach(),
                         done=done))
    fit(a, env, jobs)


def stage_target(a, env, names, new=None, folder=""):
    """Paper 3.2: P' = DAMAttention(P) over the frozen source prompts, trained on all tasks at once
    (examples-proportional mixing). With new (paper 3.4), ψ starts from the saved one and only new's target
    prompt is written. folder: where the method's files go ("" for amp, "amp-maxpool" for Figure 2's ablation)."""
    model, device = env["model"], env["device"]
    P = source_prompts(a.out, env, names)                                        # (n, l, d) frozen
    torch.manual_seed(seed_for(a.seed, "target"))
    psi = ValueOnly(model.d).to(device) if a.attn == "identity" else \
        DAMAttention(model.d, a.k, scores=a.scores, train_wv=a.wv == "train",
                     init="random" if a.psi_init == "random" else "eye").to(device)
    psi_meta = dict(model=env["meta"]["model"], d=model.d, k=a.k or model.d, scores=a.scores, wv=a.wv)
    out = os.path.join(a.out, folder)
    psi_path = os.path.join(out, "psi.safetensors")
    if new:
        psi.load_state_dict(load_tensors(psi_path, psi_meta)[0])
    elif a.psi_init in ("identity", "orthonormal") and a.attn == "learned":
        try:
            print(f"stage target: {start_near_identity(psi, P, names=names, basis='auto' if a.psi_init == 'identity' else a.psi_init)}")
        except ValueError as e:   # no sound start for these prompts: the message says what to do
            raise ModelError(f"ψ's start: {e}") from None
    heads = list(model.heads.parameters())
    for p in heads:
        p.requires_grad_(a.train_heads)
    groups = [(list(psi.parameters()), a.lr)] + ([(heads, a.head_lr)] if a.train_heads else [])
    formula = "d², W_V only" if a.attn == "identity" else "2dk + d²" if a.wv == "train" else "2dk"
    print(f"stage target: ψ has {psi.num_parameters():,} trainable parameters ({formula}"
          f"; paper A.1){f' + heads {sum(p.numel() for p in heads):,}' if a.train_heads else ''}")

    def done():
        with torch.no_grad():
            P_target, A = psi(P)                                                 # (n, l, d), (n, n)
        for i, n in enumerate(names):
            if new is None or n == new:
                head = model.heads[i]
                save_tensors(os.path.join(out, "target", f"{n}.safetensors"),
                             {"P": P_target[i], "head.weight": head.weight, "head.bias": head.bias, "A": A[i]},
                             dict(env["meta"], task=n, sources=names))
        save_tensors(psi_path, psi.state_dict(), psi_meta)
        rows = []   # each row as stored with its target prompt; a source added later has weight 0 in older rows
        for n in names:
            W, meta = load_tensors(os.path.join(out, "target", f"{n}.safetensors"), {})
            weights = dict(zip(meta["sources"], W["A"].tolist()))
            rows.append([weights.get(m, 0.0) for m in names])
        write_json(os.path.join(out, "attention.json"), {"tasks": names, "A": rows})
    fit(a, env, [dict(key=(folder or "target") + (f"+{new}" if new else ""), groups=groups, tasks=names, done=done,
                      prompts=lambda b: prompts_per_example(psi(P)[0], b["task"]),   # (B, l, d): P'_task each
                      prompt_of=lambda t: psi(P)[0][t].detach())])


# ----------------------------------------------------------------------------------------------------------
def setup(a, names):
    """Data of the named tasks (checked before a model loads), the encoder, the data tokenised at one input
    length per task (every stage and method, and eval.py, read the same tokens), and what saved tensors must match."""
    tasks = {n: load_task(n, a.data_dir, a.protocol, a.carve, a.max_train, a.max_eval) for n in names}
    device = pick_device(a.device)
    encoder, tokenizer = load_encoder(a.model)
    model = PromptModel(encoder, [tasks[n]["info"]["num_labels"] for n in names], a.encoder_dropout).to(device)
    for n in names:
        if tasks[n]["note"]:
            print(f"{n}: {tasks[n]['note']}")
    length = {n: input_tokens(tasks[n]["info"], encoder, tokenizer, a.prompt_len, a.max_tokens) for n in names}
    return dict(device=device, tokenizer=tokenizer, model=model, tasks=tasks, ids={n: i for i, n in enumerate(names)},
                train=[tokenize(tasks[n]["train"], tokenizer, length[n]) for n in names],
                dev=[tokenize(tasks[n]["dev"], tokenizer, length[n]) for n in names],
                meta=dict(model=a.model, d=model.d, l=a.prompt_len))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a, cfg = parse(argv)
    stage = a.stage or "source"
    for k, v in STAGE_DEFAULTS[a.preset][KIND.get(a.part, a.part if a.part == "target" else "source")].items():
        setattr(a, k, v if getattr(a, k) is None else getattr(a, k))   # the run's preset (parse read config.json)
    if a.overwrite and cfg:
        for f in OUTPUTS[a.part] + (OUTPUTS["target"] if stage == "source" else []):
            p = os.path.join(a.out, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p) if os.path.exists(p) else None
        cfg = None if stage == "source" else cfg
    os.makedirs(a.out, exist_ok=True)
    cfg = cfg or {"run": {k: getattr(a, k) for k in RUN_KEYS}}
    if a.add_task:   # --add-task trains with the flags its run's stages were trained with
        cfg["adding"] = a.add_task
    else:
        cfg[a.part] = {k: getattr(a, k) for k in STAGE_KEYS}
    write_json(os.path.join(a.out, "config.json"), cfg)
    t0 = time.time()
    try:
        if a.add_task:   # paper 3.4: the new task's source prompt, then ψ over all n+1 source prompts
            names = a.tasks + [a.add_task]
            a_source = argparse.Namespace(**{**vars(a), **cfg["source"]})
            env = setup(a_source, names)
            stage_source(a_source, env, [a.add_task])
            stage_target(argparse.Namespace(**{**vars(a), **cfg.get("target", {})}), env, names, new=a.add_task)
            cfg["run"]["tasks"], cfg["adding"] = names, None
            write_json(os.path.join(a.out, "config.json"), cfg)
        elif stage == "source":
            stage_source(a, setup(a, a.tasks), a.tasks)
        elif a.method in ("amp", "amp-maxpool"):
            stage_target(a, setup(a, a.tasks), a.tasks, folder="" if a.method == "amp" else a.method)
        elif a.method in ("spot-s", "spot-m"):   # SPoT-m's source task joins the run's data if it is not a task
            names = a.tasks + [a.spot_source] * (a.method == "spot-m" and a.spot_source not in a.tasks)
            env = setup(a, names)
            if a.method == "spot-m":
                stage_source(argparse.Namespace(**{**vars(a), **cfg["source"]}), env, [a.spot_source])
            init = spot_init(a.method, a.out, env, a.tasks, a.spot_source)
            stage_source(a, env, a.tasks, folder=f"{a.method}/target", init=init)
        elif a.method == "pt-continued":   # each task's source prompt and head, tuned on
            env = setup(a, a.tasks)
            init = dict(zip(a.tasks, source_prompts(a.out, env, a.tasks)))   # loads the stage-1 heads too
            stage_source(a, env, a.tasks, folder="pt-continued/target", init=init, new_heads=False)
        else:
            env = setup(a, a.tasks)
            for jobs in {"attempt": attempt_jobs, "tpt": tpt_jobs, "finetune": finetune_jobs}[a.method](a, env, a.tasks):
                fit(a, env, jobs)
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
