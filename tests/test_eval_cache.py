"""Tests of eval.py's cache, OUT/eval_cache.json: a method is scored again only when what its scores
depend on changed (its files, the rows, the settings), --rescore scores all, a damaged cache is
written anew, and what is printed and written is what a fresh scoring gives. Tiny encoder, two demo
tasks (test_amp.py's).

  python -m pytest -q test_eval_cache.py
"""

import json
import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import eval as evaluation  # noqa: E402
from lib import runfiles  # noqa: E402
import train  # noqa: E402
from data import load_task  # noqa: E402
from test_amp import SMALL, make_tiny_encoder  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run with source and target prompts on two demo tasks, not yet evaluated."""
    tiny = make_tiny_encoder(tmp_path_factory.mktemp("tiny"))
    out = str(tmp_path_factory.mktemp("run") / "r")
    common = ["--out", out, "--max-steps", "4"]
    source = ["--stage", "source", "--tasks", "senti_food,colours", "--model", tiny]
    train.main([*source, *SMALL, *common])
    train.main(["--stage", "target", *common])
    return out


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the run for one test, with no cache."""
    return str(shutil.copytree(trained, tmp_path / "r"))


def scored(monkeypatch):
    """The methods evaluate scores from now on, one entry per (method, task)."""
    calls, real = [], evaluation.evaluate

    def spy(*args, **kw):
        calls.append(kw["desc"].split()[0])
        return real(*args, **kw)

    monkeypatch.setattr(evaluation, "evaluate", spy)
    return calls


def eval_run(capsys, *argv):
    """eval.py's printout and its eval.json (text, dict) for argv."""
    evaluation.main(["--out", *argv])
    text = capsys.readouterr().out
    return text, json.load(open(os.path.join(argv[0], "eval.json")))


def table1(text):
    return text.split("Table 1")[1].split("Table 2")[0]


def test_a_second_eval_scores_nothing_and_prints_and_writes_the_same(run, monkeypatch, capsys):
    calls = scored(monkeypatch)
    first, written = eval_run(capsys, run)
    assert sorted(calls) == ["amp", "amp", "prompt", "prompt"]
    raw = open(os.path.join(run, "eval.json"), "rb").read()
    calls.clear()
    second, again = eval_run(capsys, run)
    assert calls == []
    assert f"from {evaluation.CACHE}: prompt, amp; scored now: none" in second
    assert table1(second) == table1(first) and again == written
    assert open(os.path.join(run, "eval.json"), "rb").read() == raw  # ms/example included
    day = written["measured"]["amp"]
    assert "measured" in second.split("Table 2")[1] and day in second.split("Table 2")[1]


def test_a_changed_target_file_rescores_only_amp_and_its_new_score_is_printed_and_written(
    run, monkeypatch, capsys
):
    eval_run(capsys, run)
    path = os.path.join(run, "target", "colours.safetensors")
    W, meta = runfiles.load_tensors(path, {})
    W["head.weight"], W["head.bias"] = 0 * W["head.weight"], W["head.bias"].new_tensor([9, -9])
    runfiles.save_tensors(path, W, meta)  # now every row is read as class 0
    calls = scored(monkeypatch)
    text, written = eval_run(capsys, run)
    assert calls == ["amp", "amp"] and "from eval_cache.json: prompt; scored now: amp" in text
    labels = load_task("colours", max_train=64, max_eval=32)["report"]["label"]
    zeros = 100.0 * labels.count(0) / len(labels)
    assert written["scores"]["amp"]["colours"]["accuracy"] == zeros
    amp_column = [line.split()[-1] for line in table1(text).splitlines() if "colours" in line]
    assert amp_column == [f"{zeros:.1f}"]
    fresh_text, fresh = eval_run(capsys, run, "--rescore")
    assert fresh["scores"] == written["scores"] and table1(fresh_text) == table1(text)


def test_rescore_scores_every_method_again_to_the_same_scores(run, monkeypatch, capsys):
    _, written = eval_run(capsys, run)
    calls = scored(monkeypatch)
    text, again = eval_run(capsys, run, "--rescore")
    assert sorted(calls) == ["amp", "amp", "prompt", "prompt"]
    assert "scored now: prompt, amp" in text and again["scores"] == written["scores"]


def test_another_batch_size_rescores_every_method(run, monkeypatch, capsys):
    eval_run(capsys, run)
    calls = scored(monkeypatch)
    eval_run(capsys, run, "--batch-size", "7")
    assert sorted(calls) == ["amp", "amp", "prompt", "prompt"]


def tampered(text):
    """The cache with AMP's score on colours changed and its key kept."""
    cache = json.loads(text)
    cache["methods"]["amp"]["scores"]["colours"]["accuracy"] = -1.0
    return json.dumps(cache)


@pytest.mark.parametrize(
    "damage",
    [lambda t: "\x00garbage{", lambda t: t[: len(t) // 2], lambda t: '{"methods": []}', tampered],
    ids=["garbage", "cut-short", "wrong-shape", "tampered-score"],
)
def test_a_damaged_cache_is_rebuilt_without_error(run, monkeypatch, capsys, damage):
    _, written = eval_run(capsys, run)
    path = os.path.join(run, evaluation.CACHE)
    text = damage(open(path).read())
    open(path, "w").write(text)
    calls = scored(monkeypatch)
    text, again = eval_run(capsys, run)
    assert "amp" in calls and again["scores"] == written["scores"]
    assert "methods" in json.load(open(path))  # written anew
    calls.clear()
    eval_run(capsys, run)
    assert calls == []


def test_methods_takes_its_columns_from_the_cache_and_leaves_eval_json(run, monkeypatch, capsys):
    _, written = eval_run(capsys, run)
    raw = open(os.path.join(run, "eval.json"), "rb").read()
    calls = scored(monkeypatch)
    evaluation.main(
        ["--out", run, "--methods", "amp,prompt", "--json", os.path.join(run, "t.json")]
    )
    table = json.load(open(os.path.join(run, "t.json")))
    assert calls == [] and table["methods"] == ["prompt", "amp"]
    assert table["table1"]["colours"]["amp"] == [written["scores"]["amp"]["colours"]["accuracy"]]
    assert open(os.path.join(run, "eval.json"), "rb").read() == raw
