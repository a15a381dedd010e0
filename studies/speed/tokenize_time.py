"""studies/speed/tokenize_time.py: what lib.tokens.tokenize's cache saves on imdb's training rows
(19,000 after the honest split; the all-MiniLM-L6-v2 tokenizer; max_len 236). Two fresh processes
share an empty $AMP_CACHE (a temporary folder): the first tokenises and writes the entry (cold),
the second reads it (warm). Each times tokenize alone (not the imports, not load_task) and prints a
sha256 of what it returned, which must agree. Needs ../shared/data; about a minute.
  python -m studies.speed.tokenize_time
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def once():
    """One process: load imdb, time tokenize, print seconds and a digest of the result."""
    from amp import DEFAULT_MODEL, load_encoder
    from data import load_task
    from lib.tokens import tokenize

    _, tokenizer = load_encoder(DEFAULT_MODEL)
    train = load_task("imdb", os.path.join(ROOT, "..", "shared", "data"))["train"]
    start = time.perf_counter()
    out = tokenize(train, tokenizer, 236)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256(json.dumps([out.column_names, out.to_dict()]).encode()).hexdigest()
    print(json.dumps(dict(seconds=round(seconds, 2), rows=len(out), sha256=digest)))


def main():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, AMP_CACHE=cache)
        run = [sys.executable, "-m", "studies.speed.tokenize_time", "--once"]

        def last():  # one fresh process, from the repository root
            out = subprocess.run(run, env=env, cwd=ROOT, check=True, capture_output=True).stdout
            return json.loads(out.splitlines()[-1])

        cold, warm = (last() for _ in range(2))
    assert cold["sha256"] == warm["sha256"], "a warm call returned other data than a cold one"
    print(f"tokenize, imdb train ({cold['rows']:,} rows), max_len 236:")
    print(f"  cold (empty AMP_CACHE: tokenise, write the entry): {cold['seconds']:.2f} s")
    print(f"  warm (a fresh process reads the entry):            {warm['seconds']:.2f} s")
    print(f"  same result (sha256 {cold['sha256'][:16]}...)")


if __name__ == "__main__":
    if sys.argv[1:] == ["--once"]:
        once()
    else:
        main()
