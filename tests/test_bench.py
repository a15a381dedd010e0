"""Tests of bench.py's counting and of what makes a prompted step cheap: the FLOP formula of a
stage-1 step agrees with torch's own FLOP counter, the frozen encoder keeps no gradients, bench.py
stops with one line on bad flags, and its section dam times every form of DAM.

  python -m pytest -q tests/test_bench.py
"""

import os
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import amp  # noqa: E402
from studies import bench  # noqa: E402


def tiny_encoder(attn="eager"):
    """A frozen 2-layer BERT, d = 32, from a config (no download)."""
    from transformers import AutoModel, BertConfig

    torch.manual_seed(0)
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    cfg = BertConfig(vocab_size=100, max_position_embeddings=64, attn_implementation=attn, **sizes)
    encoder = AutoModel.from_config(cfg).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def test_step_flops_match_torch_flop_counter_forward_and_backward():
    # eager attention: torch's counter sees its matmuls (not the CPU flash-attention kernel's)
    encoder, B, T = tiny_encoder(), 3, 24
    x = torch.randn(B, T, 32, requires_grad=True)  # the prompt's gradient flows to the inputs
    mask = torch.ones(B, T, dtype=torch.long)
    with FlopCounterMode(display=False) as fwd:
        h = encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
    with FlopCounterMode(display=False) as bwd:
        h[:, 0].sum().backward()
    pooler = 2 * B * 32 * 32  # left out of step_flops: B tokens only
    assert fwd.get_total_flops() - pooler == bench.step_flops(encoder, B, T, train=False)
    assert fwd.get_total_flops() - pooler + bwd.get_total_flops() == bench.step_flops(encoder, B, T)


def test_frozen_encoder_gets_no_gradients_and_its_lookup_no_graph():
    encoder = tiny_encoder("sdpa")
    model = amp.PromptModel(encoder, [2]).train()
    ids = torch.randint(100, (4, 6))
    lookup = encoder.get_input_embeddings()(ids)  # the word lookup is outside autograd already
    assert lookup.grad_fn is None
    P = torch.nn.Parameter(torch.randn(3, 32))  # (l, d)
    task = torch.zeros(4, dtype=torch.long)
    logits = model(P.expand(4, -1, -1), ids, torch.ones_like(ids), torch.zeros_like(ids), task)
    model.loss(logits, torch.tensor([0.0, 1.0, 1.0, 0.0]), task).backward()
    assert all(p.grad is None for p in encoder.parameters())
    assert P.grad.abs().sum() > 0 and model.heads[0].weight.grad.abs().sum() > 0


BAD_FLAGS = [(["--device", "tpu"], "--device tpu"), (["--sections", "a,x"], "--sections a,x")]
BAD_FLAGS.append((["--data-dir", "/nonexistent"], "no data folder"))


@pytest.mark.parametrize("flags, says", BAD_FLAGS)
def test_bad_flags_stop_with_one_line(flags, says):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "studies.bench", *flags]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=here)
    assert p.returncode == 1 and says in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_section_dam_runs_without_peft_or_data():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sizes = ["--dam-sizes", "2,3", "--dam-l", "3", "--dam-k", "4", "--dam-budget", "0.01"]
    flags = ["--sections", "dam", "--data-dir", "/nonexistent", *sizes]
    cmd = [sys.executable, "-m", "studies.bench", *flags]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=here)
    assert p.returncode == 0, p.stderr
    rows = [line.split() for line in p.stdout.splitlines()]
    assert [r[1] for r in rows if r[:1] == ["3"]] == ["loop", "conv", "einsum", "dam", "maxpool"]
