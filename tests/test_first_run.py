"""A first run never dead-ends: a command that stops on a user's mistake writes nothing to --out,
so the corrected command runs as it is; and every command an error's hint names works when run.

  python -m pytest -q tests/test_first_run.py
"""

import json
import os
import re
import shlex

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import train  # noqa: E402

SMALL = ["--max-train", "32", "--max-eval", "30", "--prompt-len", "4", "--max-steps", "2"]


def own_task(folder, rows):
    """A task folder `mine` with train and validation JSONL of the given rows."""
    os.makedirs(os.path.join(folder, "mine"), exist_ok=True)
    for split in ("train", "validation"):
        with open(os.path.join(folder, "mine", f"{split}.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


def stops(argv, capsys):
    """train.main(argv) must stop with exit code 2 and one line; returns the line."""
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def hinted(err):
    """The train.py command an error's hint names, as argv (without 'python train.py')."""
    found = re.search(r"python train\.py ([^;,)]*?)(?: first|;|$| trains| writes)", err)
    assert found, err
    return shlex.split(found.group(1))


def test_a_run_stopped_by_bad_data_writes_nothing_and_the_fixed_command_runs(
    tiny, tmp_path, capsys
):
    data, out = str(tmp_path / "data"), str(tmp_path / "run")
    good = [{"text": f"row {i} is {'good' if i % 2 else 'bad'}", "label": i % 2} for i in range(40)]
    own_task(data, good[:5] + [{"text": "no label here"}] + good[5:])
    argv = ["--stage", "source", "--tasks", "mine", "--data-dir", data, "--model", tiny, *SMALL]
    err = stops(argv + ["--out", out], capsys)
    assert "train.jsonl:6" in err and not os.path.exists(out)
    own_task(data, good)
    train.main(argv + ["--out", out])
    assert os.path.exists(os.path.join(out, "source", "mine.safetensors"))


def test_a_model_that_cannot_load_writes_nothing(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["--stage", "source", "--tasks", "colours", "--model", str(tmp_path / "none"), *SMALL]
    err = stops(argv + ["--out", out], capsys)
    assert "cannot load model" in err and not os.path.exists(out)


def test_the_hints_of_the_run_folder_errors_are_commands_that_work(tiny, tmp_path, capsys):
    out = str(tmp_path / "run")
    target = ["--stage", "target", "--max-steps", "2", "--out", out]
    assert "--stage source --out" in (err := stops(target, capsys))
    train.main(hinted(err) + ["--tasks", "colours", "--model", tiny, *SMALL])  # the hint, run
    source = ["--stage", "source", "--tasks", "colours", "--model", tiny, *SMALL, "--out", out]
    err = stops(source, capsys)  # already holds a run: --resume, --overwrite, or another --out
    assert "pass --resume" in err
    train.main(source + ["--resume"])
    train.main(target)
    err = stops(target, capsys)  # already has stage target
    assert "--resume" in err and "--overwrite" in err
    train.main(target + ["--overwrite"])
    assert os.path.exists(os.path.join(out, "target", "colours.safetensors"))
