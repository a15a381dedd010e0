"""predict.py: a run's predictions are the project's own (eval's scores, a direct PromptModel call),
an own task's labels come back by name, a PEFT export gives the same logits, and the command line
reads JSON lines and stops a user's mistake with one line (paper 3.3 inference).
Run: python -m pytest -q tests/test_predict.py   (offline, a tiny encoder, about a minute)
"""

import io
import json
import os
import random
import shutil
import subprocess
import sys

import pytest
import torch

import predict
import train
from amp import resolve_model
from data import DataError, load_task
from lib.runfiles import load_tensors, read_json, save_tensors, write_json
from lib.tokens import tokenize
from metrics import evaluate
from test_amp import make_tiny_encoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOOD, BAD = "fine lovely great superb".split(), "awful dull poor bad".split()


def write_reviews(folder):
    """An own pair task with string labels: train and validation JSONL of "pos" / "neg"."""
    os.makedirs(folder)
    rng = random.Random(0)
    for split, n in (("train", 40), ("validation", 60)):
        with open(os.path.join(folder, f"{split}.jsonl"), "w") as f:
            for i in range(n):
                w = rng.choice(GOOD if i % 2 else BAD)
                row = dict(text=f"the film was {w} .", text_pair=f"i found it {w} .")
                f.write(json.dumps(dict(row, label="pos" if i % 2 else "neg")) + "\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Stage 1 (2 steps) on a demo task and an own pair task; each target file is its source file
    with P shifted (stage 2's files, without the minute stage 2 takes)."""
    tmp = tmp_path_factory.mktemp("predict")
    tiny, data_dir, out = make_tiny_encoder(tmp / "tiny"), str(tmp / "data"), str(tmp / "run")
    write_reviews(os.path.join(data_dir, "reviews"))
    small = ["--max-train", "32", "--max-eval", "30", "--prompt-len", "4", "--max-steps", "2"]
    tasks = ["--tasks", "senti_food,reviews", "--data-dir", data_dir, "--model", tiny]
    train.main(["--stage", "source", *tasks, *small, "--out", out])
    for t in ("senti_food", "reviews"):
        W, meta = load_tensors(os.path.join(out, "source", f"{t}.safetensors"), {})
        W = dict(W, P=W["P"] + 0.1, A=torch.tensor([0.5, 0.5]))
        save_tensors(os.path.join(out, "target", f"{t}.safetensors"), W, meta)
    return out


def report_rows(out, task):
    """The task's reporting rows as eval.py reads them."""
    cfg = read_json(os.path.join(out, "config.json"))["run"]
    flags = [cfg[k] for k in ("data_dir", "protocol", "carve", "max_train", "max_eval")]
    return load_task(task, *flags)["report"]


@pytest.mark.parametrize("task", ["senti_food", "reviews"])
def test_predictions_are_evals_and_a_direct_prompt_model_call(run, task):
    pred = predict.load_run(run, task=task, device="cpu")  # AMP: target/<task>.safetensors
    assert torch.equal(pred.prompt, load_tensors(predict.task_file(run, "amp", task), {})[0]["P"])
    rows = report_rows(run, task)
    inputs = [dict(text=r["text"], text_pair=r["text_pair"]) for r in rows]
    tokens = tokenize(rows, pred.tokenizer, pred.max_len)  # what training and eval.py read
    mine = pred.encode(inputs)
    assert [r["input_ids"] for r in mine] == tokens["input_ids"]
    assert [r["token_type_ids"] for r in mine] == tokens["token_type_ids"]
    z = pred.logits(inputs)  # (N, C), batched by length
    for i in (0, 7, len(rows) - 1):  # one row at a time, straight through PromptModel
        ids, types = (torch.tensor([tokens[i][k]]) for k in ("input_ids", "token_type_ids"))
        direct = pred.model(pred.prompt[None], ids, torch.ones_like(ids), types, torch.tensor([0]))
        assert torch.allclose(z[i], direct[0], atol=1e-5)
    labels = [pred.labels.index(p["label"]) for p in pred.predict(inputs)]
    accuracy = 100.0 * sum(y == g for y, g in zip(labels, rows["label"])) / len(rows)
    assert (
        accuracy
        == evaluate(pred.model, pred.prompt, tokens, 0, ["accuracy"], 64, "cpu")["accuracy"]
    )


def test_an_own_task_with_string_labels_gets_its_label_names(run, tmp_path, capsys):
    pred = predict.load_run(run, task="reviews", method="prompt", device="cpu")
    out = pred.predict(["the film was superb .", ("the film was awful .", "i found it awful .")])
    assert pred.labels == ["neg", "pos"] and all(r["label"] in ("neg", "pos") for r in out)
    assert all(list(r["scores"]) == ["neg", "pos"] for r in out)
    assert all(abs(sum(r["scores"].values()) - 1) < 1e-6 for r in out)
    copy = str(tmp_path / "run")  # the names recorded in config.json win; none and no data: 0, 1
    shutil.copytree(run, copy)
    cfg = read_json(os.path.join(copy, "config.json"))
    write_json(os.path.join(copy, "config.json"), dict(cfg, labels={"reviews": ["bad", "good"]}))
    assert predict.load_run(copy, task="reviews", device="cpu").labels == ["bad", "good"]
    cfg.pop("labels", None), cfg.pop("input_tokens", None)
    write_json(os.path.join(copy, "config.json"), dict(cfg, run=dict(cfg["run"], data_dir=None)))
    pred = predict.load_run(copy, task="reviews", device="cpu")
    assert pred.labels == ["0", "1"] and pred.max_len == 128 - 4  # 256, cut to positions - l
    assert "records no label names for reviews" in capsys.readouterr().err


def test_a_peft_export_gives_the_projects_logits_for_single_texts(run, tmp_path):
    pytest.importorskip("peft")
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel

    pred, folder = predict.load_run(run, task="reviews", device="cpu"), str(tmp_path / "adapter")
    predict.export_peft(pred, folder)
    config = json.load(open(os.path.join(folder, "adapter_config.json")))
    assert config["peft_type"] == "PROMPT_TUNING" and config["task_type"] == "FEATURE_EXTRACTION"
    assert (config["num_virtual_tokens"], config["token_dim"]) == tuple(pred.prompt.shape)
    saved = load_file(os.path.join(folder, "adapter_model.safetensors"))["prompt_embeddings"]
    assert torch.equal(saved, pred.prompt)  # the run's prompt, bit for bit
    head = load_file(os.path.join(folder, "head.safetensors"))
    names = json.load(open(os.path.join(folder, "labels.json")))["labels"]
    base = AutoModel.from_pretrained(resolve_model(config["base_model_name_or_path"]))
    model, l = PeftModel.from_pretrained(base, folder).eval(), pred.prompt.shape[0]

    def peft_logits(*texts):
        x = pred.tokenizer(*texts, padding=True, truncation=True, max_length=pred.max_len)
        x = {k: torch.tensor(x[k]) for k in ("input_ids", "attention_mask")}
        with torch.no_grad():
            h = model(**x).last_hidden_state[:, l]  # the first real token, after the prompt
        return h @ head["weight"].T + head["bias"]

    texts = ["the film was superb .", "i found it dull", "a fine , lovely film ."]
    ours = pred.logits(texts)
    assert torch.allclose(peft_logits(texts), ours, atol=1e-5)
    assert [names[i] for i in peft_logits(texts).argmax(-1)] == [
        p["label"] for p in pred.predict(texts)
    ]
    pairs = (["the film was fine ."] * 2, ["i found it fine .", "i found it poor ."])
    assert not torch.allclose(peft_logits(*pairs), pred.logits(list(zip(*pairs))), atol=1e-3)
    with pytest.raises(DataError, match="exists and is not empty"):  # nothing is overwritten
        predict.export_peft(pred, folder)
    with pytest.raises(DataError, match="ATTEMPT computes a prompt from each input"):
        predict.check_export("attempt", str(tmp_path / "other"))


def test_the_command_line_reads_json_lines_and_writes_one_json_line_each(run):
    good = '{"text": "the film was superb ."}\n\n{"text": "dull", "text_pair": "poor"}\n'
    cmd = [sys.executable, os.path.join(ROOT, "predict.py"), "--out", run, "--task", "reviews"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(cmd, input=good, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    want = predict.load_run(run, task="reviews").predict(
        ["the film was superb .", ("dull", "poor")]
    )
    assert [x["label"] for x in lines] == [w["label"] for w in want]
    for x, w in zip(lines, want):
        assert all(abs(x["scores"][k] - w["scores"][k]) < 1e-5 for k in w["scores"])


def test_a_users_mistake_stops_with_one_line_naming_what_there_is(run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"text": "fine"}\n{"text": oops}\n'))
    for argv, says in [
        (["--task", "reviews"], "stdin:2: malformed JSON (Expecting value)"),
        (["--task", "mrpc"], "task 'mrpc' is not in"),
        (["--task", "reviews", "--method", "tpt"], "python train.py --stage target --method tpt"),
        (["--out", run + "_none"], "holds no run"),
    ]:
        with pytest.raises(SystemExit) as stop:
            predict.main(["--out", run, *argv])
        out, err = capsys.readouterr()
        assert (stop.value.code, out) == (2, "")
        assert len(err.splitlines()) == 1 and err.startswith("predict.py: error: ") and says in err
