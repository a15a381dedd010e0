"""bench.py: what a prompted step costs here, against Hugging Face PEFT prompt tuning on the same batches (issue 10).

(a) examples/s and peak memory of a stage-1 step (forward + backward + AdamW on prompt + head, paper 3.1), a
    stage-2 step (ψ = DAMAttention over the n source prompts, target prompts recomputed each step, heads frozen,
    paper 3.2) and evaluation (inference mode, paper 3.3), for this project and for PEFT (PromptTuningConfig,
    SEQ_CLS, AutoModelForSequenceClassification of the same encoder), the same batches, rounds alternating
    AB BA AB ... so the ratio holds on a busy machine; ratio = ours / PEFT examples/s, median [min-max] of rounds.
    The stage-1 rows also give tokens/s and model-FLOPs utilisation (step_flops against a measured matmul peak:
    bf16 on CUDA, float32 on the CPU).
(b) end to end, stage 1 over a suite of real tasks: train.py (a subprocess) against the tasks one by one with
    PEFT, every input padded to the task's fixed length as PEFT's examples do (padding="max_length").
(c) stage 2 at the paper's size (roberta-base from its config with random weights, n = 11, l = 100, batch 8,
    384 input tokens): the share of a training step that computing the target prompts (ψ forward + backward) takes.
Same work in (a): l virtual tokens, the same padded batches (length min(task max tokens, positions - l), as
train.py), trainable = prompt (l·d) + a linear head (d·C + C), dropout off in both. What differs: PEFT's head
reads BERT's pooler (frozen dense + tanh) over position 0, the first virtual token; ours reads position l ([CLS]).
PEFT has no ψ: its stage-2 row is prompt tuning with the classifier frozen, so that ratio is what ψ and
per-example prompts add.

Run (from the repository root; pip install -r requirements-bench.txt first):
  python bench.py --quick               # all sections at small sizes: 4 min 56 s on 2 CPU cores at load 1.5
  python bench.py                       # full sizes (1,000 rows a task in (b)): about 40 min on 2 busy CPU cores
  python bench.py --quick --threads 1   # on a busy machine: 2 threads then wait on each other (4x slower at load 5)
  python bench.py --sections a,c --device cuda   # on a GPU: bf16 autocast, MFU against the measured bf16 peak
"""
import argparse
import ctypes
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is unreachable here; everything loads from disk
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from amp import (PromptModel, init_prompt, load_encoder, max_positions, prompts_per_example,  # noqa: E402
                 resolve_model)
from dam import SCORERS, DAMAttention  # noqa: E402
from data import collate, load_task, tokenize  # noqa: E402
import demo  # noqa: E402,F401  (adds the demo suites to data.py)

ap = argparse.ArgumentParser(description="Speed of prompted steps: this project against PEFT prompt tuning.")
ap.add_argument("--quick", action="store_true", help="small sizes for every flag left unset (whole run < 5 min on 2 "
                "CPU cores); without it the full sizes")
ap.add_argument("--sections", default="a,b,c", help="which sections to run: a (steps vs PEFT), b (stage 1 end to "
                "end), c (ψ's share of a paper-size step)")
