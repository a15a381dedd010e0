"""Tests of transfer.py: the rank correlation on hand-made values, and one tiny study through the
command line (each cell is the transferred prompt's score minus prompt tuning's, the run's files
stay as they were, and a second call trains nothing again; with an ATTEMPT run, its ranking joins;
a target asked for later joins the sub-runs).

  python -m pytest -q tests/test_transfer.py
"""

import glob
import json
import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import amp  # noqa: E402
from lib import runfiles  # noqa: E402
import metrics  # noqa: E402
import eval as evaluation  # noqa: E402,F401
import train  # noqa: E402
from studies import transfer  # noqa: E402
from baselines import AttemptAttention, scaled_sizes  # noqa: E402
from data import collate, load_task  # noqa: E402
from lib.tokens import tokenize  # noqa: E402
from test_amp import make_tiny_encoder  # noqa: E402


def test_spearman_is_one_for_the_same_order_minus_one_for_the_reverse_and_averages_ties():
    assert transfer.spearman([1, 2, 3, 4], [10, 20, 35, 90]) == pytest.approx(1.0)
    assert transfer.spearman([1, 2, 3, 4], [9, 5, 2, 1]) == pytest.approx(-1.0)
    assert list(transfer.ranks([5, 1, 5, 3])) == [3.5, 1.0, 3.5, 2.0]
    hand = 1.5 / 3**0.5  # hand-computed, ties shared
    assert transfer.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(hand)


def test_per_target_gives_each_targets_spread_over_seeds_and_how_far_the_measured_rows_agree():
    def run(M, rho):  # a run's results for target t: M over sources a, b, c, and AMP's ρ
        return dict(measured={"t": dict(zip("abc", M))}, spearman={"amp": {"t": rho}})

    res = {"s0": run([1.0, 2.0, 6.0], 0.5), "s1": run([6.0, 2.0, 1.0], -0.5)}
    res["s2"] = run([2.0, 4.0, 12.0], 1.0)
    out = transfer.per_target(res, ["t"])["t"]
    assert out["best"] == pytest.approx([8.0, 8**0.5])  # max of each row: 6, 6, 12
    assert out["random"] == pytest.approx([4.0, 2**0.5])  # row means: 3, 3, 6
    assert out["spearman"]["amp"] == pytest.approx([1 / 3, (7 / 18) ** 0.5])
    # s0-s1 reversed, s0-s2 same order
    assert out["agreement"] == pytest.approx([-1.0, 1.0, -1.0])


TASKS = ["senti_movies", "senti_food", "colours"]


def tensors(out, *path):
    """The tensors of the file at OUT/path."""
    return runfiles.load_tensors(os.path.join(out, *path), {})[0]


def probe_ranks_the_sources(out):
    """With select's probe.json in the run, transfer.py ranks the sources by its dev scores too."""
    os.makedirs(os.path.join(out, "select"))  # the probe's dev scores, rows in another task order
    dev = [[1.0, 2.0, 3.0], [40.0, 50.0, 60.0], [7.0, 8.0, 9.0]]  # row: colours, senti_food, movies
    runfiles.write_json(os.path.join(out, "select", "probe.json"), dict(tasks=TASKS[::-1], dev=dev))
    transfer.main(["--out", out, "--targets", "senti_food"])
    r = json.load(open(os.path.join(out, "transfer.json")))
    assert r["rankings"]["probe"]["senti_food"] == {"senti_movies": 60.0, "colours": 40.0}
    assert r["top1_gain"]["probe"]["senti_food"] == r["measured"]["senti_food"]["senti_movies"]


