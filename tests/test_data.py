"""Tests of data.py: the 11 tasks load from a local copy and from the right hub repositories, your
own task folders round-trip, every kind of bad row stops with one line naming FILE:LINE and the
field, splits share no rows and are deterministic, the demo suites are what they claim. The
batches of an epoch: test_mixing.py.

  python -m pytest -q test_data.py
Tests that read ../shared/data (or $AMP_DATA_DIR) skip, saying so, when it is absent.
"""

import json
import os
from collections import Counter

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import data  # noqa: E402
from lib import demo  # noqa: E402
from lib import tokens  # noqa: E402
from data import PAPER_TASKS, DataError, load_task, parse_tasks  # noqa: E402
from lib.demo import DEMO  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
SHARED = os.environ.get("AMP_DATA_DIR", os.path.join(HERE, "..", "shared", "data"))
WHY = f"no local copy of the 11 tasks at {SHARED} (AMP_DATA_DIR: a <task>/<split>.jsonl folder)"
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason=WHY)

# Tables (the formatter leaves them as written).
# fmt: off
COLUMNS = {"imdb": ("text",), "sst2": ("sentence",), "yelp_polarity": ("text",),
           "stsb": ("sentence1", "sentence2"), "mrpc": ("sentence1", "sentence2"),
           "rte": ("sentence1", "sentence2"), "scitail": ("premise", "hypothesis"),
           "cb": ("premise", "hypothesis"), "multirc": ("paragraph", "question", "answer", "idx"),
           "boolq": ("question", "passage"), "qnli": ("question", "sentence")}
LABELS = {"cb": {0, 1, 2}, "stsb": None}
GLUE, SUPER, TV = "nyu-mll/glue", "aps/super_glue", "train validation"
HUB = {  # task: (repository, config, the splits read in order), as the hub's repositories name them
    "imdb": ("stanfordnlp/imdb", "plain_text", "train test"), "sst2": (GLUE, "sst2", TV),
    "yelp_polarity": ("fancyzhx/yelp_polarity", "plain_text", "train test"),
    "stsb": (GLUE, "stsb", TV), "mrpc": (GLUE, "mrpc", TV), "rte": (GLUE, "rte", TV),
    "scitail": ("allenai/scitail", "tsv_format", "train validation test"),
    "cb": (SUPER, "cb", TV), "multirc": (SUPER, "multirc", TV), "boolq": (SUPER, "boolq", TV),
    "qnli": (GLUE, "qnli", TV), "mnli": (GLUE, "mnli", "train validation_matched")}
# fmt: on


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def rows_of(ds):
    return Counter(zip(ds["text"], [p or "" for p in ds["text_pair"]]))


def assert_splits_share_no_rows(t, data_dir=None):
    """No row is in two of train / dev / report: each (text, pair) occurs in them at most as often
    as in the rows read (the real tasks hold a few duplicates of their own: imdb's train and test
    share 16 texts)."""
    info, read = data.task_info(t["name"], data_dir), Counter()
    for s in ("train", "validation", "validation_matched", "test"):
        if (r := data.read_split(t["name"], s, data_dir)) is not None:
            rows = data.examples(*r, info, s, t["name"])
            read += Counter((e["text"], e["text_pair"] or "") for e in rows)
    cut = rows_of(t["train"]) + rows_of(t["dev"]) + rows_of(t["report"])
    assert not [k for k, n in cut.items() if n > read[k]], t["name"]