ap.add_argument("--device", default="cpu", help="cpu | cuda (bf16 autocast, MFU against the bf16 matmul peak)")
ap.add_argument("--threads", type=int, default=0, help="torch CPU threads in this process (0: torch's default)")
ap.add_argument("--data-dir", default=os.path.join("..", "shared", "data"), help="folder of <task>/<split>.jsonl")
ap.add_argument("--model", default="all-MiniLM-L6-v2", help="encoder of sections a and b")
ap.add_argument("--prompt-len", type=int, default=20, help="l, virtual tokens in both systems")
ap.add_argument("--batch-size", type=int, default=16, help="examples per step in sections a and b")
ap.add_argument("--tasks", default="sst2,rte,boolq", help="section a: tasks, one row per task and step kind")
ap.add_argument("--rounds", type=int, help="section a: alternating rounds (quick 3, full 6)")
ap.add_argument("--steps", type=int, help="section a: timed steps per system and round (quick 1, full 2)")
ap.add_argument("--suite", help="section b: tasks (quick sst2,rte,boolq; full sst2,rte,qnli,boolq)")
ap.add_argument("--max-train", type=int, help="section b: training rows per task (quick 48, full 1000)")
ap.add_argument("--max-eval", type=int, help="section b: dev rows per task (quick 32, full 200)")
ap.add_argument("--epochs", type=int, default=1, help="section b: epochs per task")
ap.add_argument("--psi-steps", type=int, help="section c: timed paper-size steps (quick 1, no warm-up; full 3)")
ap.add_argument("--baseline-run", action="store_true", help="internal: run section b's padded PEFT baseline and exit")
ap.add_argument("--dam-sizes", default="11,64,256,1024", help="section dam: numbers of tasks n (m = n)")
ap.add_argument("--dam-l", type=int, default=100, help="section dam: prompt length l (paper: 100)")
ap.add_argument("--dam-k", type=int, default=768, help="section dam: query/key size k (paper: 768)")
ap.add_argument("--dam-repeats", type=int, default=3, help="section dam: timed runs after the warm-up (at most)")
ap.add_argument("--dam-budget", type=float, default=30.0, help="section dam: seconds of timed runs per form and n")
ap.add_argument("--dam-max-seconds", type=float, default=60.0, help="section dam: skip forms estimated slower")
ap.add_argument("--dam-dtype", default="float32", choices=["float32", "float64", "bfloat16"], help="section dam: dtype")
SIZES = {"quick": dict(rounds=3, steps=1, suite="sst2,rte,boolq", max_train=48, max_eval=32, psi_steps=1),
         "full": dict(rounds=6, steps=2, suite="sst2,rte,qnli,boolq", max_train=1000, max_eval=200, psi_steps=3)}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def step_flops(encoder, B, T, train=True):
    """Model FLOPs of one prompted step over B sequences of T positions (prompt included), weights frozen:

        forward  = 2·N·B·T + 4·L·B·T²·d      N: weights of the layers' linear maps; attention: Q·Kᵀ and A·V
        backward = 2·N·B·T + 8·L·B·T²·d      input gradients only (no weight gradients); attention: dQ, dK, dV, dA

    The pooler (B tokens) and element-wise work are left out."""
    N = sum(m.weight.numel() for name, m in encoder.named_modules() if isinstance(m, nn.Linear) and "pooler" not in name)
    L, d = encoder.config.num_hidden_layers, encoder.config.hidden_size
    forward = 2 * N * B * T + 4 * L * B * T * T * d
    return forward + (2 * N * B * T + 8 * L * B * T * T * d if train else 0)


