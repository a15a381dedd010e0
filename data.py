"""data.py: every task AMP trains on, split honestly, tokenised once, mixed for stage 2.

- The paper's 11 tasks (paper 4.1, A.4, Table 3), loaded from the Hugging Face hub, or from a folder
  `<data-dir>/<task>/<split>.jsonl` in the same schema (../shared/data holds such copies).
- Your own tasks: `<data-dir>/<name>/{train,validation[,test]}.jsonl`, rows {"text", "text_pair"?, "label"},
  and an optional task.json {"metric": "accuracy" | "f1" | "pearson" | ..., "num_labels": C}.
- The offline demo suite (the default): 8 small generated tasks in 3 families of related tasks plus one
  unrelated task, so that whether AMP's attention finds related source tasks can be checked against ground truth.
- Honest splits (ATTEMPT's protocol, not the paper's): `split_task`. Multi-task mixing (paper 4.2): `epoch_batches`.

Run:
  python data.py                                   # the demo suite: sizes, families, one example each
  python data.py --tasks paper --data-dir ../shared/data --carve   # the 11 tasks from a local copy
"""
import argparse
import json
import os
import random
import zlib

import datasets
import torch

datasets.disable_progress_bars()  # scripts draw their own bars; datasets' own would interleave with them


class DataError(Exception):
    """A problem with the task list or the data; the scripts print it as one line, without a traceback."""


# ----------------------------------------------------------------------------------------------------------
# The registry: the paper's Table 3 (plus MNLI, SPoT-m's source task), and the demo suite (defined below).
# report = the split the paper reports on; max_tokens = stage-1 input length (paper A.3; stage 2 uses 384).
def _task(hub, fields, labels, metrics, report, family, max_tokens=256, splits=("train", "validation")):
    return dict(hub=hub, fields=fields, labels=labels, metrics=metrics, report=report, family=family,
                max_tokens=max_tokens, splits=tuple(sorted(set(splits) | {report})))


REGISTRY = {
    "imdb": _task(("imdb", None), ("text",), ("neg", "pos"), ("accuracy",), "test", "sentiment", splits=("train",)),
    "sst2": _task(("glue", "sst2"), ("sentence",), ("negative", "positive"), ("accuracy",), "validation", "sentiment"),
    "yelp_polarity": _task(("yelp_polarity", None), ("text",), ("negative", "positive"), ("accuracy",), "test",
                           "sentiment", splits=("train",)),
    "stsb": _task(("glue", "stsb"), ("sentence1", "sentence2"), None, ("pearson", "spearman"), "validation", "relatedness"),
    "mrpc": _task(("glue", "mrpc"), ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("accuracy", "f1"),
                  "validation", "relatedness"),
    "rte": _task(("glue", "rte"), ("sentence1", "sentence2"), ("entailment", "not_entailment"), ("accuracy",),
                 "validation", "entailment"),
    "scitail": _task(("scitail", "tsv_format"), ("premise", "hypothesis"), ("entails", "neutral"), ("accuracy",), "test",
                     "entailment"),
    "cb": _task(("super_glue", "cb"), ("premise", "hypothesis"), ("entailment", "contradiction", "neutral"),
                ("accuracy", "macro_f1"), "validation", "entailment"),
    "multirc": _task(("super_glue", "multirc"), ("question", "answer", "paragraph"), ("false", "true"), ("f1a", "em"),
                     "validation", "qa", max_tokens=348),
    "boolq": _task(("super_glue", "boolq"), ("question", "passage"), ("false", "true"), ("accuracy",), "validation", "qa"),
    "qnli": _task(("glue", "qnli"), ("question", "sentence"), ("entailment", "not_entailment"), ("accuracy",),
                  "validation", "qa"),
    "mnli": _task(("glue", "mnli"), ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), ("accuracy",),
                  "validation_matched", "entailment", splits=("train",)),
}
PAPER_TASKS = ["imdb", "sst2", "yelp_polarity", "stsb", "mrpc", "rte", "scitail", "cb", "multirc", "boolq", "qnli"]
TARGET_MAX_TOKENS = 384   # paper 4.2: one input length for every task in stage 2
SPLIT_SEED = 0            # splits and subsets do not move with --seed, so every run reports on the same rows
MIN_REPORT = 25           # fewer reporting rows than this is "not measurable" (CB's halved validation has 28)
K_CAP = 100_000           # paper 4.2: examples-proportional mixing with at most K examples per task

