"""baselines.py: what the paper's baselines add to prompt tuning (paper 4.2 "Baselines", Table 1, A.1, A.3).

Every method here ends in the same thing: one prompt (B, l', d) per example, which amp.PromptModel puts before
the word embeddings. The second half of the file holds each baseline's recipe: how train.py trains it, as lists
of jobs for loop.fit. Fine-tuning needs nothing from this file, prompt tuning is stage 1 itself, and AMP is dam.py
(AMP-maxpool is dam.py with scores="maxpool", the paper's Figure 2). What the others add:

  SPoT-s, SPoT-m   an initial target prompt from source prompts (spot_s_init, spot_m_init), then prompt tuning
  ATTEMPT          a small attention, shared by all tasks, that mixes source prompts per input (AttemptAttention)
  TPT              a bank of prompt tokens, the k best of which are retrieved per input (TokenBank, tpt_prompt)

and params_per_method gives each method's trainable parameters as formulas, for README and eval.py.

Sizes. The official systems run T5-base (d = 768, prompts of 100 tokens); here the default is all-MiniLM-L6-v2
(d = 384) with l = 20. scaled_sizes(d, l) keeps the official sizes at d = 768, l = 100 and scales them so:
  ATTEMPT bottleneck  b = round(100 d / 768)   the official 100 is a fixed width, not the prompt length: scale with d
  ATTEMPT temperature T = d e σ               σ = RMS of the source prompts' entries (AttemptAttention works it
                      out). The official T is d e = 2087 on T5-base, whose prompts have σ ≈ 1 (ATTEMPT's released
                      ReCoRD prompt: std 1.02, max-pooled key of norm 72). A score is key·h / T with |h| ≈ √d after
                      the LayerNorm and |key| ∝ σ √d, so T = d e σ keeps the official scale of scores for any
                      encoder. MiniLM's prompts start at σ ≈ 0.06 (common tokens' embeddings): T = d e would keep
                      every score below 0.05 and a uniform; T = d e σ ≈ 65.
  TPT bank            m = 6 l                 600 = 6 source tasks x 100 tokens (the bank can be built by stacking
                      their prompts); m / k = 6 is kept
  TPT top-k           k = l                   the official retrieves 100 = its prompt length
  TPT task prompt     l                       the official 100; TPT's prompt is then [k ; l] = 2l tokens, as officially
Facts taken from the official code (github AkariAsai/ATTEMPT, mlwu22/TPT) are named where they are used.

Run the tests, print the parameter table of the default and the paper's setting, or train a baseline on a
tiny run (after the tiny stage-1 example of train.py):
  python -m pytest -q test_baselines.py
  python baselines.py
  python train.py --stage target --method attempt --max-steps 20 --out runs/tiny && python eval.py --out runs/tiny
"""
import copy
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from amp import init_prompt, seed_for
from runfiles import load_tensors, save_tensors


def scaled_sizes(d, l):
    """The official T5-base sizes (d = 768, l = 100) scaled to hidden size d and prompt length l (rules above)."""
    return dict(bottleneck=max(1, round(100 * d / 768)), bank=6 * l, top_k=l, task_prompt=l)


def masked_max_pool(E, mask):
    """x_c = max over the real tokens t of E[t, c]: E (B, T, d), mask (B, T) -> (B, d). Padding is masked out, so a
    padded input gives the query of the unpadded one (ATTEMPT and TPT take the max over every position, pads too)."""
    if not bool(mask.any(dim=1).all()):
        raise ValueError("masked_max_pool: an example has no real token (its attention mask is all zero)")
    return E.masked_fill(~mask.bool()[..., None], float("-inf")).amax(dim=1)  # (B, d)