def test_transfer_cells_are_the_transferred_prompts_score_minus_prompt_tunings(tmp_path):
    tiny, out = make_tiny_encoder(tmp_path / "tiny"), str(tmp_path / "run")
    common = ["--max-train", "32", "--max-eval", "30", "--prompt-len", "4", "--max-steps", "2"]
    flags = ["--epochs", "1", "--lr", "0.02", "--out", out]
    train.main(["--stage", "source", "--tasks", ",".join(TASKS), "--model", tiny, *common, *flags])
    train.main(["--stage", "target", "--max-steps", "2", "--out", out])
    source = os.path.join(out, "source")
    before = {f: open(os.path.join(source, f), "rb").read() for f in os.listdir(source)}
    transfer.main(["--out", out, "--targets", "senti_food", "--max-steps", "2"])
    r = json.load(open(os.path.join(out, "transfer.json")))
    assert set(r["measured"]["senti_food"]) == {"senti_movies", "colours"}
    sub = json.load(open(os.path.join(out, "transfer", "colours", "config.json")))
    sub = sub["spot-m"]  # prompt tuning's flags
    assert (sub["epochs"], sub["lr"], sub["max_steps"]) == (1, 0.02, 2)
    assert all(open(os.path.join(source, f), "rb").read() == b for f, b in before.items())
    enc, tok = amp.load_encoder(tiny)
    model = amp.PromptModel(enc, [2, 2, 2])
    report = tokenize(load_task("senti_food", max_train=32, max_eval=30)["report"], tok, 64)
    for S in ["senti_movies", "colours"]:  # the cell, recomputed from the saved transferred prompt
        W = tensors(out, "transfer", S, "spot-m", "target", "senti_food.safetensors")
        model.heads[1].load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
        got = metrics.evaluate(model, W["P"], report, 1, ["accuracy"], 16, "cpu")["accuracy"]
        assert r["measured"]["senti_food"][S] == pytest.approx(got - r["pt"]["senti_food"])
    P = torch.stack([tensors(out, "source", f"{t}.safetensors")["P"] for t in TASKS])
    m = P.mean(dim=1)
    dot = r["rankings"]["dot"]["senti_food"]["colours"]
    assert dot == pytest.approx(float(m[1] @ m[2]), rel=1e-5)
    A = json.load(open(os.path.join(out, "attention.json")))["A"]
    assert r["rankings"]["amp"]["senti_food"] == {"senti_movies": A[1][0], "colours": A[1][2]}
    top = "senti_movies" if A[1][0] > A[1][2] else "colours"  # AMP's top pick, and its transfer
    assert r["top1_gain"]["amp"]["senti_food"] == r["measured"]["senti_food"][top]
    cell = os.path.join(out, "transfer", "colours", "spot-m", "target", "senti_food.safetensors")
    stamp = os.stat(cell).st_mtime_ns
    transfer.main(["--out", out, "--targets", "senti_food"])  # done: nothing is trained again
    assert os.stat(cell).st_mtime_ns == stamp
    train.main(["--stage", "target", "--method", "attempt", "--max-steps", "2", "--out", out])
    transfer.main(["--out", out, "--targets", "senti_food"])  # now with ATTEMPT's ranking too
    r = json.load(open(os.path.join(out, "transfer.json")))
    # ATTEMPT's weights on the other sources, mean over the report
    row = r["rankings"]["attempt"]["senti_food"]
    att = AttemptAttention(model.d, scaled_sizes(model.d, 4)["bottleneck"])
    att.load_state_dict(tensors(out, "attempt", "attention.safetensors"))
    own = tensors(out, "attempt", "target", "senti_food.safetensors")["P"]
    b = collate([dict(x, task=1) for x in report], model.pad_id)  # every reporting row in one batch
    with torch.no_grad():
        x = enc.get_input_embeddings()(b["input_ids"])
        w = att(P, own.expand(len(report), -1, -1), x, b["attention_mask"])[1]
    want = {"senti_movies": float(w[:, 0].mean()), "colours": float(w[:, 2].mean())}
    assert row == pytest.approx(want, rel=1e-4)
    top = max(row, key=row.get)
    assert r["top1_gain"]["attempt"]["senti_food"] == r["measured"]["senti_food"][top]
    probe_ranks_the_sources(out)
    # a target asked for later joins; the done ones stay as they were
    transfer.main(["--out", out, "--targets", "senti_food,colours", "--max-steps", "2"])
    assert os.stat(cell).st_mtime_ns == stamp
    r = json.load(open(os.path.join(out, "transfer.json")))
    assert set(r["measured"]["colours"]) == {"senti_movies", "senti_food"}


def test_a_target_outside_the_run_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"run": {"tasks": TASKS, "data_dir": None}}))
    with pytest.raises(SystemExit) as e:
        transfer.main(["--out", str(out), "--targets", "para_people"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--targets para_people not in the run's tasks" in err


def test_jobs_2_trains_the_same_prompts_as_jobs_1_and_a_stopped_worker_is_one_line(
    tmp_path, monkeypatch, capfd
):
    """Two copies of a run: in one, the sub-runs are trained one after another in this process; in
    the other, in two spawned workers (one thread each, as here), where a source prompt cut short
    stops a worker's sub-run: the command ends with transfer.py's one line, and the same command,
    the file mended, resumes the sub-runs and writes bit-identical tensors."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the workers inherit it
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # here, and 1 // 2 floored at 1 in each worker
    try:
        tiny, run = make_tiny_encoder(tmp_path / "tiny"), tmp_path / "run"
        flags = ["--max-train", "32", "--max-eval", "30", "--prompt-len", "4", "--max-steps", "2"]
        tasks = ["--tasks", ",".join(TASKS), "--epochs", "1", "--out", str(run)]
        train.main(["--stage", "source", "--model", tiny, *tasks, *flags])  # measure needs no more
        for name in ("one", "two"):
            shutil.copytree(run, tmp_path / name)
        in_workers_and_here(tmp_path, capfd)
    finally:
        torch.set_num_threads(threads)


def in_workers_and_here(tmp_path, capfd):
    targets = ["senti_food", "colours"]  # three sub-runs, four transferred prompts
    transfer.measure(str(tmp_path / "one"), targets, 3, jobs=1)
    good = (tmp_path / "run" / "source" / "colours.safetensors").read_bytes()
    (tmp_path / "two" / "source" / "colours.safetensors").write_bytes(good[:100])  # cut short
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        transfer.measure(str(tmp_path / "two"), targets, 3, jobs=2)
    out, err = capfd.readouterr()
    said = [x for x in err.splitlines() if "error" in x]
    assert e.value.code == 2 and len(said) == 1 and "Traceback" not in out + err
    assert said[0].startswith("transfer.py: error: transfer from ") and "damaged" in said[0]
    copies = tmp_path / "two" / "**" / "source" / "colours.safetensors"
    for f in glob.glob(str(copies), recursive=True):
        open(f, "wb").write(good)  # mended, wherever it was copied to
    transfer.measure(str(tmp_path / "two"), targets, 3, jobs=2)  # each sub-run goes on

    def sha(name):  # each transferred prompt's checksum, kept in its metadata
        found = glob.glob(str(tmp_path / name / "transfer/*/spot-m/target/*.safetensors"))
        meta = {os.path.relpath(f, tmp_path / name): runfiles.load_tensors(f, {})[1] for f in found}
        return {f: m["sha256"] for f, m in meta.items()}

    assert len(sha("one")) == 4 and sha("two") == sha("one")