def matmul_peak(device, dtype, n, seconds=1.0):
    """Measured FLOP/s of an n×n matmul in dtype: the peak that model-FLOPs utilisation is taken against."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        sync(device) if reps % 10 == 0 else None
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def peft_model(path, num_labels, l, device):
    """PEFT prompt tuning on AutoModelForSequenceClassification (l virtual tokens); trainable: prompt + classifier."""
    from peft import PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification
    base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels)
    return get_peft_model(base, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=l)).to(device).eval()


def timed(fn, batches, steps, first, device):
    """steps calls of fn, on batches first, first + 1, ... (cycling) -> examples/s."""
    sync(device)
    t0, n = time.perf_counter(), 0
    for i in range(first, first + steps):
        fn(batches[i % len(batches)])
        n += len(batches[i % len(batches)]["labels"])
    sync(device)
    return n / (time.perf_counter() - t0)


def peak_mib(fn, b, device):
    """Peak memory of one call fn(b) above what was in use before it, in MiB. CUDA: max_memory_allocated. CPU: growth
    of the peak resident memory (VmHWM), after glibc has handed its free pages back (malloc_trim), so that memory
    freed by earlier steps is not reused unseen; None where that cannot be measured."""
    if device.type == "cpu":
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            return None
    base = _mem_start(device)
    fn(b)
    sync(device)
    peak = _mem_peak(device, base)
    return None if peak is None else peak / 2**20


def median(xs):
    return sorted(xs)[(len(xs) - 1) // 2]


# ----------------------------------------------------------------------------------------------------------
def section_a(a, device):
    """Stage-1 step, stage-2 step and evaluation: ours against PEFT, per task, in alternating rounds."""
    encoder, tok = load_encoder(a.model)
    names, l, B = a.tasks.split(","), a.prompt_len, a.batch_size
    tasks = [load_task(n, a.data_dir, max_train=B * a.steps * a.rounds) for n in names]   # each round: new batches
    room = max_positions(encoder, tok) - l
    batches = []
    for t, x in enumerate(tasks):
        ds = tokenize(x["train"], tok, min(x["info"]["max_tokens"], room))
        rows = [dict(ds[i], task=t) for i in range(len(ds))]
        batches.append([{k: v.to(device) for k, v in collate(rows[i:i + B], tok.pad_token_id).items()}
                        for i in range(0, len(rows), B)])
    model = PromptModel(encoder, [x["info"]["num_labels"] for x in tasks]).to(device).train()
    P = [nn.Parameter(init_prompt(encoder, tok, l, torch.Generator().manual_seed(t)).to(device)) for t in range(len(names))]
    psi = DAMAttention(model.d).to(device)
    P_src = torch.stack([p.detach() for p in P])                                     # (n, l, d) frozen sources
    opt_psi = torch.optim.AdamW(psi.parameters(), lr=1e-4)
    path = resolve_model(a.model)
    peak_dtype, peak_n = (torch.bfloat16, 8192) if device.type == "cuda" else (torch.float32, 1024)
    flops_peak = matmul_peak(device, peak_dtype, peak_n)
    print(f"(a) l={l}, batch {B}, {a.rounds} rounds x {a.steps} steps per system, AB BA AB ...; ratio = ours/PEFT ex/s, "
          f"median [min-max];\n    MiB = peak memory of one step on the task's longest batch above what was in use before it "
          f"({'max_memory_allocated' if device.type == 'cuda' else 'VmHWM growth after malloc_trim'})")
    print(f"{'task':8s} {'step':7s} {'tokens':>6s} {'ours ex/s':>9s} {'PEFT ex/s':>9s} {'ratio':>20s} "
          f"{'ours MiB':>8s} {'PEFT MiB':>8s}")
    mfu = []
    for t, (name, x) in enumerate(zip(names, tasks)):
        C, head = x["info"]["num_labels"], model.heads[t]
        opt1 = torch.optim.AdamW([P[t], *head.parameters()], lr=1e-3)
        pm = peft_model(path, C, l, device)
        classifier = [p for n, p in pm.named_parameters() if p.requires_grad and "prompt_encoder" not in n]
        opt_peft = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-3)
        y = (lambda b: b["labels"].long()) if C > 1 else (lambda b: b["labels"])

        def ours_train(b, prompts):
            with autocast(device):
                logits = model(prompts(b["task"]), b["input_ids"], b["attention_mask"], b["token_type_ids"], b["task"])
            loss = model.loss(logits, b["labels"], b["task"])
            opt1.zero_grad(), opt_psi.zero_grad()
            loss.backward()
            opt1.step() if head.weight.requires_grad else opt_psi.step()

        def ours_eval(b):
            with torch.inference_mode(), autocast(device):
                model(P[t].expand(len(b["task"]), -1, -1), b["input_ids"], b["attention_mask"], b["token_type_ids"],
                      b["task"])

        def peft_train(b):
            with autocast(device):
                loss = pm(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                          token_type_ids=b["token_type_ids"], labels=y(b)).loss
            opt_peft.zero_grad()
            loss.backward()
            opt_peft.step()

        def peft_eval(b):
            with torch.inference_mode(), autocast(device):
                pm(input_ids=b["input_ids"], attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"])

        examples = sum(len(b["labels"]) for b in batches[t])
        T = sum(b["input_ids"].numel() for b in batches[t]) / examples + l      # mean positions, prompt included
        flops = sum(step_flops(encoder, len(b["labels"]), b["input_ids"].shape[1] + l) for b in batches[t])
        kinds = {"stage 1": (lambda b: ours_train(b, lambda task: P[t].expand(len(task), -1, -1)), peft_train, True),
                 "stage 2": (lambda b: ours_train(b, lambda task: prompts_per_example(psi(P_src)[0], task)),
                             peft_train, False),
                 "eval": (ours_eval, peft_eval, True)}
        for kind, (ours, theirs, heads_train) in kinds.items():
            for p in [*head.parameters(), *classifier]:
                p.requires_grad_(heads_train)                   # stage 2: heads frozen in both systems
            model.eval() if kind == "eval" else model.train()
            ours(batches[t][0]), theirs(batches[t][0])          # warm-up
            res = {"ours": [], "peft": []}
            for r in range(a.rounds):
                order = [("ours", ours), ("peft", theirs)][::1 if r % 2 == 0 else -1]
                for who, fn in order:
                    res[who].append(timed(fn, batches[t], a.steps, r * a.steps, device))
                if kind == "stage 1":   # the peak under the same load as the steps: the best of short samples
                    flops_peak = max(flops_peak, matmul_peak(device, peak_dtype, peak_n, 0.2))
            longest = max(batches[t], key=lambda b: b["input_ids"].numel())
            mem = [peak_mib(fn, longest, device) for fn in (ours, theirs)]   # after timing: it trims freed pages
            ratios = [o / p for o, p in zip(res["ours"], res["peft"])]
            mib = ["n/a" if m is None else f"{m:.0f}" for m in mem]
            exs = {w: median(rs) for w, rs in res.items()}
            print(f"{name:8s} {kind:7s} {T:6.0f} {exs['ours']:9.1f} {exs['peft']:9.1f} "
                  f"{median(ratios):7.2f} [{min(ratios):.2f}-{max(ratios):.2f}]      {mib[0]:>8s} {mib[1]:>8s}", flush=True)
            if kind == "stage 1":   # per example: FLOPs and positions over the batches timed
                mfu.append((name, exs["ours"] * T, exs["ours"] * flops / examples))
        for p in [*head.parameters(), *classifier]:
            p.requires_grad_(True)
    print(f"stage-1 step (ours): tokens/s and model-FLOPs utilisation against a measured "
          f"{'bf16' if device.type == 'cuda' else 'float32'} matmul peak of {flops_peak / 1e12:.3f} TFLOP/s")
    for name, tok_s, fl in mfu:
        print(f"{name:8s} {tok_s:9.0f} tokens/s  {fl / 1e12:7.3f} TFLOP/s  MFU {100 * fl / flops_peak:5.1f}%")


# ----------------------------------------------------------------------------------------------------------
def padded_baseline(a, device):
    """Section b's baseline, PEFT's way: one task after another, a fresh PEFT model each, every input padded to the
    task's fixed length (padding="max_length"), E epochs of shuffled batches, dev accuracy after each epoch."""
    encoder, tok = load_encoder(a.model)
    room, path = max_positions(encoder, tok) - a.prompt_len, resolve_model(a.model)
    del encoder
    for name in a.suite.split(","):
        x = load_task(name, a.data_dir, max_train=a.max_train, max_eval=a.max_eval)
        C, L = x["info"]["num_labels"], min(x["info"]["max_tokens"], room)

        def enc(ds):
            pair = ds[0]["text_pair"] is not None
            b = tok(list(ds["text"]), list(ds["text_pair"]) if pair else None, truncation=True, max_length=L,
                    padding="max_length", return_tensors="pt")
            b["labels"] = torch.tensor(list(ds["label"]), dtype=torch.long if C > 1 else torch.float)
            return {k: v.to(device) for k, v in b.items()}
        train, dev = enc(x["train"]), enc(x["dev"])
        pm = peft_model(path, C, a.prompt_len, device)
        opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-2)
        g = torch.Generator().manual_seed(0)
        for epoch in range(a.epochs):
            order = torch.randperm(len(train["labels"]), generator=g)
            for i in range(0, len(order), a.batch_size):
                with autocast(device):
                    loss = pm(**{k: v[order[i:i + a.batch_size]] for k, v in train.items()}).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
            right = 0
            with torch.inference_mode(), autocast(device):
                for i in range(0, len(dev["labels"]), 64):
                    b = {k: v[i:i + 64] for k, v in dev.items() if k != "labels"}
                    right += (pm(**b).logits.argmax(-1) == dev["labels"][i:i + 64]).sum().item()
            acc = f", dev accuracy {100 * right / len(dev['labels']):.1f}" if C > 1 else ""
            print(f"  baseline {name}: {len(order)} rows at {L} tokens, epoch {epoch + 1}{acc}", flush=True)


