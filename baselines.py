"""baselines.py: what the paper's baselines add to prompt tuning (paper 4.2, Table 1, A.1, A.3).

Every method ends in a prompt (B, l', d) per example, which amp.PromptModel puts before the word
embeddings; the second half of the file holds each baseline's recipe, the jobs train.py hands to
loop.fit (prompt tuning is stage 1 itself; AMP and AMP-maxpool are dam.py). What the others add:
  SPoT-s, SPoT-m  a target prompt started from source prompts (spot_s_init, spot_m_init), then tuned
  ATTEMPT         a small shared attention that mixes source prompts per input (AttemptAttention)
  TPT             a bank of prompt tokens, the k best retrieved per input (TokenBank, tpt_prompt)
params_per_method gives each method's trainable parameters as formulas (Table 2, eval.py).

Sizes: official at d = 768, l = 100 (T5-base), else scaled (scaled_sizes, docs/baselines.md).
Facts from the official code (github AkariAsai/ATTEMPT, mlwu22/TPT) are named where used. Run:
  python -m pytest -q tests/test_baselines.py
  python baselines.py   # the parameter table of the default and of the paper's setting
  python train.py --stage target --method attempt --max-steps 20 --out runs/tiny  # after stage 1
"""

import copy
import functools
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from amp import init_prompt, seed_for
from loop import Job
from lib.runfiles import load_tensors, source_prompts


def scaled_sizes(d, l):
    """The official T5-base sizes (d = 768, l = 100) scaled to d and l (docs/baselines.md)."""
    return dict(bottleneck=max(1, round(100 * d / 768)), bank=6 * l, top_k=l, task_prompt=l)


def masked_max_pool(E, mask):
    """x_c = max over the real tokens t of E[t, c]: E (B, T, d), mask (B, T) -> (B, d). Padding is
    masked out, so a padded input gives the query of the unpadded one (ATTEMPT and TPT take the max
    over every position, pads too)."""
    if not bool(mask.any(dim=1).all()):
        raise ValueError("masked_max_pool: an example has no real token (an all-zero mask row)")
    return E.masked_fill(~mask.bool()[..., None], float("-inf")).amax(dim=1)  # (B, d)


