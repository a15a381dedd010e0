"""bench.py: what a prompted step costs, against Hugging Face PEFT prompt tuning (README,
"Performance"), and what each form of DAM costs (README, "DAM's cost"), in sections: (a) steps
against PEFT, (b) stage 1 end to end against PEFT, (c) ψ's share of a stage-2 step at the paper's
size, (dam) the forms of DAM in dam.py and max pooling; each section_* says what it measures. Only
a and b need PEFT (pip install -r requirements-bench.txt) and the data. How a call is timed and its
peak memory read: timing.py. From the repository root:

  python -m studies.bench --quick     # a, b, c at small sizes: 4 min 56 s, 2 CPU cores at load 1.5
  python -m studies.bench             # full sizes (1,000 rows a task in b): 40 min, 2 busy cores
  python -m studies.bench --sections a,c --device cuda   # GPU: bf16 autocast, MFU against bf16 peak
  python -m studies.bench --sections dam   # DAM's forms at n = 11, 64, 256, 1024, l = 100, k = 768
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from importlib import metadata, util
from statistics import median_low

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is unreachable here: all loads from disk
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from amp import PromptModel, init_prompt, load_encoder, max_positions  # noqa: E402
from amp import prompts_per_example, resolve_model  # noqa: E402
from dam import SCORERS, DAMAttention  # noqa: E402
from data import collate, load_task  # noqa: E402
from lib.tokens import tokenize  # noqa: E402
from lib import demo  # noqa: E402
from studies.timing import matmul_peak, measure, proc  # noqa: E402

ap = argparse.ArgumentParser(description="Speed of prompted steps against PEFT, and of DAM.")
arg = ap.add_argument
arg("--quick", action="store_true", help="small sizes for every flag left unset (a, b, c < 5 min)")
arg("--sections", default="a,b,c", help="comma list of a, b, c, dam (see the docstring)")
arg("--device", default="cpu", help="cpu | cuda (bf16 autocast, MFU against the bf16 matmul peak)")
arg("--threads", type=int, default=0, help="torch CPU threads in this process (0: torch's default)")
arg("--data-dir", default=os.path.join("..", "shared", "data"), help="<task>/<split>.jsonl here")
arg("--model", default="all-MiniLM-L6-v2", help="encoder of sections a and b")
arg("--prompt-len", type=int, default=20, help="l, virtual tokens in both systems")
arg("--batch-size", type=int, default=16, help="examples per step in sections a and b")
arg("--tasks", default="sst2,rte,boolq", help="a: one row per task and step kind")
arg("--rounds", type=int, help="a: alternating rounds (quick 3, full 6)")
arg("--steps", type=int, help="a: timed steps per system and round (quick 1, full 2)")
arg("--suite", help="b: tasks (quick sst2,rte,boolq; full sst2,rte,qnli,boolq)")
arg("--max-train", type=int, help="b: training rows per task (quick 48, full 1000)")
arg("--max-eval", type=int, help="b: dev rows per task (quick 32, full 200)")
arg("--epochs", type=int, default=1, help="b: epochs per task")
arg("--baseline-run", action="store_true", help="internal: run b's padded PEFT baseline and exit")
arg("--psi-steps", type=int, help="c: timed paper-size steps (quick 1, no warm-up; full 3)")
arg("--dam-sizes", default="11,64,256,1024", help="dam: numbers of tasks n (m = n)")
arg("--dam-l", type=int, default=100, help="dam: prompt length l (paper: 100)")
arg("--dam-k", type=int, default=768, help="dam: query/key size k (paper: 768)")
arg("--dam-repeats", type=int, default=3, help="dam: timed runs after the warm-up (at most)")
arg("--dam-budget", type=float, default=30.0, help="dam: seconds of timed runs per form and n")
arg("--dam-max-seconds", type=float, default=60.0, help="dam: skip forms estimated slower")
arg("--dam-dtype", default="float32", choices=["float32", "float64", "bfloat16"])
SIZES = dict(rounds=(3, 6), steps=(1, 2), max_train=(48, 1000), max_eval=(32, 200))  # quick, full
SIZES.update(psi_steps=(1, 3), suite=("sst2,rte,boolq", "sst2,rte,qnli,boolq"))


def autocast(dev):
    """bf16 autocast on a GPU; on the CPU, off (float32)."""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")


def stepper(forward, device, loss=None, *opts):
    """A step on a batch b: out = forward(b) under autocast; then with loss, the gradients of the
    optimizers opts zeroed, loss(out, b) backward and a step of opts[0]; without, inference mode."""

    def step(b=None):
        with autocast(device), torch.inference_mode(loss is None):
            out = forward(b)
        if loss is not None:
            [o.zero_grad() for o in opts]
            loss(out, b).backward()
            opts[0].step() if opts else None

    return step


def step_flops(encoder, B, T, train=True):
    """Model FLOPs of one prompted step over B sequences of T positions (prompt included), weights
    frozen; N: weights of the layers' linear maps but the pooler's (B tokens); no element-wise work.

        forward  = 2·N·B·T + 4·L·B·T²·d      attention: Q·Kᵀ and A·V
        backward = 2·N·B·T + 8·L·B·T²·d      input gradients only; attention: dQ, dK, dV, dA
    """
    linear = [(k, m) for k, m in encoder.named_modules() if isinstance(m, nn.Linear)]
    N = sum(m.weight.numel() for k, m in linear if "pooler" not in k)
    L, d = encoder.config.num_hidden_layers, encoder.config.hidden_size
    forward = 2 * N * B * T + 4 * L * B * T * T * d
    return forward + (2 * N * B * T + 8 * L * B * T * T * d if train else 0)


def peft_model(path, C, l, device):
    """PEFT prompt tuning, l virtual tokens, on AutoModelForSequenceClassification (C labels)."""
    from peft import PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification as Classifier

    config = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=l)
    return get_peft_model(Classifier.from_pretrained(path, num_labels=C), config).to(device).eval()


def step_kinds(model, t, P, target, opt_psi, pm, device):
    """Task t's stage-1 step, stage-2 step (target(): the n target prompts) and evaluation, ours and
    PEFT's (pm): {kind: (ours, PEFT's)}, each a function of a batch; and both systems' heads."""
    opt1 = torch.optim.AdamW([P[t], *model.heads[t].parameters()], lr=1e-3)
    opt_peft = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-3)

    def x(b):  # the encoder's inputs
        return {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def own(b):  # task t's prompt for every example (B, l, d)
        return model(P[t].expand(len(b["task"]), -1, -1), *x(b).values(), b["task"])

    def mixed(b):  # each example's task's target prompt (B, l, d)
        return model(prompts_per_example(target(), b["task"]), *x(b).values(), b["task"])

    def loss(logits, b):
        return model.loss(logits, b["labels"], b["task"])

    def peft(b):  # with the labels, so that PEFT computes its loss
        y = b["labels"].long() if pm.config.num_labels > 1 else b["labels"]
        return pm(**x(b), labels=y)

    peft_train = stepper(peft, device, lambda out, b: out.loss, opt_peft)
    s1, s2 = stepper(own, device, loss, opt1, opt_psi), stepper(mixed, device, loss, opt_psi, opt1)
    evals = stepper(own, device), stepper(lambda b: pm(**x(b)), device)
    heads = [p for n, p in pm.named_parameters() if p.requires_grad and "prompt_encoder" not in n]
    kinds = {"stage 1": (s1, peft_train), "stage 2": (s2, peft_train), "eval": evals}
    return kinds, [*model.heads[t].parameters(), *heads]


def race(a, ours, theirs, batches, device, sample_peak=None):
    """A warm-up, then a.rounds rounds of a.steps steps per system, AB BA AB ...: examples/s per
    round, {"ours": [...], "peft": [...]}, and sample_peak() after each round if given (stage 1: the
    matmul peak under the same load as the steps, the best of short samples)."""
    ours(batches[0]), theirs(batches[0])  # warm-up
    res, peaks = {"ours": [], "peft": []}, []
    for r in range(a.rounds):
        for who, fn in [("ours", ours), ("peft", theirs)][:: 1 if r % 2 == 0 else -1]:
            bs = [batches[i % len(batches)] for i in range(r * a.steps, (r + 1) * a.steps)]
            n = sum(len(b["labels"]) for b in bs)
            res[who].append(n / measure(lambda: [fn(b) for b in bs], device)[0])
        peaks += [sample_peak()] if sample_peak else []
    return res, peaks


def section_a(a, device):
    """Stage-1 step, stage-2 step and evaluation, ours against PEFT, per task (new batches each
    round), in rounds AB BA AB ... so that the ratio holds on a busy machine. Same work: l virtual
    tokens, train.py's padded batches, dropout off; but PEFT's head reads BERT's pooler over the
    first virtual token, ours position l ([CLS]); PEFT has no ψ: its stage-2 row is prompt tuning
    with the classifier frozen."""
    encoder, tok = load_encoder(a.model)
    names, l, B, cuda = a.tasks.split(","), a.prompt_len, a.batch_size, device.type == "cuda"
    tasks = [load_task(n, a.data_dir, max_train=B * a.steps * a.rounds) for n in names]
    model = PromptModel(encoder, [x["info"]["num_labels"] for x in tasks]).to(device).train()
    seeds = [torch.Generator().manual_seed(t) for t in range(len(names))]
    P = [nn.Parameter(init_prompt(encoder, tok, l, g).to(device)) for g in seeds]
    psi = DAMAttention(model.d).to(device)
    P_src = torch.stack([p.detach() for p in P])  # (n, l, d) frozen sources
    opt_psi = torch.optim.AdamW(psi.parameters(), lr=1e-4)
    path, peak = resolve_model(a.model), (torch.bfloat16, 8192) if cuda else (torch.float32, 1024)
    top, room, mfu = matmul_peak(device, *peak), max_positions(encoder, tok) - l, []  # top: FLOP/s
    s = f"(a) l={l}, batch {B}, {a.rounds} rounds x {a.steps} steps per system, AB BA AB ...; ratio"
    s += " = ours/PEFT ex/s, median [min-max];\n    MiB = peak memory of one step on the task's "
    how = "max_memory_allocated" if cuda else "VmHWM growth after malloc_trim"
    print(s + f"longest batch above what was in use before it ({how})")
    print("task     step    tokens ours ex/s PEFT ex/s                ratio ours MiB PEFT MiB")
    for t, (name, x) in enumerate(zip(names, tasks)):
        ds = tokenize(x["train"], tok, min(x["info"]["max_tokens"], room))
        rows = [dict(ds[i], task=t) for i in range(len(ds))]
        bs = [collate(rows[i : i + B], tok.pad_token_id) for i in range(0, len(rows), B)]
        bs = [{k: v.to(device) for k, v in b.items()} for b in bs]
        pm = peft_model(path, x["info"]["num_labels"], l, device)
        kinds, heads = step_kinds(model, t, P, lambda: psi(P_src)[0], opt_psi, pm, device)
        examples = sum(len(b["labels"]) for b in bs)
        T = sum(b["input_ids"].numel() for b in bs) / examples + l  # mean positions, prompt too
        flops = sum(step_flops(encoder, len(b["labels"]), b["input_ids"].shape[1] + l) for b in bs)
        for kind, (ours, theirs) in kinds.items():
            [p.requires_grad_(kind != "stage 2") for p in heads]  # stage 2: heads frozen in both
            model.eval() if kind == "eval" else model.train()
            sample = partial(matmul_peak, device, *peak, 0.2) if kind == "stage 1" else None
            res, peaks = race(a, ours, theirs, bs, device, sample)
            top = max([top, *peaks])
            longest = max(bs, key=lambda b: b["input_ids"].numel())
            mem = [measure(lambda: fn(longest), device, trim=True)[1] for fn in (ours, theirs)]
            mib = ["n/a" if m is None else f"{m / 2**20:.0f}" for m in mem]  # after the timing
            exs = {w: median_low(rs) for w, rs in res.items()}
            ratios = [o / p for o, p in zip(res["ours"], res["peft"])]
            s = f"{name:8s} {kind:7s} {T:6.0f} {exs['ours']:9.1f} {exs['peft']:9.1f} "
            s += f"{median_low(ratios):7.2f} [{min(ratios):.2f}-{max(ratios):.2f}]      "
            print(s + f"{mib[0]:>8s} {mib[1]:>8s}", flush=True)
            if kind == "stage 1":  # per example: FLOPs and positions over the batches timed
                mfu.append((name, exs["ours"] * T, exs["ours"] * flops / examples))
    s = "stage-1 step (ours): tokens/s and model-FLOPs utilisation against a measured "
    print(s + f"{'bf16' if cuda else 'float32'} matmul peak of {top / 1e12:.3f} TFLOP/s")
    for who, tps, fl in mfu:
        print(f"{who:8s} {tps:9.0f} tokens/s  {fl / 1e12:7.3f} TFLOP/s  MFU {100 * fl / top:5.1f}%")


def padded_rows(ds, tok, L, C):
    """A split as PEFT's examples feed it: token ids padded to L, and the labels (C of them)."""
    pair = list(ds["text_pair"]) if ds[0]["text_pair"] is not None else None
    kw = dict(truncation=True, max_length=L, padding="max_length", return_tensors="pt")
    y = torch.tensor(list(ds["label"]), dtype=torch.long if C > 1 else torch.float)
    return {**tok(list(ds["text"]), pair, **kw), "labels": y}


def padded_baseline(a, device):
    """Section b's baseline, PEFT's way: task after task, a fresh PEFT model each, inputs padded to
    the task's fixed length (padding="max_length"), shuffled batches, dev accuracy per epoch."""
    encoder, tok = load_encoder(a.model)
    room, path, B = max_positions(encoder, tok) - a.prompt_len, resolve_model(a.model), a.batch_size
    del encoder
    for name in a.suite.split(","):
        x = load_task(name, a.data_dir, max_train=a.max_train, max_eval=a.max_eval)
        C, L = x["info"]["num_labels"], min(x["info"]["max_tokens"], room)
        padded = [padded_rows(x[s], tok, L, C) for s in ("train", "dev")]
        train, dev = [{k: v.to(device) for k, v in rows.items()} for rows in padded]
        pm = peft_model(path, C, a.prompt_len, device)
        opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-2)
        step = stepper(lambda b: pm(**b), device, lambda out, b: out.loss, opt)
        g = torch.Generator().manual_seed(0)
        for epoch in range(a.epochs):
            order = torch.randperm(len(train["labels"]), generator=g)
            for i in range(0, len(order), B):
                step({k: v[order[i : i + B]] for k, v in train.items()})
            right = 0
            with torch.inference_mode(), autocast(device):
                for i in range(0, len(dev["labels"]), 64):
                    b = {k: v[i : i + 64] for k, v in dev.items() if k != "labels"}
                    right += (pm(**b).logits.argmax(-1) == dev["labels"][i : i + 64]).sum().item()
            acc = f", dev accuracy {100 * right / len(dev['labels']):.1f}" if C > 1 else ""
            s = f"  baseline {name}: {len(order)} rows at {L} tokens, epoch {epoch + 1}{acc}"
            print(s, flush=True)


