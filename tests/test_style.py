"""The house rules a reader relies on, checked: the method at the top level and the rest in its
room, short functions, short files, no script imported by the loop, the default stage 2 free of
baselines and studies, shell scripts within 100 columns, no project history in the code or the
docs (ruff checks the Python files' line length, format and named lambdas).
Run: python -m pytest -q tests/test_style.py
"""

import ast
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
ROOMS = ["", "lib", "studies", os.path.join("studies", "*"), "tests", "tools"]
SOURCES = sorted(p for room in ROOMS for p in glob.glob(os.path.join(HERE, room, "*.py")))
SCRIPTS = glob.glob(os.path.join(HERE, "studies", "*", "*.sh")) + [os.path.join(HERE, ".ci", "run")]
DOCS = [os.path.join(HERE, f) for f in ("README.md", "RESULTS.md")]
DOCS += glob.glob(os.path.join(HERE, "docs", "*.md")) + glob.glob(
    os.path.join(HERE, "studies", "*", "*.md")
)
DOCS += glob.glob(os.path.join(HERE, "studies", "*.md")) + glob.glob(
    os.path.join(HERE, "tools", "*")
)


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def test_the_top_level_holds_the_method_and_one_test_file():
    top = sorted(os.path.basename(p) for p in glob.glob(os.path.join(HERE, "*.py")))
    assert len(top) <= 12, top
    assert [f for f in top if f.startswith("test_")] == ["test_dam.py"]


def test_no_function_is_longer_than_60_lines():
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse("\n".join(lines(path)))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{os.path.relpath(path, HERE)}:{node.lineno} {node.name} ({n})")
    assert long == []


def test_no_file_is_longer_than_400_lines():
    assert [os.path.relpath(p, HERE) for p in SOURCES if len(lines(p)) > 400] == []


def test_the_training_loop_does_not_import_a_script():
    tree = ast.parse("\n".join(lines(os.path.join(HERE, "loop.py"))))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"eval", "train", "predict", "baselines"}


def test_importing_train_loads_no_baseline_and_no_study():
    code = "import sys, train; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True)
    loaded = out.stdout.split()
    assert "train" in loaded and "loop" in loaded, out.stderr
    assert [m for m in loaded if m == "baselines" or m.startswith("studies")] == []


def test_the_shell_scripts_keep_their_lines_within_100_characters():
    long = [
        f"{os.path.relpath(p, HERE)}:{i}"
        for p in SCRIPTS
        if os.path.exists(p)
        for i, line in enumerate(lines(p), 1)
        if len(line) > 100
    ]
    assert long == []


def test_code_and_docs_speak_of_the_project_not_its_history():
    words = re.compile(r"this round|previous round|last round|\bissue \d+|\bsession\b", re.I)
    mine = os.path.abspath(__file__)  # this file names the words it looks for
    found = [
        f"{os.path.relpath(p, HERE)}:{i}"
        for p in SOURCES + DOCS + SCRIPTS
        if os.path.isfile(p) and p != mine
        for i, line in enumerate(lines(p), 1)
        if words.search(line)
    ]
    assert found == []
