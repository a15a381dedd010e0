"""data.py: every task AMP trains on, checked row by row, split honestly, batched, mixed.
Tasks: the paper's 11 (4.1, A.4, Table 3) and MNLI, from the hub or a local copy (../shared/data);
yours, `<data-dir>/<name>/{train,validation[,test]}.{jsonl,csv,tsv}` of rows {"text", "text_pair"?,
"label"} (CSV/TSV: a header row names the columns; an empty cell is no value) and an optional
task.json {"metric", "num_labels", "labels": [names], "family", "max_tokens", "columns": {"text":
"your column", "text_pair": ..., "label": ...}}; --data-dir "a,b" looks in each folder, and a task
in two of them stops. A folder named like a registered task is read as your own task when it holds
a task.json, else with the registry's columns and labels. Made in code (GENERATED: lib/demo.py's
suites; `python -m lib.demo` shows what loads). Honest splits (ATTEMPT's): split_task."""

import csv
import io
import itertools
import json
import math
import os
import random
import datasets
import torch
from torch.nn.utils.rnn import pad_sequence

datasets.disable_progress_bars()  # the scripts draw their own bars; datasets' would interleave


class DataError(Exception):
    """A problem with the task list or the data; the scripts print it as one line, no traceback."""


def make_task(hub, fields, labels, metrics, family, report="validation", max_tokens=256,
          splits="train validation"):  # fmt: skip
    """A task, lists as words. hub: "repository config"; labels: class order, None = regression."""
    hub, fields, metrics = (tuple(words.split()) for words in (hub, fields, metrics))
    info = dict(hub=hub or None, fields=fields, labels=labels and tuple(labels.split()))
    info.update(metrics=metrics, report=report, family=family, max_tokens=max_tokens)  # A.3
    return dict(info, splits=tuple(sorted(set(splits.split()) | {report})))  # read, report too


REGISTRY = {  # the paper's Table 3 and MNLI (SPoT-m's source task); demo.py adds the demo tasks
    "imdb": make_task("stanfordnlp/imdb plain_text", "text", "neg pos", "accuracy", "sentiment",
                  "test", splits="train"),
    "sst2": make_task("nyu-mll/glue sst2", "sentence", "negative positive", "accuracy",
                  "sentiment"),
    "yelp_polarity": make_task("fancyzhx/yelp_polarity plain_text", "text", "negative positive",
                           "accuracy", "sentiment", "test", splits="train"),
    "stsb": make_task("nyu-mll/glue stsb", "sentence1 sentence2", None, "pearson spearman",
                  "relatedness"),
    "mrpc": make_task("nyu-mll/glue mrpc", "sentence1 sentence2", "not_equivalent equivalent",
                  "accuracy f1", "relatedness"),
    "rte": make_task("nyu-mll/glue rte", "sentence1 sentence2", "entailment not_entailment",
                 "accuracy", "entailment"),
    "scitail": make_task("allenai/scitail tsv_format", "premise hypothesis", "entails neutral",
                     "accuracy", "entailment", "test"),
    "cb": make_task("aps/super_glue cb", "premise hypothesis", "entailment contradiction neutral",
                "accuracy macro_f1", "entailment"),
    "multirc": make_task("aps/super_glue multirc", "question answer paragraph", "false true",
                     "f1a em", "qa", max_tokens=348),  # text = question + answer, pair = paragraph
    "boolq": make_task("aps/super_glue boolq", "question passage", "false true", "accuracy", "qa"),
    "qnli": make_task("nyu-mll/glue qnli", "question sentence", "entailment not_entailment",
                  "accuracy", "qa"),
    "mnli": make_task("nyu-mll/glue mnli", "premise hypothesis", "entailment neutral contradiction",
                  "accuracy", "entailment", "validation_matched", splits="train"),
}  # fmt: skip
PAPER_TASKS = [t for t in REGISTRY if t != "mnli"]  # Table 3's 11 tasks, in its order
SUITES = {"paper": PAPER_TASKS}  # named lists of tasks; demo.py adds "demo" and "lowres"
GENERATED = {}  # tasks made in code: name -> rows(split, seed); demo.py adds the demo suites
SPLIT_SEED = 0  # splits and subsets do not move with --seed: every run reports on the same rows
MIN_REPORT = 25  # fewer reporting rows is "not measurable" (CB's halved validation has 28)
K_CAP = 100_000  # paper 4.2: examples-proportional mixing with at most K examples per task

