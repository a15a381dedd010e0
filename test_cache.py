"""Tests of data.tokenize's cache: a miss tokenises and writes an entry, a second call reads it
without tokenising and returns the same data; a changed row, max_len or tokenizer misses; a damaged
entry is rebuilt, never trusted; a cache folder that cannot be written is left out.

  python -m pytest -q test_cache.py
"""

import copy
import os

import datasets
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import data  # noqa: E402

ROWS = [
    dict(text="the soup was cold", text_pair=None, label=0, group="train/0"),
    dict(
        text="a warm and friendly place with very good bread", text_pair=None, label=1, group="t/1"
    ),
    dict(text="never again", text_pair=None, label=0, group="train/2"),
]
PAIRS = [dict(r, text_pair=f"second text {i}") for i, r in enumerate(ROWS)]
MAP = datasets.Dataset.map  # plain() tokenises with it, uncounted


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    import amp

    return AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """AMP_CACHE in a fresh folder; calls() counts tokenize's tokenisations (Dataset.map) since."""
    monkeypatch.setenv("AMP_CACHE", str(tmp_path / "cache"))
    seen = []
    monkeypatch.setattr(datasets.Dataset, "map", lambda *a, **k: seen.append(1) or MAP(*a, **k))
    return type("Cache", (), dict(root=tmp_path / "cache" / "tokens", calls=lambda: len(seen)))


def plain(ds, tok, max_len):
    """tokenize as it is without a cache."""
    pair, cut = (
        any(p is not None for p in ds["text_pair"]),
        dict(truncation=True, max_length=max_len),
    )
    enc = lambda b: tok(b["text"], b["text_pair"] if pair else None, **cut)
    with_length = lambda out: dict(out, length=[len(x) for x in out["input_ids"]])
    return MAP(
        ds, lambda b: with_length(enc(b)), batched=True, remove_columns=["text", "text_pair"]
    )


def same(a, b):
    look = lambda ds: (ds.features, ds.column_names, ds.format, ds.to_dict())
    return look(a) == look(b)


@pytest.mark.parametrize("rows", [ROWS, PAIRS], ids=["single", "pair"])
def test_a_miss_writes_an_entry_and_a_second_call_reads_it_without_tokenising(tok, cache, rows):
    ds = datasets.Dataset.from_list(rows)
    first = data.tokenize(ds, tok, 8)
    assert cache.calls() == 1 and os.listdir(cache.root) == [data.cache_key(ds, tok, 8)]
    assert "ok.json" in os.listdir(cache.root / data.cache_key(ds, tok, 8))
    tok(
        ["some other call"], truncation=True, max_length=5
    )  # leaves its truncation on the tokenizer
    again = data.tokenize(datasets.Dataset.from_list(rows), tok, 8)
    assert cache.calls() == 1
    assert same(again, first) and same(again, plain(ds, tok, 8))
    assert again.cache_files == []  # held in memory, as a fresh tokenisation is


def test_a_changed_row_misses(tok, cache):
    data.tokenize(datasets.Dataset.from_list(ROWS), tok, 8)
    changed = datasets.Dataset.from_list([ROWS[0], dict(ROWS[1], label=0), ROWS[2]])
    assert same(data.tokenize(changed, tok, 8), plain(changed, tok, 8))
    assert cache.calls() == 2 and len(os.listdir(cache.root)) == 2


def test_a_changed_max_len_misses(tok, cache):
    ds = datasets.Dataset.from_list(ROWS)
    data.tokenize(ds, tok, 8)
    assert same(data.tokenize(ds, tok, 6), plain(ds, tok, 6))
    assert cache.calls() == 2 and len(os.listdir(cache.root)) == 2


@pytest.mark.parametrize("change", ["model_max_length", "added_token"])
def test_a_different_tokenizer_misses(tok, cache, change):
    ds = datasets.Dataset.from_list(ROWS)
    data.tokenize(ds, tok, 8)
    other = copy.deepcopy(tok)
    if change == "model_max_length":
        other.model_max_length = 256
    else:
        other.add_tokens(["soupcold"])
    assert same(data.tokenize(ds, other, 8), plain(ds, other, 8))
    assert cache.calls() == 2 and len(os.listdir(cache.root)) == 2


def damage(entry, how, soup):
    arrow = [f for f in entry.iterdir() if f.suffix == ".arrow"][0]
    if how == "truncated":
        arrow.write_bytes(arrow.read_bytes()[:-100])
    elif how == "changed":  # still loads, with one token id changed: only the checksum tells
        body = arrow.read_bytes()
        i = body.index(soup.to_bytes(4, "little"))
        arrow.write_bytes(body[:i] + (soup + 1).to_bytes(4, "little") + body[i + 4 :])
    elif how == "missing":
        arrow.unlink()
    elif how == "extra":
        (entry / "cache-0.arrow").write_bytes(b"0")
    else:
        (entry / "ok.json").write_text("{")


@pytest.mark.parametrize("how", ["truncated", "changed", "missing", "extra", "bad_ok_json"])
def test_a_damaged_entry_is_rebuilt_and_equals_a_fresh_tokenisation(tok, cache, how):
    ds = datasets.Dataset.from_list(ROWS)
    data.tokenize(ds, tok, 8)
    damage(cache.root / data.cache_key(ds, tok, 8), how, tok.convert_tokens_to_ids("soup"))
    assert same(data.tokenize(ds, tok, 8), plain(ds, tok, 8))
    assert cache.calls() == 2  # rebuilt
    assert same(data.tokenize(ds, tok, 8), plain(ds, tok, 8)) and cache.calls() == 2  # then a hit


@pytest.mark.parametrize("kind", ["a_file", "read_only"])
def test_an_unwritable_cache_folder_still_tokenises(tok, cache, tmp_path, monkeypatch, kind):
    if kind == "read_only" and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder; the a_file case covers this")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "read_only").mkdir(mode=0o500)
    monkeypatch.setenv("AMP_CACHE", str(tmp_path / kind))
    ds = datasets.Dataset.from_list(PAIRS)
    assert same(data.tokenize(ds, tok, 8), plain(ds, tok, 8))
    assert same(data.tokenize(ds, tok, 8), plain(ds, tok, 8)) and cache.calls() == 2
