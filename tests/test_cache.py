"""Tests of tokens.tokenize's cache ($AMP_CACHE/tokens): a miss tokenises and writes an entry, a
second call (in the same process or a fresh one) reads it without tokenising and returns what a
fresh tokenisation returns; a changed row, max_len or tokenizer misses; a damaged entry is rebuilt,
never trusted; a cache folder that cannot be written is left out, and tokenize still tokenises.

  python -m pytest -q tests/test_cache.py
"""

import copy
import os
import subprocess
import sys
from types import SimpleNamespace

import datasets
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from lib import tokens  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
ROWS = [
    dict(text="the soup was cold", text_pair=None, label=0, group="train/0"),
    dict(text="a warm, friendly place with good bread", text_pair=None, label=1, group="train/1"),
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
    """AMP_CACHE in a fresh folder; calls() counts tokenize's tokenisations (Dataset.map)."""
    monkeypatch.setenv("AMP_CACHE", str(tmp_path / "cache"))
    root, seen = tmp_path / "cache" / "tokens", []

    def counted_map(*a, **k):
        seen.append(1)
        return MAP(*a, **k)

    def entries():
        return sorted(root.iterdir()) if root.exists() else []

    def calls():
        return len(seen)

    monkeypatch.setattr(datasets.Dataset, "map", counted_map)
    return SimpleNamespace(entries=entries, calls=calls)


def plain(ds, tok, max_len):
    """What tokenize returned before it had a cache."""
    pair = any(p is not None for p in ds["text_pair"])
    cut = dict(truncation=True, max_length=max_len)

    def encode(b):
        out = tok(b["text"], b["text_pair"] if pair else None, **cut)
        return dict(out, length=[len(x) for x in out["input_ids"]])

    drop, fp = ["text", "text_pair"], "plain"  # a fingerprint given: no dill hash of encode
    return MAP(ds, encode, batched=True, remove_columns=drop, new_fingerprint=fp)


def contents(ds):
    return ds.features, ds.column_names, ds.format, ds.to_dict()


def same(a, b):
    return contents(a) == contents(b)


@pytest.mark.parametrize("rows", [ROWS, PAIRS], ids=["single", "pair"])
def test_a_miss_writes_an_entry_and_a_second_call_reads_it_without_tokenising(tok, cache, rows):
    first = tokens.tokenize(datasets.Dataset.from_list(rows), tok, 8)
    [entry] = cache.entries()
    assert cache.calls() == 1 and sorted(os.listdir(entry)) == ["data", "ok.json"]
    tok(["an unrelated call"], truncation=True, max_length=5)  # leaves its truncation set
    again = tokens.tokenize(datasets.Dataset.from_list(rows), tok, 8)
    assert cache.calls() == 1 and cache.entries() == [entry]
    assert same(again, first) and same(again, plain(datasets.Dataset.from_list(rows), tok, 8))
    assert again.cache_files == []  # held in memory, as a fresh tokenisation is


def test_a_fresh_process_reads_the_entry_another_process_wrote(tmp_path):
    script = "\n".join([
        "import datasets, amp",
        "from lib import tokens",
        "from transformers import AutoTokenizer",
        "tok = AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))",
        "calls, real = [], datasets.Dataset.map",
        "def counted_map(*a, **k):",
        "    calls.append(1)",
        "    return real(*a, **k)",
        "datasets.Dataset.map = counted_map",
        f"out = tokens.tokenize(datasets.Dataset.from_list({PAIRS!r}), tok, 8)",
        "print(len(calls), out.to_dict())",
    ])  # fmt: skip
    env = dict(os.environ, AMP_CACHE=str(tmp_path), HF_HUB_OFFLINE="1")
    cmd, said = [sys.executable, "-c", script], []  # said: each process's last line
    for _ in range(2):
        p = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True, check=True)
        said.append(p.stdout.splitlines()[-1])
    first, second = said
    assert first.startswith("1 ") and second == "0 " + first[2:]