FORMATS = {".jsonl": None, ".csv": ",", ".tsv": "\t"}  # a split's file: JSON lines, or cells


def parse_tasks(spec, data_dir=None):
    """'demo' | 'lowres' | 'paper' | a comma list of suites, tasks, data_dir's task folders."""
    for d in data_dirs(data_dir):
        if os.path.exists(d) and not os.path.isdir(d):
            holds = "<task>/train, validation (test optional) as .jsonl, .csv or .tsv, task.json"
            raise DataError(f"--data-dir {d} is a file; a data folder holds a folder per task: "
                            f"{holds} (optional)")  # fmt: skip
        if not os.path.isdir(d):
            raise DataError(f"--data-dir {d} does not exist")
    names = [n for t in spec.split(",") if t.strip() for n in SUITES.get(t.strip(), [t.strip()])]
    trains = [os.path.join(d, f, "train" + x) for d in data_dirs(data_dir) for f in os.listdir(d)
              for x in FORMATS]  # fmt: skip
    custom = sorted({p.split(os.sep)[-2] for p in trains if os.path.lexists(p)} - set(REGISTRY))
    for t in [n for n in names if n not in REGISTRY and n not in custom]:
        known = "; ".join(f"{s} ({', '.join(v)})" for s, v in SUITES.items()) + "; mnli"
        where = f"in {data_dir or '--data-dir (none given)'}: {', '.join(custom) or 'none'}"
        raise DataError(f"unknown task '{t}'. Known: {known}; folders with a train.jsonl, .csv or "
                        f".tsv {where}")  # fmt: skip
    if not names or len(set(names)) != len(names):
        raise DataError(f"--tasks '{spec}' must name at least one task, each once")
    for n in names:
        task_folder(n, data_dir)  # a task in two folders stops here
    return names


def data_dirs(data_dir):
    """--data-dir's folders, in order: "a,b" is two (the API keeps it one string)."""
    return [d.strip() for d in (data_dir or "").split(",") if d.strip()]


def task_folder(name, data_dir):
    """The folder of task name in data_dir's folders, or None; in two folders: stops."""
    found = [os.path.join(d, name) for d in data_dirs(data_dir)]
    found = [f for f in found if os.path.isdir(f)]
    if len(found) > 1:
        raise DataError(f"task '{name}' is in two --data-dir folders, {found[0]} and {found[1]}: "
                        "rename one, or leave one folder out of --data-dir")  # fmt: skip
    return found[0] if found else None


def split_file(folder, split):
    """The file of one split in a task folder (.jsonl, .csv or .tsv), or None; two: stops."""
    paths = [os.path.join(folder, split + x) for x in FORMATS]
    paths = [p for p in paths if os.path.lexists(p)]
    if len(paths) > 1:
        raise DataError(f"{paths[0]} and {paths[1]}: two files of the {split} split; keep one")
    return paths[0] if paths else None


def read_split(name, split, data_dir=None, seed=0):
    """(source, [(line, row)]) of one split (a row's place: source + line), or None if none."""
    if name in GENERATED:
        rows = GENERATED[name](split, seed)
        return rows and (f"demo task {name}, {split} row ", list(enumerate(rows, 1)))
    folder = task_folder(name, data_dir)
    if folder is None:  # a task on the hub
        if name not in REGISTRY:
            where = data_dir or "--data-dir (none given)"
            raise DataError(f"task '{name}': no folder {name} in {where}")
        (repo, config), where = REGISTRY[name]["hub"], "/".join(REGISTRY[name]["hub"])
        if split not in REGISTRY[name]["splits"]:
            return None
        try:
            ds = datasets.load_dataset(repo, config, split=split)
        except Exception as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
            hub = f"cannot load {where} ({split}) from the Hugging Face hub: {reason}"
            local = f"--data-dir DIR holding {name}/{split}.jsonl or .csv, or use the offline"
            raise DataError(f"{hub}. Pass {local} demo suite (--tasks demo)") from None
        return f"{where}, {split} row ", list(enumerate(ds, 1))
    if (path := split_file(folder, split)) is None:
        return None
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory, not a file of rows")
    try:
        rows = read_jsonl(path) if path.endswith(".jsonl") else read_cells(path)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    if not rows:
        needs = "one JSON object a line" if path.endswith(".jsonl") else "a header row, then rows"
        raise DataError(f"{path} is empty: it needs {needs}")
    return path + ":", rows


