"""runfiles.py: the files of a run folder, written so that a crash never leaves half a file, and
checked as they are read, so that a damaged file stops a command with one line saying what to do.

Tensors go in safetensors files with what made them (and a sha256 of their bytes) in the metadata;
checkpoints are torch.save's zip archives; the rest is JSON. Every script reads and writes the files
of a run only through this file.
Run: python -m pytest -q tests/test_reliability.py   (damaged files, full disks, kills and resumes)
"""

import hashlib
from dataclasses import dataclass
import json
import os
import time
import zipfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


class RunFileError(Exception):
    """A file of a run that is missing, damaged, or made for another run; printed as one line that
    says what to do."""


@dataclass(frozen=True)
class Method:
    """A method of the run folder: its column in eval.py's tables, the folder of its per-task
    files (OUT/<folder>/<task>.safetensors), its entry of config.json (and of checks.OUTPUTS)."""

    title: str
    folder: str
    section: str


# fmt: off
METHODS = {  # Table 1's columns in the paper's order, then the ablation and the studies
    "finetune":     Method("fine-tuning",     "finetune/target",     "finetune"),
    "prompt":       Method("prompt tuning",   "source",              "source"),
    "spot-s":       Method("SPoT-s",          "spot-s/target",       "spot-s"),
    "spot-m":       Method("SPoT-m",          "spot-m/target",       "spot-m"),
    "attempt":      Method("ATTEMPT",         "attempt/target",      "attempt"),
    "tpt":          Method("TPT",             "tpt/target",          "tpt"),
    "amp":          Method("AMP",             "target",              "target"),
    "amp-maxpool":  Method("AMP-maxpool",     "amp-maxpool/target",  "amp-maxpool"),
    "pt-continued": Method("PT continued",    "pt-continued/target", "pt-continued"),
    "select":       Method("select",          "select/target",       "select"),
    "amp-tuned":    Method("AMP, then tuned", "amp-tuned/target",    "amp-tuned"),
}
# fmt: on


def section(method):
    """The entry of config.json holding a method's flags: stage source, stage target, or its own."""
    return METHODS[method].section


def task_file(out, method, task):
    """The file holding a task's prompt and head under a method, in run folder `out`."""
    return os.path.join(out, METHODS[method].folder, f"{task}.safetensors")


# ----------------------------------------------------------------------------------------------
# Writing: every file goes to a temporary file in the same folder and is renamed into place, so a
# crash never leaves half a file; tensors carry what made them and a checksum of their bytes.
def new_file_mode():
    """The mode open() gives a new file: 0o666 less the process's umask (read, then put back)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic(path, write):
    """write(tmp) writes the file at a temporary path, which then replaces `path` in one step, with
    the mode of a file the user writes (safetensors writes 0o600: not readable by the group)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)

    atomic(path, write)


def checksum(tensors):
    """sha256 of the tensors' bytes in name order: safetensors keeps no checksum, and one changed
    byte in a prompt would otherwise pass unseen."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        raw = tensors[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # (bytes,)
        h.update(k.encode() + raw.numpy().tobytes())
    return h.hexdigest()


def save_tensors(path, tensors, meta):
    """tensors {name: tensor}; meta {key: value} records what made them (model, d, l, task, ...)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = dict(meta, sha256=checksum(tensors))  # load_tensors checks it: one changed byte shows

    def write(tmp):
        save_file(tensors, tmp, metadata={k: json.dumps(v) for k, v in meta.items()})

    atomic(path, write)


# ----------------------------------------------------------------------------------------------
# Reading: every file is checked as it is read. One that a full disk cut short or something else
# overwrote stops the command with one line, `PATH is damaged (what was found); what to do`, and
# is left as it is.

# the tensors each kind of file must hold (ψ: W_Q, W_K too, unless --attn identity)
TENSORS = {
    "source": ["P", "head.weight", "head.bias"],
    "target": ["P", "head.weight", "head.bias", "A"],
    "psi.safetensors": ["W_V"],
}


def run_file(path):
    """(run folder, kind) of a file of a run: kind is 'source' or 'target' for a task's file, else
    the file's name."""
    folder, name = os.path.split(path)
    up, kind = os.path.dirname(folder), os.path.basename(folder)
    if kind in ("source", "target") and os.path.exists(os.path.join(up, "config.json")):
        return up or ".", kind
    return folder or ".", name


def way_out(path):
    """What to do about a damaged file of a run, by its kind: redo only what wrote it, keep
    everything else."""
    out, kind = run_file(path)
    if kind == "config.json":
        return (
            "the run's definition is lost: restore it from a copy, or start the run again with "
            f"python train.py --stage source --overwrite --out {out}"
        )
    if kind == "ckpt.pt":
        return (
            f"delete {path} and rerun with --resume: finished work in {out} is kept and the "
            "unfinished stage starts again"
        )
    if kind == "source":
        again = f"python train.py --stage source --resume --out {out} trains that task again"
        return f"delete it, then {again}"
    if kind == "eval.json":
        return f"python eval.py --out {out} writes it again"
    if kind in ("target", "psi.safetensors", "attention.json"):
        return f"python train.py --stage target --overwrite --out {out} trains stage target again"
    # a baseline's files, in a folder of their own
    return "delete it, then run again the command that wrote it"


def damaged(path, found):
    return RunFileError(f"{path} is damaged ({found}); {way_out(path)}")


