"""checks.py: every mistake a user can make on train.py's command line, and every state a run
folder can be in, stopped here with one line and exit code 2, before a model is loaded.

A run lives in one folder (--out). Stage source creates it; a folder that holds a run is never
replaced without --overwrite, and a stopped stage continues with --resume. What each method writes,
and so what --overwrite removes, is OUTPUTS. Run: python -m pytest -q tests/test_reliability.py
"""

import contextlib
import os
import shutil
import sys

from amp import ModelError
from data import DataError
from lib.runfiles import METHODS, RunFileError, load_tensors, read_json, section, write_json
from loop import Stop

OTHERS = [m for m in METHODS if m not in ("prompt", "amp")]  # each in a folder of its own
OUTPUTS = {  # what --overwrite removes, by config.json section; the first entry means "done"
    "source": ["config.json", "log.jsonl", "source", "ckpt.pt", "probe", *OTHERS],
    "target": "psi.safetensors target attention.json eval.json attention.png ckpt.pt".split(),
    **{m: [m, "eval.json", "ckpt.pt"] for m in OTHERS},
}


def fail(msg):
    print(f"train.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def check_flags(args):
    """Flags that cannot be right whatever the run folder holds."""
    if (args.stage is None) == (args.add_task is None):
        fail("say what to train: --stage source, --stage target, or --add-task NAME")
    counts = ["prompt_len", "batch_size", "epochs", "max_steps", "k", "patience", "ckpt_every"]
    counts += ["select_tries"]
    for k in counts + ["max_train", "max_eval", "max_tokens"]:
        if getattr(args, k) is not None and getattr(args, k) <= 0:
            fail(f"--{k.replace('_', '-')} must be positive, got {getattr(args, k)}")
    bad_rate = any(x is not None and x <= 0 for x in (args.lr, args.head_lr))
    if bad_rate or (args.warmup or 0) < 0 or (args.weight_decay or 0) < 0:
        fail("--lr and --head-lr must be positive, --warmup and --weight-decay not negative")
    if args.resume and args.overwrite:
        fail("--resume continues a run and --overwrite replaces it: give one of them")
    if args.method is not None and args.stage != "target":
        fail("--method chooses what --stage target trains; stage source is always prompt tuning")
    if os.path.isfile(args.out):
        fail(f"--out {args.out} is a file; give a folder")


def read_run(args):
    """The run's config.json (None: --out holds no run yet); stops a command that may not start."""
    out, source = args.out, args.stage == "source"
    path = os.path.join(out, "config.json")
    try:
        cfg = read_json(path, need=["run"]) if os.path.exists(path) else None
    except RunFileError as e:  # a damaged config.json: only --stage source --overwrite replaces it
        if not (source and args.overwrite):
            fail(str(e))
        cfg = {"damaged": True}  # a run, so that its files are removed before starting again
    if source and cfg is None and os.path.isdir(out) and os.listdir(out):
        fail(f"{out} exists and does not hold an amp run (no config.json); choose another --out")
    if source and cfg and not (args.resume or args.overwrite):
        how = "pass --resume to continue it, --overwrite to replace it, or another --out"
        fail(f"{out} already holds a run: {how}")
    if cfg is None and (args.resume or not source):
        fail(f"{out} holds no source prompts; run python train.py --stage source --out {out} first")
    return cfg


def check_folder(args, cfg):
    """Stage target and --add-task need a finished, readable earlier stage and nothing half done."""
    out = args.out

    def has(*parts):  # whether the run folder holds this file or folder
        return os.path.exists(os.path.join(out, *parts))

    if args.stage == "target":
        missing = [t for t in args.tasks if not has("source", f"{t}.safetensors")]
        if missing:
            names = ", ".join(missing)
            why = f"stage source is not finished in {out} (no source prompt for {names})"
            fail(f"{why}; continue it with python train.py --stage source --resume --out {out}")
        readable([os.path.join(out, "source", f"{t}.safetensors") for t in args.tasks])
        part = section(args.method)
        if (has(OUTPUTS[part][0]) or cfg.get(part)) and not (args.resume or args.overwrite):
            which = "" if args.method == "amp" else " of " + args.method
            how = "pass --resume to continue it or --overwrite to redo it"
            fail(f"{out} already has stage target{which}: {how}")
        if args.resume and args.method == "amp" and has("psi.safetensors") and not has("ckpt.pt"):
            fail(f"stage target in {out} has finished: nothing to resume (--overwrite redoes it)")
        if adding := cfg.get("adding"):
            fail(f"{out} is adding task {adding}: continue with --add-task {adding} --resume")
        if args.method == "amp-tuned" and not has("attention.json"):
            fail(
                f"{out} has no AMP target prompts to tune; run python train.py --stage target first"
            )
    if args.add_task:
        if not has("psi.safetensors"):
            how = f"run python train.py --stage target --out {out} first"
            fail(f"{out} has no trained ψ yet; {how}")
        readable([os.path.join(out, "psi.safetensors")])  # before the new task writes anything
        if args.add_task in args.tasks:
            fail(f"task {args.add_task} is already in the run")
        adding = cfg.get("adding")
        if adding not in (None, args.add_task) or (adding and not args.resume):
            how = f"continue it with --add-task {adding} --resume"
            fail(f"adding task {adding} to {out} was interrupted; {how}")


def readable(paths):
    """Read saved tensors now, before --overwrite removes anything: a damaged one stops here."""
    try:
        [load_tensors(p, {}) for p in paths]
    except RunFileError as e:
        fail(str(e))


def clear(args, cfg):
    """--overwrite: remove what the method wrote before (stage source: the whole run)."""
    part = section(args.method)
    for f in OUTPUTS[part] + (OUTPUTS["target"] if part == "source" else []):
        p = os.path.join(args.out, f)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p) if os.path.exists(p) else None


def start_run(args, cfg, run, flags, facts):
    """--overwrite removes what the method wrote before (stage source: the whole run); then the run
    folder's config.json records what the run is (run), how this method trains (flags), and each
    task's label names and input length (facts: {"labels": {task: names}, "input_tokens": ...})."""
    if args.overwrite and cfg:
        clear(args, cfg)
        cfg = None if args.stage == "source" else cfg
    os.makedirs(args.out, exist_ok=True)
    cfg = cfg or {"run": run}
    if args.add_task:  # --add-task trains with the flags its run's stages were trained with
        cfg["adding"] = args.add_task
    else:
        cfg[section(args.method)] = flags
    for k, by_task in facts.items():
        cfg[k] = {**cfg.get(k, {}), **by_task}
    write_json(os.path.join(args.out, "config.json"), cfg)
    return cfg


@contextlib.contextmanager
def reported(args):
    """A stage's failure as one line: a user's mistake or a damaged file (exit 2), a stop or a disk
    that cannot be written (exit 1, the last checkpoint stays), an interrupt (130). A stage that
    ends removes its checkpoint: its outputs are written."""
    try:
        yield
    except (DataError, ModelError, RunFileError) as e:
        fail(str(e))
    except Stop as e:
        print(f"train.py: stopped: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        fix = f"cannot write {e.filename or args.out}: {e.strerror}; fix that, then --resume"
        print(f"train.py: stopped: {fix}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ntrain.py: interrupted; go on with the same command and --resume", file=sys.stderr)
        sys.exit(130)
    ckpt = os.path.join(args.out, "ckpt.pt")
    if os.path.exists(ckpt):
        os.remove(ckpt)