def section_b(a, device):
    """Stage 1 end to end over a suite: train.py against the padded one-task-at-a-time PEFT loop,
    both subprocesses, so that both pay for start-up, loading the encoder and the data."""
    keys = "model data_dir device max_train max_eval epochs prompt_len batch_size".split()
    common = [f"--{k.replace('_', '-')}={getattr(a, k)}" for k in keys]
    root, secs = os.path.dirname(os.path.dirname(os.path.abspath(__file__))), {}
    s = f"(b) stage 1 end to end: {a.suite}, at most {a.max_train} train / {a.max_eval} dev rows"
    print(s + f" per task, {a.epochs} epoch(s), batch {a.batch_size}, l={a.prompt_len}")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.update({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {})
    with tempfile.TemporaryDirectory(prefix="bench-", ignore_cleanup_errors=True) as tmp:
        ours = ["train.py", "--stage", "source", "--tasks", a.suite, "--out", tmp + "/run"]
        theirs = ["-m", "studies.bench", "--baseline-run", "--suite", a.suite]
        for who, cmd in {"train.py (ours)": ours, "PEFT, padded, one by one": theirs}.items():
            cmd = [sys.executable, *cmd, *common]
            load, t0 = os.getloadavg()[0], time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env)
            secs[who] = time.perf_counter() - t0
            if p.returncode != 0:
                last = (p.stderr.strip().splitlines() or ["no output"])[-1]
                sys.exit(f"bench.py: error: {who} failed (exit {p.returncode}): {last}")
            s = f"{who:26s} {secs[who]:7.1f} s   ({' '.join(cmd[1:3])} ...; load average before: "
            print(s + f"{load:.1f})", flush=True)
    ours, theirs = secs.values()
    print(f"padded PEFT / ours = {theirs / ours:.2f}x the wall-clock time")


