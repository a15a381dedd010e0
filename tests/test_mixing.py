"""Tests of an epoch's batches (data.task_batches, data.epoch_batches, loop.job_batches): one
task's batches cover each row once and pad little; mixed tasks follow the paper's rates
min(N_t, K) (4.2), or min(N_t, K)^(1/T) with --mix-temperature; --mix-grouped draws exactly the
same (task, row) pairs as the paper's mixing, in length-grouped batches.

  python -m pytest -q tests/test_mixing.py
"""

import argparse
import os
import random
from collections import Counter
from types import SimpleNamespace

import datasets
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import loop  # noqa: E402
from data import epoch_batches, task_batches  # noqa: E402


def test_mixing_follows_examples_proportional_rates():
    sizes, K = [50, 300, 5000, 20000], 1000
    epochs = [epoch_batches(sizes, 32, 0, e, K) for e in range(20)]
    draws = [t for batches in epochs for batch in batches for t, _ in batch][:10_000]
    rates = [min(n, K) / sum(min(m, K) for m in sizes) for n in sizes]
    counts = Counter(draws)
    for t, r in enumerate(rates):
        assert abs(counts[t] / len(draws) - r) < 0.02, (t, counts[t] / len(draws), r)


def test_mixed_batches_mix_tasks_and_are_a_function_of_seed_and_epoch():
    sizes = [100, 100, 100]
    a, b = epoch_batches(sizes, 16, 3, 1), epoch_batches(sizes, 16, 3, 1)
    assert a == b and a != epoch_batches(sizes, 16, 3, 2) and a != epoch_batches(sizes, 16, 4, 1)
    assert sum(len({t for t, _ in batch}) > 1 for batch in a) > len(a) / 2


def test_one_task_epoch_is_a_full_pass_even_beyond_K():
    rows = [i for batch in epoch_batches([250], 16, 0, 0, K=100) for t, i in batch]
    assert sorted(rows) == list(range(250))


LENGTHS = [37, [5] * 37, [random.Random(1).randint(1, 60) for _ in range(1000)]]


@pytest.mark.parametrize("lengths", LENGTHS)
def test_task_batches_hold_every_row_once_and_follow_seed_and_epoch(lengths):
    a = task_batches(lengths, 8, 3, 1)
    n = lengths if isinstance(lengths, int) else len(lengths)
    assert sorted(i for b in a for i in b) == list(range(n)) and all(len(b) <= 8 for b in a)
    assert a == task_batches(lengths, 8, 3, 1)
    assert a != task_batches(lengths, 8, 3, 2) and a != task_batches(lengths, 8, 4, 1)


def test_length_grouped_batches_pad_far_less_than_a_plain_shuffle():
    rng = random.Random(0)
    L = [min(512, int(5 + rng.lognormvariate(3.0, 0.9))) for _ in range(4000)]  # median 25, max 421

    def pad(batches):  # padding tokens: each batch padded to its longest row
        return sum(len(b) * max(L[i] for i in b) - sum(L[i] for i in b) for b in batches)

    grouped, plain = pad(task_batches(L, 16, 0, 0)), pad(task_batches(len(L), 16, 0, 0))
    assert grouped < 0.1 * plain, (grouped, plain)  # measured: 13,790 vs 319,246 (0.043)


def shares(batches):
    """How many rows each task has in the epoch."""
    return Counter(t for b in batches for t, _ in b)


def test_temperature_flattens_the_rates_to_min_n_k_to_the_one_over_t():
    sizes, K = [50, 300, 5000, 20000], 1000
    for T in (2.0, 100.0):
        epochs = [epoch_batches(sizes, 32, 0, e, K, T=T) for e in range(20)]
        draws = [t for batches in epochs for batch in batches for t, _ in batch][:10_000]
        w = [min(n, K) ** (1 / T) for n in sizes]
        for t, c in shares([[(t, 0) for t in draws]]).items():
            assert abs(c / len(draws) - w[t] / sum(w)) < 0.02, (T, t, c / len(draws))
    assert sum(map(len, epoch_batches(sizes, 32, 0, 0, K, T=4.0))) == 50 + 300 + 1000 + 1000


def test_temperature_one_is_the_papers_mixing_draw_for_draw():
    assert epoch_batches([30, 500, 80], 16, 2, 3, T=1.0) == epoch_batches([30, 500, 80], 16, 2, 3)
    assert epoch_batches([30, 500, 80], 16, 2, 3, T=2.0) != epoch_batches([30, 500, 80], 16, 2, 3)


LONG = [[random.Random(t).randint(5, 250) for _ in range(n)] for t, n in enumerate([40, 600, 300])]


def test_grouped_mixing_draws_the_same_pairs_with_less_padding():
    sizes, L = [len(x) for x in LONG], LONG

    def pad(bs):  # padding tokens: each batch of (task, row) padded to its longest row
        return sum(len(b) * max(L[t][i] for t, i in b) - sum(L[t][i] for t, i in b) for b in bs)

    for e in range(3):
        plain, grouped = epoch_batches(sizes, 16, 0, e), epoch_batches(sizes, 16, 0, e, lengths=L)
        assert sorted(p for b in grouped for p in b) == sorted(p for b in plain for p in b)
        assert shares(grouped) == shares(plain) and all(len(b) <= 16 for b in grouped)
        assert pad(grouped) < 0.2 * pad(plain), (pad(grouped), pad(plain))
    assert epoch_batches(sizes, 16, 0, 1, lengths=L) == epoch_batches(sizes, 16, 0, 1, lengths=L)


@pytest.mark.parametrize("grouped", [False, True])
def test_the_loop_mixes_with_the_runs_flags(grouped):
    train = [datasets.Dataset.from_dict({"input_ids": [[1] * n for n in x]}) for x in LONG]
    env = SimpleNamespace(ids={"a": 0, "b": 1, "c": 2}, train=train)
    args = argparse.Namespace(batch_size=16, seed=5, mix_temperature=3.0, mix_grouped=grouped)
    expect = epoch_batches([40, 600, 300], 16, 5, 2, T=3.0, lengths=LONG if grouped else None)
    assert loop.job_batches(args, env, ["a", "b", "c"], 2) == expect