@needs_shared
@pytest.mark.parametrize("name", PAPER_TASKS)
def test_paper_task_loads_with_its_columns_labels_and_splits_sharing_no_rows(name):
    report = data.REGISTRY[name]["report"]
    source, rows = data.read_split(name, report, SHARED)
    assert set(COLUMNS[name]) <= set(rows[0][1]) and source.endswith(f"{name}/{report}.jsonl:")
    t = load_task(name, SHARED, carve=True, max_train=2000)
    labels = set(t["report"]["label"]) | set(t["train"]["label"])
    if LABELS.get(name, {0, 1}) is None:
        assert all(isinstance(y, float) for y in labels) and len(labels) > 20
        assert min(labels) >= 0 and max(labels) <= 5
    else:
        assert labels == LABELS.get(name, {0, 1})
    assert_splits_share_no_rows(t, SHARED)
    again = load_task(name, SHARED, carve=True, max_train=2000)
    assert all(again[s]["text"] == t[s]["text"] for s in ("dev", "report"))
    assert t["measurable"] == (name != "yelp_polarity")


@needs_shared
def test_split_check_fails_when_dev_and_report_are_the_same_rows():
    t = load_task("rte", SHARED, protocol="paper")  # selects and reports on one split, by design
    with pytest.raises(AssertionError):
        assert_splits_share_no_rows(t, SHARED)


@needs_shared
def test_multirc_keeps_questions_whole():
    t = load_task("multirc", SHARED, max_eval=300)
    assert not set(t["dev"]["group"]) & set(t["train"]["group"])  # dev is held out of train
    counts = Counter(t["report"]["group"])
    rows = data.read_split("multirc", "validation", SHARED)
    read = data.examples(*rows, data.task_info("multirc"), "validation", "multirc")
    full = Counter(e["group"] for e in read)
    assert len(counts) > 10 and all(full[g] == c for g, c in counts.items())  # every answer


@needs_shared
def test_missing_train_split_needs_carve_and_is_marked():
    with pytest.raises(DataError, match="--carve"):
        load_task("scitail", SHARED)
    t = load_task("scitail", SHARED, carve=True)
    assert t["note"].startswith("†") and len(t["train"]) == int(0.6 * 2126)
    assert_splits_share_no_rows(t, SHARED)


@needs_shared
def test_paper_protocol_selects_and_reports_on_validation():
    t = load_task("rte", SHARED, protocol="paper")
    assert len(t["dev"]) == len(t["report"]) == 277 and t["dev"]["text"] == t["report"]["text"]
    honest = load_task("rte", SHARED)
    assert len(honest["dev"]) + len(honest["report"]) == 277


def test_hub_reads_only_the_named_splits_of_the_data_repositories(monkeypatch):
    calls = []
    words = "text sentence sentence1 sentence2 premise hypothesis question answer paragraph passage"

    def fake_load_dataset(repo, config=None, split=None):  # rows in every schema at once
        calls.append((repo, config, split))
        rows = [dict({w: f"{w} {i}" for w in words.split()}, label=i % 2) for i in range(60)]
        return [dict(row, idx=dict(paragraph=i, question=i)) for i, row in enumerate(rows)]

    monkeypatch.setattr(data.datasets, "load_dataset", fake_load_dataset)
    for name, (repo, config, splits) in HUB.items():
        calls.clear()
        t = load_task(name)
        assert calls == [(repo, config, s) for s in splits.split()], name
        assert len(t["train"]) + len(t["dev"]) + len(t["report"]) == 60 * len(calls)


def test_hub_unreachable_suggests_data_dir():
    with pytest.raises(DataError, match="cannot load nyu-mll/glue/rte .*--data-dir"):
        load_task("rte")  # HF_HUB_OFFLINE=1: the hub cannot be reached


def test_custom_task_folder_round_trips(tmp_path):
    rows = [{"text": f"item {i}", "text_pair": f"other {i}", "label": i % 3} for i in range(30)]
    write_jsonl(tmp_path / "mine" / "train.jsonl", rows)
    write_jsonl(tmp_path / "mine" / "validation.jsonl", rows[:10])
    write_jsonl(tmp_path / "mine" / "test.jsonl", rows[10:20])
    spec = json.dumps({"metric": "macro_f1", "num_labels": 4})
    (tmp_path / "mine" / "task.json").write_text(spec)
    assert parse_tasks("senti_food,mine", str(tmp_path)) == ["senti_food", "mine"]
    t = load_task("mine", str(tmp_path))
    assert t["info"]["num_labels"] == 4 and t["info"]["metrics"] == ("macro_f1",)
    assert t["train"]["label"] == [r["label"] for r in rows]
    assert t["train"]["text_pair"][3] == "other 3"
    assert t["dev"]["text"] == [r["text"] for r in rows[:10]]
    assert len(t["report"]) == 10  # test.jsonl reports


