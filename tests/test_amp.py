"""Tests of amp.py, train.py and eval.py on a tiny encoder built from a config here (no download),
plus one smoke test with the packaged all-MiniLM-L6-v2: the prompt goes where paper 3.1 puts it, the
loss falls, stage target reads what stage source wrote, --add-task leaves old target prompts
byte-identical, a target prompt costs what a source prompt costs, and every file of a run folder
loads back.

  python -m pytest -q test_amp.py
"""

import argparse
import json
import os
from types import SimpleNamespace

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import amp  # noqa: E402
from lib import runfiles  # noqa: E402
import dam  # noqa: E402
import metrics  # noqa: E402
import eval as evaluation  # noqa: E402
import loop  # noqa: E402
import train  # noqa: E402
from data import collate, load_task  # noqa: E402
from lib.tokens import tokenize  # noqa: E402

SMALL = "--max-train 64 --max-eval 32 --batch-size 16 --prompt-len 4 --seed 1".split()


def make_tiny_encoder(path):
    """A 2-layer BERT with d = 32 and MiniLM's tokenizer, saved where AutoModel can read it. At the
    usual init scale (0.02) its [CLS] output hardly depends on the input and nothing is learnable;
    at 0.5 a prompt and head learn."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))
    tok.save_pretrained(path)
    torch.manual_seed(0)
    size = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    init = dict(max_position_embeddings=128, initializer_range=0.5)  # large enough: inputs matter
    BertModel(BertConfig(vocab_size=tok.vocab_size, **size, **init)).save_pretrained(path)
    return str(path)


def saved(*path):
    """The tensors of a .safetensors file of a run."""
    return runfiles.load_tensors(os.path.join(*path), {})[0]


@pytest.fixture(scope="module")
def run_dir(tiny, tmp_path_factory):
    """One finished run on the tiny encoder: source, target and eval on two demo tasks."""
    out = str(tmp_path_factory.mktemp("run") / "r")
    common = ["--out", out, "--max-steps", "6", "--ckpt-every", "2"]
    source = ["--stage", "source", "--tasks", "senti_food,colours", "--model", tiny]
    train.main([*source, *SMALL, *common])
    train.main(["--stage", "target", *common])
    evaluation.main(["--out", out])
    return out


def test_prompt_precedes_word_embeddings_and_extends_the_mask(tiny):
    encoder, tok = amp.load_encoder(tiny)
    model = amp.PromptModel(encoder, [2])
    seen = {}
    encoder.register_forward_pre_hook(lambda m, args, kw: seen.update(kw), with_kwargs=True)
    P = torch.randn(3, 32)  # (l, d)
    enc = tok(["a b", "c"], ["d", "e f"], return_tensors="pt", padding=True)
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    model(P[None].expand(2, -1, -1), ids, mask, types, torch.tensor([0, 0]))
    x = seen["inputs_embeds"]  # (B, l + T, d)
    assert torch.equal(x[:, :3], P[None].expand(2, -1, -1))
    assert torch.equal(x[:, 3:], encoder.embeddings.word_embeddings(ids))  # word embeddings only
    m, tt = seen["attention_mask"], seen["token_type_ids"]
    assert m[:, :3].eq(1).all() and torch.equal(m[:, 3:], mask)
    assert tt[:, :3].eq(0).all() and torch.equal(tt[:, 3:], types)


def test_mixed_batch_uses_each_tasks_head_and_loss(tiny):
    encoder, tok = amp.load_encoder(tiny)
    model = amp.PromptModel(encoder, [1, 3])  # a regression task and a 3-way one
    enc = tok(["a", "b", "c"], return_tensors="pt", padding=True)
    task, labels = torch.tensor([0, 1, 1]), torch.tensor([2.5, 2.0, 0.0])
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    logits = model(torch.zeros(3, 2, 32), ids, mask, types, task)
    assert torch.isinf(logits[0, 1:]).all() and torch.isfinite(logits[1:]).all()
    ce = torch.nn.functional.cross_entropy(logits[1:], labels[1:].long(), reduction="sum")
    want = ((logits[0, 0] - 2.5) ** 2 + ce) / 3
    assert torch.allclose(model.loss(logits, labels, task), want)


def test_prompt_init_samples_common_whole_words(tiny):
    encoder, tok = amp.load_encoder(tiny)
    ids = amp.common_token_ids(tok)
    words = tok.convert_ids_to_tokens(ids[:5].tolist())
    assert words == ["the", "of", "and", "in", "to"] and len(ids) == 5000
    P = amp.init_prompt(encoder, tok, 7, torch.Generator().manual_seed(0))
    rows = encoder.get_input_embeddings().weight
    # each row is a common word's embedding
    assert all(any(torch.equal(p, rows[i]) for i in ids) for p in P)


def test_loss_falls_on_a_learnable_task(tiny):
    encoder, tok = amp.load_encoder(tiny)
    torch.manual_seed(0)
    model = amp.PromptModel(encoder, [2])
    data = tokenize(load_task("colours", max_train=64)["train"], tok, 32)
    P = torch.nn.Parameter(amp.init_prompt(encoder, tok, 4, torch.Generator().manual_seed(0)))
    opt = torch.optim.AdamW([P, *model.heads.parameters()], lr=3e-2)
    b = collate([dict(data[i], task=0) for i in range(64)], 0)
    ids, mask, types, task = b["input_ids"], b["attention_mask"], b["token_type_ids"], b["task"]
    losses = []
    for _ in range(40):
        loss = model.loss(model(P.expand(64, -1, -1), ids, mask, types, task), b["labels"], task)
        opt.zero_grad(), loss.backward(), opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_every_file_of_a_run_is_written_and_loads_back(run_dir):
    cfg = json.load(open(os.path.join(run_dir, "config.json")))
    assert cfg["run"]["tasks"] == ["senti_food", "colours"] and cfg["target"]["scores"] == "dam"
    log = [json.loads(line) for line in open(os.path.join(run_dir, "log.jsonl"))]
    assert {r["event"] for r in log} >= {"epoch", "checkpoint", "done"}
    for t in cfg["run"]["tasks"]:
        for folder in ("source", "target"):
            path = os.path.join(run_dir, folder, f"{t}.safetensors")
            W, meta = runfiles.load_tensors(path, dict(task=t, l=4, d=32))
            assert W["P"].shape == (4, 32) and W["head.weight"].shape == (2, 32)
        assert "accuracy" in json.load(open(os.path.join(run_dir, "source", f"{t}.json")))["dev"]
    psi, _ = runfiles.load_tensors(os.path.join(run_dir, "psi.safetensors"), dict(d=32, k=32))
    assert set(psi) == {"W_Q", "W_K", "W_V"} and psi["W_V"].shape == (32, 32)
    assert not torch.equal(psi["W_V"], torch.eye(32))  # W_V is trained by default (paper)
    A = json.load(open(os.path.join(run_dir, "attention.json")))
    assert A["tasks"] == cfg["run"]["tasks"] and all(abs(sum(r) - 1) < 1e-5 for r in A["A"])
    results = json.load(open(os.path.join(run_dir, "eval.json")))["scores"]
    assert set(results["prompt"]) == set(results["amp"]) == set(cfg["run"]["tasks"])
    encoder, tok = amp.load_encoder(cfg["run"]["model"])
    model = amp.PromptModel(encoder, [2, 2])
    for i, t in enumerate(cfg["run"]["tasks"]):  # eval.json = the saved prompt, re-scored
        W = saved(run_dir, "target", f"{t}.safetensors")
        model.heads[i].load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
        data = tokenize(load_task(t, max_train=64, max_eval=32)["report"], tok, 64)
        assert metrics.evaluate(model, W["P"], data, i, ["accuracy"], 7, "cpu") == results["amp"][t]
    assert open(os.path.join(run_dir, "attention.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert not os.path.exists(os.path.join(run_dir, "ckpt.pt"))  # a finished stage leaves none


def test_stage_target_reads_the_source_prompts_stage_source_wrote(run_dir):
    names = ["senti_food", "colours"]
    P = torch.stack([saved(run_dir, "source", f"{t}.safetensors")["P"] for t in names])
    psi = dam.DAMAttention(32)
    psi.load_state_dict(saved(run_dir, "psi.safetensors"))
    P_target, A = psi(P)
    for i, t in enumerate(names):
        W = saved(run_dir, "target", f"{t}.safetensors")
        assert torch.allclose(W["P"], P_target[i], atol=1e-6)
        assert torch.allclose(W["A"], A[i], atol=1e-6)
        source_head = saved(run_dir, "source", f"{t}.safetensors")["head.weight"]
        assert torch.equal(W["head.weight"], source_head)  # heads frozen in stage 2 by default


def test_eval_scores_every_method_on_the_same_tokens_of_the_reporting_rows(run_dir, monkeypatch):
    seen = []
    real = evaluation.evaluate

    def spy(model, prompt, data, *rest, **kw):
        seen.append((list(data["input_ids"]), list(data["group"])))
        return real(model, prompt, data, *rest, **kw)

    monkeypatch.setattr(evaluation, "evaluate", spy)
    evaluation.main(["--out", run_dir, "--rescore"])  # not the scores eval.py kept
    # prompt tuning and AMP, per task
    assert len(seen) == 4 and seen[0] == seen[1] and seen[2] == seen[3]
    report = load_task("colours", max_train=64, max_eval=32)
    assert seen[2][1] == list(report["report"]["group"])
    assert not set(seen[2][1]) & set(report["dev"]["group"])


def test_one_pass_stage_source_equals_training_each_task_alone(tiny, tmp_path):
    """All tasks' prompts train in one pass; each equals, bit for bit, its prompt trained alone."""

    def run(out, tasks):
        args = ["--stage", "source", "--tasks", tasks, "--model", tiny, *SMALL, "--max-steps", "7"]
        train.main([*args, "--out", str(tmp_path / out)])

    run("both", "senti_food,colours"), run("food", "senti_food"), run("colours", "colours")
    for task in ("senti_food", "colours"):
        together = saved(tmp_path / "both" / "source" / f"{task}.safetensors")
        folder = "food" if task == "senti_food" else "colours"
        alone = saved(tmp_path / folder / "source" / f"{task}.safetensors")
        assert together.keys() == alone.keys()
        assert all(torch.equal(together[k], alone[k]) for k in alone)
    keys = [json.loads(line).get("key") for line in open(tmp_path / "both" / "log.jsonl")]
    last_food = len(keys) - 1 - keys[::-1].index("source:senti_food")
    assert keys.index("source:colours") < last_food  # interleaved


