"""Tests of amp.py, train.py and eval.py on a tiny encoder built from a config here (no download), plus one
smoke test with the packaged all-MiniLM-L6-v2: the prompt goes where paper 3.1 puts it, the loss falls,
stage target reads what stage source wrote, --add-task leaves old target prompts byte-identical, a target
prompt costs what a source prompt costs, and every file of a run folder loads back.

  python -m pytest -q test_amp.py
"""
import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import amp  # noqa: E402
import eval as evaluation  # noqa: E402
import train  # noqa: E402
from data import collate, load_task, tokenize  # noqa: E402

SMALL = ["--max-train", "64", "--max-eval", "32", "--batch-size", "16", "--prompt-len", "4", "--seed", "1"]


def make_tiny_encoder(path):
    """A 2-layer BERT with d = 32 and MiniLM's tokenizer, saved where AutoModel can read it. At the usual init scale
    (0.02) its [CLS] output hardly depends on the input and nothing is learnable; at 0.5 a prompt and head learn."""
    from transformers import AutoTokenizer, BertConfig, BertModel
    tok = AutoTokenizer.from_pretrained(amp.resolve_model(amp.DEFAULT_MODEL))
    tok.save_pretrained(path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128,
                         initializer_range=0.5)).save_pretrained(path)   # large enough that inputs matter
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def run_dir(tiny, tmp_path_factory):
    """One finished run on the tiny encoder: source, target and eval on two demo tasks."""
    out = str(tmp_path_factory.mktemp("run") / "r")
    common = ["--out", out, "--max-steps", "6", "--ckpt-every", "2"]
    train.main(["--stage", "source", "--tasks", "senti_food,colours", "--model", tiny, *SMALL, *common])
    train.main(["--stage", "target", *common])
    evaluation.main(["--out", out])
    return out


def test_prompt_precedes_word_embeddings_and_extends_the_mask(tiny):
    encoder, tok = amp.load_encoder(tiny)
    model = amp.PromptModel(encoder, [2])
    seen = {}
    encoder.register_forward_pre_hook(lambda m, args, kw: seen.update(kw), with_kwargs=True)
    P = torch.randn(3, 32)                                                    # (l, d)
    enc = tok(["a b", "c"], ["d", "e f"], return_tensors="pt", padding=True)
    model(P[None].expand(2, -1, -1), enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], torch.tensor([0, 0]))
    x = seen["inputs_embeds"]                                                 # (B, l + T, d)
    assert torch.equal(x[:, :3], P[None].expand(2, -1, -1))
    assert torch.equal(x[:, 3:], encoder.embeddings.word_embeddings(enc["input_ids"]))   # word embeddings only
    assert seen["attention_mask"][:, :3].eq(1).all() and torch.equal(seen["attention_mask"][:, 3:], enc["attention_mask"])
    assert seen["token_type_ids"][:, :3].eq(0).all() and torch.equal(seen["token_type_ids"][:, 3:], enc["token_type_ids"])


def test_mixed_batch_uses_each_tasks_head_and_loss(tiny):
    encoder, tok = amp.load_encoder(tiny)
    model = amp.PromptModel(encoder, [1, 3])                                  # a regression task and a 3-way one
    enc = tok(["a", "b", "c"], return_tensors="pt", padding=True)
    task, labels = torch.tensor([0, 1, 1]), torch.tensor([2.5, 2.0, 0.0])
    logits = model(torch.zeros(3, 2, 32), enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], task)
    assert torch.isinf(logits[0, 1:]).all() and torch.isfinite(logits[1:]).all()
    want = ((logits[0, 0] - 2.5) ** 2 + torch.nn.functional.cross_entropy(logits[1:], labels[1:].long(), reduction="sum")) / 3
    assert torch.allclose(model.loss(logits, labels, task), want)


def test_prompt_init_samples_common_whole_words(tiny):
    encoder, tok = amp.load_encoder(tiny)
    ids = amp.common_token_ids(tok)
    words = tok.convert_ids_to_tokens(ids[:5].tolist())
    assert words == ["the", "of", "and", "in", "to"] and len(ids) == 5000
    P = amp.init_prompt(encoder, tok, 7, torch.Generator().manual_seed(0))
    rows = encoder.get_input_embeddings().weight
    assert all(any(torch.equal(p, rows[i]) for i in ids) for p in P)        # each row is a common word's embedding


