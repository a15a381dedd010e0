"""Tests of probe.py and train.py --method select: the probe ranks first a source whose states
separate the target, a task with no useful source keeps its own start, select's start is the
weighted source prompts, and its attention.json has attention.json's schema.
  python -m pytest -q test_probe.py
"""

import json
import os

import datasets
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import eval as evaluation  # noqa: E402
import probe  # noqa: E402
import train  # noqa: E402
from test_amp import SMALL, make_tiny_encoder  # noqa: E402


class Reader(torch.nn.Module):
    """A stand-in encoder whose first state is the label's sign times P[0, 0], plus noise: a prompt
    with P[0, 0] = 1 makes the rows separable, one with P[0, 0] = 0 leaves only the noise."""

    d = 2

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


def test_probe_puts_first_the_source_whose_states_separate_the_target():
    P = torch.zeros(3, 2, 2)  # (n, l, d): source 2 carries the signal, 0 and 1 do not
    P[2, 0, 0] = 1.0
    info = dict(num_labels=2, metrics=("accuracy",))
    row = probe.probe_row(Reader(), P, rows(64, 0), rows(100, 1), info, "cpu")
    assert row[2] == 100.0 and max(row[0], row[1]) < 70
    assert probe.start_weights(row, own=0) == [0.0, 0.0, 1.0]


def test_a_task_whose_own_prompt_ranks_first_keeps_its_own_start():
    assert probe.start_weights([50.0, 60.0, 55.0], own=1) == [0.0, 1.0, 0.0]
    assert probe.start_weights([60.0, 60.0, 40.0], own=1, top=3) == [0.0, 1.0, 0.0]  # a tie: own


def test_start_weights_mix_the_top_sources_by_how_far_they_beat_the_own_prompt():
    w = probe.start_weights([90.0, 50.0, 70.0, 60.0], own=1, top=2)
    assert w == pytest.approx([40 / 60, 0.0, 20 / 60, 0.0])


def test_select_starts_from_the_weighted_sources_and_writes_attention_json(tmp_path, monkeypatch):
    tiny, out = make_tiny_encoder(tmp_path / "tiny"), str(tmp_path / "run")
    tasks = "senti_food,senti_movies,colours"
    train.main(["--stage", "source", "--tasks", tasks, "--model", tiny, *SMALL, "--out", out,
                "--max-steps", "4"])  # fmt: skip
    starts, real = {}, train.stage_source
    monkeypatch.setattr(train, "stage_source", lambda *a, init=None, **k: starts.update(init)
                        or real(*a, init=init, **k))  # fmt: skip
    train.main(["--stage", "target", "--method", "select", "--select-top", "2", "--max-steps", "4",
                "--out", out])  # fmt: skip
    A = json.load(open(os.path.join(out, "select", "attention.json")))
    names = A["tasks"]
    assert names == tasks.split(",") and len(A["A"]) == 3 and all(len(r) == 3 for r in A["A"])
    assert all(
        abs(sum(r) - 1) < 1e-9 and min(r) >= 0 and sum(w > 0 for w in r) <= 2 for r in A["A"]
    )
    P = torch.stack(
        [train.load_tensors(f"{out}/source/{t}.safetensors", {})[0]["P"] for t in names]
    )
    for i, t in enumerate(names):
        want = torch.einsum("j,jld->ld", torch.tensor(A["A"][i]), P)
        assert torch.allclose(starts[t], want, atol=1e-6)
    evaluation.main(["--out", out])
    scores = json.load(open(os.path.join(out, "eval.json")))["scores"]
    assert set(scores["select"]) == set(names)
    assert os.path.exists(os.path.join(out, "select", "attention.png"))
