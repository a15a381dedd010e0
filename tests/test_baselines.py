"""Tests of baselines.py on small hand-made tensors (no encoder, no data): ATTEMPT's attention sums
to one over the n + 1 prompts, ignores padding and trains only what it should; TPT retrieves the
top-scoring bank tokens in bank order and trains only those; SPoT-s weighs the other prompts by
the cosine of their mean tokens; the parameter formulas equal the counted parameters and the
paper's Table 2; and each method through train.py (the loss falls, the trained count is the
formula, frozen weights stay, the saved files load back and score alike).

  python -m pytest -q tests/test_baselines.py
"""

import json
import math
import os
import runpy
import sys

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from baselines import AttemptAttention, TokenBank, params_per_method, scaled_sizes  # noqa: E402
from baselines import spot_m_init, spot_s_init, spot_s_weights, spot_similarity  # noqa: E402
from baselines import tpt_prompt  # noqa: E402
from dam import DAMAttention  # noqa: E402
import amp  # noqa: E402
import metrics  # noqa: E402
from data import load_task  # noqa: E402
from lib.tokens import tokenize  # noqa: E402
import eval as evaluation  # noqa: E402
import train  # noqa: E402
from conftest import TASKS, copy_run  # noqa: E402  (and the fixture source_run)
from test_amp import make_tiny_encoder  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
MERGE = os.path.join(ROOT, "studies", "table1", "table1_merge.py")


def attempt_inputs(n=3, l=4, d=8, B=5, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    P_sources = torch.randn(n, l, d, generator=g)
    P_own = torch.randn(B, l, d, generator=g)
    E = torch.randn(B, T, d, generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 4:] = 0  # example 1 is padded
    return P_sources, P_own, E, mask


def make_attempt(d=8, seed=0):
    torch.manual_seed(seed)
    att = AttemptAttention(d, bottleneck=3, temperature=0.5)  # a low T: A far from uniform
    with torch.no_grad():
        att.W_down.weight.normal_()
        att.W_up.weight.normal_()
    return att


def test_attempt_weights_sum_to_one_over_sources_and_own_prompt():
    P_sources, P_own, E, mask = attempt_inputs()
    _, A = make_attempt()(P_sources, P_own, E, mask)
    assert A.shape == (5, 3 + 1)
    assert torch.allclose(A.sum(-1), torch.ones(5), atol=1e-6)
    assert (A.max(-1).values - A.min(-1).values).min() > 0.01  # not uniform: the scores matter


def test_attempt_ignores_padding_tokens():
    P_sources, P_own, E, mask = attempt_inputs()
    att = make_attempt()
    prompts, A = att(P_sources, P_own, E, mask)
    pads = torch.full((5, 3, 8), 100.0)  # huge pads: an unmasked max-pool would take them
    E2, mask2 = torch.cat([E, pads], 1), torch.cat([mask, torch.zeros(5, 3, dtype=torch.long)], 1)
    E2[1, 4:6] = 100.0  # and the padding already in example 1
    prompts2, A2 = att(P_sources, P_own, E2, mask2)
    assert torch.allclose(A, A2) and torch.allclose(prompts, prompts2)


def test_attempt_with_zero_sources_gives_own_prompt_weighted_and_added():
    _, P_own, E, mask = attempt_inputs()
    prompts, A = make_attempt()(torch.zeros(3, 4, 8), P_own, E, mask)
    # the weighted sum includes the own prompt (ATTEMPT's code), which is then added again
    assert torch.allclose(prompts, (1 + A[:, 3, None, None]) * P_own, atol=1e-6)
    assert A[:, 3].min() > 0.01


def test_attempt_gradients_reach_attention_and_own_prompt_but_not_sources():
    P_sources, P_own, E, mask = attempt_inputs()
    P_sources.requires_grad_(True)
    P_own.requires_grad_(True)
    att = make_attempt()
    prompts, _ = att(P_sources, P_own, E, mask)
    weights = torch.randn(prompts.shape, generator=torch.Generator().manual_seed(1))
    (prompts * weights).sum().backward()
    trained = [("W_down", att.W_down.weight), ("W_up", att.W_up.weight), ("P_own", P_own)]
    for name, p in trained + [("norm.weight", att.norm.weight), ("norm.bias", att.norm.bias)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert P_sources.grad is None


def test_attempt_default_temperature_is_d_e_for_unit_scale_prompts_and_scales_with_them():
    att = AttemptAttention(8, 3)
    P = torch.tensor([1.0, -1.0]).repeat(3, 4, 4)  # (3, 4, 8), RMS 1 like T5-base's prompts
    assert att.temperature_for(P) == pytest.approx(8 * math.e)
    assert att.temperature_for(0.05 * P) == pytest.approx(0.05 * 8 * math.e)


def hand_bank():
    """6 tokens in d = 3: against query e1 their scores are column 0, against e2 column 1."""
    rows = [[2.0, 0.0], [0.5, 5.0], [3.0, 1.0], [-1.0, 4.0], [1.0, 0.0], [0.0, 3.0]]
    return torch.tensor([r + [0.0] for r in rows])


def test_tpt_retrieves_the_top_scoring_tokens_in_bank_order():
    bank = TokenBank(hand_bank(), top_k=3)
    # queries (1, 0, 0): best 2 (score 3), 0 (2), 4 (1); (0, 1, 0): best 1 (5), 3 (4), 5 (3)
    E = torch.tensor([[[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]])
    retrieved, index = bank(E, torch.ones(2, 2))
    assert index.tolist() == [[0, 2, 4], [1, 3, 5]]
    assert torch.equal(retrieved, hand_bank()[index])


def test_tpt_padding_does_not_change_the_query():
    bank = TokenBank(hand_bank(), top_k=3)
    E = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 9.0, 0.0]]])  # the second token is padding: ignored
    s = bank.scores(E, torch.tensor([[1, 0]]))
    assert torch.equal(s, bank.scores(E[:, :1], torch.tensor([[1]])))
    assert bank(E, torch.tensor([[1, 0]]))[1].tolist() == [[0, 2, 4]]


