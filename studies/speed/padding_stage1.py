"""studies/speed/padding_stage1.py: what length-grouped batches save in stage 1, counted instead of
timed. Per epoch of studies/speed/speed_stage1.sh's runs (rte, mrpc, sst2; 1,000 training rows
each; l = 20; batch 16), the encoder's token positions (batch rows × (l + the batch's longest
input)) under a plain shuffle (padded per batch) and under length-grouped batches
(data.task_batches), beside the positions with no padding at all. Tokenisation only; a few
seconds.
  python -m studies.speed.padding_stage1
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from amp import DEFAULT_MODEL, load_encoder, max_positions  # noqa: E402
from data import load_task, task_batches  # noqa: E402
from lib.tokens import tokenize  # noqa: E402
from metrics import input_tokens  # noqa: E402

l, B = 20, 16
data = os.path.join(ROOT, "..", "shared", "data")
encoder, tokenizer = load_encoder(DEFAULT_MODEL)
total = dict(plain=0, grouped=0, none=0)
for name in ["rte", "mrpc", "sst2"]:
    x = load_task(name, data, max_train=1000, max_eval=200)
    width = input_tokens(x["info"], max_positions(encoder, tokenizer), l)
    lengths = tokenize(x["train"], tokenizer, width)["length"]

    def cost(batches):
        return sum(len(b) * (l + max(lengths[i] for i in b)) for b in batches)

    plain, grouped = task_batches(len(lengths), B, 0, 0), task_batches(lengths, B, 0, 0)
    row = dict(plain=cost(plain), grouped=cost(grouped), none=sum(l + n for n in lengths))
    total = {k: total[k] + v for k, v in row.items()}
    counts = f"plain shuffle {row['plain']:,}, length-grouped {row['grouped']:,}"
    print(
        f"{name:5s} mean input {sum(lengths) / len(lengths):5.1f} tokens; positions per epoch: "
        f"{counts}, no padding {row['none']:,}"
    )
print(
    f"all   plain / grouped = {total['plain'] / total['grouped']:.2f}; grouped / no padding = "
    f"{total['grouped'] / total['none']:.3f}"
)