def test_learning_rate_warms_up_linearly_then_decays_to_zero():
    scales = [round(loop.lr_scale(g, 10, 4), 4) for g in range(10)]
    assert scales == [0.25, 0.5, 0.75, 1.0, 1.0, 0.8333, 0.6667, 0.5, 0.3333, 0.1667]
    assert loop.lr_scale(9, 10, 0) == 0.1 and loop.lr_scale(10, 10, 4) == 0.0


def test_early_stopping_restores_the_parameters_of_the_best_dev_epoch(tiny, tmp_path, monkeypatch):
    encoder, tok = amp.load_encoder(tiny)
    data = tokenize(load_task("colours", max_train=16)["train"], tok, 32)
    model, ids = amp.PromptModel(encoder, [2]), {"colours": 0}
    env = SimpleNamespace(model=model, device="cpu", train=[data], ids=ids)
    P = torch.nn.Parameter(torch.randn(4, 32))
    scores, snapshots, done = iter([1.0, 3.0, 2.0, 2.5, 0.0, 9.0]), [], []

    def dev(env, job):  # loop.mean_dev, recording the parameters it scores
        snapshots.append(P.detach().clone())
        return next(scores)

    monkeypatch.setattr(loop, "mean_dev", dev)
    steps = dict(epochs=6, max_steps=None, patience=2, warmup=0, ckpt_every=100, batch_size=8)
    a = argparse.Namespace(out=str(tmp_path), resume=False, weight_decay=0.0, seed=0, **steps)
    job = loop.Job("t", [([P], 0.1)], ["colours"], amp.TaskPrompt(P))
    for finished in loop.fit(a, env, [job]):
        done.append((finished, P.detach().clone()))
    assert len(snapshots) == 4  # epochs 3 and 4 did not beat epoch 2
    assert done[0][0] is job and torch.equal(done[0][1], snapshots[1])
    assert torch.equal(P.detach(), snapshots[1])
    assert not torch.equal(snapshots[1], snapshots[3])