# ----------------------------------------------------------------------------------------------------------
# The demo suite. Families share their label-defining words and label meaning; surface words differ by domain.
POS = "great wonderful excellent delightful superb lovely fantastic brilliant".split()
NEG = "terrible awful dreadful disappointing horrible mediocre poor annoying".split()
SENTI_TEMPLATES = ["the {n} was {neg}{a} .", "i thought the {n} was {neg}{a} .", "overall , the {n} is {neg}{a} .",
                   "honestly the {n} felt {neg}{a} to me .", "my friends said the {n} was {neg}{a} .",
                   "to be fair , the {n} was {neg}{a} ."]
DEMO = {  # name: (family, generator, domain words)
    "senti_movies": ("sentiment", "sentiment", ("film plot acting ending soundtrack script cast movie sequel director",
                                                 "gripping moving", "dull predictable")),
    "senti_food": ("sentiment", "sentiment", ("pasta service dessert soup waiter menu coffee steak salad bread",
                                               "tasty fresh", "bland stale")),
    "senti_gadgets": ("sentiment", "sentiment", ("battery screen charger keyboard speaker camera laptop headset "
                                                  "mouse phone", "reliable sleek", "flimsy clunky")),
    "para_animals": ("paraphrase", "paraphrase", ("dog:puppy cat:kitten horse:pony bird:sparrow rabbit:bunny "
                                                   "cow:calf fox:vixen duck:duckling",
                                                   "runs:sprints eats:feeds sleeps:naps jumps:leaps hides:shelters")),
    "para_people": ("paraphrase", "paraphrase", ("teacher:instructor doctor:physician lawyer:attorney chef:cook "
                                                  "pilot:aviator student:pupil singer:vocalist farmer:grower",
                                                  "works:labours speaks:talks waits:lingers reads:studies arrives:comes")),
    "entail_basket": ("containment", "containment", ("the basket holds", "apples eggs books toys shoes keys coins "
                                                      "cups flowers candles cookies towels")),   # one token each
    "entail_trips": ("containment", "containment", ("last summer she visited", "paris rome oslo vienna lisbon prague "
                                                     "dublin madrid athens warsaw berlin zurich")),
    "colours": ("colour", "colour", ("car wall shirt door cup chair lamp bag hat bike boat kite scarf sofa mug fence",
                                     "red blue green yellow purple orange pink brown grey white",
                                     "large small old new heavy cheap quiet clean tall round")),
}
PLACES = "in the park:at the park|near the river:by the river|in the garden:in the yard|on the hill:atop the hill|" \
         "at home:in the house|in the city:downtown"
DEMO_SIZES = {"train": 300, "validation": 100, "test": 200}
DEMO_NOISE = 0.1          # share of training labels flipped, so that help from related tasks can matter
for _name, (_family, _, _) in DEMO.items():
    REGISTRY[_name] = dict(hub=None, fields=("text", "text_pair"), labels=("0", "1"), metrics=("accuracy",),
                           report="test", family=_family, max_tokens=64, splits=("train", "validation", "test"))