# ATTEMPT (Asai et al. 2022), shared: one attention for all tasks, one target prompt per task.
class AttemptAttention(nn.Module):
    """ATTEMPT's attention over n frozen source prompts and each example's own target prompt (its
    "sub" method, shared across tasks, as the AMP paper runs it: 4.2, A.3, and Table 1's "ATTEMPT
    represents shared ATTEMPT").

        x = maxpool_t E_t                           (B, d)    the input's word embeddings, unpadded
        h = LayerNorm(W_up SiLU(W_down x))          (B, d)    W_down d -> b, W_up b -> d, no bias
        r_j = maxpool_rows P_j,  j = 1..n+1         (n+1, d)  the n sources and the own P_own
        A = softmax_j(r_j · h / T)                  (B, n+1)
        prompt = sum_{j=1..n+1} A_j P_j + P_own     (B, l, d)

    The sum includes the own prompt, which is then added once more: with zero source prompts the
    prompt is (1 + A_own) P_own. From attempt/third_party/models/t5/modeling_t5.py (T5Stack):
    attn_W_down = Linear(d, 100, bias=False), SiLU, attn_W_up = Linear(100, d, bias=False),
    nn.LayerNorm(d); the query max-pools inputs_embeds before the prompt goes in, over every
    position (inputs padded to the maximum length, pads included); the target prompt joins the
    source prompts before both the key max-pool and the weighted sum, and is added again after it;
    T = 2087 = 768 e (configs/attempt/). Linear layers missing from the checkpoint get N(0, 0.01)
    from T5's _init_weights, as here. utils.py's "sub" method trains attn_W_down, attn_W_up and the
    target prompts (prefix_shared, one per task) and freezes the source prompts, as here (they are
    detached). It leaves the LayerNorm frozen (loadable from a pretrained attention); here it is
    trained, as the AMP paper counts it: its 232K for ATTEMPT (Table 2, l = 100) is
    2 d b + 2 d + l d = 231,936 (to freeze it as officially: module.norm.requires_grad_(False)).
    temperature: None = d e σ, σ = RMS of P_sources (the module docstring says why); a number: T.
    """

    def __init__(self, d, bottleneck, temperature=None):
        super().__init__()
        self.d, self.bottleneck, self.temperature = d, bottleneck, temperature
        self.W_down = nn.Linear(d, bottleneck, bias=False)  # weight (b, d)
        self.W_up = nn.Linear(bottleneck, d, bias=False)  # weight (d, b)
        self.norm = nn.LayerNorm(d)  # weight, bias (d,)
        for W in (self.W_down, self.W_up):
            nn.init.normal_(W.weight, std=0.01)

    def temperature_for(self, P_sources):
        """T = d e σ with σ = RMS of the source prompts' entries, unless a temperature was given."""
        if self.temperature is not None:
            return float(self.temperature)
        return self.d * math.e * P_sources.detach().float().pow(2).mean().sqrt().item()

    def forward(self, P_sources, P_own, E, mask):
        """P_sources (n, l, d) frozen, P_own (B, l, d) each example's target prompt, E (B, T, d)
        word embeddings, mask (B, T) -> prompts (B, l, d), A (B, n + 1) (the last column is the
        example's own prompt)."""
        n, B = P_sources.shape[0], P_own.shape[0]
        P_sources = P_sources.detach().to(P_own.dtype)  # frozen: no gradient
        x = masked_max_pool(E, mask).to(self.W_down.weight.dtype)  # (B, d)
        h = self.norm(self.W_up(F.silu(self.W_down(x))))  # (B, d)
        keys = P_sources.amax(dim=1).expand(B, n, -1)  # (B, n, d) the sources' keys
        r = torch.cat([keys, P_own.amax(dim=1)[:, None]], dim=1)  # (B, n + 1, d)
        scores = torch.einsum("bjd,bd->bj", r, h.to(r.dtype)) / self.temperature_for(P_sources)
        A = torch.softmax(scores, dim=-1)  # (B, n + 1)
        mix = torch.einsum("bj,jld->bld", A[:, :n], P_sources)  # (B, l, d)
        mix = mix + A[:, n, None, None] * P_own
        return mix + P_own, A


# TPT (Wu et al. 2023): token-wise prompt tuning.
class TokenBank(nn.Module):
    """TPT's bank of m trainable prompt tokens; each input retrieves the top_k that best match it.

        x = maxpool_t E_t                    (B, d)          the input's word embeddings, unpadded
        s = x · bank^T                       (B, m)
        index = sort(topk_k(s))              (B, k)          the k best tokens, in bank order
        retrieved = bank[index]              (B, k, d)
        prompt = [retrieved ; P_task]        (B, k + l, d)   tpt_prompt

    Facts from the official code: utils.py max_pooling takes torch.max over the sequence of
    inputs_embeds (no mask), scores with a plain dot product against the bank, torch.topk, then
    torch.sort of the indices (bank order), and gathers bank_prompt[index]. The top-k is hard and
    nothing is straight-through or weighted by the score: a gradient reaches only the retrieved
    rows, through their values; the choice of rows gets none (here the scores use a detached bank,
    which says so). models.py MergeT5Single concatenates (retrieved, task soft prompt) in that
    order. The bank starts from word embeddings of frequent tokens ("frequent": random ids in
    100..999 of T5's vocabulary); amp.init_prompt(encoder, tokenizer, m, g) is the equivalent here.
    tpt_jobs says how the official code trains it.
    """

    def __init__(self, bank, top_k):
        super().__init__()
        if bank.dim() != 2 or not 1 <= top_k <= bank.shape[0]:
            got = f"{tuple(bank.shape)}, {top_k}"
            raise ValueError(f"TokenBank needs a bank (m, d) and 1 <= top_k <= m; got {got}")
        self.top_k = top_k
        self.bank = nn.Parameter(bank.detach().clone())  # (m, d)

    def scores(self, E, mask):
        """s = maxpool(E) · bank^T: E (B, T, d), mask (B, T) -> (B, m); no gradient (hard top-k)."""
        return masked_max_pool(E, mask).to(self.bank.dtype) @ self.bank.detach().T  # (B, m)

    def forward(self, E, mask):
        """E (B, T, d), mask (B, T) -> retrieved (B, top_k, d), index (B, top_k) in bank order."""
        B, d = E.shape[0], self.bank.shape[1]
        best = self.scores(E, mask).topk(self.top_k, dim=-1).indices  # (B, k)
        index = best.sort(dim=-1).values  # (B, k), in bank order
        retrieved = self.bank.index_select(0, index.flatten()).view(B, self.top_k, d)  # (B, k, d)
        return retrieved, index


