"""figures.py: eval.py's pictures of the attention matrix A (rows: target tasks, columns: source
tasks): the heatmap (attention.png), short column names for the printed matrix, and on the demo
suite how often a task's largest off-diagonal attention is on a task of its own family. None of it
needs the encoder. A heatmap is drawn again only when what it shows or this file changed (the PNG
keeps their sha256): a second `python eval.py` imports no matplotlib.
  python -c "from lib.figures import draw_attention as d; d('ab', [[.9, .1], [.3, .7]], 'a.png')"
"""

import hashlib
import json
import os

from lib import demo


def family_rate(tasks, A):
    """(hits, tasks with a sibling, hits expected of a random pick) for demo-suite tasks."""
    fam = [demo.DEMO[t][0] if t in demo.DEMO else None for t in tasks]
    hits = counted = expected = 0
    for i, f in enumerate(fam):
        others = [j for j in range(len(tasks)) if j != i]
        siblings = [j for j in others if f is not None and fam[j] == f]
        if siblings:
            counted += 1
            hits += fam[max(others, key=lambda j: A[i][j])] == f
            expected += len(siblings) / len(others)
    return hits, counted, expected


def drawn_from(path):
    """The sha256 that draw_attention wrote into the PNG at path; None if none, or cut short."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            f.seek(-8, os.SEEK_END)
            if f.read() != b"IEND\xaeB`\x82":  # a whole PNG ends in its IEND chunk
                return None
        with Image.open(path) as im:
            return im.text.get("Description")
    except (OSError, ValueError, SyntaxError):  # none, or not a PNG that PIL reads
        return None


def draw_attention(tasks, A, path, title="AMP attention A (paper Figure 6)"):
    """A as a heatmap, readable from 2 to 20 tasks: half an inch a cell, at least 4 inches a side,
    smaller numbers from 12 tasks on, and the figure cut around its labels (bbox_inches)."""
    with open(__file__, "rb") as f:  # how it is drawn
        shown = json.dumps([tasks, A, title, hashlib.sha256(f.read()).hexdigest()])
    stamp = hashlib.sha256(shown.encode()).hexdigest()
    if drawn_from(path) == stamp:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, light = len(tasks), 0.6 * max(max(r) for r in A)  # white text above `light`
    side = max(4.0, 0.5 * n)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    im = ax.imshow(A, cmap="Blues", vmin=0)
    ax.set_xticks(range(n), tasks, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), tasks)
    ax.set_xlabel("source task (column)")
    ax.set_ylabel("target task (row)")
    size = 9 if n < 12 else 7
    for i in range(n):
        for j in range(n):
            color = "white" if A[i][j] > light else "black"
            ax.text(j, i, f"{A[i][j]:.2f}", ha="center", va="center", fontsize=size, color=color)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    fig.savefig(path + ".tmp.png", dpi=120, bbox_inches="tight", metadata={"Description": stamp})
    os.replace(path + ".tmp.png", path)
    plt.close(fig)


def column_names(tasks, width=7):
    """Each task's name cut to `width` characters, for a column's head: the longest part of the
    name (split at "_") loses its last letter until the name fits; a clash ends in the index."""
    heads = []
    for t in tasks:
        parts = t.split("_")
        while len("_".join(parts)) > width and max(map(len, parts)) > 1:
            i = max(range(len(parts)), key=lambda k: len(parts[k]))
            parts[i] = parts[i][:-1]
        heads.append("_".join(parts)[:width])
    return [
        h if heads.count(h) == 1 else h[: width - len(str(j))] + str(j) for j, h in enumerate(heads)
    ]