# ----------------------------------------------------------------------------------------------------------
# ATTEMPT (Asai et al. 2022), shared: one attention for all tasks, one target prompt per task.
class AttemptAttention(nn.Module):
    """ATTEMPT's attention over n frozen source prompts and each example's own target prompt (its "sub" method,
    shared across tasks, as the AMP paper runs it: 4.2, A.3, and Table 1's "ATTEMPT represents shared ATTEMPT").

        x = maxpool_t E_t                                  (B, d)   the input's word embeddings, padding masked
        h = LayerNorm(W_up SiLU(W_down x))                 (B, d)   W_down d -> b, W_up b -> d, no bias
        r_j = maxpool_rows P_j,  j = 1..n+1                (n+1, d) the n sources and the example's own P_own
        a = softmax_j(r_j · h / T)                         (B, n+1)
        prompt = sum_{j=1..n+1} a_j P_j + P_own            (B, l, d)

    The sum runs over all n + 1 prompts, the own one included, and P_own is then added once more, so with zero
    source prompts the prompt is (1 + a_own) P_own. Facts from attempt/third_party/models/t5/modeling_t5.py
    (T5Stack): attn_W_down = Linear(d, 100, bias=False), SiLU, attn_W_up = Linear(100, d, bias=False),
    nn.LayerNorm(d); the query max-pools inputs_embeds before the prompt goes in, over every position (inputs are
    padded to the maximum length, pads included); the target prompt is concatenated to the source prompts before
    both the key max-pool and the weighted sum, and added again after it; T = 2087 = 768 e (configs/attempt/).
    Linear layers missing from the checkpoint get N(0, 0.01) from T5's _init_weights, as here. In utils.py the
    "sub" method trains attn_W_down, attn_W_up and the target prompts (prefix_shared, one per task) and freezes the
    source prompts, as here (they are detached). It leaves the LayerNorm frozen (its weights can be loaded from a
    pretrained attention); here it is trained, as the AMP paper counts it: its 232K for ATTEMPT (Table 2, l = 100)
    is 2 d b + 2 d + l d = 231,936. To freeze it as the official code does: module.norm.requires_grad_(False).
    The official multi-task run (run_seq2seq.py, shared_attn) starts every target prompt as a copy of the first
    source prompt (MNLI's): the caller chooses the start of P_own.

    temperature: None = d e σ, σ = RMS of P_sources (the module docstring says why); a number fixes T.
    """

    def __init__(self, d, bottleneck, temperature=None):
        super().__init__()
        self.d, self.bottleneck, self.temperature = d, bottleneck, temperature
        self.W_down = nn.Linear(d, bottleneck, bias=False)  # weight (b, d)
        self.W_up = nn.Linear(bottleneck, d, bias=False)    # weight (d, b)
        self.norm = nn.LayerNorm(d)                         # weight, bias (d,)
        for W in (self.W_down, self.W_up):
            nn.init.normal_(W.weight, std=0.01)

    def temperature_for(self, P_sources):
        """T = d e σ with σ = RMS of the source prompts' entries, unless a temperature was given."""
        if self.temperature is not None:
            return float(self.temperature)
        return self.d * math.e * P_sources.detach().float().pow(2).mean().sqrt().item()

    def forward(self, P_sources, P_own, E, mask):
        """P_sources (n, l, d) frozen, P_own (B, l, d) each example's target prompt, E (B, T, d) word embeddings,
        mask (B, T) -> prompts (B, l, d), a (B, n + 1) (the last column is the example's own prompt)."""
        n, B = P_sources.shape[0], P_own.shape[0]
        P_sources = P_sources.detach().to(P_own.dtype)                            # frozen: no gradient
        x = masked_max_pool(E, mask).to(self.W_down.weight.dtype)                 # (B, d)
        h = self.norm(self.W_up(F.silu(self.W_down(x))))                          # (B, d)
        r = torch.cat([P_sources.amax(dim=1).expand(B, n, -1),                    # (B, n, d) source keys
                       P_own.amax(dim=1)[:, None]], dim=1)                        # (B, n + 1, d)
        a = torch.softmax(torch.einsum("bjd,bd->bj", r, h.to(r.dtype)) / self.temperature_for(P_sources), dim=-1)
        mix = torch.einsum("bj,jld->bld", a[:, :n], P_sources) + a[:, n, None, None] * P_own  # (B, l, d)
        return mix + P_own, a