def test_tpt_gradient_reaches_only_the_retrieved_rows():
    bank = TokenBank(hand_bank(), top_k=3)
    retrieved, index = bank(torch.tensor([[[1.0, 0.0, 0.0]]]), torch.ones(1, 1))
    retrieved.pow(2).sum().backward()
    has_grad = bank.bank.grad.abs().sum(-1) > 0  # (m,)
    assert has_grad.nonzero().flatten().tolist() == [0, 2, 4]


def test_tpt_prompt_puts_retrieved_tokens_before_the_task_prompt():
    retrieved, P_task = torch.randn(2, 3, 4), torch.randn(5, 4)
    prompt = tpt_prompt(retrieved, P_task)
    assert torch.equal(prompt[:, :3], retrieved) and torch.equal(prompt[1, 3:], P_task)


def test_spot_similarity_is_the_cosine_of_mean_tokens():
    # means (0.5, 0.5); (1, 1): the same direction, though no token pair matches; (1, 0)
    P = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 2.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    sim = spot_similarity(P)
    assert sim[0, 1].item() == pytest.approx(1.0)
    assert sim[0, 2].item() == pytest.approx(1 / math.sqrt(2))


def test_spot_s_with_two_identical_other_prompts_starts_as_them():
    Q = torch.randn(4, 6)
    assert torch.allclose(spot_s_init(torch.stack([torch.randn(4, 6), Q, Q]), 0), Q, atol=1e-6)


def test_spot_s_weights_follow_the_cosine_and_drop_the_own_and_opposite_prompts():
    P = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]], [[1.0, 1.0]], [[-1.0, 0.0]]])  # cos: 1, 0.7, -1
    c = 1 / math.sqrt(2)
    assert spot_s_weights(P, 0).tolist() == pytest.approx([0, 1 / (1 + c), c / (1 + c), 0])
    assert spot_s_init(P, 0).flatten().tolist() == pytest.approx([1.0, c / (1 + c)])


