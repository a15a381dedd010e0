"""data.py: every task AMP trains on, checked row by row, split honestly, tokenised once, batched and mixed.

- The paper's 11 tasks (paper 4.1, A.4, Table 3) and MNLI, from the hub repositories that hold their data files
  (nyu-mll/glue, aps/super_glue, ...), or from `<data-dir>/<task>/<split>.jsonl` in the same schema (../shared/data).
- Your own tasks: `<data-dir>/<name>/{train,validation[,test]}.jsonl`, rows {"text", "text_pair"?, "label"}, and an
  optional task.json {"metric": "accuracy" | "f1" | "pearson" | ..., "num_labels": C, "labels": [names]}.
- Tasks made in code (GENERATED): demo.py adds the offline demo suites `demo` and `lowres` (the default).
- Honest splits (ATTEMPT's protocol): `split_task`. Batches: `task_batches`; mixing (paper 4.2): `epoch_batches`.

Run (demo.py prints what this file loads):
  python demo.py --tasks paper --data-dir ../shared/data --carve   # the 11 tasks from a local copy
"""
import itertools
import json
import math
import os
import random

import datasets
import torch

datasets.disable_progress_bars()  # scripts draw their own bars; datasets' own would interleave with them


class DataError(Exception):
    """A problem with the task list or the data; the scripts print it as one line, without a traceback."""


# ----------------------------------------------------------------------------------------------------------
# The registry: the paper's Table 3 (plus MNLI, SPoT-m's source task); demo.py adds the demo suites.
def _task(hub, fields, labels, metrics, family, report="validation", max_tokens=256, splits="train validation"):
    """One task, lists as words. hub: "repository config"; labels: class names in class order (None = regression);
    splits: the only ones read, with report, the one the paper reports on; max_tokens: stage-1 input (paper A.3)."""
    return dict(hub=tuple(hub.split()) or None, fields=tuple(fields.split()), labels=labels and tuple(labels.split()),
                metrics=tuple(metrics.split()), report=report, family=family, max_tokens=max_tokens,
                splits=tuple(sorted(set(splits.split()) | {report})))


REGISTRY = {
    "imdb": _task("stanfordnlp/imdb plain_text", "text", "neg pos", "accuracy", "sentiment", "test", splits="train"),
    "sst2": _task("nyu-mll/glue sst2", "sentence", "negative positive", "accuracy", "sentiment"),
    "yelp_polarity": _task("fancyzhx/yelp_polarity plain_text", "text", "negative positive", "accuracy", "sentiment",
                           "test", splits="train"),
    "stsb": _task("nyu-mll/glue stsb", "sentence1 sentence2", None, "pearson spearman", "relatedness"),
    "mrpc": _task("nyu-mll/glue mrpc", "sentence1 sentence2", "not_equivalent equivalent", "accuracy f1", "relatedness"),
    "rte": _task("nyu-mll/glue rte", "sentence1 sentence2", "entailment not_entailment", "accuracy", "entailment"),
    "scitail": _task("allenai/scitail tsv_format", "premise hypothesis", "entails neutral", "accuracy", "entailment",
                     "test"),
    "cb": _task("aps/super_glue cb", "premise hypothesis", "entailment contradiction neutral", "accuracy macro_f1",
                "entailment"),
    "multirc": _task("aps/super_glue multirc", "question answer paragraph", "false true", "f1a em", "qa",
                     max_tokens=348),   # text = question + answer, pair = paragraph
    "boolq": _task("aps/super_glue boolq", "question passage", "false true", "accuracy", "qa"),
    "qnli": _task("nyu-mll/glue qnli", "question sentence", "entailment not_entailment", "accuracy", "qa"),
    "mnli": _task("nyu-mll/glue mnli", "premise hypothesis", "entailment neutral contradiction", "accuracy", "entailment",
                  "validation_matched", splits="train"),
}
PAPER_TASKS = ["imdb", "sst2", "yelp_polarity", "stsb", "mrpc", "rte", "scitail", "cb", "multirc", "boolq", "qnli"]
SUITES = {"paper": PAPER_TASKS}   # named lists of tasks; demo.py adds "demo" and "lowres"
GENERATED = {}   # tasks made in code: name -> rows(split, seed); demo.py adds the demo suites
SPLIT_SEED = 0            # splits and subsets do not move with --seed, so every run reports on the same rows
MIN_REPORT = 25           # fewer reporting rows than this is "not measurable" (CB's halved validation has 28)
K_CAP = 100_000           # paper 4.2: examples-proportional mixing with at most K examples per task