def section_b(a, device):
    """Stage 1 end to end over a suite: train.py against the padded one-task-at-a-time PEFT loop (both subprocesses,
    so both pay for start-up, loading the encoder and the data)."""
    common = ["--data-dir", a.data_dir, "--max-train", str(a.max_train), "--max-eval", str(a.max_eval), "--epochs",
              str(a.epochs), "--prompt-len", str(a.prompt_len), "--batch-size", str(a.batch_size), "--device", a.device]
    tmp = tempfile.mkdtemp(prefix="bench-")
    runs = {"train.py (ours)": [sys.executable, "train.py", "--stage", "source", "--tasks", a.suite, "--model", a.model,
                                "--out", os.path.join(tmp, "run"), *common],
            "PEFT, padded, one by one": [sys.executable, "bench.py", "--baseline-run", "--suite", a.suite,
                                         "--model", a.model, *common]}
    print(f"(b) stage 1 end to end: {a.suite}, at most {a.max_train} train / {a.max_eval} dev rows per task, "
          f"{a.epochs} epoch(s), batch {a.batch_size}, l={a.prompt_len}")
    secs, env = {}, dict(os.environ, HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {}))
    try:
        for who, cmd in runs.items():
            load, t0 = os.getloadavg()[0], time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(os.path.abspath(__file__)),
                               env=env)
            secs[who] = time.perf_counter() - t0
            if p.returncode != 0:
                last = (p.stderr.strip().splitlines() or ["no output"])[-1]
                sys.exit(f"bench.py: error: {who} failed (exit {p.returncode}): {last}")
            print(f"{who:26s} {secs[who]:7.1f} s   ({' '.join(cmd[1:3])} ...; load average before: {load:.1f})",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ours, theirs = secs.values()
    print(f"padded PEFT / ours = {theirs / ours:.2f}x the wall-clock time")


# ----------------------------------------------------------------------------------------------------------
def psi_flops(n, l, d, k):
    """ψ forward + backward (paper 3.2.2): forward P·W_Q, P·W_K (2·n·l·d·k each), P·W_V and A·V (2·n·l·d² + 2·n²·l·d);
    backward (W_Q, W_K, W_V trained, P frozen): the weight gradients, about the forward again."""
    return 2 * (2 * 2 * n * l * d * k + 2 * n * l * d * d + 2 * n * n * l * d)


def section_c(a, device):
    """ψ forward + backward as a share of a stage-2 training step at the paper's size (target: under 1%)."""
    from transformers import AutoModel, RobertaConfig
    n, l, B, T = 11, 100, 8, 384                                                  # paper 4.2: l = 100, 384 tokens
    torch.manual_seed(0)
    encoder = AutoModel.from_config(RobertaConfig()).to(device)                 # roberta-base sizes, random weights
    for p in encoder.parameters():
        p.requires_grad_(False)
    model = PromptModel(encoder, [2] * n).to(device).train()
    for p in model.heads.parameters():
        p.requires_grad_(False)                                                  # paper: only ψ is trained
    d = model.d
    P = torch.randn(n, l, d, device=device) * 0.02                               # (n, l, d) frozen source prompts
    psi = DAMAttention(d).to(device)
    opt = torch.optim.AdamW(psi.parameters(), lr=5e-5)
    ids = torch.randint(3, encoder.config.vocab_size, (B, T), device=device)    # (B, T) no padding
    mask, task = torch.ones_like(ids), torch.randint(n, (B,), device=device)
    G = torch.randn(n, l, d, device=device)

    def psi_only():
        with autocast(device):
            P_target = psi(P)[0]                                                 # (n, l, d)
        (P_target.float() * G).sum().backward()

    def full_step():
        with autocast(device):
            logits = model(prompts_per_example(psi(P)[0], task), ids, mask, torch.zeros_like(ids), task)
        loss = model.loss(logits, torch.zeros(B, device=device), task)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def clock(fn, reps):
        times = []
        for _ in range(reps):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t0)
        return median(times)
    clock(psi_only, 2)
    t_psi = clock(psi_only, 10)
    clock(full_step, 1) if a.psi_steps > 1 else None                             # warm-up (skipped by --quick)
    t_step = clock(full_step, a.psi_steps)
    f_psi, f_step = psi_flops(n, l, d, d), step_flops(encoder, B, T + l)
    print(f"(c) stage 2 at the paper's size: roberta-base (random weights), n={n}, l={l}, d=k={d}, batch {B} x {T} "
          f"tokens; step = ψ + prompted forward/backward + AdamW on ψ, median of {a.psi_steps}")
    print(f"ψ forward+backward {1e3 * t_psi:8.1f} ms   training step {t_step:7.2f} s   ψ share {100 * t_psi / t_step:.2f}% "
          f"of the time, {100 * f_psi / (f_psi + f_step):.2f}% of the FLOPs (target: under 1%)")