def test_spot_m_starts_as_a_detached_copy_of_the_source_prompt():
    P = torch.randn(4, 6, requires_grad=True)
    init = spot_m_init(P)
    assert torch.equal(init, P.detach()) and not init.requires_grad
    assert init.data_ptr() != P.data_ptr()


def count(*modules):
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)


def test_parameter_formulas_equal_the_counted_parameters():
    l, d, k, b, m, labels = 4, 8, 5, 3, 12, [2, 3, 1]
    got = params_per_method(l, d, labels, k=k, bottleneck=b, bank=m)
    heads = count(*[torch.nn.Linear(d, C) for C in labels])
    assert got["attempt"]["shared"] == count(AttemptAttention(d, b))
    assert got["tpt"]["shared"] == count(TokenBank(torch.randn(m, d), top_k=l))
    assert got["tpt"]["per_task"] == count(TokenBank(torch.randn(m, d), top_k=l)) + l * d
    assert got["amp"]["shared"] == count(DAMAttention(d, k))
    fixed = params_per_method(l, d, labels, k=k, train_wv=False)["amp"]["shared"]
    assert fixed == count(DAMAttention(d, k, train_wv=False))
    assert got["prompt"]["total_with_heads"] == 3 * l * d + heads
    assert got["amp"]["total_with_heads"] == count(DAMAttention(d, k))  # AMP's heads stay frozen


def test_parameter_counts_match_the_papers_table_2():
    sizes = dict(k=768, bottleneck=100, bank=600, encoder=124_645_632)  # RoBERTa-base's E
    got = params_per_method(100, 768, [2] * 11, **sizes)
    assert got["prompt"]["per_task"] == got["spot-s"]["per_task"] == 76_800  # "77k"
    assert got["attempt"]["shared"] + got["attempt"]["per_task"] == 231_936  # "232K"
    assert got["amp"]["shared"] == got["amp-maxpool"]["shared"] == 1_769_472  # "1.8M"
    assert got["tpt"]["per_task"] == 537_600  # TPT's saved prompt_config.json: trainable_params
    assert round(got["finetune"]["per_task"], -6) == 125_000_000  # "125M"


def test_scaled_sizes_keep_the_official_sizes_at_t5_base_and_scale_them_here():
    assert scaled_sizes(768, 100) == dict(bottleneck=100, bank=600, top_k=100, task_prompt=100)
    assert scaled_sizes(384, 20) == dict(bottleneck=50, bank=120, top_k=20, task_prompt=20)


# Every method through the command line, on the tiny encoder of test_amp.py.
METHODS = ["amp", "amp-maxpool", "spot-s", "spot-m", "attempt", "tpt", "finetune", "pt-continued"]


def epochs_of(log, prefix):
    """{job key: its epochs' log rows} for the jobs of a method."""
    rows = {}
    for r in log:
        if r["event"] == "epoch" and r["key"].split(":")[0] == prefix:
            rows.setdefault(r["key"], []).append(r)
    return rows


def run_model(out):
    return json.load(open(os.path.join(out, "config.json")))["run"]["model"]