# ----------------------------------------------------------------------------------------------------------
# TPT (Wu et al. 2023): token-wise prompt tuning.
class TokenBank(nn.Module):
    """TPT's bank of m trainable prompt tokens; each input retrieves the top_k tokens that best match it.

        x = maxpool_t E_t                    (B, d)    the input's word embeddings, padding masked
        s = x · bank^T                       (B, m)
        index = sort(topk_k(s))              (B, k)    the k best tokens, kept in bank order
        retrieved = bank[index]              (B, k, d)
        prompt = [retrieved ; P_task]        (B, k + l, d)   tpt_prompt

    Facts from the official code: utils.py max_pooling takes torch.max over the sequence of inputs_embeds (no
    mask), scores with a plain dot product against the bank, torch.topk, then torch.sort of the indices (bank
    order), and gathers bank_prompt[index]. The top-k is hard and nothing is straight-through or weighted by the
    score: a gradient reaches only the retrieved rows, through their values; the choice of rows gets none (here
    the scores use a detached bank, which says so). models.py MergeT5Single concatenates (retrieved, task soft
    prompt) in that order. The bank starts from word embeddings of frequent tokens ("frequent": random ids in
    100..999 of T5's vocabulary); amp.init_prompt(encoder, tokenizer, m, g) is this project's equivalent.

    Training, as the official code does it (the caller runs the loops):
      phase 1, construct_bank_over_multi_tasks.py (MultiBankT5Single): only the bank is trained, on the source
        tasks mixed (6 tasks, lr 0.3, 5 epochs); the prompt is the k retrieved tokens alone, no task prompt.
      phase 2, TPT.py (MergeT5Single), once per target task: prompt = [retrieved ; task prompt]; the task prompt
        AND the bank are trained (--is_all is store_true with default True, so it is always on; the saved configs
        report 537,600 = (600 + 100) 768 trainable parameters), so each task ends with its own copy of the bank
        (copy.deepcopy this module per task). The task prompt starts from a prompt-tuned one (MNLI's for RTE and
        MRPC, CoLA's own for CoLA) or from frequent tokens; here each task's stage-1 source prompt is at hand.
    """

    def __init__(self, bank, top_k):
        super().__init__()
        if bank.dim() != 2 or not 1 <= top_k <= bank.shape[0]:
            raise ValueError(f"TokenBank needs a bank (m, d) and 1 <= top_k <= m; got {tuple(bank.shape)}, {top_k}")
        self.top_k = top_k
        self.bank = nn.Parameter(bank.detach().clone())  # (m, d)

    def scores(self, E, mask):
        """s = maxpool(E) · bank^T: E (B, T, d), mask (B, T) -> (B, m); no gradient (the choice is hard)."""
        return masked_max_pool(E, mask).to(self.bank.dtype) @ self.bank.detach().T  # (B, m)

    def forward(self, E, mask):
        """E (B, T, d), mask (B, T) -> retrieved (B, top_k, d), index (B, top_k) ascending (bank order)."""
        B, d = E.shape[0], self.bank.shape[1]
        index = self.scores(E, mask).topk(self.top_k, dim=-1).indices.sort(dim=-1).values  # (B, k)
        retrieved = self.bank.index_select(0, index.flatten()).view(B, self.top_k, d)     # (B, k, d)
        return retrieved, index


def tpt_prompt(retrieved, P_task):
    """TPT's prompt: cat([retrieved (B, k, d) ; P_task (l, d) or (B, l, d)]) -> (B, k + l, d), bank tokens first."""
    if P_task.dim() == 2:
        P_task = P_task.expand(retrieved.shape[0], -1, -1)  # (B, l, d)
    return torch.cat([retrieved, P_task.to(retrieved.dtype)], dim=1)  # (B, k + l, d)


# ----------------------------------------------------------------------------------------------------------
# SPoT (Vu et al. 2022): a target prompt that starts from source prompts, then is prompt-tuned.
def spot_similarity(P):
    """sim_ij = cos(mean_rows P_i, mean_rows P_j): P (n, l, d) -> (n, n). SPoT's "cosine similarity of average
    tokens" (the AMP paper, A.3: "average cosine similarity between prompt tokens"); the transfer study ranks
    source tasks with it. (SPoT's other measure, the mean over all token pairs of their cosine, is not used.)"""
    m = F.normalize(P.detach().float().mean(dim=1), dim=-1)  # (n, d)
    return m @ m.T                                            # (n, n)