def section_c(a, device):
    """ψ forward + backward as a share of a stage-2 training step at the paper's size (target: under
    1%). ψ's FLOPs (paper 3.2.2): forward P·W_Q, P·W_K (2·n·l·d·k each), P·W_V and A·V (2·n·l·d² +
    2·n²·l·d); backward (W_Q, W_K, W_V trained, P frozen): the weight gradients, about as many."""
    from transformers import AutoModel, RobertaConfig

    n, l, B, T = 11, 100, 8, 384  # paper 4.2: l = 100, 384 tokens
    torch.manual_seed(0)
    encoder = AutoModel.from_config(RobertaConfig()).to(device)  # roberta-base, random weights
    model = PromptModel(encoder.requires_grad_(False), [2] * n).to(device).train()
    model.heads.requires_grad_(False)  # paper: only ψ is trained
    d = k = model.d
    P = torch.randn(n, l, d, device=device) * 0.02  # (n, l, d) frozen source prompts
    psi = DAMAttention(d).to(device)
    opt = torch.optim.AdamW(psi.parameters(), lr=5e-5)
    ids = torch.randint(3, encoder.config.vocab_size, (B, T), device=device)  # (B, T) no padding
    mask, types = torch.ones_like(ids), torch.zeros_like(ids)
    task, y = torch.randint(n, (B,), device=device), torch.zeros(B, device=device)
    G = torch.randn(n, l, d, device=device)  # a fixed read-out of the target prompts (n, l, d)
    psi_only = stepper(lambda _: psi(P)[0], device, lambda P_t, _: (P_t.float() * G).sum())

    def forward(_):  # ψ's target prompts, then the prompted encoder
        return model(prompts_per_example(psi(P)[0], task), ids, mask, types, task)

    full_step = stepper(forward, device, lambda logits, _: model.loss(logits, y, task), opt)
    measure(psi_only, device), measure(psi_only, device)  # warm-up
    t_psi = median_low([measure(psi_only, device)[0] for _ in range(10)])
    measure(full_step, device) if a.psi_steps > 1 else None  # warm-up (skipped by --quick)
    t_step = median_low([measure(full_step, device)[0] for _ in range(a.psi_steps)])
    f_psi = 2 * (2 * 2 * n * l * d * k + 2 * n * l * d * d + 2 * n * n * l * d)  # see above
    f_step = step_flops(encoder, B, T + l)
    s = f"(c) stage 2 at the paper's size: roberta-base (random weights), n={n}, l={l}, d=k={d}, "
    s += f"batch {B} x {T} tokens; step = ψ + prompted forward/backward + AdamW on ψ, median of "
    print(s + f"{a.psi_steps}")
    s = f"ψ forward+backward {1e3 * t_psi:8.1f} ms   training step {t_step:7.2f} s   ψ share "
    s += f"{100 * t_psi / t_step:.2f}% of the time, {100 * f_psi / (f_psi + f_step):.2f}% of the"
    print(s + " FLOPs (target: under 1%)")


