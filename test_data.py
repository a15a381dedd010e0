"""Tests of data.py: the 11 tasks load from a local copy, your own task folders round-trip, bad input gives one
clear line, splits are honest and deterministic, mixing follows min(N_t, K), the demo suite is what it claims.

  python -m pytest -q test_data.py
Tests that read ../shared/data (or $AMP_DATA_DIR) skip, saying so, when it is absent.
"""
import json
import os
from collections import Counter

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import data  # noqa: E402
from data import DEMO, PAPER_TASKS, DataError, epoch_batches, load_task, parse_tasks  # noqa: E402

SHARED = os.environ.get("AMP_DATA_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data"))
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason=f"no local copy of the 11 tasks at {SHARED} "
                                  "(set AMP_DATA_DIR to a folder of <task>/<split>.jsonl)")

COLUMNS = {"imdb": ("text",), "sst2": ("sentence",), "yelp_polarity": ("text",), "stsb": ("sentence1", "sentence2"),
           "mrpc": ("sentence1", "sentence2"), "rte": ("sentence1", "sentence2"), "scitail": ("premise", "hypothesis"),
           "cb": ("premise", "hypothesis"), "multirc": ("paragraph", "question", "answer", "idx"),
           "boolq": ("question", "passage"), "qnli": ("question", "sentence")}
LABELS = {"cb": {0, 1, 2}, "stsb": None}


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


@needs_shared
@pytest.mark.parametrize("name", PAPER_TASKS)
def test_paper_task_loads_with_its_columns_labels_and_disjoint_splits(name):
    raw = data.read_split(name, data.REGISTRY[name]["report"], SHARED)
    assert set(COLUMNS[name]) <= set(raw.column_names)
    t = load_task(name, SHARED, carve=True, max_train=2000)
    labels = set(t["report"]["label"]) | set(t["train"]["label"])
    if LABELS.get(name, {0, 1}) is None:
        assert all(isinstance(y, float) for y in labels) and min(labels) >= 0 and max(labels) <= 5
    else:
        assert labels == LABELS.get(name, {0, 1})
    # dev selects, report reports: never the same rows (the same groups, for MultiRC), and the same rows every time
    assert not set(t["dev"]["group"]) & set(t["report"]["group"]) or len(t["report"]) < data.MIN_REPORT
    again = load_task(name, SHARED, carve=True, max_train=2000)
    assert again["dev"]["text"] == t["dev"]["text"] and again["report"]["text"] == t["report"]["text"]
    assert t["measurable"] == (name != "yelp_polarity")


@needs_shared
def test_multirc_keeps_questions_whole_and_scores_em_by_question():
    t = load_task("multirc", SHARED, max_eval=300)
    assert not set(t["dev"]["group"]) & set(t["train"]["group"])
    counts = Counter(t["report"]["group"])
    full = Counter(data.to_examples(data.read_split("multirc", "validation", SHARED), "multirc",
                                    data.task_info("multirc"), "", "validation")["group"])
    assert all(full[g] == c for g, c in counts.items())   # every answer of a sampled question kept


@needs_shared
def test_missing_train_split_needs_carve_and_is_marked():
    with pytest.raises(DataError, match="--carve"):
        load_task("scitail", SHARED)
    t = load_task("scitail", SHARED, carve=True)
    assert t["note"].startswith("†") and len(t["train"]) == int(0.6 * 2126)
    assert not set(t["train"]["group"]) & (set(t["dev"]["group"]) | set(t["report"]["group"]))


@needs_shared
def test_paper_protocol_selects_and_reports_on_validation():
    t = load_task("rte", SHARED, protocol="paper")
    assert len(t["dev"]) == len(t["report"]) == 277 and t["dev"]["text"] == t["report"]["text"]
    honest = load_task("rte", SHARED)
    assert len(honest["dev"]) + len(honest["report"]) == 277


def test_custom_task_folder_round_trips(tmp_path):
    rows = [{"text": f"item {i}", "text_pair": f"other {i}", "label": i % 3} for i in range(30)]
    write_jsonl(tmp_path / "mine" / "train.jsonl", rows)
    write_jsonl(tmp_path / "mine" / "validation.jsonl", rows[:10])
    write_jsonl(tmp_path / "mine" / "test.jsonl", rows[10:20])
    (tmp_path / "mine" / "task.json").write_text(json.dumps({"metric": "macro_f1", "num_labels": 4}))
    assert parse_tasks("senti_food,mine", str(tmp_path)) == ["senti_food", "mine"]
    t = load_task("mine", str(tmp_path))
    assert t["info"]["num_labels"] == 4 and t["info"]["metrics"] == ("macro_f1",)
    assert t["train"]["label"] == [r["label"] for r in rows] and t["train"]["text_pair"][3] == "other 3"
    assert t["dev"]["text"] == [r["text"] for r in rows[:10]] and len(t["report"]) == 10   # test.jsonl reports


def test_custom_regression_task_is_inferred_from_float_labels(tmp_path):
    rows = [{"text": f"s {i}", "label": i / 7} for i in range(40)]
    write_jsonl(tmp_path / "score" / "train.jsonl", rows)
    write_jsonl(tmp_path / "score" / "validation.jsonl", rows)
    t = load_task("score", str(tmp_path))
    assert t["info"]["num_labels"] == 1 and t["info"]["metrics"] == ("pearson",)
    assert t["train"]["label"][3] == pytest.approx(3 / 7) and t["train"]["text_pair"][0] is None