def watch_fits(monkeypatch, fits, encoder_may_move):
    """train.py's fit (loop.fit), recording what each fit trains; the frozen encoder must stay."""
    real_fit = train.fit

    def watched_fit(args, env, jobs):
        frozen = {k: v.clone() for k, v in env.model.encoder.state_dict().items()}
        groups = [ps for j in jobs if not j.key.startswith("source:") for ps, _ in j.groups]
        fits.append(sum(p.numel() for ps in groups for p in ps if p.requires_grad))  # not SPoT-m's
        yield from real_fit(args, env, jobs)
        now = env.model.encoder.state_dict().items()
        assert all(torch.equal(v, frozen[k]) for k, v in now) or encoder_may_move

    monkeypatch.setattr(train, "fit", watched_fit)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_its_formula_keeps_frozen_weights_and_its_files_score_as_trained(
    source_run, method, monkeypatch
):
    out, encoder_size = source_run
    folder = os.path.join(out, "source")
    source_bytes = {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}
    fits = []
    watch_fits(monkeypatch, fits, encoder_may_move=method == "finetune")
    fast = ["--lr", "1e-2"] if method.startswith("amp") else []  # ψ's demo rate: slow at d = 32
    argv = ["--stage", "target", "--method", method, "--spot-source", "senti_movies"]
    train.main(argv + ["--epochs", "3", "--out", out, *fast])
    counts = params_per_method(4, 32, [2, 2], encoder=encoder_size)[method]
    log = [json.loads(x) for x in open(os.path.join(out, "log.jsonl"))]
    epochs = epochs_of(log, "target" if method == "amp" else method)
    losses = [[r["loss"] for r in rows] for rows in epochs.values()]  # each job's epoch losses
    assert losses and sum(v[-1] - v[0] for v in losses) < 0, losses  # the loss falls
    for f, b in source_bytes.items():  # the source prompts stay as they were
        assert open(os.path.join(folder, f), "rb").read() == b
    # the saved files load back, and on the dev rows give each job's best dev score
    result, model, P_sources = evaluation.evaluate_run(out, 16, "cpu")
    assert set(result["scores"][method]) == set(TASKS)
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    expect, tokenizer = dict(model=run_model(out), d=32, l=4), amp.load_encoder(run_model(out))[1]
    for key, rows in epochs.items():
        if key == "tpt:bank":  # TPT's bank phase has no files of its own to check
            continue
        scores = []
        for n in [key.split(":")[1]] if ":" in key else TASKS:
            t, dev = TASKS.index(n), tokenize(load_task(n, max_eval=30)["dev"], tokenizer, 64)
            prompt = evaluation.method_prompt(out, method, n, t, model, P_sources, "cpu", expect)
            got = metrics.evaluate(model, prompt, dev, t, ["accuracy"], 7, "cpu")
            scores.append(got["accuracy"])
            model.encoder.load_state_dict(frozen)
        best = max([-1.0] + [r["dev"] for r in rows])
        assert abs(sum(scores) / len(scores) - best) < 1e-9, (key, scores, best)
    assert sum(fits) == counts["total_with_heads"], (fits, counts)  # README's formula


# The input cap, eval.py's --methods, and results/table1_merge.py.
def test_max_tokens_caps_every_input_and_later_stages_keep_the_runs_cap(tmp_path, capsys):
    tiny = make_tiny_encoder(tmp_path / "tiny")
    out = str(tmp_path / "run")
    small = ["--max-train", "16", "--max-eval", "16", "--prompt-len", "4", "--max-steps", "1"]
    argv = ["--stage", "source", "--tasks", "para_people", "--model", tiny, *small]
    train.main(argv + ["--max-tokens", "9", "--out", out])
    info, (encoder, tok) = load_task("para_people")["info"], amp.load_encoder(tiny)
    positions = amp.max_positions(encoder, tok)
    assert metrics.input_tokens(info, positions, 4, 9) == 9
    assert metrics.input_tokens(info, positions, 4) == 64
    train.main(["--stage", "target", "--max-steps", "1", "--out", out])
    result, _, _ = evaluation.evaluate_run(out, 16, "cpu")
    assert result["input_tokens"] == {"para_people": 9}  # eval reads the run's cap
    with pytest.raises(SystemExit) as e:
        train.main(["--stage", "target", "--method", "spot-s", "--max-tokens", "20", "--out", out])
    assert e.value.code == 2
    assert "--max-tokens 20 differs from the run's 9" in capsys.readouterr().err


def test_eval_methods_scores_only_those_columns_as_the_full_eval_does_and_keeps_eval_json(
    source_run, tmp_path
):
    out = copy_run(source_run[0], tmp_path / "run")
    for m in ["spot-s", "amp"]:
        argv = ["--stage", "target", "--method", m, "--overwrite", "--max-steps", "1"]
        train.main(argv + ["--out", out])
    full, _, _ = evaluation.evaluate_run(out, 16, "cpu")
    before = open(os.path.join(out, "eval.json"), "rb").read()
    evaluation.main(["--out", out, "--methods", "prompt,amp", "--json", str(tmp_path / "t.json")])
    table = json.load(open(tmp_path / "t.json"))
    assert table["methods"] == ["prompt", "amp"] and "spot-s" in full["scores"]
    assert table["table1"]["colours"]["amp"] == [full["scores"]["amp"]["colours"]["accuracy"]]
    assert open(os.path.join(out, "eval.json"), "rb").read() == before
    with pytest.raises(evaluation.DataError, match="--methods ampp: unknown"):
        evaluation.main(["--out", out, "--methods", "prompt,ampp"])