FLOATS = [([i / 7 for i in range(40)], None), ([3.0, 1.0] * 20, None), ([0, 1, 2.0] * 13, None)]


@pytest.mark.parametrize("labels,classes", FLOATS + [([3, 1] * 20, 4)])
def test_a_float_label_anywhere_means_regression(tmp_path, labels, classes):
    rows = [{"text": f"s {i}", "label": y} for i, y in enumerate(labels)]
    write_jsonl(tmp_path / "score" / "train.jsonl", rows)
    write_jsonl(tmp_path / "score" / "validation.jsonl", rows)
    t = load_task("score", str(tmp_path))
    assert t["info"]["labels"] == (classes and ("0", "1", "2", "3"))
    assert t["train"]["text_pair"][0] is None
    assert t["info"]["metrics"] == (("pearson",) if classes is None else ("accuracy",))
    first = [float(y) for y in labels[:2]] if classes is None else [3, 1]
    assert t["train"]["label"][:2] == first


NAMES = [({}, ("neg", "pos")), ({"labels": ["pos", "neg"]}, ("pos", "neg"))]


@pytest.mark.parametrize("spec,names", NAMES)
def test_string_labels_are_classes_in_task_json_order_or_sorted(tmp_path, spec, names):
    rows = [{"text": f"s {i}", "label": ["pos", "neg"][i % 2]} for i in range(40)]
    write_jsonl(tmp_path / "words" / "train.jsonl", rows)
    write_jsonl(tmp_path / "words" / "validation.jsonl", rows)
    (tmp_path / "words" / "task.json").write_text(json.dumps(spec))
    t = load_task("words", str(tmp_path))
    assert t["info"]["labels"] == names and t["info"]["num_labels"] == 2
    assert t["train"]["label"][:2] == [names.index("pos"), names.index("neg")]


def test_a_task_is_a_pair_task_if_any_row_has_a_pair(tmp_path):
    from transformers import AutoTokenizer

    import amp

    pairs = [{"text_pair": f"p {i}"} if i > 0 else {} for i in range(40)]
    rows = [{"text": f"s {i}", "label": i % 2} | pair for i, pair in enumerate(pairs)]
    write_jsonl(tmp_path / "late" / "train.jsonl", rows)
    write_jsonl(tmp_path / "late" / "validation.jsonl", rows[:1] * 30)  # no pair in validation
    t = load_task("late", str(tmp_path))
    assert t["train"]["text_pair"][:2] == ["", "p 1"]
    assert set(t["dev"]["text_pair"]) | set(t["report"]["text_pair"]) == {""}
    tok = AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))
    for ds in (t["train"], t["dev"]):  # every split as pairs: [CLS] s 0 [SEP] [SEP]
        assert tokens.tokenize(ds, tok, 32)[0]["input_ids"].count(tok.sep_token_id) == 2


def test_unknown_task_lists_known_tasks_and_folders(tmp_path):
    write_jsonl(tmp_path / "mine" / "train.jsonl", [{"text": "a", "label": 0}])
    with pytest.raises(DataError) as e:
        parse_tasks("sst2,nope", str(tmp_path))
    assert "'nope'" in str(e.value) and "senti_movies" in str(e.value)
    assert "para_people_32" in str(e.value) and "mine" in str(e.value) and "\n" not in str(e.value)


