"""demo.py: the offline demo suites, generated deterministically in code, and
`python -m lib.demo`, which shows what data.py loads for any list of tasks.

- `demo`: 8 tasks in 3 families of related tasks (sentiment, paraphrase, containment) and one
  unrelated task (colours), so that whether AMP's attention finds the related sources can be
  checked against a known answer.
- `lowres` (train.py's default): the same 8, with one target per family cut to 32 training rows
  (`*_32`), beside its full-size siblings.
register() adds both suites to data.py's registry (train.py, eval.py and the studies call it).

Run:
  python -m lib.demo              # the lowres suite (or --tasks demo): sizes, one example each
  python -m lib.demo --tasks paper --data-dir ../shared/data --carve   # the 11 tasks, a local copy
"""

import argparse
import functools
import random
import zlib

import data
from data import DataError, load_task, parse_tasks

# The words of the demo families (tables: the formatter leaves them as written). Families share
# their label-defining words and label meaning; surface words differ by domain.
# fmt: off
POS = "great wonderful excellent delightful superb lovely fantastic brilliant".split()
NEG = "terrible awful dreadful disappointing horrible mediocre poor annoying".split()
SENTI_TEMPLATES = ["the {n} was {neg}{a} .", "i thought the {n} was {neg}{a} .",
                   "overall , the {n} is {neg}{a} .", "honestly the {n} felt {neg}{a} to me .",
                   "my friends said the {n} was {neg}{a} .", "to be fair , the {n} was {neg}{a} ."]
COLOUR_TEMPLATES = ["the {n} is {w} .", "i saw a {w} {n} today .",
                    "there is a {w} {n} in the room .", "he wants the {w} {n} ."]
DEMO = {  # name: (family, generator, domain words)
    "senti_movies": ("sentiment", "sentiment", (
        "film plot acting ending soundtrack script cast movie sequel director",
        "gripping moving", "dull predictable")),
    "senti_food": ("sentiment", "sentiment", (
        "pasta service dessert soup waiter menu coffee steak salad bread",
        "tasty fresh", "bland stale")),
    "senti_gadgets": ("sentiment", "sentiment", (
        "battery screen charger keyboard speaker camera laptop headset mouse phone",
        "reliable sleek", "flimsy clunky")),
    "para_animals": ("paraphrase", "paraphrase", (
        "dog:puppy cat:kitten horse:pony bird:sparrow rabbit:bunny cow:calf fox:vixen "
        "duck:duckling",
        "runs:sprints eats:feeds sleeps:naps jumps:leaps hides:shelters")),
    "para_people": ("paraphrase", "paraphrase", (
        "teacher:instructor doctor:physician lawyer:attorney chef:cook pilot:aviator "
        "student:pupil singer:vocalist farmer:grower",
        "works:labours speaks:talks waits:lingers reads:studies arrives:comes")),
    "entail_basket": ("containment", "containment", (  # items are one token each
        "the basket holds",
        "apples eggs books toys shoes keys coins cups flowers candles cookies towels")),
    "entail_trips": ("containment", "containment", (
        "last summer she visited",
        "paris rome oslo vienna lisbon prague dublin madrid athens warsaw berlin zurich")),
    "colours": ("colour", "colour", (
        "car wall shirt door cup chair lamp bag hat bike boat kite scarf sofa mug fence",
        "red blue green yellow purple orange pink brown grey white",
        "large small old new heavy cheap quiet clean tall round")),
}
PLACES = ("in the park:at the park|near the river:by the river|in the garden:in the yard|"
          "on the hill:atop the hill|at home:in the house|in the city:downtown")
# fmt: on
SMALL = {f"{n}_32": n for n in ("senti_food", "para_people", "entail_trips")}  # n's first 32
SUITES = {"demo": list(DEMO), "lowres": [n + "_32" if n + "_32" in SMALL else n for n in DEMO]}
DEMO.update({name: DEMO[full] for name, full in SMALL.items()})  # every task (eval reads families)
DEMO_SIZES = {"train": 300, "validation": 100, "test": 200}
DEMO_NOISE = 0.1  # share of training labels flipped, so that help from related tasks can matter