def spot_s_weights(P, i):
    """w_j = max(sim_ij, 0) / sum_{j' != i} max(sim_ij', 0) for j != i, w_i = 0: P (n, l, d) -> (n,).

    The AMP paper (4.2): SPoT-s "initializes target prompt with similarity-weight average of all source prompts",
    the similarity measured on the prompts as in SPoT. Weights are the similarities normalised to sum to one, as
    ATTEMPT's code does for its SPoT baseline (modeling_t5.py update_prefix_weights: sim_j / sum of sims, no
    softmax). Decisions: the task's own prompt is left out (it would weigh most, with cosine 1, and the start would
    be mostly prompt tuning's end, not a transfer); negative cosines are clipped at 0 so that the start is a
    convex combination; if no other prompt has a positive cosine, the others are averaged uniformly."""
    n = P.shape[0]
    if n < 2 or not 0 <= i < n:
        raise ValueError(f"SPoT-s needs at least 2 source prompts and 0 <= i < n; got n = {n}, i = {i}")
    w = spot_similarity(P)[i].clamp(min=0)  # (n,)
    w[i] = 0
    if w.sum() <= 0:
        w = torch.ones_like(w)
        w[i] = 0
    return w / w.sum()  # (n,)


def spot_s_init(P_sources, i):
    """SPoT-s: task i's target prompt starts as sum_j w_j P_j over the other tasks (spot_s_weights):
    P_sources (n, l, d) -> (l, d)."""
    w = spot_s_weights(P_sources, i).to(P_sources.dtype)                # (n,)
    return torch.einsum("j,jld->ld", w, P_sources.detach()).clone()     # (l, d)


def spot_m_init(P_source):
    """SPoT-m: the target prompt starts as a copy of one source prompt (the paper: MNLI's): (l, d) -> (l, d)."""
    return P_source.detach().clone()  # (l, d)


# ----------------------------------------------------------------------------------------------------------
# Trainable parameters (paper A.1, Table 2).
def params_per_method(l, d, num_labels, k=None, bottleneck=None, bank=None, encoder=0, train_wv=True,
                      tpt_bank_per_task=True):
    """Trainable parameters of each method: {method: {formula, shared, per_task, total, heads, total_with_heads}}.

    l prompt length, d hidden size, num_labels the classes C_t of each of the n tasks (1 = regression), k AMP's
    query/key size (default d), bottleneck ATTEMPT's b and bank TPT's m (defaults: scaled_sizes(d, l)), encoder E
    the encoder's parameter count (for fine-tuning). shared: trained once for all tasks; per_task: trained for each
    task, head excluded; total = shared + n per_task; heads = sum_t (d C_t + C_t) where the method trains heads
    (every method except AMP, whose stage 2 keeps the stage-1 heads frozen by default). Each row counts what the
    method itself trains: AMP's and ATTEMPT's and SPoT's source prompts are stage 1 (the "prompt" row).
    tpt_bank_per_task: TPT's phase 2 tunes a copy of the bank for each task, as the official code does (False:
    the bank stays as phase 1 left it). train_wv: AMP trains W_V (the paper's; False keeps W_V = I).

    At the paper's sizes (d = 768, l = 100, k = 768, b = 100, m = 600, RoBERTa-base E = 124,645,632) this gives
    Table 2's numbers: fine-tuning 125M, prompt tuning and SPoT 77k (76,800), ATTEMPT 232K (231,936 with one
    task's prompt), AMP 1.8M (1,769,472), and TPT 537,600 per task, the official saved configs' count."""
    sizes = scaled_sizes(d, l)
    k = d if k is None else k
    b = sizes["bottleneck"] if bottleneck is None else bottleneck
    m = sizes["bank"] if bank is None else bank
    n = len(num_labels)
    heads = sum(d * C + C for C in num_labels)
    amp_shared = 2 * d * k + (d * d if train_wv else 0)
    amp_formula = "2dk + d²" if train_wv else "2dk"
    tpt_per_task = (m + l) * d if tpt_bank_per_task else l * d
    rows = {  # method: (formula without heads, shared, per task, trains heads)
        "finetune": ("n E (a copy of the encoder per task)", 0, encoder, True),
        "prompt": ("n l d", 0, l * d, True),
        "spot-s": ("n l d", 0, l * d, True),
        "spot-m": ("n l d", 0, l * d, True),
        "attempt": ("2 d b + 2d + n l d", 2 * d * b + 2 * d, l * d, True),
        "tpt": ("m d + n (m + l) d" if tpt_bank_per_task else "m d + n l d", m * d, tpt_per_task, True),
        "amp": (amp_formula, amp_shared, 0, False),
        "amp-maxpool": (amp_formula, amp_shared, 0, False),
        "pt-continued": ("n l d", 0, l * d, True),
    }
    out = {}
    for name, (formula, shared, per_task, trains_heads) in rows.items():
        total, h = shared + n * per_task, heads if trains_heads else 0
        out[name] = dict(formula=formula + (" + Σ_t (d C_t + C_t)" if trains_heads else " (heads frozen)"),
                         shared=shared, per_task=per_task, total=total, heads=h, total_with_heads=total + h)
    return out