# ----------------------------------------------------------------------------------------------------------
# Task lists and reading raw rows: each split is (source, [(line number, row)]), a row's place being source + line.
def parse_tasks(spec, data_dir=None):
    """'demo' | 'lowres' | 'paper' | a comma list of suites, tasks and folders in data_dir with a train.jsonl."""
    if data_dir and not os.path.isdir(data_dir):
        raise DataError(f"--data-dir {data_dir} does not exist")
    names = [n for t in spec.split(",") if t.strip() for n in SUITES.get(t.strip(), [t.strip()])]
    custom = sorted(f for f in os.listdir(data_dir) if f not in REGISTRY and
                    os.path.lexists(os.path.join(data_dir, f, "train.jsonl"))) if data_dir else []
    for name in [n for n in names if n not in REGISTRY and n not in custom]:
        known = "; ".join(f"{s} ({', '.join(v)})" for s, v in SUITES.items())
        raise DataError(f"unknown task '{name}'. Known: {known}; mnli; folders with a train.jsonl in "
                        f"{data_dir or '--data-dir (none given)'}: {', '.join(custom) or 'none'}")
    if not names or len(set(names)) != len(names):
        raise DataError(f"--tasks '{spec}' must name at least one task, each once")
    return names


def read_jsonl(path):
    """[(line number, row)] of a JSON lines file (blank lines skipped, but counted)."""
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory, not a file: put one JSON object a line in a file of that name")
    rows = []
    try:
        with open(path, "rb") as f:
            for i, line in enumerate(f, 1):
                where = f"{path}:{i}"
                row = json.loads(line.decode("utf-8")) if line.strip() else None
                if row is not None and not isinstance(row, dict):
                    raise DataError(f"{where}: not a JSON object")
                rows += [] if row is None else [(i, row)]
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise DataError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: malformed JSON ({e.msg})") from None
    if not rows:
        raise DataError(f"{path} is empty: it needs one JSON object a line")
    return rows


def read_split(name, split, data_dir=None, seed=0):
    """(source, rows) of one split, or None if the task has no such split."""
    folder = os.path.join(data_dir or "", name)
    if name in GENERATED:
        rows = GENERATED[name](split, seed)
        return rows and (f"demo task {name}, {split} row ", list(enumerate(rows, 1)))
    if data_dir and os.path.isdir(folder):
        path = os.path.join(folder, f"{split}.jsonl")
        return (path + ":", read_jsonl(path)) if os.path.lexists(path) else None
    if name not in REGISTRY:
        raise DataError(f"task '{name}': no folder {folder}")
    (repo, config), where = REGISTRY[name]["hub"], "/".join(REGISTRY[name]["hub"])
    if split not in REGISTRY[name]["splits"]:
        return None
    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise DataError(f"cannot load {where} ({split}) from the Hugging Face hub: {reason}. Pass --data-dir DIR "
                        f"holding {name}/{split}.jsonl, or use the offline demo suite (--tasks demo)") from None
    return f"{where}, {split} row ", list(enumerate(ds, 1))


def task_info(name, data_dir=None, train=()):
    """What a task is: labels (class names in class order; None = regression), num_labels (1 = regression),
    metrics, family, input fields, max tokens. Your own task: task.json, else its training rows decide."""
    if name in REGISTRY:
        info = dict(REGISTRY[name])
    else:
        path = os.path.join(data_dir, name, "task.json")
        try:
            spec = json.load(open(path)) if os.path.exists(path) else {}
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable JSON object ({e})") from None
        if not isinstance(spec, dict):
            raise DataError(f"{path}: not a JSON object")
        ys = [row.get("label") for _, row in train]
        C = spec.get("num_labels", 1 if float in map(type, ys) else max([y for y in ys if type(y) is int] + [1]) + 1)
        labels = spec.get("labels", sorted({y for y in ys if type(y) is str}) or [str(c) for c in range(C)])
        if not isinstance(C, int) or C < 1 or not isinstance(labels, list) or len(set(labels)) != len(labels) \
                or not all(isinstance(y, str) for y in labels):
            raise DataError(f"{path}: 'num_labels' must be a whole number >= 1, 'labels' a list of distinct strings")
        info = dict(hub=None, fields=("text", "text_pair"), labels=None if C == 1 and "labels" not in spec else
                    tuple(labels), metrics=(spec.get("metric", "pearson" if C == 1 else "accuracy"),),
                    report="test" if os.path.lexists(os.path.join(data_dir, name, "test.jsonl")) else "validation",
                    family=spec.get("family", name), max_tokens=spec.get("max_tokens", 256))
    info["num_labels"] = 1 if info["labels"] is None else len(info["labels"])
    return info