def read_jsonl(path):
    """[(line, row)]: one JSON object a line; blank lines are skipped, but counted."""
    rows = []
    try:
        with open(path, "rb") as f:
            for i, line in enumerate(f, 1):
                row = json.loads(line.decode("utf-8")) if line.strip() else None
                if row is not None and not isinstance(row, dict):
                    raise DataError(f"{path}:{i}: not a JSON object")
                rows += [] if row is None else [(i, row)]
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        why = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"malformed JSON ({e.msg})"
        raise DataError(f"{path}:{i}: {why}") from None
    return rows


def read_cells(path):
    """[(line, row)] of a CSV or TSV file: a header row names the columns; a row is its non-empty
    cells; blank lines are skipped, but counted; a row's line is the one it starts on."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text") from None
    cells = csv.reader(io.StringIO(text, newline=""), delimiter=FORMATS[path[-4:]])
    header, rows, start = None, [], 1
    try:
        for row in cells:
            line, start = start, cells.line_num + 1
            if row and header and len(row) != len(header):
                raise DataError(f"{path}:{line}: {len(row)} cells, {len(header)} in the header")
            if row and header:
                rows.append((line, {k: v for k, v in zip(header, row) if v}))
            elif row and len(set(row)) < len(row):
                raise DataError(f"{path}:{line}: a column is named twice in the header")
            elif row:
                header = row
    except csv.Error as e:
        raise DataError(f"{path}:{cells.line_num}: malformed {path[-3:].upper()} ({e})") from None
    return rows


def number(cell):
    """A CSV label cell as JSON would type it: "3" -> 3, "2.5" -> 2.5, anything else as it is."""
    for kind in (int, float):
        try:
            return kind(cell)
        except (TypeError, ValueError):
            pass
    return cell


def task_info(name, data_dir=None, train=()):
    """A task's _task dict and num_labels (1 = regression). train: [(line, row)] of its train split
    (your own task's labels are read from them)."""
    folder = None if name in GENERATED else task_folder(name, data_dir)
    if folder and (name not in REGISTRY or os.path.exists(os.path.join(folder, "task.json"))):
        info = own_info(name, folder, train)
    else:
        info = dict(REGISTRY[name])
    info["num_labels"] = 1 if info["labels"] is None else len(info["labels"])
    return info


def own_info(name, folder, train):
    """Your own task's info: from its task.json and training rows."""
    path = os.path.join(folder, "task.json")
    try:
        spec = json.load(open(path)) if os.path.exists(path) else {}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable JSON object ({e})") from None
    cols = spec.get("columns", {}) if isinstance(spec, dict) else None
    ok = isinstance(cols, dict) and set(cols) <= {"text", "text_pair", "label"}
    if not (ok and all(isinstance(c, str) for c in cols.values())):
        raise DataError(f"{path}: must be a JSON object; 'columns' maps text, text_pair, label to "
                        "your column names")  # fmt: skip
    label = cols.get("label", "label")
    ys = [row.get(label) for _, row in train]
    if not (split_file(folder, "train") or ".jsonl").endswith(".jsonl"):
        ys = list(map(number, ys))  # cells are text: typed as JSON would type them
    ints = [y for y in ys if type(y) is int]
    C = spec.get("num_labels", 1 if float in map(type, ys) else max(ints + [1]) + 1)
    names = sorted({y for y in ys if type(y) is str}) or [str(c) for c in range(C)]
    labels = spec.get("labels", names)
    ok = isinstance(C, int) and C >= 1 and isinstance(labels, list)
    if not (ok and len(set(labels)) == len(labels) and all(isinstance(y, str) for y in labels)):
        must = "'num_labels' must be a whole number >= 1, 'labels' a list of distinct strings"
        raise DataError(f"{path}: {must}")
    labels = None if C == 1 and "labels" not in spec else tuple(labels)
    metric = spec.get("metric", "pearson" if C == 1 else "accuracy")
    fields = (cols.get("text", "text"), cols.get("text_pair", "text_pair"))
    info = dict(hub=None, fields=fields, label=label, labels=labels, metrics=(metric,))
    report = "test" if split_file(folder, "test") else "validation"
    info.update(report=report, family=spec.get("family", name))
    return dict(info, max_tokens=spec.get("max_tokens", 256))


def examples(source, rows, info, split, name=""):
    """Rows as read -> [{text, text_pair (may be null), label, group}], each checked."""
    f, names, C, out = info["fields"], info["labels"], info["num_labels"], []  # pair: the last
    classes = C != 1 and f"an int class 0..{C - 1} or one of the names {', '.join(names)}"
    label, cells = info.get("label", "label"), source.endswith((".csv:", ".tsv:"))  # cells: text

    def wrong(key, expected):  # this row's field, as read
        got = json.dumps(row[key], default=str)[:40] if key in row else "missing"
        return DataError(f"{source}{line}: field '{key}' is {got}; expected {expected}")

    for i, (line, row) in enumerate(rows):
        for key in f:  # a middle field may be empty (3 MultiRC answers are)
            text_ok = isinstance(v := row.get(key), str) and (v.strip() or key in f[1:-1])
            if not (text_ok or key == f[-1] and not info["hub"] and v is None):  # yours: no pair
                raise wrong(key, "a non-empty string")
        text, pair = " ".join(row[k] for k in f[:-1] or f), row.get(f[-1]) if len(f) > 1 else None
        y = row.get(label)  # an int class 0..C-1, a class name, a finite number (regression)
        if cells and (C == 1 or info["hub"]) and y not in (names or ()):  # else: names only
            y = number(y)  # a number: regression, or the hub's int classes
        if C == 1 and type(y) in (int, float) and math.isfinite(y):
            y = float(y)
        elif C > 1 and type(y) is str and y in names:
            y = names.index(y)
        elif not (C > 1 and type(y) is int and 0 <= y < C):
            raise wrong(label, classes or "a finite number (a regression task)")
        group = f"{split}/{i}"  # MultiRC: "split/paragraph-question", a question's answers together
        if name == "multirc" and info["hub"]:
            idx = row.get("idx")
            if not (isinstance(idx, dict) and {"paragraph", "question"} <= set(idx)):
                raise wrong("idx", "an object with paragraph and question")
            group = f"{split}/{idx['paragraph']}-{idx['question']}"
        out.append(dict(text=text, text_pair=pair, label=y, group=group))
    return out


def split_off(ds, n, seed=SPLIT_SEED):
    """(rest, part): part holds about n rows drawn with a fixed seed, whole groups at a time."""
    by_group, part = {}, []
    for i, g in enumerate(ds["group"]):
        by_group.setdefault(g, []).append(i)
    random.Random(seed).shuffle(groups := list(by_group))
    for g in groups:
        part += by_group[g] if len(part) < n else []
    return ds.select(sorted(set(range(len(ds))) - set(part))), ds.select(sorted(part))


def split_task(raw, info, protocol="honest", carve=False, where="", seed=SPLIT_SEED):
    """raw: {split: examples} -> train, dev (selects), report, note (SPEC "Honest model selection").
    paper: one split selects and reports (A.3); honest: a validation split, else rows held out:"""
    report, train, note = raw.get(split := info["report"]), raw.get("train"), ""
    if report is None:
        raise DataError(f"{where}: no {split} split, which this task reports on ({split}.jsonl, "
                        ".csv or .tsv expected in its folder)")  # fmt: skip
    if train is None and not carve:
        no_train = "no train split (train.jsonl, .csv or .tsv expected in its folder)"
        carve_it = f"--carve to carve train/dev/report from its {split} split with a fixed seed"
        raise DataError(f"{where}: {no_train}; pass {carve_it} (the task is then marked †)")
    if train is None:
        report, train = split_off(report, int(0.6 * len(report)), seed)
        note = f"† train carved from {split} (60%), dev/report from the rest"
    if protocol == "paper" or "validation" in raw and split != "validation" and not note:
        return train, report if protocol == "paper" else raw["validation"], report, note
    if len(train) >= 10_000:  # 1,000 training rows held out; fewer: the reporting split halved
        return (*split_off(train, 1000, seed), report, note)
    return (train, *split_off(report, len(report) // 2, seed)[::-1], note)  # dev, then report


def load_task(name, data_dir=None, protocol="honest", carve=False, max_train=None, max_eval=None,
              demo_seed=0):  # fmt: skip
    """One task: its info and train / dev / report examples (checked, not tokenised)."""
    splits = ("train", "validation", "validation_matched", "test")
    raw = {s: r for s in splits if (r := read_split(name, s, data_dir, demo_seed)) is not None}
    info = task_info(name, data_dir, raw.get("train", (None, []))[1])
    ex = {s: examples(source, rows, info, s, name) for s, (source, rows) in raw.items()}
    if any(e["text_pair"] is not None for rows in ex.values() for e in rows):  # a pair task
        ex = {s: [dict(e, text_pair=e["text_pair"] or "") for e in rows] for s, rows in ex.items()}
    ex = {s: datasets.Dataset.from_list(rows) for s, rows in ex.items()}
    where = task_folder(name, data_dir) or name
    train, dev, report, note = split_task(ex, info, protocol, carve, where)
    train, dev, report = subset(train, max_train), subset(dev, max_eval), subset(report, max_eval)
    task = dict(name=name, info=info, train=train, dev=dev, report=report, note=note)
    return dict(task, measurable=len(report) >= MIN_REPORT)


def subset(ds, n):
    """n rows of ds, drawn with a fixed seed (all of them if n is None or n >= len(ds))."""
    return ds if n is None or n >= len(ds) else split_off(ds, n)[1]


def collate(rows, pad_id):
    """Rows {input_ids, token_type_ids?, label, task} -> tensors padded to the longest row."""

    def pad(xs, v):
        return pad_sequence(list(map(torch.tensor, xs)), batch_first=True, padding_value=v)

    ids = [r["input_ids"] for r in rows]
    types = [r.get("token_type_ids", [0] * len(x)) for r, x in zip(rows, ids)]
    batch = dict(input_ids=pad(ids, pad_id), attention_mask=pad([[1] * len(x) for x in ids], 0))
    batch["token_type_ids"] = pad(types, 0)  # each (B, T)
    labels = torch.tensor([float(r["label"]) for r in rows])  # (B,): long per task in the loss
    return dict(batch, labels=labels, task=torch.tensor([r["task"] for r in rows]))


def task_batches(lengths, batch_size, seed, epoch):
    """One task's epoch: lists of row indices, every row once, a pure function of the arguments (a
    resumed run regenerates it). lengths: the rows' token counts, or a row count (plain shuffle)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if isinstance(lengths, int):
        order = torch.randperm(lengths, generator=g).tolist()
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    order = torch.randperm(len(lengths), generator=g).tolist()
    return length_grouped(order, lengths.__getitem__, batch_size, g)


def length_grouped(items, length, batch_size, g):
    """The items in runs of 50 batches, each run sorted by length, cut into batches, the batches
    shuffled: the same items, little padding."""
    run = 50 * batch_size
    items = [x for s in range(0, len(items), run) for x in sorted(items[s : s + run], key=length)]
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    return [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()]


def epoch_batches(sizes, batch_size, seed, epoch, K=K_CAP, T=1.0, lengths=None):
    """Batches of (task, row) for one epoch, a pure function of the arguments. One task: a shuffled
    pass; several: examples-proportional mixing (4.2), r_t = min(N_t, K) / Σ_t' min(N_t', K).
    T > 1 (ours; T5's temperature mixing): r_t ∝ min(N_t, K)^(1/T), as many draws an epoch.
    lengths (ours): [task][row] token counts: the same draws, length_grouped into batches."""
    if len(sizes) == 1:
        return [[(0, i) for i in b] for b in task_batches(sizes[0], batch_size, seed, epoch)]
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    caps = torch.tensor([float(min(n, K)) for n in sizes])  # (n_tasks,)
    rates = caps if T == 1 else caps ** (1 / T)  # r_t, up to a constant
    draws = torch.multinomial(rates, int(caps.sum()), replacement=True, generator=g).tolist()
    cycles = [itertools.cycle(torch.randperm(n, generator=g).tolist()) for n in sizes]
    pairs = [(t, next(cycles[t])) for t in draws]  # task t's next row
    if lengths is not None:
        return length_grouped(pairs, lambda p: lengths[p[0]][p[1]], batch_size, g)
    return [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)]