def table1(methods, runs, scores):
    """A table1 json of eval.py: scores[method][run] holds (cb, rte)."""

    def column(m, i):  # method m's score on task i, one a run
        return [scores[m][r][i] for r in range(len(runs))]

    rows = {t: {m: column(m, i) for m in methods} for i, t in enumerate(["cb", "rte"])}
    return dict(methods=methods, runs=runs, table1=rows)


def test_table1_merge_joins_seeds_by_run_pairs_them_with_prompt_tuning_and_flags_a_differing_rerun(
    tmp_path, capsys, monkeypatch
):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    seeds = {"prompt": [[50, 60], [40, 50]], "amp": [[60, 60], [50, 70]]}
    json.dump(table1(["prompt", "amp"], ["s0", "s1"], seeds), open(a, "w"))
    rerun = {"prompt": [[40, 51]], "tpt": [[44, 52]]}
    json.dump(table1(["prompt", "tpt"], ["s1"], rerun), open(b, "w"))
    joined, tasks = runpy.run_path(MERGE)["merge"]([str(a), str(b)])
    assert tasks == ["cb", "rte"]
    assert "prompt in s1 differs between files by up to 1.0" in capsys.readouterr().out
    assert joined["prompt"]["s1"] == {"cb": 40, "rte": 50}  # the first file's scores are kept
    assert joined["tpt"] == {"s1": {"cb": 44, "rte": 52}} and sorted(joined["amp"]) == ["s0", "s1"]
    json_out = tmp_path / "m.json"

    def merge(*argv):  # table1_merge.py's command line, for its next run
        monkeypatch.setattr(sys, "argv", ["table1_merge.py", *map(str, argv)])

    merge(a, b, "--json", json_out)
    runpy.run_path(MERGE, run_name="__main__")
    m = json.load(open(json_out))
    assert m["minus_prompt"]["amp"]["all"] == [5.0, 15.0]  # seed 0: 60 - 55; seed 1: 65 - 50
    assert m["minus_prompt"]["tpt"]["cb"] == [4.0]  # paired only where both have the seed
    merge(a, "--minus", "amp", "--json", json_out)
    runpy.run_path(MERGE, run_name="__main__")
    assert json.load(open(json_out))["minus_amp"]["prompt"]["all"] == [-5.0, -15.0]  # with AMP
    merge(a, "--minus", "tpt")
    with pytest.raises(SystemExit):
        runpy.run_path(MERGE, run_name="__main__")
    assert "no column 'tpt' in these files; they have: prompt, amp" in capsys.readouterr().err


def test_table1_merge_reads_an_ablation_copy_as_that_variant_of_its_seed_and_checks_prompt_tuning(
    tmp_path, capsys
):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    methods = ["prompt", "amp"]

    def cb(prompt, amp):  # a table1 of task cb alone, one run
        return {"cb": {"prompt": [prompt], "amp": [amp]}}

    json.dump(dict(methods=methods, runs=["runs/t0"], table1=cb(50, 60)), open(a, "w"))
    json.dump(dict(methods=methods, runs=["runs/t0_wvonly"], table1=cb(52, 40)), open(b, "w"))
    joined, _ = runpy.run_path(MERGE)["merge"]([str(a), str(b)])
    assert joined["amp"] == {"runs/t0": {"cb": 60}} and joined["wvonly"] == {"runs/t0": {"cb": 40}}
    out = capsys.readouterr().out
    assert "prompt in runs/t0 differs between files by up to 2.0" in out  # not the same stage 1
