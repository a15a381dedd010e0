"""Tests of probe.py and train.py --method select: the probe ranks first a source whose states
separate the target; the candidates are the best sources beyond the margin; a task with none keeps
its own stage-1 files; each try starts from its source's prompt; what is kept is the best on dev;
select's attention.json has attention.json's schema.
  python -m pytest -q tests/test_probe.py
"""

import json
import os

import datasets
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import eval as evaluation  # noqa: E402
from studies import probe  # noqa: E402
import train  # noqa: E402
from test_amp import SMALL, make_tiny_encoder  # noqa: E402


class Reader(torch.nn.Module):
    """A stand-in encoder whose first state is the label's sign times P[0, 0], plus noise: a prompt
    with P[0, 0] = 1 makes the rows separable, one with P[0, 0] = 0 leaves only the noise."""

    d, pad_id = 2, 0

    def features(self, prompts, input_ids, attention_mask, token_type_ids):
        sign = 2.0 * (input_ids[:, 1:2] == 5).float() - 1  # (B, 1): the label, as ±1
        noise = (input_ids[:, 2:3] % 7).float()  # (B, 1): a token that says nothing of it
        return torch.cat([prompts[:, 0, :1] * sign, noise], 1)  # (B, 2)


def rows(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(2, (n,), generator=g).tolist()
    noise = torch.randint(100, (n,), generator=g).tolist()
    ids = [[1, 5 if label else 6, z, 2] for label, z in zip(y, noise)]
    data = dict(input_ids=ids, label=y, group=[f"g{i}" for i in range(n)])
    return datasets.Dataset.from_dict(data)


def stage_one(tmp_path, monkeypatch):
    """A tiny stage 1 of three tasks; returns (run folder, tasks, {folder: starts}), the starts each
    later stage_source call tunes from, by the folder it writes."""
    tiny, out = make_tiny_encoder(tmp_path / "tiny"), str(tmp_path / "run")
    names = ["senti_food", "senti_movies", "colours"]
    train.main(["--stage", "source", "--tasks", ",".join(names), "--model", tiny, *SMALL,
                "--out", out, "--max-steps", "4"])  # fmt: skip
    starts, real = {}, train.stage_source

    def stage_source(*a, folder, init=None, **k):  # train.stage_source, its starts kept
        starts[folder] = init
        return real(*a, folder=folder, init=init, **k)

    monkeypatch.setattr(train, "stage_source", stage_source)
    return out, names, starts


def test_probe_puts_first_the_source_whose_states_separate_the_target():
    P = torch.zeros(3, 2, 2)  # (n, l, d): source 2 carries the signal, 0 and 1 do not
    P[2, 0, 0] = 1.0
    info = dict(num_labels=2, metrics=("accuracy",))
    row = probe.probe_row(Reader(), P, rows(64, 0), rows(100, 1), info, "cpu")
    assert row[2] == 100.0 and max(row[0], row[1]) < 70
    assert probe.candidates(row, own=0, tries=3, margin=5) == [2]


def test_candidates_are_the_best_sources_beyond_the_margin_at_most_tries():
    row = [90.0, 50.0, 70.0, 60.0, 55.0]  # own: index 1
    assert probe.candidates(row, own=1, tries=2, margin=5) == [0, 2]
    assert probe.candidates(row, own=1, tries=9, margin=5) == [0, 2, 3]  # 55 is not beyond 50 + 5
    assert probe.candidates(row, own=1, tries=9, margin=30) == [0]


def test_a_task_whose_own_prompt_ranks_first_has_no_candidates():
    assert probe.candidates([50.0, 60.0, 55.0], own=1, tries=3, margin=0) == []
    assert probe.candidates([60.0, 60.0, 40.0], own=1, tries=3, margin=0) == []  # a tie: own


def test_keep_best_keeps_the_files_with_the_best_dev_and_marks_their_source(tmp_path):
    dev = {"source": [70.0, 80.0], "select/try1": [75.0, 80.0], "select/try2": [90.0, None]}
    for folder, scores in dev.items():
        os.makedirs(tmp_path / folder)
        for t, d in zip(["a", "b"], scores):
            if d is not None:
                (tmp_path / folder / f"{t}.safetensors").write_bytes(f"{folder} {t}".encode())
                (tmp_path / folder / f"{t}.json").write_text(json.dumps({"best_dev": d}))
    probe.keep_best(str(tmp_path), ["a", "b"], [[1, 0], [0]])  # a: tries 1 then 0; b: 0

    def kept(t):  # the bytes keep_best kept for task t
        return (tmp_path / "select" / "target" / f"{t}.safetensors").read_bytes()

    assert kept("a") == b"select/try2 a"  # a's second try (source 0) scored 90
    assert kept("b") == b"source b"  # b's try tied its own 80: its own is kept
    A = json.load(open(tmp_path / "select" / "attention.json"))
    assert A == {"tasks": ["a", "b"], "A": [[1.0, 0.0], [0.0, 1.0]]}


def test_select_tunes_from_each_pick_and_a_task_with_none_keeps_its_own_files(
    tmp_path, monkeypatch
):
    out, names, starts = stage_one(tmp_path, monkeypatch)
    picks = {0: [2, 1], 1: [], 2: [0]}  # senti_food: colours, then senti_movies; senti_movies: none
    monkeypatch.setattr(probe, "candidates", lambda row, i, tries, margin: picks[i])
    train.main(["--stage", "target", "--method", "select", "--max-steps", "4", "--out", out])
    P = {t: train.load_tensors(f"{out}/source/{t}.safetensors", {})[0]["P"] for t in names}
    assert list(starts) == ["select/try1", "select/try2", "select/try3"]  # no mix without the flag
    tries = list(starts.values())
    assert [sorted(s) for s in tries] == [["colours", "senti_food"], ["senti_food"], []]
    assert torch.equal(tries[0]["senti_food"], P["colours"])
    assert torch.equal(tries[0]["colours"], P["senti_food"])
    assert torch.equal(tries[1]["senti_food"], P["senti_movies"])
    probe_json = json.load(open(os.path.join(out, "select", "probe.json")))
    assert probe_json["tasks"] == names and len(probe_json["dev"]) == 3
    A = json.load(open(os.path.join(out, "select", "attention.json")))
    assert A["tasks"] == names and all(sorted(r) == [0.0, 0.0, 1.0] for r in A["A"])

    def read(folder, t):
        return open(f"{out}/{folder}/{t}.safetensors", "rb").read()

    assert read("select/target", "senti_movies") == read("source", "senti_movies")
    for i, t in enumerate(names):
        tried = [("source", i)] + [(f"select/try{r + 1}", j) for r, j in enumerate(picks[i])]
        dev = [json.load(open(f"{out}/{f}/{t}.json"))["best_dev"] for f, _ in tried]
        folder, source = tried[dev.index(max(dev))]
        assert read("select/target", t) == read(folder, t) and A["A"][i][source] == 1.0
    evaluation.main(["--out", out])
    scores = json.load(open(os.path.join(out, "eval.json")))["scores"]
    assert scores["select"]["senti_movies"] == scores["prompt"]["senti_movies"]
    assert os.path.exists(os.path.join(out, "select", "attention.png"))