# ----------------------------------------------------------------------------------------
# Benchmark. Time: median over timed runs after one warm-up (fast forms repeat the call
# inside each run). Memory, two columns: "est" is the dominant allocation computed from
# the shapes; "peak" is measured: on CPU the growth of the process's peak resident memory
# (VmHWM in /proc/self/status, reset through /proc/self/clear_refs) during the timed runs,
# i.e. memory the form had to take from the OS; on CUDA torch.cuda.max_memory_allocated.

def _proc(path, key, kib=True):
    """The 'key: value' field of a /proc file (in bytes if kib); None where there is no /proc."""
    try:
        value = next(ln.split(":", 1)[1].strip() for ln in open(path) if ln.startswith(key))
    except (OSError, StopIteration):
        return None
    return int(value.split()[0]) * 1024 if kib else value


def _mem_start(device):
    """Reset the peak-memory counter; return the baseline in bytes (None: cannot measure)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS
    except OSError:
        return None
    return _proc("/proc/self/status", "VmRSS")


def _mem_peak(device, base):
    if base is None:
        return None
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - base
    return _proc("/proc/self/status", "VmHWM") - base


def estimate_bytes(form, n, m, l, k, b):
    """Dominant allocation of one call, in bytes (b bytes per element)."""
    if form == "conv":
        return (n * l) * (m * l) * b + n * m * b  # S, then S'
    if form == "loop":
        return l * l * b + n * m * b  # one block b_ij at a time
    return (n + m) * k * b + n * m * b  # pooled Q and K (einsum sums a, b out first)


def section_dam(args, device):
    dtype = getattr(torch, args.dam_dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else _proc("/proc/cpuinfo", "model name", kib=False) or "unknown CPU")
    print(f"DAM benchmark | {machine} | {torch.get_num_threads()} threads | torch {torch.__version__}")
    print(f"l={args.l} k={args.k} {args.dam_dtype} on {device}; median of runs after 1 warm-up; peak = "
          f"measured ({'VmHWM growth' if device.type == 'cpu' else 'max_memory_allocated'}), est = from shapes")
    print(f"{'n':>6} {'form':>8} {'median ms':>11} {'runs':>5} {'peak MiB':>9} {'est MiB':>9}")
    torch.manual_seed(0)
    last = {}  # form -> (n, seconds) at its last timed size, to extrapolate to the next one
    for n in [int(s) for s in args.dam_sizes.split(",")]:
        Q = torch.randn(n, args.dam_l, args.dam_k, dtype=dtype, device=device)  # (n, l, k)
        K = torch.randn(n, args.dam_l, args.dam_k, dtype=dtype, device=device)  # (n, l, k)
        med = {}
        for form in ("loop", "conv", "einsum", "dam", "maxpool"):
            f, row = SCORERS[form], f"{n:>6} {form:>8} "
            need = estimate_bytes(form, n, n, args.dam_l, args.dam_k, Q.element_size())
            free = (torch.cuda.mem_get_info(device)[0] if device.type == "cuda"
                    else _proc("/proc/meminfo", "MemAvailable"))
            if free is not None and need > 0.8 * free - 2**30:  # keep 20% + 1 GiB free
                print(row + f"skipped: needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
                continue
            est_s = last[form][1] * (n / last[form][0]) ** 2 if form in last else 0.0  # <= O(n^2)
            if est_s > args.dam_max_seconds:
                print(row + f"skipped: ~{est_s:.0f} s estimated")
                continue
            sync(); t0 = time.perf_counter(); f(Q, K); sync()
            t_warm = max(time.perf_counter() - t0, 1e-9)
            inner = max(1, int(0.02 / t_warm))  # calls per run, so that fast forms run >= 20 ms
            runs = max(1, min(args.dam_repeats, int(args.dam_budget / t_warm)))
            times, peaks = [], []
            for _ in range(runs):
                base = _mem_start(device)
                sync(); t0 = time.perf_counter()
                for _ in range(inner):
                    f(Q, K)
                sync(); times.append((time.perf_counter() - t0) / inner)
                peaks.append(_mem_peak(device, base))
            peak = float("nan") if None in peaks else max(peaks)
            med[form] = sorted(times)[(len(times) - 1) // 2]
            last[form] = (n, med[form])
            print(row + f"{med[form] * 1e3:>11.3f} {runs:>5} {peak / 2**20:>9.1f} {need / 2**20:>9.1f}")
        ratios = [f"conv/dam time = {med['conv'] / med['dam']:.0f}x"] if "conv" in med else []
        ratios.append(f"dam/maxpool time = {med['dam'] / med['maxpool']:.2f}x")
        print(f"{'':>15} " + ", ".join(ratios))


if __name__ == "__main__":
    a = ap.parse_args()
    for k, v in SIZES["quick" if a.quick else "full"].items():
        setattr(a, k, v if getattr(a, k) is None else getattr(a, k))
    if a.device not in ("cpu", "cuda") or (a.device == "cuda" and not torch.cuda.is_available()):
        sys.exit(f"bench.py: error: --device {a.device}: use cpu, or cuda on a machine where torch sees a GPU")
    if set(a.sections.split(",")) - {"a", "b", "c", "dam"}:   # the flags first, then what the machine lacks
        sys.exit(f"bench.py: error: --sections {a.sections}: give a comma list of a, b, c")
    if not os.path.isdir(a.data_dir):
        sys.exit(f"bench.py: error: no data folder {a.data_dir}; pass --data-dir (a copy of ../shared/data)")
    try:
        import peft
    except ImportError:
        sys.exit("bench.py: error: PEFT is not installed; pip install -r requirements-bench.txt")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(a.threads or torch.get_num_threads())
    device = torch.device(a.device)
    if a.baseline_run:
        padded_baseline(a, device)
        sys.exit(0)
    cpu = _proc("/proc/cpuinfo", "model name", kib=False) or platform.processor() or "unknown CPU"
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"peft {peft.__version__}{', GPU ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    for s in a.sections.split(","):
        {"a": section_a, "b": section_b, "c": section_c, "dam": section_dam}[s](a, device)
    print(f"bench.py: {time.perf_counter() - t0:.0f} s")
