"""Tests of your own task folders beyond JSONL: CSV and TSV splits read to the same examples, their
bad rows stop with FILE:LINE, task.json's column mapping, several --data-dir folders, a file given
as --data-dir, and a folder named like a registered task (yours with a task.json, else the hub's).

  python -m pytest -q tests/test_own_data.py
Tests that read ../shared/data (or $AMP_DATA_DIR) skip, saying so, when it is absent.
"""

import csv
import json
import os
import re
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import data  # noqa: E402
from data import DataError, load_task, parse_tasks  # noqa: E402
from test_data import HERE, SHARED, needs_shared, write_jsonl  # noqa: E402

DIALECT = {"csv": csv.excel, "tsv": csv.excel_tab}


def write_cells(path, rows, columns=("text", "text_pair", "label")):
    """rows as a CSV or TSV file (by path's ending), as the csv module writes them."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, columns, dialect=DIALECT[str(path)[-3:]])
        out.writeheader()
        out.writerows(rows)


def loaded(task):
    """Everything load_task returns, as plain values."""
    splits = {s: task[s].to_dict() for s in ("train", "dev", "report")}
    return dict(splits, info=task["info"], note=task["note"])


TEXTS = ["plain", 'a "quoted", comma', "a\ttab and\na newline", "ünïcödé ✓", " spaced "]
LABELS = {"ints": [0, 2, 1], "names": ["pos", "neg", "meh"], "floats": [0.5, 3.0, 1.25]}


@pytest.mark.parametrize("kind", LABELS)
@pytest.mark.parametrize("ext", ["csv", "tsv"])
def test_csv_and_tsv_load_to_the_same_examples_as_jsonl(tmp_path, ext, kind):
    ys = LABELS[kind]
    rows = [{"text": f"{TEXTS[i % 5]} {i}", "label": ys[i % 3]} for i in range(60)]
    rows = [dict(r, text_pair=f"p {i}") if i % 4 else r for i, r in enumerate(rows)]
    for split, part in (("train", rows), ("validation", rows[:40]), ("test", rows[40:])):
        write_jsonl(tmp_path / "a" / "t" / f"{split}.jsonl", part)
        write_cells(tmp_path / "b" / "t" / f"{split}.{ext}", part)
    want, got = (loaded(load_task("t", str(tmp_path / d))) for d in "ab")
    assert got == want
    train = got["train"]
    assert train["text"][1] == 'a "quoted", comma 1' and train["text_pair"][:2] == ["", "p 1"]
    names = {"ints": ("0", "1", "2"), "names": ("meh", "neg", "pos"), "floats": None}
    assert got["info"]["labels"] == names[kind]
    assert train["label"][:3] == {"ints": [0, 2, 1], "names": [2, 1, 0]}.get(kind, ys)


# fmt: off
CSV_BAD = [  # (what is wrong, header, line 4 (lines 2 and 5: "a,0"; 3: blank), task.json, says)
    ("text is empty", "text,label", '"  ",0', None, ":4: field 'text' is \"  \"; expected a non-"),
    ("text is missing", "text,label", ",0", None, ":4: field 'text' is missing"),
    ("a mapped column is missing", "review,label", ",0", {"columns": {"text": "review"}},
     ":4: field 'review' is missing"),
    ("label is NaN", "text,label", "a,NaN", None, ":4: field 'label' is \"NaN\"; expected a fin"),
    ("label is infinite", "text,label", "a,-inf", None, ":4: field 'label' is \"-inf\""),
    ("label outside the classes", "text,label", "a,7", {"num_labels": 2},
     ":4: field 'label' is \"7\"; expected an int class 0..1"),
    ("label is an unknown name", "text,label", "a,maybe", {"labels": ["0", "yes"]},
     ":4: field 'label' is \"maybe\"; expected an int class 0..1 or one of the names 0, yes"),
    ("digits where the labels are names", "text,label", "a,1", {"labels": ["0", "yes"]},
     ":4: field 'label' is \"1\""),
    ("a row with a cell too many", "text,label", "a,0,b", None, ":4: 3 cells, 2 in the header"),
    ("an unclosed quote", "text,label", '"a,0', None, ":4: 1 cells, 2 in the header"),
    ("not UTF-8", "text,label", "\udcff,0", None, ":4: not UTF-8 text"),
    ("a column named twice", "text,text", "a,0", None, ":1: a column is named twice"),
    ("only a header", "text,label", None, None, " is empty: it needs a header row"),
    ("a directory", None, None, None, " is a directory, not a file")]
# fmt: on


@pytest.mark.parametrize("ext", ["csv", "tsv"])
@pytest.mark.parametrize("case,header,bad,spec,says", CSV_BAD, ids=[c[0] for c in CSV_BAD])
def test_each_bad_csv_row_stops_with_one_line_naming_file_line_and_field(
    tmp_path, ext, case, header, bad, spec, says
):
    folder, sep = tmp_path / "bad", DIALECT[ext].delimiter
    write_jsonl(folder / "validation.jsonl", [{"text": "a", "label": 0}] * 3)
    if header is None:
        os.makedirs(folder / f"train.{ext}")
    else:
        lines = [header] if bad is None else [header, "a,0", "", bad, "a,0"]
        text = "\n".join(lines).replace(",", sep) + "\n"
        (folder / f"train.{ext}").write_bytes(text.encode("utf-8", "surrogateescape"))
    if spec:
        (folder / "task.json").write_text(json.dumps(spec))
    assert parse_tasks("bad", str(tmp_path)) == ["bad"]  # a folder with a train.csv is a task
    with pytest.raises(DataError) as e:
        load_task("bad", str(tmp_path))
    message = str(e.value)
    assert message.startswith(f"{folder}/train.{ext}{says}") and "\n" not in message


def test_two_files_of_one_split_stop_naming_both(tmp_path):
    write_jsonl(tmp_path / "t" / "train.jsonl", [{"text": "a", "label": 0}])
    write_cells(tmp_path / "t" / "train.csv", [{"text": "a", "label": 0}])
    with pytest.raises(DataError) as e:
        load_task("t", str(tmp_path))
    assert str(e.value) == (
        f"{tmp_path}/t/train.jsonl and {tmp_path}/t/train.csv: two files of the train split; "
        "keep one"
    )


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_task_json_columns_map_your_columns_to_text_pair_and_label(tmp_path, ext):
    rows = [{"review": f"r {i}", "hypothesis": f"h {i}", "stars": str(i % 5 + 1)} for i in range(9)]
    rows = [dict(r, id=i) for i, r in enumerate(rows * 4)]  # a column not mapped: ignored
    for split in ("train", "validation"):
        path = tmp_path / "stars" / f"{split}.{ext}"
        if ext == "csv":
            write_cells(path, rows, list(rows[0]))
        else:
            write_jsonl(path, rows)
    columns = {"text": "review", "text_pair": "hypothesis", "label": "stars"}
    spec = {"columns": columns, "labels": ["1", "2", "3", "4", "5"], "metric": "macro_f1"}
    (tmp_path / "stars" / "task.json").write_text(json.dumps(spec))
    t = load_task("stars", str(tmp_path))
    assert t["info"]["num_labels"] == 5 and t["info"]["metrics"] == ("macro_f1",)
    train = t["train"]
    assert train["text"][:2] == ["r 0", "r 1"] and train["text_pair"][:2] == ["h 0", "h 1"]
    assert train["label"][:6] == [0, 1, 2, 3, 4, 0]  # "1" is the first name, class 0


def two_folders(tmp_path, a_tasks, b_tasks):
    rows = [{"text": f"s {i}", "label": i % 2} for i in range(40)]
    for d, tasks in (("a", a_tasks), ("b", b_tasks)):
        for t in tasks:
            write_jsonl(tmp_path / d / t / "train.jsonl", rows)
            write_jsonl(tmp_path / d / t / "validation.jsonl", rows)
    return f"{tmp_path / 'a'},{tmp_path / 'b'}"


def test_several_data_folders_find_a_task_in_the_second(tmp_path):
    both = two_folders(tmp_path, ["mine"], ["other"])
    assert parse_tasks("mine,other,senti_food", both) == ["mine", "other", "senti_food"]
    t = load_task("other", both)
    assert t["train"]["text"] == load_task("other", str(tmp_path / "b"))["train"]["text"]
    with pytest.raises(DataError, match=re.escape(f"in {both}: mine, other")):
        parse_tasks("nope", both)


def test_a_task_in_two_data_folders_stops_naming_both(tmp_path):
    both = two_folders(tmp_path, ["mine"], ["mine"])
    says = f"task 'mine' is in two --data-dir folders, {tmp_path}/a/mine and {tmp_path}/b/mine: "
    for load in (parse_tasks, load_task):
        with pytest.raises(DataError) as e:
            load("mine", both)
        assert str(e.value).startswith(says) and "\n" not in str(e.value)
    assert load_task("mine", str(tmp_path / "b"))["name"] == "mine"  # one folder left out: loads


def test_a_file_given_as_data_dir_says_what_a_data_folder_holds(tmp_path):
    write_cells(tmp_path / "reviews.csv", [{"text": "a", "label": 0}])
    with pytest.raises(DataError) as e:
        parse_tasks("reviews", str(tmp_path / "reviews.csv"))
    assert str(e.value) == (
        f"--data-dir {tmp_path}/reviews.csv is a file; a data folder holds a folder per task: "
        "<task>/train, validation (test optional) as .jsonl, .csv or .tsv, task.json (optional)"
    )
    with pytest.raises(DataError) as e:
        parse_tasks("reviews", f"{tmp_path},{tmp_path}/nowhere")
    assert str(e.value) == f"--data-dir {tmp_path}/nowhere does not exist"


HUB_COLUMNS = ["sentence1", "sentence2", "label"]  # RTE's, as the hub has them


def hub_rows(n):
    return [{"sentence1": f"s {i}", "sentence2": f"t {i}", "label": i % 2} for i in range(n)]


def test_own_folder_named_rte_with_task_json_is_read_as_your_own_task(tmp_path):
    rows = [{"claim": f"c {i}", "label": ["yes", "no"][i % 2]} for i in range(40)]
    write_cells(tmp_path / "rte" / "train.csv", rows, ["claim", "label"])
    write_cells(tmp_path / "rte" / "validation.csv", rows, ["claim", "label"])
    (tmp_path / "rte" / "task.json").write_text(json.dumps({"columns": {"text": "claim"}}))
    t = load_task("rte", str(tmp_path))
    assert t["info"]["labels"] == ("no", "yes") and t["info"]["fields"] == ("claim", "text_pair")
    assert t["train"]["text"][:2] == ["c 0", "c 1"] and t["train"]["label"][:2] == [1, 0]


def test_own_folder_named_rte_without_task_json_is_read_with_the_hub_columns(tmp_path):
    write_jsonl(tmp_path / "rte" / "train.jsonl", hub_rows(40))
    write_cells(tmp_path / "rte" / "validation.csv", hub_rows(40), HUB_COLUMNS)
    t = load_task("rte", str(tmp_path))
    assert t["info"] == dict(data.REGISTRY["rte"], num_labels=2)
    assert t["train"]["text"][:2] == ["s 0", "s 1"] and t["train"]["text_pair"][1] == "t 1"
    assert t["train"]["label"][:2] == [0, 1] and sorted(set(t["report"]["label"])) == [0, 1]


@needs_shared
def test_shared_registered_tasks_load_alike_beside_a_folder_of_your_own(tmp_path):
    write_jsonl(tmp_path / "mine" / "train.jsonl", [{"text": "a", "label": 0}])
    for name in ("rte", "stsb", "scitail"):
        alone = loaded(load_task(name, SHARED, carve=True, max_train=500))
        beside = loaded(load_task(name, f"{tmp_path},{SHARED}", carve=True, max_train=500))
        assert beside == alone
        assert {k: alone["info"][k] for k in data.REGISTRY[name]} == data.REGISTRY[name]
    os.makedirs(tmp_path / "rte")
    with pytest.raises(DataError, match="task 'rte' is in two --data-dir folders"):
        load_task("rte", f"{tmp_path},{SHARED}")


def test_following_the_hub_hint_loads_a_local_copy_of_rte(tmp_path):
    with pytest.raises(DataError, match=r"Pass --data-dir DIR holding rte/train.jsonl or .csv"):
        load_task("rte")  # HF_HUB_OFFLINE=1: the hub cannot be reached
    for split in ("train", "validation"):  # the hub's columns, as a CSV
        write_cells(tmp_path / "rte" / f"{split}.csv", hub_rows(60), HUB_COLUMNS)
    cmd = [sys.executable, "-m", "lib.demo", "--tasks", "rte", "--data-dir", str(tmp_path)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    first = " ".join(out.stdout.splitlines()[0].split())
    assert first.startswith("rte family=entailment labels=2 train= 60 dev= 30 report= 30")
