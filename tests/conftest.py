"""What several test files share: tiny, test_amp.py's tiny encoder; source_run, a tiny stage 1 on it
(two demo tasks, 2 steps), each made once per test file; copy_run, a copy of a run to change."""

import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import amp  # noqa: E402
import train  # noqa: E402
from lib import demo  # noqa: E402
from test_amp import make_tiny_encoder  # noqa: E402

demo.register()  # the demo tasks, which most tests train on

TASKS = ["senti_food", "colours"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """test_amp.py's tiny encoder, saved once per test file."""
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    tiny = make_tiny_encoder(tmp_path_factory.mktemp("tiny"))
    out = str(tmp_path_factory.mktemp("methods") / "run")
    small = ["--max-train", "32", "--max-eval", "30", "--prompt-len", "4", "--max-steps", "2"]
    argv = ["--stage", "source", "--tasks", ",".join(TASKS), "--model", tiny, *small]
    train.main(argv + ["--out", out])
    return out, sum(p.numel() for p in amp.load_encoder(tiny)[0].parameters())


def copy_run(src, dst):
    shutil.copytree(src, dst)
    return str(dst)