def examples(source, rows, info, split, name=""):
    """Rows as read -> [{text, text_pair, label, group}], each checked. Of several fields the last is the pair, the
    others join into the text (MultiRC: question + answer, paragraph); "text_pair" may be missing or null. Labels: an
    int class 0..C-1, a class name (scitail's "entails"), or a finite number (regression). group = "split/row", or
    "split/paragraph-question" for MultiRC, whose answers to one question stay together in every split we cut."""
    f, names, C, out = info["fields"], info["labels"], info["num_labels"], []

    def wrong(key, expected):   # one line: where, the field, what it holds (5, "5", [1], NaN, null...), what it should
        got = json.dumps(row[key], default=str)[:40] if key in row else "missing"
        return DataError(f"{source}{line}: field '{key}' is {got}; expected {expected}")
    for i, (line, row) in enumerate(rows):
        for key in f:   # a middle field may be empty (3 MultiRC answers are)
            v = row.get(key)
            if not (isinstance(v, str) and (v.strip() or key in f[1:-1]) or key == "text_pair" and v is None):
                raise wrong(key, "a non-empty string")
        text, pair = (" ".join(row[k] for k in f[:-1]), row.get(f[-1])) if len(f) > 1 else (row[f[0]], None)
        y = row.get("label")
        if C == 1 and type(y) in (int, float) and math.isfinite(y):
            y = float(y)
        elif C > 1 and type(y) is str and y in names:
            y = names.index(y)
        elif not (C > 1 and type(y) is int and 0 <= y < C):
            raise wrong("label", "a finite number (a regression task)" if C == 1 else
                        f"an int class 0..{C - 1} or one of the names {', '.join(names)}")
        idx = row.get("idx")
        if name == "multirc" and not (isinstance(idx, dict) and {"paragraph", "question"} <= set(idx)):
            raise wrong("idx", "an object with paragraph and question")
        group = f"{split}/{idx['paragraph']}-{idx['question']}" if name == "multirc" else f"{split}/{i}"
        out.append(dict(text=text, text_pair=pair, label=y, group=group))
    return out


# ----------------------------------------------------------------------------------------------------------
# Honest splits (SPEC "Honest model selection"; ATTEMPT's protocol) and deterministic subsets.
def split_off(ds, n, seed=SPLIT_SEED):
    """(rest, part): part holds about n rows drawn with a fixed seed, whole groups (MultiRC questions) at a time."""
    by_group, part = {}, []
    for i, g in enumerate(ds["group"]):
        by_group.setdefault(g, []).append(i)
    groups = list(by_group)
    random.Random(seed).shuffle(groups)
    for g in groups:
        part += by_group[g] if len(part) < n else []
    return ds.select(sorted(set(range(len(ds))) - set(part))), ds.select(sorted(part))