def tpt_prompt(retrieved, P_task):
    """TPT's prompt, bank tokens first: [retrieved (B, k, d) ; P_task (l, d) or (B, l, d)]."""
    if P_task.dim() == 2:
        P_task = P_task.expand(retrieved.shape[0], -1, -1)  # (B, l, d)
    return torch.cat([retrieved, P_task.to(retrieved.dtype)], dim=1)  # (B, k + l, d)


# SPoT (Vu et al. 2022): a target prompt that starts from source prompts, then is prompt-tuned.
def spot_similarity(P):
    """sim_ij = cos(mean_rows P_i, mean_rows P_j): P (n, l, d) -> (n, n), SPoT's "cosine similarity
    of average tokens" (A.3: "average cosine similarity between prompt tokens"; SPoT's other
    measure, the mean cosine over all token pairs, is not used). transfer.py ranks sources by it."""
    m = F.normalize(P.detach().float().mean(dim=1), dim=-1)  # (n, d)
    return m @ m.T  # (n, n)


def spot_s_weights(P, i):
    """w_j = max(sim_ij, 0) / sum_{j' != i} max(sim_ij', 0) for j != i, w_i = 0: (n, l, d) -> (n,).

    The AMP paper (4.2): SPoT-s "initializes target prompt with similarity-weight average of all
    source prompts", the similarity measured on the prompts as in SPoT. The weights are the
    similarities normalised to sum to one, as ATTEMPT's code does for its SPoT baseline
    (modeling_t5.py update_prefix_weights: sim_j / sum of sims, no softmax). Decisions: the task's
    own prompt is left out (with cosine 1 it would weigh most, and the start would be mostly prompt
    tuning's end, not a transfer); negative cosines are clipped at 0, so the start is a convex
    combination; if no other prompt has a positive cosine, the others are averaged uniformly."""
    n = P.shape[0]
    if n < 2 or not 0 <= i < n:
        got = f"got n = {n}, i = {i}"
        raise ValueError(f"SPoT-s needs at least 2 source prompts and 0 <= i < n; {got}")
    w = spot_similarity(P)[i].clamp(min=0)  # (n,)
    w[i] = 0
    if w.sum() <= 0:
        w = torch.ones_like(w)
        w[i] = 0
    return w / w.sum()  # (n,)


def spot_s_init(P_sources, i):
    """SPoT-s: task i's prompt starts as sum_j w_j P_j (spot_s_weights): (n, l, d) -> (l, d)."""
    w = spot_s_weights(P_sources, i).to(P_sources.dtype)  # (n,)
    return torch.einsum("j,jld->ld", w, P_sources.detach()).clone()  # (l, d)


def spot_m_init(P_source):
    """SPoT-m: the target prompt starts as a copy of one source prompt (the paper: MNLI's)."""
    return P_source.detach().clone()  # (l, d)


