"""The house rules a reader relies on, checked: short functions, short files, the method files
small, no script imported by the loop, shell scripts within 100 columns, no project history in the
code or the docs (ruff checks the Python files' line length and format).
Run: python -m pytest -q test_style.py
"""

import ast
import glob
import os
import re

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
CORE = ["dam.py", "amp.py", "data.py", "loop.py", "train.py"]  # the files a reader opens first
SOURCES = sorted(
    glob.glob(os.path.join(HERE, "*.py")) + glob.glob(os.path.join(HERE, "results", "*.py"))
)


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def test_no_function_is_longer_than_60_lines():
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse("\n".join(lines(path)))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                long += (
                    [f"{os.path.basename(path)}:{node.lineno} {node.name} ({n} lines)"]
                    if n > 60
                    else []
                )
    assert long == []


def test_no_file_is_longer_than_400_lines_and_the_method_files_hold_at_most_1200():
    assert [p for p in SOURCES if len(lines(p)) > 400] == []
    assert sum(len(lines(os.path.join(HERE, f))) for f in CORE) <= 1200


def test_the_training_loop_does_not_import_a_script():
    tree = ast.parse("\n".join(lines(os.path.join(HERE, "loop.py"))))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"eval", "train", "transfer", "bench"}


def test_the_shell_scripts_keep_their_lines_within_100_characters():
    scripts = glob.glob(os.path.join(HERE, "results", "*.sh")) + [os.path.join(HERE, ".ci", "run")]
    long = [
        f"{os.path.basename(p)}:{i}"
        for p in scripts
        if os.path.exists(p)
        for i, line in enumerate(lines(p), 1)
        if len(line) > 100
    ]
    assert long == []


def test_code_and_docs_speak_of_the_project_not_its_history():
    words = re.compile(r"this round|previous round|last round|\bissue \d+|\bsession\b", re.I)
    docs = [os.path.join(HERE, f) for f in ("README.md", "RESULTS.md")]
    docs += glob.glob(os.path.join(HERE, "results", "*.sh"))
    docs += glob.glob(os.path.join(HERE, "tools", "*"))
    mine = os.path.abspath(__file__)  # this file names the words it looks for
    found = [
        f"{os.path.basename(p)}:{i}"
        for p in SOURCES + docs
        if os.path.exists(p) and p != mine
        for i, line in enumerate(lines(p), 1)
        if words.search(line)
    ]
    assert found == []