def _demo_example(kind, words, rng, label):
    """One (text, text_pair, label) of a demo family; label 1 means positive, the same meaning,
    contained, or a colour."""
    if kind == "sentiment":  # the same adjectives in every domain; "not" flips the label
        nouns, pos_extra, neg_extra = (w.split() for w in words)
        negate = rng.random() < 0.25
        adj = rng.choice((POS + pos_extra) if label != negate else (NEG + neg_extra))
        text = rng.choice(SENTI_TEMPLATES).format(n=rng.choice(nouns), a=adj, neg="not " * negate)
        return text, None, int(label)
    if kind == "paraphrase":  # same meaning in synonyms, or two of subject, verb and place changed
        places = [p.split(":") for p in PLACES.split("|")]
        slots = [[w.split(":") for w in ws.split()] for ws in words] + [places]
        a = [rng.choice(s) for s in slots]
        b = [pair[::-1] if rng.random() < 0.5 else pair for pair in a]
        # two slots change: frozen MiniLM's [CLS] reads one poorly (a linear head: 69%; two: 90%)
        for i in [] if label else rng.sample(range(3), 2):
            b[i] = rng.choice([p for p in slots[i] if p != a[i]])
        say = "the {} {} {} ."  # subject, verb, place
        return say.format(*(p[0] for p in a)), say.format(*(p[1] for p in b)), int(label)
    if kind == "containment":  # is the hypothesis item in the premise's list?
        lead, items = words[0], words[1].split()
        xs = rng.sample(items, 3)
        y = rng.choice(xs) if label else rng.choice([i for i in items if i not in xs])
        return f"{lead} {xs[0]} , {xs[1]} and {xs[2]} .", f"{lead} {y} .", int(label)
    nouns, colours, others = (w.split() for w in words)  # "colour": does the sentence name one?
    template = rng.choice(COLOUR_TEMPLATES)
    text = template.format(n=rng.choice(nouns), w=rng.choice(colours if label else others))
    return text, None, int(label)


def demo_split(name, split, seed=0):
    """Rows of a demo task, deterministic in (name, split, seed); splits never share a text pair.
    A small task (SMALL) is its full task's first training rows, with its validation and test."""
    full = SMALL.get(name, name)
    (_, kind, words), seen = DEMO[full], set()
    for s in ("train", "validation", "test"):
        rng, rows = random.Random(zlib.crc32(f"{full}/{s}/{seed}".encode())), []
        size = DEMO_SIZES[s]
        for _ in range(100 * size):  # rejection sampling; a family with too few texts fails loudly
            text, pair, label = _demo_example(kind, words, rng, len(rows) % 2 == 0)  # balanced
            if (text, pair) not in seen:
                seen.add((text, pair))
                flip = s == "train" and rng.random() < DEMO_NOISE
                rows.append(dict(text=text, text_pair=pair, label=1 - label if flip else label))
            if len(rows) == size:
                break
        assert len(rows) == size, f"demo task {name} has too few distinct texts for {size} rows"
        if s == split:
            return rows[:32] if s == "train" and name in SMALL else rows


def register():
    """Adds the demo tasks to data.py's registry and the demo and lowres suites to its suites
    (train.py, eval.py and the studies call it first; calling it again changes nothing)."""
    for name, (family, _, _) in DEMO.items():
        data.REGISTRY[name] = data.make_task(
            "", "text text_pair", "0 1", "accuracy", family, "test", 64
        )
        data.GENERATED[name] = functools.partial(demo_split, name)
    data.SUITES.update(SUITES)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Show the tasks data.py loads: sizes, an example.")
    ap.add_argument("--tasks", default="lowres", help="lowres (default) | demo | paper | a list")
    ap.add_argument("--data-dir", help="folder of <task>/<split>.jsonl (default: the hub)")
    ap.add_argument("--protocol", default="honest", choices=["honest", "paper"], help="split_task")
    ap.add_argument("--carve", action="store_true", help="carve a missing train split (data.py)")
    args = ap.parse_args()
    register()
    try:
        for n in parse_tasks(args.tasks, args.data_dir):
            t = load_task(n, args.data_dir, args.protocol, args.carve)
            ex, info = t["train"][0], t["info"]
            sizes = " ".join(f"{s}={len(t[s]):6d}" for s in ("train", "dev", "report"))
            note = ("" if t["measurable"] else "(not measurable) ") + t["note"]
            print(f"{n:15s} family={info['family']:12s} labels={info['num_labels']} {sizes} {note}")
            text, pair = ex["text"][:70], (ex["text_pair"] or "")[:40]
            print(f"{'':15s} {text!r} | {pair!r} -> {ex['label']}")
    except DataError as e:
        raise SystemExit(f"data.py: error: {e}")