# Trainable parameters (paper A.1, Table 2).
def params_per_method(l, d, num_labels, k=None, bottleneck=None, bank=None, encoder=0,
                      train_wv=True, tpt_bank_per_task=True):  # fmt: skip
    """{method: {formula, shared, per_task, total, heads, total_with_heads}}, trainable parameters.

    l prompt length, d hidden size, num_labels the classes C_t of each of the n tasks (1 =
    regression), k AMP's query/key size (default d), bottleneck ATTEMPT's b and bank TPT's m
    (defaults: scaled_sizes), encoder E the encoder's parameter count (fine-tuning). shared: trained
    once for all tasks; per_task: for each task, head excluded; total = shared + n per_task; heads
    = sum_t (d C_t + C_t) where the method trains heads (all but AMP, whose stage 2 keeps stage 1's
    heads frozen by default). A row counts what the method itself trains: AMP's, ATTEMPT's and
    SPoT's source prompts are stage 1 (the "prompt" row). tpt_bank_per_task: TPT's phase 2 tunes a
    copy of the bank per task, as officially (False: the bank stays as phase 1 left it). train_wv:
    AMP trains W_V (the paper's; False keeps W_V = I). At the paper's sizes (d = k = 768, l = 100,
    b = 100, m = 600, RoBERTa-base E = 124,645,632) this gives Table 2: fine-tuning 125M, prompt
    tuning and SPoT 77k (76,800), ATTEMPT 232K (231,936 with one task's prompt), AMP 1.8M
    (1,769,472), and TPT 537,600 per task, the official saved configs' count."""
    sizes = scaled_sizes(d, l)
    k = d if k is None else k
    b = sizes["bottleneck"] if bottleneck is None else bottleneck
    m = sizes["bank"] if bank is None else bank
    n = len(num_labels)
    heads = sum(d * C + C for C in num_labels)
    amp_shared = 2 * d * k + (d * d if train_wv else 0)
    amp_formula = "2dk + d²" if train_wv else "2dk"
    tpt_per_task = (m + l) * d if tpt_bank_per_task else l * d
    tpt_formula = "m d + n (m + l) d" if tpt_bank_per_task else "m d + n l d"
    rows = {  # method: (formula without heads, shared, per task, trains heads)
        "finetune": ("n E (a copy of the encoder per task)", 0, encoder, True),
        "prompt": ("n l d", 0, l * d, True),
        "spot-s": ("n l d", 0, l * d, True),
        "spot-m": ("n l d", 0, l * d, True),
        "attempt": ("2 d b + 2d + n l d", 2 * d * b + 2 * d, l * d, True),
        "tpt": (tpt_formula, m * d, tpt_per_task, True),
        "amp": (amp_formula, amp_shared, 0, False),
        "amp-maxpool": (amp_formula, amp_shared, 0, False),
        "pt-continued": ("n l d", 0, l * d, True),
        "amp-tuned": ("n l d", 0, l * d, True),
        "select": ("n l d", 0, l * d, True),
    }
    out = {}
    for name, (formula, shared, per_task, trains_heads) in rows.items():
        total, h = shared + n * per_task, heads if trains_heads else 0
        formula += " + Σ_t (d C_t + C_t)" if trains_heads else " (heads frozen)"
        out[name] = dict(formula=formula, shared=shared, per_task=per_task, total=total, heads=h)
        out[name]["total_with_heads"] = total + h
    return out


def print_table(title, counts):
    print(title)
    head = f"{'method':<12} {'shared':>11} {'per task':>12} {'total':>13} {'with heads':>13}"
    print(f"  {head}  formula")
    for name, c in counts.items():
        nums = f"{c['shared']:>11,} {c['per_task']:>12,} {c['total']:>13,}"
        print(f"  {name:<12} {nums} {c['total_with_heads']:>13,}  {c['formula']}")


# How each baseline trains: a recipe yields lists of jobs (loop.Job) that loop.fit trains together;
# train.py writes each job's files when it stops. A recipe skips what the run already holds.
def spot_init(method, out, env, names, source):
    """{task: (l, d)}, where prompt tuning starts: SPoT-s from the other tasks' source prompts
    (spot_s_init), SPoT-m from the source prompt of task `source` (spot_m_init)."""
    if method == "spot-s":
        P = source_prompts(out, env, names)  # (n, l, d)
        return {n: spot_s_init(P, i) for i, n in enumerate(names)}
    return {n: spot_m_init(source_prompts(out, env, [source])[0]) for n in names}