def test_paper_preset_is_remembered_by_later_stages(tiny, tmp_path):
    out = str(tmp_path / "paper")
    source = "--stage source --preset paper --tasks colours --model".split()
    small = "--prompt-len 4 --max-train 16 --max-eval 16 --max-steps 1 --out".split()
    train.main([*source, tiny, *small, out])
    train.main(["--stage", "target", "--max-steps", "1", "--out", out])
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["run"]["preset"] == "paper"
    keys = ("lr", "epochs", "batch_size", "warmup")
    assert [cfg["source"][k] for k in keys] == [1e-4, 30, 8, 500]
    assert [cfg["target"][k] for k in keys] == [5e-5, 10, 8, 500]


def test_a_roberta_style_encoder_runs_end_to_end_at_its_longest_input(tmp_path):
    """RoBERTa's positions start after the padding index: a prompt plus the longest input must
    still fit."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    path = str(tmp_path / "roberta")
    tok = AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))
    tok.model_max_length = 512
    tok.save_pretrained(path)
    size = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    # type_vocab_size=2: MiniLM's tokenizer marks pairs
    rest = dict(max_position_embeddings=24, pad_token_id=1, type_vocab_size=2)
    RobertaModel(RobertaConfig(vocab_size=tok.vocab_size, **size, **rest)).save_pretrained(path)
    encoder, _ = amp.load_encoder(path)
    assert amp.max_positions(encoder, tok) == 22
    out = str(tmp_path / "run")
    small = "--prompt-len 4 --max-train 16 --max-eval 30 --max-steps 2 --out".split()
    train.main(["--stage", "source", "--tasks", "para_people", "--model", path, *small, out])
    train.main(["--stage", "target", "--max-steps", "2", "--out", out])
    evaluation.main(["--out", out])
    result = json.load(open(os.path.join(out, "eval.json")))
    assert result["input_tokens"] == {"para_people": 18}
    assert set(result["scores"]["amp"]) == {"para_people"}


def test_add_task_leaves_old_target_prompts_byte_identical(run_dir):
    names = ["senti_food", "colours"]

    def target(t):
        return os.path.join(run_dir, "target", f"{t}.safetensors")

    before = {t: open(target(t), "rb").read() for t in names}
    psi_before = saved(run_dir, "psi.safetensors")
    train.main(["--add-task", "senti_movies", "--out", run_dir])
    for t in names:
        assert open(target(t), "rb").read() == before[t]
    assert os.path.exists(target("senti_movies"))
    assert not torch.equal(saved(run_dir, "psi.safetensors")["W_Q"], psi_before["W_Q"])
    A = json.load(open(os.path.join(run_dir, "attention.json")))
    assert A["tasks"] == names + ["senti_movies"] and [r[2] for r in A["A"][:2]] == [0.0, 0.0]
    assert abs(sum(A["A"][2]) - 1) < 1e-5 and A["A"][2][2] > 0
    cfg = json.load(open(os.path.join(run_dir, "config.json")))
    assert cfg["run"]["tasks"] == names + ["senti_movies"]


def test_files_made_for_another_setting_name_both_sides(run_dir):
    path = os.path.join(run_dir, "source", "colours.safetensors")
    with pytest.raises(runfiles.RunFileError, match=r"l=4, but this run has l=100"):
        runfiles.load_tensors(path, dict(l=100))
    with pytest.raises(
        runfiles.RunFileError, match=r"task='colours', but this run has task='sst2'"
    ):
        runfiles.load_tensors(path, dict(task="sst2"))


def test_unknown_model_stops_with_one_line_naming_the_way_out():
    with pytest.raises(amp.ModelError) as e:
        amp.load_encoder("no-such-org/no-such-model")
    assert "--model PATH" in str(e.value) and "\n" not in str(e.value)


def test_packaged_minilm_trains_a_prompt_offline():
    encoder, tok = amp.load_encoder(amp.DEFAULT_MODEL)
    assert encoder.config.hidden_size == 384 and amp.max_positions(encoder, tok) == 512
    model = amp.PromptModel(encoder, [2])
    g = torch.Generator().manual_seed(0)
    P = torch.nn.Parameter(amp.init_prompt(encoder, tok, 20, g))  # (20, 384)
    enc = tok(["a lovely film .", "a dreadful film ."], return_tensors="pt", padding=True)
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    logits = model(P.expand(2, -1, -1), ids, mask, types, torch.tensor([0, 0]))
    model.loss(logits, torch.tensor([1.0, 0.0]), torch.tensor([0, 0])).backward()
    assert torch.isfinite(logits).all() and P.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())  # the encoder stays frozen


HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
SHARED = os.environ.get("AMP_DATA_DIR", os.path.join(HERE, "..", "shared", "data"))
NO_DATA = f"no local copy of the paper's tasks at {SHARED} (set AMP_DATA_DIR)"


@pytest.mark.skipif(not os.path.isdir(SHARED), reason=NO_DATA)
def test_real_tasks_run_end_to_end_with_their_metrics(tiny, tmp_path):
    out = str(tmp_path / "real")
    common = ["--out", out, "--max-steps", "2"]
    source = ["--stage", "source", "--tasks", "stsb,cb,multirc", "--data-dir", SHARED]
    small = ["--max-train", "32", "--max-eval", "40", "--prompt-len", "4"]
    train.main([*source, "--model", tiny, *small, *common])
    train.main(["--stage", "target", *common])
    evaluation.main(["--out", out])
    results = json.load(open(os.path.join(out, "eval.json")))["scores"]["amp"]
    stsb = results["stsb"]
    assert set(stsb) == {"pearson", "spearman"} and stsb["pearson"] != stsb["spearman"]
    assert set(results["cb"]) == {"accuracy", "macro_f1"}
    assert set(results["multirc"]) == {"f1a", "em"}
    heads = saved(out, "target", "cb.safetensors")["head.weight"]
    assert heads.shape == (3, 32)  # CB: three classes


def test_metrics_match_hand_computed_values():
    names = ["accuracy", "f1", "macro_f1", "em"]
    s = metrics.score(names, [1, 0, 1, 1], [1, 0, 0, 1], ["q1", "q1", "q2", "q3"])
    assert s["accuracy"] == 75.0 and s["f1"] == pytest.approx(100 * 2 * 2 / (3 + 2))
    assert s["macro_f1"] == pytest.approx((100 * 2 / 3 + 80) / 2)
    assert s["em"] == pytest.approx(100 * 2 / 3)
    r = metrics.score(["pearson", "spearman"], [1.0, 2.0, 3.0, 5.0], [2.0, 4.0, 6.0, 7.0], None)
    assert r["spearman"] == pytest.approx(100.0) and 90 < r["pearson"] < 100


def test_family_rate_counts_the_largest_off_diagonal_attention():
    tasks = ["senti_movies", "senti_food", "para_animals", "para_people", "colours"]
    A = [
        [0.9, 0.02, 0.05, 0.02, 0.01],  # senti_movies -> para_animals: a miss
        [0.05, 0.9, 0.02, 0.02, 0.01],  # senti_food -> senti_movies: a hit
        [0.0, 0.0, 0.6, 0.3, 0.1],  # para_animals -> para_people: a hit
        [0.1, 0.0, 0.05, 0.8, 0.05],  # para_people -> senti_movies: a miss
        [0.5, 0.1, 0.1, 0.1, 0.2],  # colours has no sibling: not counted
    ]
    hits, counted, expected = evaluation.family_rate(tasks, A)
    assert (hits, counted) == (2, 4) and expected == pytest.approx(4 * 1 / 4)