def _demo_example(kind, words, rng, label):
    """One (text, text_pair, label) of a demo family; label 1 = positive / same meaning / contained / a colour."""
    if kind == "sentiment":          # the same adjectives in every domain; "not" flips the label
        nouns, pos_extra, neg_extra = (w.split() for w in words)
        negate = rng.random() < 0.25
        adj = rng.choice((POS + pos_extra) if label != negate else (NEG + neg_extra))
        return rng.choice(SENTI_TEMPLATES).format(n=rng.choice(nouns), a=adj, neg="not " * negate), None, int(label)
    if kind == "paraphrase":         # same meaning in synonyms, or two of subject, verb and place changed
        slots = [[w.split(":") for w in words[0].split()], [w.split(":") for w in words[1].split()],
                 [p.split(":") for p in PLACES.split("|")]]
        a = [rng.choice(s) for s in slots]
        b = [pair[::-1] if rng.random() < 0.5 else pair for pair in a]
        for i in ([] if label else rng.sample(range(3), 2)):   # one slot changed: frozen MiniLM's [CLS] reads it
            b[i] = rng.choice([p for p in slots[i] if p != a[i]])  # poorly (a linear head: 69%; two: 90%)
        return "the {} {} {} .".format(*(p[0] for p in a)), "the {} {} {} .".format(*(p[1] for p in b)), int(label)
    if kind == "containment":        # is the hypothesis item in the premise's list? (items that the tokenizer split
        # into pieces, "plum ##s", make the match harder to read off; these are one token each)
        lead, items = words[0], words[1].split()
        xs = rng.sample(items, 3)
        y = rng.choice(xs) if label else rng.choice([i for i in items if i not in xs])
        return f"{lead} {xs[0]} , {xs[1]} and {xs[2]} .", f"{lead} {y} .", int(label)
    nouns, colours, others = (w.split() for w in words)   # "colour": does the sentence name a colour?
    template = rng.choice(["the {n} is {w} .", "i saw a {w} {n} today .", "there is a {w} {n} in the room .",
                           "he wants the {w} {n} ."])
    return template.format(n=rng.choice(nouns), w=rng.choice(colours if label else others)), None, int(label)


def demo_split(name, split, seed=0):
    """Rows of a demo task, deterministic in (name, split, seed); splits never share a text pair."""
    family, kind, words = DEMO[name]
    seen = set()
    for s in ("train", "validation", "test"):
        rng, rows = random.Random(zlib.crc32(f"{name}/{s}/{seed}".encode())), []
        for _ in range(100 * DEMO_SIZES[s]):  # rejection sampling; a family with too few texts fails loudly
            if len(rows) == DEMO_SIZES[s]:
                break
            text, pair, label = _demo_example(kind, words, rng, len(rows) % 2 == 0)   # balanced classes
            if (text, pair) in seen:
                continue
            seen.add((text, pair))
            if s == "train" and rng.random() < DEMO_NOISE:
                label = 1 - label
            rows.append({"text": text, "text_pair": pair, "label": label})
        assert len(rows) == DEMO_SIZES[s], f"demo task {name} has too few distinct texts for {DEMO_SIZES[s]} rows"
        if s == split:
            return datasets.Dataset.from_list(rows)


# ----------------------------------------------------------------------------------------------------------
# Task lists and reading raw splits.
def custom_tasks(data_dir):
    """Folders in data_dir that hold a train.jsonl and are not a registry task: the user's own tasks."""
    if not data_dir or not os.path.isdir(data_dir):
        return []
    return sorted(f for f in os.listdir(data_dir)
                  if f not in REGISTRY and os.path.isfile(os.path.join(data_dir, f, "train.jsonl")))


def parse_tasks(spec, data_dir=None):
    """'demo' | 'paper' | a comma list (which may include demo, paper and custom folder names) -> names."""
    if data_dir and not os.path.isdir(data_dir):
        raise DataError(f"--data-dir {data_dir} does not exist")
    names = []
    for name in [t.strip() for t in spec.split(",") if t.strip()]:
        names += list(DEMO) if name == "demo" else PAPER_TASKS if name == "paper" else [name]
    custom = custom_tasks(data_dir)
    for name in [n for n in names if n not in REGISTRY and n not in custom]:
        raise DataError(f"unknown task '{name}'. Known: demo ({', '.join(DEMO)}), paper ({', '.join(PAPER_TASKS)}), "
                        f"mnli; folders with a train.jsonl in {data_dir or '--data-dir (none given)'}: "
                        f"{', '.join(custom) or 'none'}")
    if not names or len(set(names)) != len(names):
        raise DataError(f"--tasks '{spec}' must name at least one task, each once")
    return names