class AttemptPrompts:
    """ATTEMPT's prompt for each example (B, l, d): the attention's mix of the frozen source
    prompts P (n, l, d) and the example's own target prompt, its task's row of P_own (n, l, d)."""

    def __init__(self, att, P, P_own, embed):
        self.att, self.P, self.P_own, self.embed = att, P, P_own, embed

    def __call__(self, b, own=None):  # own (B, l, d): P_own's rows of the batch's tasks
        own = self.P_own.index_select(0, b["task"]) if own is None else own
        return self.att(self.P, own, self.embed(b["input_ids"]), b["attention_mask"])[0]

    def of(self, t):  # task t's prompt depends on the input: a function of the batch
        return functools.partial(self.for_task, t)

    def for_task(self, t, b):
        return self(b, self.P_own[t].detach().expand(len(b["task"]), -1, -1))


def attempt_jobs(args, env, names):
    """ATTEMPT, shared: one AttemptAttention and one target prompt per task, trained on the tasks
    mixed (W_down, W_up, LayerNorm, target prompts at --lr, heads at --head-lr; source prompts
    frozen). Prompts and heads start as stage 1's (the official run_seq2seq.py, shared_attn,
    starts every target prompt as a copy of the first source prompt, MNLI's)."""
    model, out = env.model, os.path.join(args.out, "attempt")
    P = source_prompts(args.out, env, names)  # (n, l, d) frozen
    if os.path.exists(os.path.join(out, "attention.safetensors")):
        return
    torch.manual_seed(seed_for(args.seed, "attempt"))
    att = AttemptAttention(model.d, scaled_sizes(model.d, args.prompt_len)["bottleneck"])
    att = att.to(env.device)
    P_own = nn.Parameter(P.clone())  # (n, l, d) target prompts
    files = {}  # each task's target prompt and head, then the attention
    for t, (n, head) in enumerate(zip(names, model.heads)):
        W = {"P": P_own[t], "head.weight": head.weight, "head.bias": head.bias}
        files[os.path.join(out, "target", f"{n}.safetensors")] = (W, dict(env.meta, task=n))
    files[os.path.join(out, "attention.safetensors")] = (att.state_dict(), env.meta)
    heads = list(model.heads.parameters())
    groups = [(list(att.parameters()) + [P_own], args.lr), (heads, args.head_lr)]
    prompt = AttemptPrompts(att, P, P_own, model.encoder.get_input_embeddings())
    yield [Job("attempt", groups, names, prompt, files)]


class TptPrompt:
    """TPT's prompt for each example: the k bank tokens its input retrieves, then the task's prompt
    P_t (l, d); without P_t (phase 1) the retrieved tokens alone."""

    def __init__(self, bank, embed, P_t=None):
        self.bank, self.embed, self.P_t = bank, embed, P_t

    def __call__(self, b):
        retrieved = self.bank(self.embed(b["input_ids"]), b["attention_mask"])[0]  # (B, k, d)
        return retrieved if self.P_t is None else tpt_prompt(retrieved, self.P_t)  # (B, k + l, d)

    def of(self, t):  # one task: the same function of the batch
        return self