def test_loss_falls_on_a_learnable_task(tiny):
    encoder, tok = amp.load_encoder(tiny)
    torch.manual_seed(0)
    model = amp.PromptModel(encoder, [2])
    data = tokenize(load_task("colours", max_train=64)["train"], tok, 32)
    P = torch.nn.Parameter(amp.init_prompt(encoder, tok, 4, torch.Generator().manual_seed(0)))
    opt = torch.optim.AdamW([P, *model.heads.parameters()], lr=3e-2)
    b = collate([dict(data[i], task=0) for i in range(64)], 0)
    losses = []
    for _ in range(40):
        loss = model.loss(model(P.expand(64, -1, -1), b["input_ids"], b["attention_mask"], b["token_type_ids"],
                                b["task"]), b["labels"], b["task"])
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
            W, meta = amp.load_tensors(os.path.join(run_dir, folder, f"{t}.safetensors"), dict(task=t, l=4, d=32))
            assert W["P"].shape == (4, 32) and W["head.weight"].shape == (2, 32)
        assert "accuracy" in json.load(open(os.path.join(run_dir, "source", f"{t}.json")))["dev"]
    psi, _ = amp.load_tensors(os.path.join(run_dir, "psi.safetensors"), dict(d=32, k=32))
    assert set(psi) == {"W_Q", "W_K", "W_V"} and psi["W_V"].shape == (32, 32)
    assert not torch.equal(psi["W_V"], torch.eye(32))                      # W_V is trained by default (paper)
    A = json.load(open(os.path.join(run_dir, "attention.json")))
    assert A["tasks"] == cfg["run"]["tasks"] and all(abs(sum(r) - 1) < 1e-5 for r in A["A"])
    results = json.load(open(os.path.join(run_dir, "eval.json")))
    assert set(results["prompt"]) == set(results["amp"]) == set(cfg["run"]["tasks"])
    assert all(0 <= results["amp"][t]["accuracy"] <= 100 for t in cfg["run"]["tasks"])
    assert open(os.path.join(run_dir, "attention.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert not os.path.exists(os.path.join(run_dir, "ckpt.pt"))            # a finished stage leaves no checkpoint


def test_stage_target_reads_the_source_prompts_stage_source_wrote(run_dir):
    names = ["senti_food", "colours"]
    P = torch.stack([amp.load_tensors(os.path.join(run_dir, "source", f"{t}.safetensors"), {})[0]["P"] for t in names])
    psi = amp.DAMAttention(32)
    psi.load_state_dict(amp.load_tensors(os.path.join(run_dir, "psi.safetensors"), {})[0])
    P_target, A = psi(P)
    for i, t in enumerate(names):
        W, _ = amp.load_tensors(os.path.join(run_dir, "target", f"{t}.safetensors"), {})
        assert torch.allclose(W["P"], P_target[i], atol=1e-6) and torch.allclose(W["A"], A[i], atol=1e-6)
        source_head = amp.load_tensors(os.path.join(run_dir, "source", f"{t}.safetensors"), {})[0]["head.weight"]
        assert torch.equal(W["head.weight"], source_head)                   # heads frozen in stage 2 by default


def test_a_target_prompt_feeds_the_encoder_what_a_source_prompt_does(run_dir, tiny):
    encoder, tok = amp.load_encoder(tiny)
    model = amp.PromptModel(encoder, [2, 2])
    lengths = []
    encoder.register_forward_pre_hook(lambda m, args, kw: lengths.append(kw["inputs_embeds"].shape), with_kwargs=True)
    data = tokenize(load_task("colours", max_eval=8)["report"], tok, 32)
    for folder in ("source", "target"):
        W, _ = amp.load_tensors(os.path.join(run_dir, folder, "colours.safetensors"), {})
        evaluation.evaluate(model, W["P"], data, 1, ["accuracy"], 8, "cpu")
    assert lengths[0] == lengths[1]                                         # paper 3.3: no extra inference cost


def test_add_task_leaves_old_target_prompts_byte_identical(run_dir):
    names = ["senti_food", "colours"]
    before = {t: open(os.path.join(run_dir, "target", f"{t}.safetensors"), "rb").read() for t in names}
    psi_before = amp.load_tensors(os.path.join(run_dir, "psi.safetensors"), {})[0]
    train.main(["--add-task", "senti_movies", "--out", run_dir])
    for t in names:
        assert open(os.path.join(run_dir, "target", f"{t}.safetensors"), "rb").read() == before[t]
    assert os.path.exists(os.path.join(run_dir, "target", "senti_movies.safetensors"))
    assert not torch.equal(amp.load_tensors(os.path.join(run_dir, "psi.safetensors"), {})[0]["W_Q"], psi_before["W_Q"])
    A = json.load(open(os.path.join(run_dir, "attention.json")))
    assert A["tasks"] == names + ["senti_movies"] and [r[2] for r in A["A"][:2]] == [0.0, 0.0]
    assert abs(sum(A["A"][2]) - 1) < 1e-5 and A["A"][2][2] > 0
    assert json.load(open(os.path.join(run_dir, "config.json")))["run"]["tasks"] == names + ["senti_movies"]


def test_files_made_for_another_setting_name_both_sides(run_dir):
    with pytest.raises(amp.ModelError, match=r"l=4, but this run has l=100"):
        amp.load_tensors(os.path.join(run_dir, "source", "colours.safetensors"), dict(l=100))
    with pytest.raises(amp.ModelError, match=r"task='colours', but this run has task='sst2'"):
        amp.load_tensors(os.path.join(run_dir, "source", "colours.safetensors"), dict(task="sst2"))


def test_unknown_model_stops_with_one_line_naming_the_way_out():
    with pytest.raises(amp.ModelError) as e:
        amp.load_encoder("no-such-org/no-such-model")
    assert "--model PATH" in str(e.value) and "\n" not in str(e.value)


def test_packaged_minilm_trains_a_prompt_offline():
    encoder, tok = amp.load_encoder(amp.DEFAULT_MODEL)
    assert encoder.config.hidden_size == 384 and amp.max_positions(encoder, tok) == 512
    model = amp.PromptModel(encoder, [2])
    P = torch.nn.Parameter(amp.init_prompt(encoder, tok, 20, torch.Generator().manual_seed(0)))   # (20, 384)
    enc = tok(["a lovely film .", "a dreadful film ."], return_tensors="pt", padding=True)
    logits = model(P.expand(2, -1, -1), enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], torch.tensor([0, 0]))
    model.loss(logits, torch.tensor([1.0, 0.0]), torch.tensor([0, 0])).backward()
    assert torch.isfinite(logits).all() and P.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())                # the encoder stays frozen