GOOD, L4 = '{"text": "a", "label": 0}', "train.jsonl:4"
# fmt: off
BAD_ROWS = [  # (what is wrong, train.jsonl's line 4 or "dir", task.json, FILE:LINE, what it says)
    ("text is a number", '{"text": 5, "label": 0}', None, L4, "field 'text' is 5;"),
    ("text is a list", '{"text": ["a", "b"], "label": 0}', None, L4,
     "field 'text' is [\"a\", \"b\"]"),
    ("text is missing", '{"txt": "a", "label": 0}', None, L4, "field 'text' is missing"),
    ("text is empty", '{"text": "  ", "label": 0}', None, L4,
     "field 'text' is \"  \"; expected a non-empty"),
    ("pair is a number", '{"text": "a", "text_pair": 3, "label": 0}', None, L4,
     "field 'text_pair' is 3"),
    ("label is NaN", '{"text": "a", "label": NaN}', None, L4,
     "field 'label' is NaN; expected a finite"),
    ("label is infinite", '{"text": "a", "label": -Infinity}', None, L4,
     "field 'label' is -Infinity"),
    ("label outside the classes", '{"text": "a", "label": 7}', '{"num_labels": 2}', L4,
     "field 'label' is 7; expected an int class 0..1"),
    ("label is true", '{"text": "a", "label": true}', None, L4, "field 'label' is true"),
    ("label is a list", '{"text": "a", "label": [1]}', None, L4, "field 'label' is [1]"),
    ("label is an unknown name", '{"text": "a", "label": "maybe"}', '{"labels": ["no", "yes"]}', L4,
     "field 'label' is \"maybe\"; expected an int class 0..1 or one of the names no, yes"),
    ("malformed JSON", '{"text": "a", label}', None, L4, "malformed JSON"),
    ("not an object", '[1, 2]', None, L4, "not a JSON object"),
    ("a directory", "dir", None, "train.jsonl", "is a directory, not a file")]
# fmt: on


@pytest.mark.parametrize("case,train,spec,place,says", BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_each_bad_row_stops_with_one_line_naming_file_line_and_field(
    tmp_path, case, train, spec, says, place
):
    folder = tmp_path / "bad"
    write_jsonl(folder / "validation.jsonl", [json.loads(GOOD)] * 3)
    if train == "dir":
        os.makedirs(folder / "train.jsonl")
    else:  # line 2 is blank: lines count as in the file
        (folder / "train.jsonl").write_text(f"{GOOD}\n\n{GOOD}\n{train}\n{GOOD}\n")
    if spec:
        (folder / "task.json").write_text(spec)
    assert parse_tasks("bad", str(tmp_path)) == ["bad"]  # a folder with a train.jsonl is a task
    with pytest.raises(DataError) as e:
        load_task("bad", str(tmp_path))
    message = str(e.value)
    assert message.startswith(f"{folder / place}") and says in message and "\n" not in message


def test_bad_validation_row_and_missing_or_empty_files_are_named(tmp_path):
    folder = tmp_path / "bad"
    rows = [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}]
    write_jsonl(folder / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"validation.jsonl, .csv or .tsv expected"):
        load_task("bad", str(tmp_path))
    (folder / "validation.jsonl").write_text("")
    with pytest.raises(DataError, match="validation.jsonl is empty"):
        load_task("bad", str(tmp_path))
    write_jsonl(folder / "validation.jsonl", rows[:1] + [{"text": "b", "label": "meh"}])
    says = r"validation.jsonl:2: field 'label' is \"meh\"; .* one of the names neg, pos"
    with pytest.raises(DataError, match=says):
        load_task("bad", str(tmp_path))


