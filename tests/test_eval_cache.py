"""Tests of eval.py's cache, OUT/eval_cache.json: a method is scored again only when what its scores
depend on changed (its files, the rows, the settings), --rescore scores all, a damaged cache is
written anew, and what is printed and written is what a fresh scoring gives; a call that scores
nothing loads no encoder. Also: tasks with too few reporting rows print "not measurable", and the
printed attention matrix names its columns. Tiny encoder, two demo tasks (test_amp.py's).

  python -m pytest -q test_eval_cache.py
"""

import json
import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import amp  # noqa: E402
import eval as evaluation  # noqa: E402
import metrics  # noqa: E402
from lib import demo  # noqa: E402
from lib import runfiles  # noqa: E402
import train  # noqa: E402
from data import load_task  # noqa: E402
from test_amp import SMALL  # noqa: E402


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """A run with source and target prompts on two demo tasks, not yet evaluated."""
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


def refuse(*args, **kw):
    raise AssertionError("the encoder was loaded, or rows tokenised")


def test_a_second_eval_loads_no_encoder_and_prints_the_same(run, monkeypatch, capsys):
    # colours as a sentiment task: the family count then reads the source prompts (no encoder)
    monkeypatch.setitem(demo.DEMO, "colours", ("sentiment", *demo.DEMO["colours"][1:]))
    first, written = eval_run(capsys, run)
    png = os.stat(os.path.join(run, "attention.png")).st_mtime_ns
    for module in (evaluation, amp, metrics):
        monkeypatch.setattr(module, "load_encoder", refuse)
    monkeypatch.setattr(evaluation, "tokenize", refuse)
    second, again = eval_run(capsys, run)
    assert "scored now: none" in second and table1(second) == table1(first) and again == written
    attention = second.split("attention A")[1]
    assert attention == first.split("attention A")[1]
    assert "with no training: the dot product of mean source prompts" in attention
    head = attention.splitlines()[1].split()
    assert head == ["sen_foo", "colours"] and "columns: sen_foo = senti_food" in attention
    assert os.stat(os.path.join(run, "attention.png")).st_mtime_ns == png  # not drawn again


def test_a_changed_source_prompt_is_scored_again_through_the_encoder(run, monkeypatch, capsys):
    eval_run(capsys, run)
    path = os.path.join(run, "source", "colours.safetensors")
    W, meta = runfiles.load_tensors(path, {})
    runfiles.save_tensors(path, dict(W, P=W["P"] + 0.5), meta)
    loads, real = [], evaluation.load_encoder

    def load(name):
        loads.append(name)
        return real(name)

    monkeypatch.setattr(evaluation, "load_encoder", load)
    calls = scored(monkeypatch)
    text, _ = eval_run(capsys, run)
    assert calls == ["prompt", "prompt"] and len(loads) == 1
    assert f"from {evaluation.CACHE}: amp; scored now: prompt" in text


def test_too_few_reporting_rows_print_not_measurable(tiny, tmp_path, capsys):
    out = str(tmp_path / "few")
    common = ["--out", out, "--max-steps", "2", "--prompt-len", "4"]
    source = ["--stage", "source", "--tasks", "senti_food,colours", "--model", tiny]
    train.main([*source, "--max-train", "32", "--max-eval", "20", *common])
    train.main(["--stage", "target", *common])
    text, written = eval_run(capsys, out)  # no exception: eval.py exits 0
    rows = table1(text).splitlines()
    assert [r.split(None, 2)[2] for r in rows[2:4]] == ["not measurable (20 rows)"] * 2
    assert rows[4].split(None, 1) == ["mean", "not measurable (no task has 25 reporting rows)"]
    assert written["scores"] == {"prompt": {}, "amp": {}}


def test_column_names_fit_are_unique_and_keep_short_names():
    tasks = ["colours", "senti_food", "senti_food_32", "para_people", "para_people_32", "mnli"]
    tasks += [f"a_very_long_task_name_{i}" for i in range(14)]
    heads = evaluation.column_names(tasks)
    assert len(set(heads)) == 20 and max(map(len, heads)) <= 7
    assert heads[:4] == ["colours", "sen_foo", "s_fo_32", "par_peo"] and heads[5] == "mnli"