def section_dam(a, device):
    """Each form of DAM (dam.py) and max pooling at n = m in a.dam_sizes: median seconds a call over
    runs after a warm-up (a run: >= 20 ms of calls), the peak memory, the dominant allocation."""
    dtype, l, k, cuda = getattr(torch, a.dam_dtype), a.dam_l, a.dam_k, device.type == "cuda"
    s = f"(dam) l={l} k={k} {a.dam_dtype} on {device}; median of runs after 1 warm-up; peak = "
    print(s + f"measured ({'max_memory_allocated' if cuda else 'VmHWM growth'}), est = from shapes")
    print(f"{'n':>6} {'form':>8} {'median ms':>11} {'runs':>5} {'peak MiB':>9} {'est MiB':>9}")
    torch.manual_seed(0)
    last = {}  # form -> (n, seconds) at its last timed size, to extrapolate to the next one
    for n in [int(s) for s in a.dam_sizes.split(",")]:
        Q, K = [torch.randn(n, l, k, dtype=dtype, device=device) for _ in range(2)]  # (n, l, k)
        med, size = {}, Q.element_size()
        for form in ("loop", "conv", "einsum", "dam", "maxpool"):
            f, row = SCORERS[form], f"{n:>6} {form:>8} "
            # dominant: conv S, loop a block b_ij, the others pooled Q and K (einsum too), then S'
            need = ({"conv": n * l * n * l, "loop": l * l}.get(form, 2 * n * k) + n * n) * size
            free = torch.cuda.mem_get_info()[0] if cuda else proc("/proc/meminfo", "MemAvailable")
            if free is not None and need > 0.8 * free - 2**30:  # keep 20% + 1 GiB free
                print(row + f"skipped: needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
                continue
            est_s = last[form][1] * (n / last[form][0]) ** 2 if form in last else 0.0  # <= O(n^2)
            if est_s > a.dam_max_seconds:
                print(row + f"skipped: ~{est_s:.0f} s estimated")
                continue
            t_warm = max(measure(lambda: f(Q, K), device)[0], 1e-9)
            inner = max(1, int(0.02 / t_warm))  # calls per run, so that fast forms run >= 20 ms
            runs = max(1, min(a.dam_repeats, int(a.dam_budget / t_warm)))
            timed = [measure(lambda: [f(Q, K) for _ in range(inner)], device) for _ in range(runs)]
            med[form], peaks = median_low([t / inner for t, _ in timed]), [p for _, p in timed]
            last[form], peak = (n, med[form]), float("nan") if None in peaks else max(peaks)
            row += f"{med[form] * 1e3:>11.3f} {runs:>5} {peak / 2**20:>9.1f} {need / 2**20:>9.1f}"
            print(row)
        ratios = [f"conv/dam time = {med['conv'] / med['dam']:.0f}x"] if "conv" in med else []
        ratios.append(f"dam/maxpool time = {med['dam'] / med['maxpool']:.2f}x")
        print(f"{'':>15} " + ", ".join(ratios))


def main(a):
    demo.register()
    vars(a).update({k: v[0 if a.quick else 1] for k, v in SIZES.items() if getattr(a, k) is None})
    sections, cuda = a.sections.split(","), a.device == "cuda"
    if a.device not in ("cpu", "cuda") or (cuda and not torch.cuda.is_available()):
        sys.exit(f"bench.py: error: --device {a.device}: use cpu, or cuda where torch sees a GPU")
    if set(sections) - {"a", "b", "c", "dam"}:  # the flags first, then what the machine lacks
        sys.exit(f"bench.py: error: --sections {a.sections}: give a comma list of a, b, c, dam")
    needs = a.baseline_run or not set(sections) <= {"c", "dam"}  # PEFT and the data
    if needs and not os.path.isdir(a.data_dir):
        sys.exit(f"bench.py: error: no data folder {a.data_dir}; pass --data-dir (../shared/data)")
    if needs and util.find_spec("peft") is None:
        sys.exit("bench.py: error: PEFT is not installed; pip install -r requirements-bench.txt")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(a.threads or torch.get_num_threads())
    device = torch.device(a.device)
    if a.baseline_run:
        return padded_baseline(a, device)
    cpu = proc("/proc/cpuinfo", "model name", kib=False) or platform.processor() or "unknown CPU"
    peft = f", peft {metadata.version('peft')}" if needs else ""
    gpu = f", GPU {torch.cuda.get_device_name()}" if cuda else ""
    s = f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
    s += f"({torch.get_num_threads()} threads){peft}{gpu}; load average {os.getloadavg()[0]:.1f}"
    print(s, flush=True)
    t0 = time.perf_counter()
    for s in sections:
        {"a": section_a, "b": section_b, "c": section_c, "dam": section_dam}[s](a, device)
    print(f"bench.py: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(ap.parse_args())