def test_cli_stops_on_a_bad_row_with_exit_code_2_and_one_line(tmp_path, capsys):
    import train

    write_jsonl(tmp_path / "bad" / "validation.jsonl", [json.loads(GOOD)] * 3)
    (tmp_path / "bad" / "train.jsonl").write_text(f'{GOOD}\n{{"text": 5, "label": 0}}\n')
    argv = ["--stage", "source", "--tasks", "bad", "--data-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as e:
        train.main(argv + ["--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("train.py: error: ")
    assert f"{tmp_path}/bad/train.jsonl:2: field 'text' is 5" in err


def test_demo_suite_is_deterministic_and_splits_share_no_rows():
    for name in DEMO:
        train = demo.demo_split(name, "train")
        assert train == demo.demo_split(name, "train")
        assert train != demo.demo_split(name, "train", seed=1)
        assert_splits_share_no_rows(load_task(name))
        assert sum(r["label"] for r in demo.demo_split(name, "test")) == 100  # balanced, 200 rows


def test_demo_families_share_label_words_and_differ_from_other_families():
    def words(name):
        rows = demo.demo_split(name, "train")
        return {w for r in rows for s in (r["text"], r["text_pair"] or "") for w in s.split()}

    fam = {n: DEMO[n][0] for n in demo.SUITES["demo"]}

    def jaccard(a, b):
        return len(words(a) & words(b)) / len(words(a) | words(b))

    within = [jaccard(a, b) for a in fam for b in fam if a < b and fam[a] == fam[b]]
    across = [jaccard(a, b) for a in fam for b in fam if a < b and fam[a] != fam[b]]
    assert min(within) > max(across), (min(within), max(across))


def test_demo_training_labels_carry_about_ten_percent_noise():
    for name in demo.SUITES["demo"]:  # rows alternate clean labels 1, 0, 1, ...; a flip breaks that
        train, test = demo.demo_split(name, "train"), demo.demo_split(name, "test")
        flipped = sum(r["label"] != (i % 2 == 0) for i, r in enumerate(train))
        assert 15 <= flipped <= 45, (name, flipped)
        assert all(r["label"] == (i % 2 == 0) for i, r in enumerate(test))


def test_lowres_suite_has_small_targets_beside_full_siblings_with_the_same_eval_rows():
    lowres = ["senti_movies", "senti_food_32", "senti_gadgets", "para_animals", "para_people_32"]
    assert data.SUITES["lowres"] == lowres + ["entail_basket", "entail_trips_32", "colours"]
    assert parse_tasks("lowres") == data.SUITES["lowres"]
    for small, full in demo.SMALL.items():
        t = load_task(small)
        assert (len(t["train"]), len(t["dev"]), len(t["report"])) == (32, 100, 200)
        assert DEMO[small][0] == DEMO[full][0]
        assert demo.demo_split(small, "train") == demo.demo_split(full, "train")[:32]
        assert t["report"]["text"] == load_task(full)["report"]["text"]  # comparable scores


def test_tokenize_keeps_pairs_and_truncates_for_the_prompt():
    from transformers import AutoTokenizer

    import amp

    tok = AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))
    t = load_task("entail_basket")
    ids = tokens.tokenize(t["train"], tok, 12)
    assert max(len(x) for x in ids["input_ids"]) == 12
    assert ids["length"] == [len(x) for x in ids["input_ids"]]
    assert 1 in ids[0]["token_type_ids"]  # the second text is the tokenizer's second segment
    full = tokens.tokenize(t["train"], tok, 64)[0]
    assert full["input_ids"][-1] == tok.sep_token_id
    assert full["input_ids"].count(tok.sep_token_id) == 2


def test_collate_pads_each_batch_to_its_longest_row():
    rows = [dict(input_ids=[101, 5, 102], label=1, task=0)]
    rows += [dict(input_ids=[101, 102], label=0.5, task=2)]
    b = data.collate(rows, pad_id=0)
    assert b["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]] and b["task"].tolist() == [0, 2]
    assert b["labels"].tolist() == [1.0, 0.5]
    assert b["token_type_ids"].tolist() == [[0, 0, 0], [0, 0, 0]]