def test_unknown_task_lists_known_tasks_and_folders(tmp_path):
    write_jsonl(tmp_path / "mine" / "train.jsonl", [{"text": "a", "label": 0}])
    with pytest.raises(DataError) as e:
        parse_tasks("sst2,nope", str(tmp_path))
    assert "'nope'" in str(e.value) and "senti_movies" in str(e.value) and "mine" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("case,expected", [
    ("missing", "validation.jsonl expected"), ("malformed", "train.jsonl:3: malformed JSON"),
    ("label", "row 2 has label 7"), ("empty", "is empty"), ("not_object", "train: rows lack the field(s) label")])
def test_bad_input_gives_one_line_naming_the_problem(tmp_path, case, expected):
    folder = tmp_path / "bad"
    good = [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 0}]
    write_jsonl(folder / "train.jsonl", good)
    if case != "missing":
        write_jsonl(folder / "validation.jsonl", good)
    if case == "malformed":
        (folder / "train.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": "c", label}\n')
    if case == "label":
        (folder / "task.json").write_text('{"num_labels": 2}')
        write_jsonl(folder / "train.jsonl", [good[0], {"text": "b", "label": 7}])
    if case == "empty":
        (folder / "validation.jsonl").write_text("")
    if case == "not_object":
        (folder / "train.jsonl").write_text("[1, 2]\n")
    with pytest.raises(DataError) as e:
        load_task("bad", str(tmp_path))
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_hub_unreachable_suggests_data_dir():
    with pytest.raises(DataError, match="--data-dir"):
        load_task("rte")   # HF_HUB_OFFLINE=1: the hub cannot be reached


def test_mixing_follows_examples_proportional_rates():
    sizes, K = [50, 300, 5000, 20000], 1000
    draws = [t for e in range(20) for batch in epoch_batches(sizes, 32, 0, e, K) for t, _ in batch][:10_000]
    rates = [min(n, K) / sum(min(m, K) for m in sizes) for n in sizes]
    counts = Counter(draws)
    for t, r in enumerate(rates):
        assert abs(counts[t] / len(draws) - r) < 0.02, (t, counts[t] / len(draws), r)


def test_batches_mix_tasks_and_are_a_function_of_seed_and_epoch():
    a, b = epoch_batches([100, 100, 100], 16, 3, 1), epoch_batches([100, 100, 100], 16, 3, 1)
    assert a == b and a != epoch_batches([100, 100, 100], 16, 3, 2) and a != epoch_batches([100, 100, 100], 16, 4, 1)
    assert sum(len({t for t, _ in batch}) > 1 for batch in a) > len(a) / 2
    one = [i for batch in epoch_batches([37], 8, 0, 0) for _, i in batch]
    assert sorted(one) == list(range(37))   # one task: each example once per epoch


def test_demo_suite_is_deterministic_and_splits_are_disjoint():
    for name in DEMO:
        train = data.demo_split(name, "train")
        assert train["text"] == data.demo_split(name, "train")["text"] and train["label"] == data.demo_split(name, "train")["label"]
        assert train["text"] != data.demo_split(name, "train", seed=1)["text"]
        seen = {(r["text"], r["text_pair"]) for r in train}
        test = data.demo_split(name, "test")
        assert not seen & {(r["text"], r["text_pair"]) for r in test}
        assert sum(test["label"]) == len(test) // 2                    # balanced classes


def test_demo_families_share_label_words_and_differ_from_other_families():
    def words(name):
        rows = data.demo_split(name, "train")
        return {w for r in rows for s in (r["text"], r["text_pair"] or "") for w in s.split()}
    fam = {n: DEMO[n][0] for n in DEMO}
    jaccard = lambda a, b: len(words(a) & words(b)) / len(words(a) | words(b))
    within = [jaccard(a, b) for a in DEMO for b in DEMO if a < b and fam[a] == fam[b]]
    across = [jaccard(a, b) for a in DEMO for b in DEMO if a < b and fam[a] != fam[b]]
    assert min(within) > max(across), (min(within), max(across))
    assert len(set(fam.values())) >= 3 + 1 and len(DEMO) >= 7   # 3 families of related tasks and an unrelated one
    assert sum(1 for f in fam.values() if list(fam.values()).count(f) == 1) >= 1


def test_demo_training_labels_carry_some_noise():
    for name in DEMO:
        kind, words = DEMO[name][1], DEMO[name][2]
        import random
        import zlib
        rng = random.Random(zlib.crc32(f"{name}/train/0".encode()))
        clean = [data._demo_example(kind, words, rng, i % 2 == 0)[2] for i in range(50)]
        assert clean != data.demo_split(name, "train")["label"][:50]   # some labels flipped


def test_tokenize_keeps_pairs_and_truncates_for_the_prompt():
    from transformers import AutoTokenizer

    import amp
    tok = AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))
    t = load_task("entail_basket")
    ids = data.tokenize(t["train"], tok, 12)
    assert max(len(x) for x in ids["input_ids"]) == 12
    assert 1 in ids[0]["token_type_ids"]             # the second text is the tokenizer's second segment
    full = data.tokenize(t["train"], tok, 64)[0]
    assert full["input_ids"][-1] == tok.sep_token_id and full["input_ids"].count(tok.sep_token_id) == 2


def test_collate_pads_each_batch_to_its_longest_row():
    rows = [dict(input_ids=[101, 5, 102], label=1, task=0), dict(input_ids=[101, 102], label=0.5, task=2)]
    b = data.collate(rows, pad_id=0)
    assert b["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]] and b["task"].tolist() == [0, 2]
    assert b["labels"].tolist() == [1.0, 0.5]