def split_task(raw, info, protocol="honest", carve=False, where="", seed=SPLIT_SEED):
    """raw: {split: examples} -> train, dev (selects checkpoints), report (the reported numbers), note. honest: a
    validation split beside a separate reporting split selects; otherwise tasks under 10,000 training rows halve the
    reporting split (select / report), larger ones hold out 1,000 training rows. paper: one split (paper A.3)."""
    report, train, note = raw.get(info["report"]), raw.get("train"), ""
    if report is None:
        raise DataError(f"{where}: no {info['report']} split, which this task reports on "
                        f"({info['report']}.jsonl expected in its folder)")
    if train is None and not carve:
        raise DataError(f"{where}: no train split (train.jsonl expected in its folder); pass --carve to carve "
                        f"train/dev/report from its {info['report']} split with a fixed seed (the task is then marked †)")
    if train is None:
        report, train = split_off(report, int(0.6 * len(report)), seed)
        note = f"† train carved from {info['report']} (60%), dev/report from the rest"
    if protocol == "paper":
        return train, report, report, note
    if "validation" in raw and info["report"] != "validation" and not note:
        return train, raw["validation"], report, note
    if len(train) >= 10_000:
        train, dev = split_off(train, 1000, seed)
    else:
        report, dev = split_off(report, len(report) // 2, seed)
    return train, dev, report, note


def load_task(name, data_dir=None, protocol="honest", carve=False, max_train=None, max_eval=None, demo_seed=0):
    """Everything about one task: its info, and train / dev / report examples (checked, not yet tokenised).
    A task is a pair task if any of its rows has a second text; then rows without one get "" (issue 9.7)."""
    raw = {s: r for s in ("train", "validation", "validation_matched", "test")
           if (r := read_split(name, s, data_dir, demo_seed)) is not None}
    info = task_info(name, data_dir, raw.get("train", (None, []))[1])
    ex = {s: examples(source, rows, info, s, name) for s, (source, rows) in raw.items()}
    pair = any(e["text_pair"] is not None for rows in ex.values() for e in rows)
    ex = {s: datasets.Dataset.from_list([dict(e, text_pair=e["text_pair"] or "") if pair else e for e in rows])
          for s, rows in ex.items()}
    train, dev, report, note = split_task(ex, info, protocol, carve, os.path.join(data_dir or "", name))
    subset = lambda ds, n: ds if n is None or n >= len(ds) else split_off(ds, n)[1]   # the same n rows every time
    train, dev, report = subset(train, max_train), subset(dev, max_eval), subset(report, max_eval)
    return dict(name=name, info=info, train=train, dev=dev, report=report, note=note,
                measurable=len(report) >= MIN_REPORT)


# ----------------------------------------------------------------------------------------------------------
# Tokenisation and batches.
def tokenize(ds, tokenizer, max_len):
    """Text (pairs as tokenizer pairs) -> input_ids (+ token_type_ids) and length, truncated to max_len tokens.
    max_len already leaves room for the prompt: min(task max tokens, model positions - l), paper 3.1 / A.3."""
    pair = any(p is not None for p in ds["text_pair"])
    def enc(batch):
        out = tokenizer(batch["text"], batch["text_pair"] if pair else None, truncation=True, max_length=max_len)
        return dict(out, length=[len(x) for x in out["input_ids"]])
    return ds.map(enc, batched=True, remove_columns=["text", "text_pair"])


def collate(rows, pad_id):
    """Rows {input_ids, token_type_ids?, label, task} -> tensors padded to the batch's longest row (dynamic)."""
    pad = lambda xs, v: torch.nn.utils.rnn.pad_sequence([torch.tensor(x) for x in xs], batch_first=True, padding_value=v)
    return dict(input_ids=pad([r["input_ids"] for r in rows], pad_id),                              # (B, T)
                attention_mask=pad([[1] * len(r["input_ids"]) for r in rows], 0),
                token_type_ids=pad([r.get("token_type_ids", [0] * len(r["input_ids"])) for r in rows], 0),
                labels=torch.tensor([float(r["label"]) for r in rows]),   # cast to long per task in the loss
                task=torch.tensor([r["task"] for r in rows]))


def task_batches(lengths, batch_size, seed, epoch):
    """One task's epoch: lists of row indices, every row exactly once, a pure function of the arguments (a resumed
    run regenerates it). lengths: the rows' token counts, or just the number of rows for a plain shuffled pass.
    Rule: shuffle the rows with a generator seeded from (seed, epoch); cut the order into runs of 50 batches; sort
    each run by length; cut into batches; shuffle the batch order: random batches of similar lengths pad little."""
    g, grouped = torch.Generator().manual_seed(seed * 1_000_003 + epoch), not isinstance(lengths, int)
    order, run = torch.randperm(len(lengths) if grouped else lengths, generator=g).tolist(), 50 * batch_size
    if grouped:
        order = [i for s in range(0, len(order), run) for i in sorted(order[s:s + run], key=lengths.__getitem__)]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()] if grouped else batches


def epoch_batches(sizes, batch_size, seed, epoch, K=K_CAP):
    """Batches of (task, row) pairs for one epoch, a pure function of the arguments. One task: a full shuffled pass
    whatever its size (K applies to mixing only). Several: paper 4.2 / Raffel et al. 2020, examples-proportional
    mixing, r_t = min(N_t, K) / Σ_t' min(N_t', K): an epoch draws Σ_t min(N_t, K) examples; each draw picks task t
    with probability r_t, then the next row of a shuffled cycle over task t, so batches mix tasks."""
    if len(sizes) == 1:
        return [[(0, i) for i in b] for b in task_batches(sizes[0], batch_size, seed, epoch)]
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    caps = torch.tensor([float(min(n, K)) for n in sizes])                    # (n_tasks,)
    draws = torch.multinomial(caps, int(caps.sum()), replacement=True, generator=g).tolist()
    orders = [torch.randperm(n, generator=g).tolist() for n in sizes]
    cycles = [itertools.cycle(order) for order in orders]
    pairs = [(t, next(cycles[t])) for t in draws]                             # task t's next row
    return [pairs[i:i + batch_size] for i in range(0, len(pairs), batch_size)]