SHARED = os.environ.get("AMP_DATA_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data"))


@pytest.mark.skipif(not os.path.isdir(SHARED), reason=f"no local copy of the paper's tasks at {SHARED} (set AMP_DATA_DIR)")
def test_real_tasks_run_end_to_end_with_their_metrics(tiny, tmp_path):
    out = str(tmp_path / "real")
    common = ["--out", out, "--max-steps", "2"]
    train.main(["--stage", "source", "--tasks", "stsb,cb,multirc", "--data-dir", SHARED, "--model", tiny,
                "--max-train", "32", "--max-eval", "40", "--prompt-len", "4", *common])
    train.main(["--stage", "target", *common])
    evaluation.main(["--out", out])
    results = json.load(open(os.path.join(out, "eval.json")))["amp"]
    assert set(results["stsb"]) == {"pearson", "spearman"} and -100 <= results["stsb"]["pearson"] <= 100
    assert set(results["cb"]) == {"accuracy", "macro_f1"} and set(results["multirc"]) == {"f1a", "em"}
    heads = amp.load_tensors(os.path.join(out, "target", "cb.safetensors"), {})[0]["head.weight"]
    assert heads.shape == (3, 32)                                           # CB: three classes


def test_metrics_match_hand_computed_values():
    s = evaluation.score(["accuracy", "f1", "macro_f1", "em"], [1, 0, 1, 1], [1, 0, 0, 1], ["q1", "q1", "q2", "q3"])
    assert s["accuracy"] == 75.0 and s["f1"] == pytest.approx(100 * 2 * 2 / (3 + 2))
    assert s["macro_f1"] == pytest.approx((100 * 2 / 3 + 80) / 2) and s["em"] == pytest.approx(100 * 2 / 3)
    r = evaluation.score(["pearson", "spearman"], [1.0, 2.0, 3.0, 5.0], [2.0, 4.0, 6.0, 7.0], None)
    assert r["spearman"] == pytest.approx(100.0) and 90 < r["pearson"] < 100


def test_family_rate_counts_the_largest_off_diagonal_attention():
    tasks = ["senti_movies", "senti_food", "para_animals", "para_people", "colours"]
    A = [[0.9, 0.02, 0.05, 0.02, 0.01],    # senti_movies -> para_animals: a miss
         [0.05, 0.9, 0.02, 0.02, 0.01],    # senti_food -> senti_movies: a hit
         [0.0, 0.0, 0.6, 0.3, 0.1],        # para_animals -> para_people: a hit
         [0.1, 0.0, 0.05, 0.8, 0.05],      # para_people -> senti_movies: a miss
         [0.5, 0.1, 0.1, 0.1, 0.2]]        # colours has no sibling: not counted
    hits, counted, expected = evaluation.family_rate(tasks, A)
    assert (hits, counted) == (2, 4) and expected == pytest.approx(4 * 1 / 4)