def tpt_jobs(args, env, names):
    """TPT, as the official code trains it. Phase 1 (construct_bank_over_multi_tasks.py,
    MultiBankT5Single): only the TokenBank is trained, on the tasks mixed (officially 6 tasks, lr
    0.3, 5 epochs); the k retrieved tokens are the whole prompt, the heads stage 1's, frozen.
    Phase 2 (TPT.py, MergeT5Single), once per task: prompt = [retrieved ; task prompt]; the task
    prompt, the head AND the bank are trained (--is_all is store_true with default True, so always
    on; the saved configs report 537,600 = (600 + 100) 768 trainable parameters), so each task
    ends with its own copy of the bank. The task prompt starts from a prompt-tuned one (officially
    MNLI's for RTE and MRPC, CoLA's own for CoLA, or frequent tokens): here stage 1's."""
    model, out = env.model, os.path.join(args.out, "tpt")
    P, sizes = source_prompts(args.out, env, names), scaled_sizes(model.d, args.prompt_len)
    embed = model.encoder.get_input_embeddings()
    g = torch.Generator().manual_seed(seed_for(args.seed, "tpt"))
    start = init_prompt(model.encoder, env.tokenizer, sizes["bank"], g)  # (m, d)
    bank = TokenBank(start, sizes["top_k"]).to(env.device)
    path = os.path.join(out, "bank.safetensors")
    if not os.path.exists(path):  # phase 1
        model.heads.requires_grad_(False)  # stage 1's heads read the retrieved tokens, frozen
        files = {path: ({"bank": bank.bank}, env.meta)}
        yield [Job("tpt:bank", [([bank.bank], args.lr)], names, TptPrompt(bank, embed), files)]
        model.heads.requires_grad_(True)
    bank.bank.data.copy_(load_tensors(path, env.meta)[0]["bank"])
    jobs = []
    for t, n in enumerate(names):  # phase 2
        target = os.path.join(out, "target", f"{n}.safetensors")
        if os.path.exists(target):
            continue
        B, P_t, head = copy.deepcopy(bank), nn.Parameter(P[t].clone()), model.heads[t]  # P_t (l, d)
        W = {"P": P_t, "bank": B.bank, "head.weight": head.weight, "head.bias": head.bias}
        files = {target: (W, dict(env.meta, task=n))}
        groups = [([P_t, B.bank], args.lr), (list(head.parameters()), args.head_lr)]
        jobs.append(Job(f"tpt:{n}", groups, [n], TptPrompt(B, embed, P_t), files))
    yield jobs


class NoPrompt:
    """Fine-tuning's prompt: none (l = 0), an empty (B, 0, d) for each batch."""

    def __init__(self, d, device):
        self.d, self.device = d, device

    def __call__(self, b):
        return torch.zeros(len(b["task"]), 0, self.d, device=self.device)  # (B, 0, d)

    def of(self, t):  # one task: the same
        return self


def finetune_jobs(args, env, names):
    """Fine-tuning: per task, a copy of the whole encoder and a new head, trained with no prompt
    (l = 0), one task at a time, its dropout off as for the prompts (amp.PromptModel)."""
    model, frozen = env.model, env.model.encoder
    for n in names:
        path = os.path.join(args.out, "finetune", "target", f"{n}.safetensors")
        if os.path.exists(path):
            continue
        t = env.ids[n]
        torch.manual_seed(seed_for(args.seed, n))
        model.heads[t].reset_parameters()
        model.encoder, head = copy.deepcopy(frozen).requires_grad_(True), model.heads[t]
        encoder = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}  # tuned
        W = {"head.weight": head.weight, "head.bias": head.bias, **encoder}
        tuned = list(model.encoder.parameters())
        groups = [(tuned, args.lr), (list(head.parameters()), args.head_lr)]
        files = {path: (W, dict(env.meta, task=n))}
        yield [Job(f"finetune:{n}", groups, [n], NoPrompt(model.d, env.device), files)]
        model.encoder = frozen


if __name__ == "__main__":
    MINILM, ROBERTA = 22_713_216, 124_645_632  # all-MiniLM-L6-v2's, roberta-base's (AutoModel)
    small, paper = scaled_sizes(384, 20), scaled_sizes(768, 100)
    print(f"sizes for d = 384, l = 20: {small}; for d = 768, l = 100: {paper}")
    demo = params_per_method(20, 384, [2] * 8, encoder=MINILM)
    print_table("demo suite: all-MiniLM-L6-v2, d = k = 384, l = 20, 8 binary tasks", demo)
    # imdb sst2 yelp stsb mrpc rte scitail cb multirc boolq qnli
    paper_labels = [2, 2, 2, 1, 2, 2, 2, 3, 2, 2, 2]
    paper = params_per_method(100, 768, paper_labels, encoder=ROBERTA)
    print_table("paper: roberta-base, d = k = 768, l = 100, the 11 tasks of Table 3", paper)
