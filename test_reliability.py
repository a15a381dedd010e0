"""Reliability of train.py: a killed run resumes to the same prompts, a folder holding a run is never overwritten
without a flag, a user's mistake gets one line and exit code 2 before a model loads, a non-finite loss stops the
run naming step and task, files that do not fit name both sides, and one seed gives one result.

  python -m pytest -q test_reliability.py
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from safetensors.torch import load_file  # noqa: E402

from test_amp import SMALL, make_tiny_encoder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny"))


def train(*args, wait=True):
    cmd = [sys.executable, os.path.join(HERE, "train.py"), *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)


def source_args(tiny, out, *extra):
    return ["--stage", "source", "--tasks", "senti_food,colours", "--model", tiny, *SMALL, "--epochs", "8",
            "--ckpt-every", "1", "--out", out, *extra]


def tensors(folder):
    return {f: load_file(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".safetensors")}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[f][k], b[f][k]) for f in a for k in a[f])


def kill_after_checkpoint(proc, log, key, step):
    """SIGKILL proc as soon as log.jsonl records a checkpoint of `key` at global step >= step."""
    while proc.poll() is None:
        if os.path.exists(log):
            for line in open(log).read().splitlines():
                r = json.loads(line) if line.endswith("}") else {}
                if r.get("event") == "checkpoint" and r["key"] == key and r["global_step"] >= step:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return
        time.sleep(0.005)
    raise AssertionError(f"the run ended (code {proc.returncode}) before the checkpoint to kill at: {proc.stderr.read()}")


@pytest.mark.parametrize("stage", ["source", "target"])
def test_a_killed_run_resumes_to_the_prompts_of_an_uninterrupted_run(tiny, tmp_path, stage):
    ref, cut = str(tmp_path / "ref"), str(tmp_path / "cut")
    assert train(*source_args(tiny, ref)).returncode == 0
    if stage == "target":                                   # the run to kill needs finished source prompts
        assert train(*source_args(tiny, cut)).returncode == 0
    target = ["--stage", "target", "--epochs", "6", "--ckpt-every", "1"]
    assert train(*target, "--out", ref).returncode == 0
    proc = train(*(source_args(tiny, cut) if stage == "source" else [*target, "--out", cut]), wait=False)
    kill_after_checkpoint(proc, os.path.join(cut, "log.jsonl"), "source:colours" if stage == "source" else "target", 5)
    assert proc.returncode == -signal.SIGKILL and os.path.exists(os.path.join(cut, "ckpt.pt"))
    resumed = train("--stage", stage, "--resume", "--out", cut)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch" in resumed.stdout
    if stage == "source":
        assert train(*target, "--out", cut).returncode == 0
    assert same(tensors(os.path.join(ref, "source")), tensors(os.path.join(cut, "source")))
    assert same(tensors(os.path.join(ref, "target")), tensors(os.path.join(cut, "target")))


def test_a_folder_holding_a_run_is_never_overwritten_without_a_flag(tiny, tmp_path):
    out = str(tmp_path / "run")
    assert train(*source_args(tiny, out, "--max-steps", "2")).returncode == 0
    before = open(os.path.join(out, "source", "colours.safetensors"), "rb").read()
    again = train(*source_args(tiny, out, "--max-steps", "2", "--seed", "5"))
    assert again.returncode == 2 and "--overwrite" in again.stderr and "already holds a run" in again.stderr
    assert open(os.path.join(out, "source", "colours.safetensors"), "rb").read() == before
    assert train(*source_args(tiny, out, "--max-steps", "2", "--seed", "5", "--overwrite")).returncode == 0
    assert open(os.path.join(out, "source", "colours.safetensors"), "rb").read() != before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    other = train(*source_args(tiny, str(tmp_path / "mine")))
    assert other.returncode == 2 and "does not hold an amp run" in other.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"
    assert train("--stage", "target", "--max-steps", "2", "--out", out).returncode == 0
    redo = train("--stage", "target", "--out", out)
    assert redo.returncode == 2 and "--overwrite" in redo.stderr


@pytest.mark.parametrize("args,message", [
    (["--stage", "source", "--tasks", "sst2,nope"], "unknown task 'nope'"),
    (["--stage", "middle"], "invalid choice: 'middle'"),
    (["--scores", "mean", "--stage", "target"], "invalid choice: 'mean'"),
    (["--stage", "source", "--batch-size", "0"], "--batch-size must be positive, got 0"),
    (["--stage", "source", "--prompt-len", "-3"], "--prompt-len must be positive, got -3"),
    (["--stage", "source", "--data-dir", "/no/such/folder"], "--data-dir /no/such/folder does not exist"),
    (["--stage", "target"], "holds no source prompts; run python train.py --stage source"),
    ([], "say what to train"),
    (["--stage", "source", "--resume", "--overwrite"], "give one of them"),
])
def test_a_bad_command_line_gets_one_line_and_exit_code_2_before_a_model_loads(tmp_path, args, message):
    r = train(*args, "--model", "/no/such/model", "--out", str(tmp_path / "out"))   # a model load would fail otherwise
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not os.path.exists(tmp_path / "out")


def test_stage_target_before_stage_source_finished_says_how_to_continue(tiny, tmp_path):
    out = str(tmp_path / "run")
    assert train(*source_args(tiny, out, "--max-steps", "2")).returncode == 0
    os.remove(os.path.join(out, "source", "colours.safetensors"))
    r = train("--stage", "target", "--out", out)
    assert r.returncode == 2 and "no source prompt for colours" in r.stderr and "--resume" in r.stderr


def test_a_non_finite_loss_stops_naming_step_and_task_and_keeps_the_checkpoint(tiny, tmp_path):
    out = str(tmp_path / "run")
    r = train(*source_args(tiny, out, "--lr", "1e30", "--warmup", "0"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "at step 2 of source:senti_food" in r.stderr and "ckpt.pt" in r.stderr and "lower --lr" in r.stderr
    assert os.path.exists(os.path.join(out, "ckpt.pt"))


def test_files_that_do_not_fit_the_run_stop_it_naming_both_sides(tiny, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train(*source_args(tiny, a, "--max-steps", "1")).returncode == 0
    assert train(*source_args(tiny, b, "--max-steps", "1", "--prompt-len", "3")).returncode == 0
    shutil.copy(os.path.join(a, "source", "colours.safetensors"), os.path.join(b, "source", "colours.safetensors"))
    r = train("--stage", "target", "--out", b)
    assert r.returncode == 2 and "was made with l=4, but this run has l=3" in r.stderr and "Traceback" not in r.stderr


def test_one_seed_gives_identical_prompts_and_metrics(tiny, tmp_path):
    runs = [str(tmp_path / "one"), str(tmp_path / "two")]
    for out in runs:
        assert train(*source_args(tiny, out, "--max-steps", "6")).returncode == 0
    assert same(*(tensors(os.path.join(out, "source")) for out in runs))
    metrics = [json.load(open(os.path.join(out, "source", "colours.json"))) for out in runs]
    assert metrics[0] == metrics[1]
    other = str(tmp_path / "three")
    assert train(*source_args(tiny, other, "--max-steps", "6", "--seed", "2")).returncode == 0
    assert not same(tensors(os.path.join(runs[0], "source")), tensors(os.path.join(other, "source")))


def test_the_gradient_through_a_mixed_task_batch_repeats_bit_for_bit():
    """Stage 2 gives each example its task's target prompt; on a CPU the backward of P[task] is not repeatable."""
    from amp import prompts_per_example
    g = torch.Generator().manual_seed(0)
    P0, G = torch.randn(8, 20, 384, generator=g), torch.randn(64, 20, 384, generator=g)  # (n, l, d), (B, l, d)
    task = torch.randint(0, 8, (64,), generator=g)                                         # (B,), tasks repeat

    def grad():
        P = P0.clone().requires_grad_(True)
        (prompts_per_example(P, task) * G).sum().backward()
        return P.grad
    first = grad()
    assert all(torch.equal(first, grad()) for _ in range(30))
