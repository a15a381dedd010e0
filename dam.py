"""dam.py: DAM, the attention between prompt matrices (paper 3.2.1), and the attention component ψ.

ψ projects the n source prompts P (n, l, d) to queries, keys and values, scores every query prompt
against every key prompt with DAM, and mixes the values with the softmax of the scores (3.2.2).
DAM averages the dot products of all l x l pairs of rows of a query q and a key k; by bilinearity
that is the dot product of their row means (a fact the paper does not state):

    DAM(q, k) = (1/l^2) sum_a sum_b q_a . k_b = (1/l sum_a q_a) . (1/l sum_b k_b)

The paper's forms stand next to the mean form; test_dam.py checks that they agree (values, grads):

    dam_loop        3.2.1 read literally, Python loops over pairs of tasks
    dam_conv        3.2.2: S = Q K^T (nl x ml), l x l all-ones conv, stride l
    dam_einsum      one einsum
    dam_mean        mean pooling, O(l(n+m)k + nmk): the form training uses
    maxpool_scores  the 4.2 "Max-pooling method" ablation (Figure 2)

So Figure 2 compares mean pooling with max pooling, and the cost the Limitations section puts on
DAM belongs to the conv form only. Range: a score is at most l^2 k x^2 before the 1/l^2 (x the
largest |entry|): float32 and bfloat16 hold |entries| to ~1e15 (l = 100, k = 768), float16 only ~10.

    python test_dam.py                 # the tests (or: python -m pytest -q test_dam.py)
    python bench.py --sections dam     # time and memory of every form
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check(Q, K):
    """Q (n, l, k) and K (m, l, k) must be 3-D and share l and k."""
    got = f"but got Q of shape {tuple(Q.shape)} and K of shape {tuple(K.shape)}"
    if Q.dim() != 3 or K.dim() != 3:
        raise ValueError(f"Q and K must be 3-D, (n, l, k) and (m, l, k), {got}.")
    if Q.shape[1:] != K.shape[1:]:
        raise ValueError(f"Q and K must have the same prompt length l and size k, {got}.")


def dam_loop(Q, K):
    """Paper 3.2.1, read literally: the reference every other form is checked against.

        S'[i, j] = (1/l^2) sum_a sum_b Q[i, a] . K[j, b]

    Python loops over the n x m pairs of tasks.
    """
    _check(Q, K)
    (n, l, _), m = Q.shape, K.shape[0]
    rows = []
    for i in range(n):
        # block b_ij of 3.2.2, (l, l), summed: all l^2 row pairs of query i and key j
        row = [(Q[i] @ K[j].T).sum() for j in range(m)]  # m scalars
        rows.append(torch.stack(row))  # (m,)
    return torch.stack(rows) / l**2  # (n, m)


def dam_conv(Q, K):
    """Paper 3.2.2, steps one to three, as the paper implements them.

        S  = Q K^T                              Q: (n*l, k), K: (m*l, k), S: (n*l, m*l)
        S' = conv2d(S, ones(l, l), stride l) / l^2    one sum per l x l block, (n, m)

    Costs O(n m l^2 k) time and O(n l m l) memory for S (42 GB at n = m = 1024, l = 100).
    """
    _check(Q, K)
    (n, l, k), m = Q.shape, K.shape[0]
    S = Q.reshape(n * l, k) @ K.reshape(m * l, k).T  # (n*l, m*l)
    ones = torch.ones(1, 1, l, l, dtype=Q.dtype, device=Q.device)  # (1, 1, l, l)
    S_ = F.conv2d(S[None, None], ones, stride=l)[0, 0]  # (n, m)
    return S_ / l**2  # (n, m)


def dam_einsum(Q, K):
    """Paper 3.2.1 as one einsum.

        S'[i, j] = (1/l^2) sum_{a, b, c} Q[i, a, c] K[j, b, c]

    torch sums a and b out of each operand before contracting c (they appear in
    one operand only), so this runs as fast as the mean form.
    """
    _check(Q, K)
    l = Q.shape[1]
    return torch.einsum("nak,mbk->nm", Q, K) / l**2  # (n, m)


def dam_mean(Q, K):
    """DAM as mean pooling: the form training uses (paper 3.2.1, rewritten).

        (1/l^2) sum_a sum_b q_a . k_b
          = (1/l^2) (sum_a q_a) . (sum_b k_b)       the dot product is bilinear
          = (1/l sum_a q_a) . (1/l sum_b k_b)       = mean(q) . mean(k)

        S' = Q_bar K_bar^T,   Q_bar = mean_l Q (n, k),   K_bar = mean_l K (m, k)

    Costs O(l(n+m)k + nmk) time and O((n+m)k + nm) extra memory (Q_bar, K_bar, S'),
    instead of O(nml^2k) time and O(n l m l) memory for the conv form of 3.2.2.
    """
    _check(Q, K)
    Q_bar = Q.mean(dim=1)  # (n, k)
    K_bar = K.mean(dim=1)  # (m, k)
    return Q_bar @ K_bar.T  # (n, m)


def maxpool_scores(Q, K):
    """Paper 4.2 "Max-pooling method", the ablation of Figure 2.

        S'[i, j] = max_a Q[i, a] . max_b K[j, b]

    The max is taken per dimension, over the l rows of each prompt.
    """
    _check(Q, K)
    Q_max = Q.amax(dim=1)  # (n, k)
    K_max = K.amax(dim=1)  # (m, k)
    return Q_max @ K_max.T  # (n, m)


SCORERS = {"dam": dam_mean, "maxpool": maxpool_scores}  # training's form and the ablation
SCORERS.update(loop=dam_loop, conv=dam_conv, einsum=dam_einsum)  # the paper's forms, to check


class DAMAttention(nn.Module):
    """The attention component psi of paper 3.2.1: W_Q (d, k), W_K (d, k), W_V (d, d).

        P'_i = sum_j A_ij (P_j W_V),   A = softmax_j(S'),   S'_ij = DAM(P_i W_Q, P_j W_K)

    d: prompt (encoder) size; k: query/key size, default d (paper: k = d = 768).
    scores: a key of SCORERS; "dam" is DAM in its mean form, "maxpool" the 4.2 ablation.
    train_wv: train W_V (the paper); if False W_V stays I_d, a buffer: saved, not trained.
    init: "eye"    W_Q = W_K = I (d x k): at start S'_ij = mean(P_i) . mean(P_j) (first k coords);
          "random" W_Q, W_K ~ N(0, 1/d): scores ~sqrt(k)/d times those of "eye", A near uniform.
    W_V starts at I_d in both cases: each target prompt starts as a convex combination
    of the source prompts.
    scale: multiplies the scores (not in the paper: 1.0 keeps DAM's 1/l^2 only).
    """

    def __init__(self, d, k=None, scores="dam", train_wv=True, init="eye", scale=1.0):
        super().__init__()
        k = d if k is None else k
        if scores not in SCORERS:
            raise ValueError(f"scores must be one of {sorted(SCORERS)}, got {scores!r}.")
        if init == "eye":
            W_Q, W_K = torch.eye(d, k), torch.eye(d, k)  # (d, k)
        elif init == "random":
            W_Q, W_K = torch.randn(d, k) * d**-0.5, torch.randn(d, k) * d**-0.5  # (d, k)
        else:
            raise ValueError(f"init must be 'eye' or 'random', got {init!r}.")
        self.d, self.k, self.score_name, self.train_wv = d, k, scores, train_wv
        self.scorer, self.scale = SCORERS[scores], scale
        self.W_Q = nn.Parameter(W_Q)  # (d, k)
        self.W_K = nn.Parameter(W_K)  # (d, k)
        if train_wv:
            self.W_V = nn.Parameter(torch.eye(d))  # (d, d)
        else:
            self.register_buffer("W_V", torch.eye(d))  # (d, d), in state_dict, never trained

    def attention_scores(self, P):
        """S'_ij = scale * DAM(P_i W_Q, P_j W_K), (n, n): the scores before the softmax."""
        if P.dim() != 3 or P.shape[-1] != self.d:
            got = f"but got P of shape {tuple(P.shape)}"
            raise ValueError(f"P must have shape (n, l, d) with d = {self.d}, {got}.")
        Q = P @ self.W_Q.to(P.dtype)  # (n, l, k)
        K = P @ self.W_K.to(P.dtype)  # (n, l, k)
        return self.scale * self.scorer(Q, K)  # (n, n)

    def forward(self, P):
        """Paper 3.2.2, steps one to four: P (n, l, d) -> (P_target (n, l, d), A (n, n)).

            P'_i = sum_j A_ij (P_j W_V),   A = softmax_j(S'),   S'_ij = DAM(P_i W_Q, P_j W_K)

        psi's weights are cast to P's dtype (a no-op when they match); move psi to
        P's device with .to(device).
        """
        S_ = self.attention_scores(P)  # (n, n)
        A = torch.softmax(S_, dim=-1)  # (n, n), rows sum to 1 over the sources j
        V = P @ self.W_V.to(P.dtype)  # (n, l, d)
        P_target = torch.einsum("ij,jld->ild", A, V)  # (n, l, d)
        return P_target, A

    def num_parameters(self):
        """Trainable parameters (paper A.1): 2dk + d^2 with W_V, 2dk without."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self):
        return f"d={self.d}, k={self.k}, scores={self.score_name!r}, train_wv={self.train_wv}"


# ----------------------------------------------------------------------------------------------
# ψ's start. The paper does not say how ψ starts; this is this project's choice (README's
# docs/decisions.md says how it was chosen): each target prompt starts near its own source prompt.
def orthonormal_basis(P, k, pool="mean", steps=100):
    """B (d, k): I (d x k) changed by least-norm steps until the pooled projected prompts P_i B are
    orthonormal. U = the orthonormal rows nearest to M = pool(P B) (n, k), n <= k: Y Z^T from the
    SVD M = Y Σ Z^T.

        mean: M = P_bar B is linear, so one step is exact:
              B = I + P_bar^T (P_bar P_bar^T)^-1 (U - P_bar I)
        max:  M[:, c] = R_c b_c with R_c (n, d) the rows of the P_i that win column c: per column
              the same least-norm step, repeated while the winners change:
              b_c += R_c^T (R_c R_c^T)^+ (U - M)[:, c]
    """
    n, l, d = P.shape
    B = torch.eye(d, k, dtype=P.dtype, device=P.device)  # (d, k)
    for _ in range(steps):
        X = P @ B  # (n, l, k)
        if pool == "max":
            M, win = X.max(dim=1)  # (n, k) values and winning rows
            R = P[torch.arange(n, device=P.device)[:, None], win].transpose(0, 1)  # (k, n, d)
        else:  # the same rows R for every column c
            M, R = X.mean(dim=1), P.mean(dim=1).expand(k, n, d)  # (n, k), (k, n, d)
        if (M @ M.T - torch.eye(n, dtype=P.dtype, device=P.device)).abs().max() < 1e-9:
            break
        Y, _, Zh = torch.linalg.svd(M, full_matrices=False)  # (n, n), (n, k)
        Rt = R.transpose(1, 2)  # (k, d, n)
        dB = (Rt @ torch.linalg.pinv(R @ Rt, hermitian=True) @ (Y @ Zh - M).T[..., None])[..., 0].T
        B = B + dB  # (d, k)
    return B


@torch.no_grad()
def start_near_identity(psi, P, target=0.9, names=None, basis="auto"):
    """Init "identity" (not in the paper; README, "Decisions where the paper is silent", says how it
    was chosen): W_Q = W_K = s·B, s found by bisection so that A's mean diagonal on the source
    prompts P (n, l, d) is `target`: each target prompt starts near its own source prompt, which its
    frozen head reads. Returns one line: which B, and why.

    B = I (d x k): pooling commutes with s > 0, so S'_ij = s^2 pool(P_i)·pool(P_j) (pool: mean, or
    max for "maxpool"; first k coords): row i's own weight grows to 1 with s only if P_i is its own
    best match. A task whose pooled prompt is a shorter copy of another's direction is not: raising
    s hands it the other's prompt, saturating the softmax, with no gradient to undo it.
    basis="auto" keeps s·I (the rest of a row then ranks the other sources by pooled-prompt dot
    product) if at some s < 1e4 the mean diagonal is the target and every row has A_ii >= 0.5:
    below, P'_i = sum_j A_ij P_j W_V is mostly other tasks' prompts while the mean may read 0.9
    (one row 0.2, seven 1.0). On prompts drawn like the source prompts' init (MiniLM word-embedding
    rows, n 4-16, l 5-100) the mean scorer's worst row was 0.65, so the floor keeps s·I there.

    Otherwise, or with basis="orthonormal", B = orthonormal_basis(P) makes pool(P_i B)·pool(P_j B)
    = delta_ij, so that (scale = 1) every row gets the target and the others share the rest:

        S' = s^2 I,   A_ii = e^{s^2} / (e^{s^2} + n - 1),   s^2 = log(target (n-1) / (1-target))

    Max pooling gets B by iteration, so its start is checked (each row's own weight largest and
    >= 0.5, the mean diagonal the target). Where there is no such start (n > k, dependent
    mean-pooled prompts, max-pooled scaled copies) it raises ValueError with one line.
    """
    n, k, pool = P.shape[0], psi.k, "max" if psi.score_name == "maxpool" else "mean"
    names = [f"task {i}" for i in range(n)] if names is None else list(names)
    if basis not in ("auto", "orthonormal") or not 0.5 < target < 1 or len(names) != n:
        need = "basis 'auto' or 'orthonormal', 0.5 < target < 1 and a name per task"
        got = f"{basis!r}, {target} and {len(names)} names for {n} tasks"
        raise ValueError(f"start_near_identity needs {need}, but got {got}")
    eye = torch.eye(psi.d, k, dtype=psi.W_Q.dtype, device=psi.W_Q.device)  # (d, k)
    if n == 1:
        psi.W_Q.copy_(eye), psi.W_K.copy_(eye)
        return "W_Q = W_K = I: with one task A = [[1]], whatever W_Q and W_K are"
    why = "basis 'orthonormal' asked for"
    if basis == "auto":
        s, A, why = calibrate(psi, P, eye, target, names)
        if not why:
            i, line = A.diagonal().argmin().item(), f"W_Q = W_K = {s:.3f}·I: A's mean diagonal "
            line += f"{A.diagonal().mean():.3f}, lowest row {A[i, i]:.2f} ({names[i]}); "
            return line + "every task is its own best match"
        why = f"s·I would not start near identity ({pool}-pooled scores: {why})"
    stop = f"ψ cannot start near identity: {why}; the orthonormal start "
    fix = "--psi-init random" + (", or --scores dam" if pool == "max" else "")
    if n > k:
        stop += f"needs n <= k, but n = {n} and k = {k}: use --k {n} or more"
        raise ValueError(stop + f", or {fix}.")
    rtol = max(n, psi.d) * torch.finfo(P.dtype).eps
    rank = torch.linalg.matrix_rank(P.double().mean(1), rtol=rtol)
    if pool == "mean" and rank < n:
        stop += f"needs independent mean-pooled prompts; their rank is {rank} < {n}"
        raise ValueError(stop + f": use {fix}.")
    s, A, left = calibrate(psi, P, orthonormal_basis(P.double(), k, pool).to(eye), target, names)
    if left:
        raise ValueError(stop + f"leaves {left}: use {fix}.")
    line = f"{why}; W_Q = W_K = {s:.3f}·B, B making the {pool}-pooled projected prompts orthonormal"
    diag = A.diagonal()  # (n,)
    return line + f": A's diagonal {diag.min():.3f} to {diag.max():.3f}, mean {diag.mean():.3f}"


def calibrate(psi, P, B, target, names):
    """W_Q = W_K = s·B, s bisected (<= 1e4) so that A's mean diagonal is the target: s, A, and why
    A is not near the identity ("" where it is)."""

    def A_at(s):
        psi.W_Q.copy_(s * B), psi.W_K.copy_(s * B)  # (d, k) each
        return torch.softmax(psi.attention_scores(P), dim=-1)  # (n, n)

    lo, hi = 0.0, 1.0  # the mean diagonal grows with s while each P_i is its own best match
    while A_at(hi).diagonal().mean().item() < target and hi < 1e4:
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if A_at(mid).diagonal().mean().item() < target else (lo, mid)
    A, why = A_at(hi), []  # (n, n)
    for i, j in enumerate(A.argmax(dim=-1).tolist()):
        own = A[i, i]
        if j != i:
            why.append(f"{names[i]} would take {names[j]}'s prompt ({A[i, j]:.2f}, own {own:.2f})")
        elif own < 0.5:
            why.append(f"{names[i]} keeps only {own:.2f} of its own prompt")
    if abs(A.diagonal().mean().item() - target) > 1e-3:
        why.append(f"the mean diagonal stops at {A.diagonal().mean():.3f} (s <= 1e4)")
    return hi, A, "; ".join(why)
