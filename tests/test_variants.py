"""Tests of stage target's variants on a tiny run: prompt tuning continued and AMP then tuned start
from each task's prompt and head (stage 1's, AMP's); AMP then tuned needs AMP's target prompts;
--attn identity trains W_V alone.

  python -m pytest -q tests/test_variants.py
"""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from lib import runfiles  # noqa: E402
import train  # noqa: E402
from conftest import TASKS, copy_run  # noqa: E402  (and the fixture source_run)


@pytest.mark.parametrize("method,start", [("pt-continued", "source"), ("amp-tuned", "target")])
def test_pt_continued_and_amp_tuned_start_from_each_tasks_prompt_and_head(
    source_run, tmp_path, method, start
):
    out = copy_run(source_run[0], tmp_path / "run")  # a learning rate of ~0: the start is saved
    rates = ["--lr", "1e-30", "--head-lr", "1e-30", "--max-steps", "1", "--out", out]
    heads = ["--train-heads", "--head-lr", "1", "--lr", "1e-2", "--max-steps", "3"]  # heads move
    if method == "amp-tuned":
        train.main(["--stage", "target", "--overwrite", "--out", out, *heads])
    train.main(["--stage", "target", "--method", method, "--overwrite", *rates])
    for n in TASKS:
        src, _ = runfiles.load_tensors(os.path.join(out, start, f"{n}.safetensors"), {})
        old, _ = runfiles.load_tensors(os.path.join(out, "source", f"{n}.safetensors"), {})
        assert torch.equal(src["P"], old["P"]) == (start == "source"), n
        assert torch.equal(src["head.weight"], old["head.weight"]) == (start == "source"), n
        path = os.path.join(out, method, "target", f"{n}.safetensors")
        got, _ = runfiles.load_tensors(path, {})
        for k in ["P", "head.weight", "head.bias"]:
            assert torch.allclose(got[k], src[k], atol=1e-6), (n, k)


def test_attn_identity_trains_only_w_v_and_each_target_prompt_is_its_own_source_prompt_times_w_v(
    source_run, tmp_path
):
    out = copy_run(source_run[0], tmp_path / "run")
    argv = ["--stage", "target", "--attn", "identity", "--overwrite", "--lr", "1e-2"]
    train.main(argv + ["--max-steps", "3", "--out", out])
    psi, _ = runfiles.load_tensors(os.path.join(out, "psi.safetensors"), {})
    assert set(psi) == {"W_V"} and not torch.allclose(psi["W_V"], torch.eye(32))  # W_V, alone
    for i, n in enumerate(TASKS):
        src, _ = runfiles.load_tensors(os.path.join(out, "source", f"{n}.safetensors"), {})
        got, _ = runfiles.load_tensors(os.path.join(out, "target", f"{n}.safetensors"), {})
        assert torch.allclose(got["P"], src["P"] @ psi["W_V"], atol=1e-5)
        assert torch.equal(got["A"], torch.eye(2)[i])


def test_amp_tuned_before_stage_target_stops_with_one_line(source_run, tmp_path, capsys):
    out = copy_run(source_run[0], tmp_path / "run")
    for f in ("attention.json", "psi.safetensors"):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    with pytest.raises(SystemExit) as e:
        train.main(["--stage", "target", "--method", "amp-tuned", "--out", out])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "no AMP target prompts" in err, err


def test_psi_init_probe_starts_a_at_the_softmax_of_the_probe_rows_it_keeps_in_out_probe(
    source_run, tmp_path
):
    out = copy_run(source_run[0], tmp_path / "run")  # a learning rate of ~0: A stays at its start
    argv = ["--stage", "target", "--psi-init", "probe", "--overwrite", "--lr", "1e-30"]
    train.main(argv + ["--max-steps", "1", "--out", out])
    probe = runfiles.read_json(os.path.join(out, "probe", "probe.json"))
    assert probe["tasks"] == TASKS
    R = torch.tensor(probe["dev"], dtype=torch.float64) + 5.0 * torch.eye(2)  # select's margin
    A = torch.tensor(runfiles.read_json(os.path.join(out, "attention.json"))["A"])
    assert torch.allclose(A.double(), torch.softmax(R / 2.0, dim=-1), atol=1e-4), (A, R)