def first_line(e):
    return (str(e).splitlines() or [type(e).__name__])[0][:120]


def safetensors_problem(path):
    """None, or what is wrong with a safetensors file, in words. The format: 8 bytes giving the
    header's length N, N bytes of JSON naming each tensor's byte range, then the tensors' bytes."""
    size = os.path.getsize(path)
    if size < 8:
        return f"cut short: {size} bytes" if size else "empty: 0 bytes"
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if 8 + n > size:
            if n >= 2**24:
                return "not safetensors: its first 8 bytes are not a header length"
            return f"cut short: {size} bytes, but its header alone takes {8 + n}"
        try:
            header = json.loads(f.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
            end = 8 + n + max(ends, default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "not safetensors: its header is not the JSON that names the tensors"
    if end > size:
        return f"cut short: {size} of {end} bytes"
    try:
        with safe_open(path, "pt"):
            return None
    except Exception as e:  # safetensors' own checks: overlapping ranges, bytes after the end, ...
        return f"not safetensors: {first_line(e)}"


def load_tensors(path, expect):
    """Tensors from a file written by save_tensors, checked as they are read: a damaged file stops
    with one line (see damaged), and one made for something else than this run expects (another
    encoder, hidden size, prompt length or task) stops with both sides named."""
    if not os.path.exists(path):
        raise RunFileError(f"{path} is missing")
    problem = safetensors_problem(path)
    if problem:
        raise damaged(path, problem)
    with safe_open(path, "pt") as f:
        try:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        except ValueError:
            raise damaged(path, "its metadata is not JSON") from None
        lacking = [k for k in TENSORS.get(run_file(path)[1], []) if k not in f.keys()]
    if lacking:
        raise damaged(path, f"no tensor named {lacking[0]!r}")
    for key, want in expect.items():
        if key in meta and meta[key] != want:
            have = f"{key}={meta[key]!r}"
            raise RunFileError(f"{path} was made with {have}, but this run has {key}={want!r}")
    tensors = load_file(path)
    if "sha256" in meta and checksum(tensors) != meta["sha256"]:
        raise damaged(path, "its tensors are not the bytes that were written: the checksum differs")
    return tensors, meta


def read_json(path, need=()):
    """A JSON file of the run, a dict holding the keys in need; a missing or damaged one stops with
    one line."""
    if not os.path.exists(path):
        raise RunFileError(f"{path} is missing; {way_out(path)}")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except UnicodeDecodeError as e:
        found = f"not text: byte {e.object[e.start]:#04x} at position {e.start}"
        raise damaged(path, found) from None
    except json.JSONDecodeError as e:
        where = f"{e.msg} at line {e.lineno} column {e.colno}"
        raise damaged(path, f"not JSON: {where}" if e.doc.strip() else "empty") from None
    lacking = [k for k in need if not isinstance(obj, dict) or k not in obj]
    if lacking:
        raise damaged(path, f"JSON without its {lacking[0]!r} entry")
    return obj


def load_checkpoint(path, need=()):
    """A checkpoint written by torch.save (a dict holding the keys in need), read onto the CPU; a
    damaged one stops with one line and stays where it is: what it saved of the unfinished stage
    is lost, the finished stages are not."""
    size = os.path.getsize(path)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive, its directory at the end
        lost = f"{size} bytes with no zip directory at the end, so cut short or overwritten"
        raise damaged(path, f"not a torch checkpoint: {lost}" if size else "empty: 0 bytes")
    try:  # torch.load does not check the members' CRC-32: one changed byte shows only here
        bad = zipfile.ZipFile(path).testzip()
        changed = "bytes changed after they were written"
        found = bad and f"its member {bad} fails its CRC check: {changed}"
    except Exception as e:  # a zip directory that points at members that are not there
        found = f"not a readable zip archive: {first_line(e)}"
    if found:
        raise damaged(path, found)
    try:
        c = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not what torch.save writes: RuntimeError, UnpicklingError, ...
        raise damaged(path, f"not a torch checkpoint: {first_line(e)}") from None
    if not isinstance(c, dict):
        raise damaged(path, f"a torch file holding a {type(c).__name__}, not a checkpoint's dict")
    lacking = [k for k in need if k not in c]
    if lacking:
        raise damaged(path, f"a torch file without the checkpoint's {lacking[0]!r}")
    return c


def save_checkpoint(path, obj):
    """ckpt.pt, written atomically: a stage's position that --resume continues from."""
    atomic(path, lambda tmp: torch.save(obj, tmp))


def log(args, **record):
    """One JSON record a line in the run's log.jsonl (epochs, checkpoints, finished stages)."""
    with open(os.path.join(args.out, "log.jsonl"), "a") as f:
        f.write(json.dumps(dict(time=round(time.time(), 2), **record)) + "\n")


def source_prompts(out, env, names, folder="source"):
    """The named tasks' prompts P (n, l, d) from OUT/folder/ (stage 1's; "target": AMP's P'), on
    the run's device, each task's head loaded into the model (env: train.setup's loop.Env)."""
    P = []
    for n in names:
        path = os.path.join(out, folder, f"{n}.safetensors")
        W, _ = load_tensors(path, dict(env.meta, task=n))
        head = {"weight": W["head.weight"], "bias": W["head.bias"]}
        env.model.heads[env.ids[n]].load_state_dict(head)
        P.append(W["P"])
    return torch.stack(P).to(env.device)  # (n, l, d)