def print_table(title, counts):
    print(title)
    print(f"  {'method':<12} {'shared':>11} {'per task':>12} {'total':>13} {'with heads':>13}  formula")
    for name, c in counts.items():
        print(f"  {name:<12} {c['shared']:>11,} {c['per_task']:>12,} {c['total']:>13,} {c['total_with_heads']:>13,}"
              f"  {c['formula']}")


# ----------------------------------------------------------------------------------------------------------
# How each baseline trains. train.py runs each recipe: a recipe yields lists of jobs, and train.fit trains the jobs
# of one list together (its docstring says what a job is). A recipe skips what its run folder already holds, so
# --resume goes on where a run stopped. out: the run folder; env: what train.setup returns; a: the flags.
def source_prompts(out, env, names):
    """The stage-1 prompts of the named tasks, (n, l, d), with their heads loaded into the model."""
    P = []
    for n in names:
        W, _ = load_tensors(os.path.join(out, "source", f"{n}.safetensors"), dict(env["meta"], task=n))
        env["model"].heads[env["ids"][n]].load_state_dict({"weight": W["head.weight"], "bias": W["head.bias"]})
        P.append(W["P"])
    return torch.stack(P).to(env["device"])                                     # (n, l, d)


def spot_init(method, out, env, names, source):
    """{task: (l, d)}: SPoT-s starts each target prompt from the other tasks' source prompts (spot_s_init); SPoT-m
    from the source prompt of task `source` (spot_m_init). Prompt tuning then goes on from there (train.py)."""
    if method == "spot-s":
        P = source_prompts(out, env, names)                                     # (n, l, d)
        return {n: spot_s_init(P, i) for i, n in enumerate(names)}
    return {n: spot_m_init(source_prompts(out, env, [source])[0]) for n in names}


def attempt_jobs(a, env, names):
    """ATTEMPT, shared: one AttemptAttention for all tasks and one target prompt per task, trained on all tasks
    mixed (the attention's W_down, W_up, LayerNorm and the target prompts at --lr, the heads at --head-lr); the
    source prompts stay frozen. Each target prompt starts from its task's source prompt and each head from its
    stage-1 head (the official code starts every target prompt from MNLI's)."""
    model, out = env["model"], os.path.join(a.out, "attempt")
    P = source_prompts(a.out, env, names)                                       # (n, l, d) frozen
    if os.path.exists(os.path.join(out, "attention.safetensors")):
        return
    torch.manual_seed(seed_for(a.seed, "attempt"))
    att = AttemptAttention(model.d, scaled_sizes(model.d, a.prompt_len)["bottleneck"]).to(env["device"])
    P_own = nn.Parameter(P.clone())                                             # (n, l, d) target prompts
    embed = model.encoder.get_input_embeddings()
    mix = lambda b, own: att(P, own, embed(b["input_ids"]), b["attention_mask"])[0]  # (B, l, d)

    def done():
        for t, n in enumerate(names):
            head = model.heads[t]
            save_tensors(os.path.join(out, "target", f"{n}.safetensors"),
                         {"P": P_own[t], "head.weight": head.weight, "head.bias": head.bias}, dict(env["meta"], task=n))
        save_tensors(os.path.join(out, "attention.safetensors"), att.state_dict(), env["meta"])
    yield [dict(key="attempt", groups=[(list(att.parameters()) + [P_own], a.lr), (list(model.heads.parameters()),
                                                                                  a.head_lr)], tasks=names, done=done,
                prompts=lambda b: mix(b, P_own.index_select(0, b["task"])),
                prompt_of=lambda t: lambda b: mix(b, P_own[t].detach().expand(len(b["task"]), -1, -1)))]