def test_a_changed_row_misses(tok, cache):
    tokens.tokenize(datasets.Dataset.from_list(ROWS), tok, 8)
    changed = datasets.Dataset.from_list([ROWS[0], dict(ROWS[1], label=0), ROWS[2]])
    assert same(tokens.tokenize(changed, tok, 8), plain(changed, tok, 8))
    assert cache.calls() == 2 and len(cache.entries()) == 2


def test_a_changed_max_len_misses(tok, cache):
    ds = datasets.Dataset.from_list(ROWS)
    tokens.tokenize(ds, tok, 8)
    assert same(tokens.tokenize(ds, tok, 6), plain(ds, tok, 6))
    assert cache.calls() == 2 and len(cache.entries()) == 2


@pytest.mark.parametrize("change", ["model_max_length", "added_token", "slow_tokenizer"])
def test_a_different_tokenizer_misses(tok, cache, change):
    ds = datasets.Dataset.from_list(PAIRS)
    tokens.tokenize(ds, tok, 8)
    other = copy.deepcopy(tok)
    if change == "model_max_length":
        other.model_max_length = 256
    elif change == "added_token":
        other.add_tokens(["soupcold"])
    else:
        from transformers import BertTokenizerLegacy

        other = BertTokenizerLegacy.from_pretrained(tok.name_or_path)
    assert same(tokens.tokenize(ds, other, 8), plain(ds, other, 8))
    assert cache.calls() == 2 and len(cache.entries()) == 2
    assert same(tokens.tokenize(ds, other, 8), plain(ds, other, 8)) and cache.calls() == 2  # a hit


def damage(files, how, soup):
    """Damages an entry's data files; "changed" still loads, one token id changed."""
    arrow = [f for f in files.iterdir() if f.suffix == ".arrow"][0]
    body = arrow.read_bytes()
    if how == "truncated":
        arrow.write_bytes(body[: len(body) // 2])
    elif how == "changed":
        i = body.index(soup.to_bytes(4, "little"))
        arrow.write_bytes(body[:i] + (soup + 1).to_bytes(4, "little") + body[i + 4 :])
    elif how == "missing":
        arrow.unlink()
    elif how == "extra":
        (files / "cache-0.arrow").write_bytes(body)
    else:
        (files.parent / "ok.json").write_text("{")


@pytest.mark.parametrize("how", ["truncated", "changed", "missing", "extra", "bad_ok_json"])
def test_a_damaged_entry_is_rebuilt_and_equals_a_fresh_tokenisation(tok, cache, how):
    ds = datasets.Dataset.from_list(ROWS)
    tokens.tokenize(ds, tok, 8)
    [entry] = cache.entries()
    damage(entry / "data", how, tok.convert_tokens_to_ids("soup"))
    if how == "changed":  # loadable, and wrong: only the checksum tells
        assert not same(datasets.load_from_disk(entry / "data"), plain(ds, tok, 8))
    assert same(tokens.tokenize(ds, tok, 8), plain(ds, tok, 8))
    assert cache.calls() == 2 and cache.entries() == [entry]  # rebuilt in place
    assert same(tokens.tokenize(ds, tok, 8), plain(ds, tok, 8)) and cache.calls() == 2  # then a hit


@pytest.mark.parametrize("kind", ["a_file", "read_only"])
def test_an_unwritable_cache_folder_still_tokenises(tok, cache, tmp_path, monkeypatch, kind):
    if kind == "read_only" and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder; the a_file case covers this")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "read_only").mkdir(mode=0o500)
    monkeypatch.setenv("AMP_CACHE", str(tmp_path / kind))
    ds = datasets.Dataset.from_list(PAIRS)
    assert same(tokens.tokenize(ds, tok, 8), plain(ds, tok, 8))
    assert same(tokens.tokenize(ds, tok, 8), plain(ds, tok, 8)) and cache.calls() == 2
    assert os.listdir(tmp_path / "read_only") == []  # nothing left behind