def _bad_line(path):
    """The first line of a JSONL file that is not a JSON object, as 'file:line: reason' (or None)."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                if line.strip() and not isinstance(json.loads(line), dict):
                    return f"{path}:{i}: not a JSON object"
            except json.JSONDecodeError as e:
                return f"{path}:{i}: malformed JSON ({e.msg})"
    return None


def read_split(name, split, data_dir=None, seed=0):
    """Rows of one split as a datasets.Dataset, or None if that split does not exist."""
    if name in DEMO:
        return demo_split(name, split, seed)
    folder = os.path.join(data_dir or "", name)
    if data_dir and os.path.isdir(folder):
        path = os.path.join(folder, f"{split}.jsonl")
        if not os.path.exists(path):
            return None
        try:
            ds = datasets.load_dataset("json", data_files=path, split="train") if os.path.getsize(path) else []
        except Exception as e:  # datasets does not say which line is wrong; find it
            raise DataError(_bad_line(path) or f"{path} could not be read as JSON lines ({type(e).__name__})") from None
        if len(ds) == 0:
            raise DataError(f"{path} is empty")
        return ds
    if name not in REGISTRY:
        raise DataError(f"task '{name}': no folder {folder}")
    hub, config = REGISTRY[name]["hub"]
    if split not in REGISTRY[name]["splits"]:
        return None
    try:
        return datasets.load_dataset(hub, config, split=split)
    except Exception as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise DataError(f"cannot load {hub}{'/' + config if config else ''} ({split}) from the Hugging Face hub: {reason}. "
                        f"Pass --data-dir DIR holding {name}/{split}.jsonl, or use the offline demo suite (--tasks demo)") \
            from None


def task_info(name, data_dir=None, train=None):
    """What a task is: num_labels (1 = regression), metrics, family, input fields, label names, max tokens."""
    if name in REGISTRY:
        info = dict(REGISTRY[name])
    else:  # the user's own task: task.json, else inferred from the training labels
        path = os.path.join(data_dir, name, "task.json")
        try:
            spec = json.load(open(path)) if os.path.exists(path) else {}
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: malformed JSON ({e.msg})") from None
        labels = set(train["label"]) if train is not None and "label" in train.column_names else set()
        regression = any(isinstance(y, float) and not y.is_integer() for y in labels)
        C = spec.get("num_labels", 1 if regression else int(max(labels, default=1)) + 1)
        metric = spec.get("metric", "pearson" if C == 1 else "accuracy")
        info = dict(hub=None, fields=("text", "text_pair"), labels=None if C == 1 else tuple(map(str, range(C))),
                    metrics=(metric,), report="test" if os.path.exists(os.path.join(data_dir, name, "test.jsonl"))
                    else "validation", family=spec.get("family", name), max_tokens=spec.get("max_tokens", 256))
    info["num_labels"] = 1 if info["labels"] is None else len(info["labels"])
    return info


def to_examples(ds, name, info, where, split):
    """Rows in any schema -> columns text, text_pair, label (int class or float score), group: "split/row", or
    "split/paragraph-question" for MultiRC, whose answers to one question stay together in every split we cut."""
    f, C = info["fields"], info["num_labels"]
    missing = [c for c in (f[0], "label") if c not in ds.column_names]
    if missing:
        raise DataError(f"{where}: rows lack the field(s) {', '.join(missing)} (expected {', '.join(f)} and label)")

    def convert(row, i):
        y = row["label"]
        if isinstance(y, str) and info["labels"] and y in info["labels"]:
            y = info["labels"].index(y)  # scitail's "entails"/"neutral"
        if C == 1 and isinstance(y, (int, float)):
            y = float(y)
        elif isinstance(y, (int, float)) and float(y).is_integer() and 0 <= y < C:
            y = int(y)
        else:
            raise DataError(f"{where}: row {i + 1} has label {y!r}, outside the declared "
                            f"{'float score' if C == 1 else f'classes 0..{C - 1}'}")
        if name == "multirc":
            idx = row["idx"]
            return dict(text=row["question"] + " " + row["answer"], text_pair=row["paragraph"], label=y,
                        group=f"{split}/{idx['paragraph']}-{idx['question']}")
        pair = row.get(f[1]) if len(f) > 1 else None
        return dict(text=row[f[0]], text_pair=pair, label=y, group=f"{split}/{i}")
    return ds.map(convert, with_indices=True, remove_columns=ds.column_names)


# ----------------------------------------------------------------------------------------------------------
# Honest splits (SPEC "Honest model selection"; ATTEMPT's protocol) and deterministic subsets.
def split_off(ds, n, seed=SPLIT_SEED):
    """(rest, part): part holds about n rows drawn with a fixed seed, whole groups (MultiRC questions) at a time."""
    groups = list(dict.fromkeys(ds["group"]))
    random.Random(seed).shuffle(groups)
    by_group, count, chosen = {}, 0, set()
    for i, g in enumerate(ds["group"]):
        by_group.setdefault(g, []).append(i)
    for g in groups:
        if count >= n:
            break
        chosen.add(g)
        count += len(by_group[g])
    part = [i for g in groups if g in chosen for i in by_group[g]]
    rest = sorted(set(range(len(ds))) - set(part))
    return ds.select(rest), ds.select(sorted(part))


def split_task(raw, info, protocol="honest", carve=False, where="", seed=SPLIT_SEED):
    """raw: {split: examples} as read. Returns train, dev (select checkpoints), report (the reported numbers), note.

    honest (default): a validation split next to a separate labeled reporting split selects, the reporting split
      reports; otherwise tasks under 10,000 training rows split the reporting split in half (select / report) and
      larger ones hold out 1,000 training rows to select. paper: select and report on the same split (paper A.3).
    """
    report, note = raw.get(info["report"]), ""
    if report is None:
        raise DataError(f"{where}: no {info['report']} split, which this task reports on "
                        f"({info['report']}.jsonl expected in its folder)")
    train = raw.get("train")
    if train is None:
        if not carve:
            raise DataError(f"{where}: no train split (train.jsonl expected in its folder); pass --carve to carve train/dev/report from its "
                            f"{info['report']} split with a fixed seed (the task is then marked †)")
        report, train = split_off(report, int(0.6 * len(report)), seed)
        note = f"† train carved from {info['report']} (60%), dev/report from the rest"
    if protocol == "paper":
        return train, report, report, note
    if raw.get("validation") is not None and info["report"] != "validation" and not note:
        return train, raw["validation"], report, note
    if len(train) >= 10_000:
        train, dev = split_off(train, 1000, seed)
        return train, dev, report, note
    report, dev = split_off(report, len(report) // 2, seed)
    return train, dev, report, note


def subset(ds, n, seed=SPLIT_SEED):
    """The same n rows every time (whole groups); n = None keeps all."""
    return ds if n is None or n >= len(ds) else split_off(ds, n, seed)[1]


def load_task(name, data_dir=None, protocol="honest", carve=False, max_train=None, max_eval=None, demo_seed=0):
    """Everything about one task: its info, and train / dev / report examples (not yet tokenised)."""
    where = f"{name} ({'demo suite' if name in DEMO else os.path.join(data_dir, name) if data_dir and os.path.isdir(os.path.join(data_dir, name)) else 'hub'})"
    raw = {s: read_split(name, s, data_dir, demo_seed) for s in ("train", "validation", "validation_matched", "test")}
    raw = {s: ds for s, ds in raw.items() if ds is not None}
    info = task_info(name, data_dir, raw.get("train"))
    raw = {s: to_examples(ds, name, info, f"{where} {s}", s) for s, ds in raw.items()}
    train, dev, report, note = split_task(raw, info, protocol, carve, where)
    train, dev, report = subset(train, max_train), subset(dev, max_eval), subset(report, max_eval)
    return dict(name=name, info=info, train=train, dev=dev, report=report, note=note,
                measurable=len(report) >= MIN_REPORT)


# ----------------------------------------------------------------------------------------------------------
# Tokenisation (cached by datasets) and batches.
def tokenize(ds, tokenizer, max_len):
    """Text (pairs as tokenizer pairs) -> input_ids (+ token_type_ids), truncated to max_len tokens.
    max_len already leaves room for the prompt: min(task max tokens, model positions - l), paper 3.1 / A.3."""
    pair = len(ds) > 0 and ds[0]["text_pair"] is not None

    def enc(batch):
        return tokenizer(batch["text"], batch["text_pair"] if pair else None, truncation=True, max_length=max_len)
    return ds.map(enc, batched=True, remove_columns=["text", "text_pair"])


def collate(rows, pad_id):
    """Rows {input_ids, token_type_ids?, label, task} -> padded tensors; padding is per batch (dynamic)."""
    B, T = len(rows), max(len(r["input_ids"]) for r in rows)
    batch = dict(input_ids=torch.full((B, T), pad_id), attention_mask=torch.zeros(B, T, dtype=torch.long),
                 token_type_ids=torch.zeros(B, T, dtype=torch.long),
                 labels=torch.tensor([float(r["label"]) for r in rows]),   # cast to long per task in the loss
                 task=torch.tensor([r["task"] for r in rows]))
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        batch["input_ids"][b, :n] = torch.tensor(r["input_ids"])
        batch["attention_mask"][b, :n] = 1
        if "token_type_ids" in r:
            batch["token_type_ids"][b, :n] = torch.tensor(r["token_type_ids"])
    return batch


def epoch_batches(sizes, batch_size, seed, epoch, K=K_CAP):
    """Batches of (task, example) pairs for one epoch, a pure function of (sizes, seed, epoch), so a resumed run
    regenerates the same order and skips the batches it has done. One task: a shuffled pass over its examples.

    paper 4.2 / Raffel et al. 2020, examples-proportional mixing:  r_t = min(N_t, K) / Σ_t' min(N_t', K).
    An epoch draws Σ_t min(N_t, K) examples; each draw picks task t with probability r_t, then the next example
    of a shuffled cycle over task t, so batches mix tasks.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    caps = torch.tensor([float(min(n, K)) for n in sizes])                    # (n_tasks,)
    draws = torch.multinomial(caps, int(caps.sum()), replacement=True, generator=g).tolist() \
        if len(sizes) > 1 else [0] * int(caps[0])
    orders = [torch.randperm(n, generator=g).tolist() for n in sizes]
    pairs, cursor = [], [0] * len(sizes)
    for t in draws:                                                             # task t's next example
        pairs.append((t, orders[t][cursor[t] % sizes[t]]))
        cursor[t] += 1
    return [pairs[i:i + batch_size] for i in range(0, len(pairs), batch_size)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Show the tasks data.py loads: sizes, splits, families, one example.")
    ap.add_argument("--tasks", default="demo", help="demo | paper | comma list of task names and custom folders")
    ap.add_argument("--data-dir", default=None, help="folder of <task>/<split>.jsonl (default: the hub)")
    ap.add_argument("--protocol", default="honest", choices=["honest", "paper"], help="split protocol (see split_task)")
    ap.add_argument("--carve", action="store_true", help="carve a missing train split from the reporting split")
    args = ap.parse_args()
    try:
        for name in parse_tasks(args.tasks, args.data_dir):
            t = load_task(name, args.data_dir, args.protocol, args.carve)
            ex = t["train"][0]
            print(f"{name:15s} family={t['info']['family']:12s} labels={t['info']['num_labels']} "
                  f"train={len(t['train']):6d} dev={len(t['dev']):5d} report={len(t['report']):5d}"
                  f"{'' if t['measurable'] else ' (not measurable)'} {t['note']}")
            print(f"{'':15s} {ex['text'][:70]!r} | {(ex['text_pair'] or '')[:40]!r} -> {ex['label']}")
    except DataError as e:
        raise SystemExit(f"data.py: error: {e}")