def tpt_jobs(a, env, names):
    """TPT: phase 1 trains a TokenBank of m tokens on all tasks mixed, each input reading its k best tokens as its
    whole prompt (the heads: stage 1's, frozen); phase 2 tunes, for each task, [retrieved ; the task's prompt] with
    its own copy of the bank and its head, as the official code does. Task prompts start from stage 1's."""
    model, out = env["model"], os.path.join(a.out, "tpt")
    P, sizes = source_prompts(a.out, env, names), scaled_sizes(model.d, a.prompt_len)   # (n, l, d)
    embed = model.encoder.get_input_embeddings()
    g = torch.Generator().manual_seed(seed_for(a.seed, "tpt"))
    bank = TokenBank(init_prompt(model.encoder, env["tokenizer"], sizes["bank"], g), sizes["top_k"]).to(env["device"])
    retrieve = lambda b, B: B(embed(b["input_ids"]), b["attention_mask"])[0]          # (B, k, d)
    path = os.path.join(out, "bank.safetensors")
    if not os.path.exists(path):
        heads = list(model.heads.parameters())
        heads_were = [p.requires_grad for p in heads]
        for p in heads:
            p.requires_grad_(False)
        yield [dict(key="tpt:bank", groups=[([bank.bank], a.lr)], tasks=names, prompts=lambda b: retrieve(b, bank),
                    prompt_of=lambda t: lambda b: retrieve(b, bank),
                    done=lambda: save_tensors(path, {"bank": bank.bank}, env["meta"]))]
        for p, was in zip(heads, heads_were):
            p.requires_grad_(was)
    bank.bank.data.copy_(load_tensors(path, env["meta"])[0]["bank"])
    jobs = []
    for t, n in enumerate(names):
        target = os.path.join(out, "target", f"{n}.safetensors")
        if os.path.exists(target):
            continue
        B, P_t, head = copy.deepcopy(bank), nn.Parameter(P[t].clone()), model.heads[t]   # P_t (l, d)
        prompt = lambda b, B=B, P_t=P_t: tpt_prompt(retrieve(b, B), P_t)                 # (B, k + l, d)
        save = lambda target=target, B=B, P_t=P_t, head=head, n=n: save_tensors(target, {
            "P": P_t, "bank": B.bank, "head.weight": head.weight, "head.bias": head.bias}, dict(env["meta"], task=n))
        jobs.append(dict(key=f"tpt:{n}", groups=[([P_t, B.bank], a.lr), (list(head.parameters()), a.head_lr)],
                         tasks=[n], prompts=prompt, prompt_of=lambda t, p=prompt: p, done=save))
    yield jobs


def finetune_jobs(a, env, names):
    """Fine-tuning: for each task, a copy of the whole encoder and a new head, trained with no prompt (l = 0), one
    task at a time (each holds its own encoder). Dropout follows --encoder-dropout, as for the prompts."""
    model, frozen = env["model"], env["model"].encoder
    empty = lambda b: torch.zeros(len(b["task"]), 0, model.d, device=env["device"])  # (B, 0, d)
    for n in names:
        path = os.path.join(a.out, "finetune", "target", f"{n}.safetensors")
        if os.path.exists(path):
            continue
        t = env["ids"][n]
        torch.manual_seed(seed_for(a.seed, n))
        model.heads[t].reset_parameters()
        model.encoder, head = copy.deepcopy(frozen).requires_grad_(True), model.heads[t]
        save = lambda path=path, head=head, n=n: save_tensors(path, {
            "head.weight": head.weight, "head.bias": head.bias,
            **{f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}}, dict(env["meta"], task=n))
        yield [dict(key=f"finetune:{n}", groups=[(list(model.encoder.parameters()), a.lr), (list(head.parameters()),
                                                                                         a.head_lr)],
                    tasks=[n], prompts=empty, prompt_of=lambda t: empty, done=save)]
        model.encoder = frozen



if __name__ == "__main__":
    MINILM, ROBERTA = 22_713_216, 124_645_632  # parameters of all-MiniLM-L6-v2 and roberta-base (AutoModel)
    print(f"sizes for d = 384, l = 20: {scaled_sizes(384, 20)}; for d = 768, l = 100: {scaled_sizes(768, 100)}")
    print_table("demo suite: all-MiniLM-L6-v2, d = k = 384, l = 20, 8 binary tasks",
                params_per_method(20, 384, [2] * 8, encoder=MINILM))
    paper_labels = [2, 2, 2, 1, 2, 2, 2, 3, 2, 2, 2]  # imdb sst2 yelp stsb mrpc rte scitail cb multirc boolq qnli
    print_table("paper: roberta-base, d = k = 768, l = 100, the 11 tasks of Table 3",
                params_per_method(100, 768, paper_labels, encoder=ROBERTA))
