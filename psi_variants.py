"""psi_variants.py: what this project adds to the attention component ψ of dam.py (DAMAttention),
beyond the paper.

- `start_near_identity(psi, P)`: ψ's start, W_Q = W_K = s·B, so that at the start of stage 2 each
  target prompt is mostly its own source prompt, which its frozen head reads (train.py --psi-init
  identity, the default; the paper does not say how ψ starts). B = I where every task is its own
  best match, else `orthonormal_basis(P, k)`; `calibrate` finds s.
- `start_from_scores(psi, P, R)`: ψ's start with A = softmax((R + margin I) / tau), R the probe's
  dev scores (train.py --psi-init probe): each task starts from the sources the probe ranks best.
- `ValueOnly`: the ablation A = I, P'_i = P_i W_V (train.py --attn identity): W_V without transfer.

Run: python -m pytest -q test_dam.py -k start   (the start rules' tests)
"""

import torch
import torch.nn as nn


class ValueOnly(nn.Module):
    """An ablation of ψ (train.py --attn identity): A fixed to I, so P'_i = P_i W_V with W_V (d, d)
    shared by all tasks, starting at I and trained. It has W_V's extra shared parameters and no
    transfer between tasks."""

    def __init__(self, d):
        super().__init__()
        self.W_V = nn.Parameter(torch.eye(d))  # (d, d)

    def forward(self, P):  # P (n, l, d)
        A = torch.eye(P.shape[0], dtype=P.dtype, device=P.device)  # (n, n)
        return P @ self.W_V.to(P.dtype), A  # (n, l, d), (n, n)

    def num_parameters(self):
        return self.W_V.numel()


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


@torch.no_grad()
def start_from_scores(psi, P, R, tau=2.0, margin=5.0):
    """Init "probe" (ours, not in the paper): W_Q, W_K such that A on the source prompts P (n, l, d)
    starts at softmax_j(C_ij), C = (R + margin I) / tau, R (n, n) the probe's dev scores in points
    (probe.py; row = target; or a function giving them, called once the start is known possible):
    a task starts from the sources the probe ranks best, its own prompt favoured by select's margin
    (a data-rich task reads well through many prompts). With the mean scorer (paper 3.2.1, as
    dam.dam_mean) S' = scale M W_Q W_K^T M^T, M = mean_l P (n, d); for (C less each row's mean,
    which the softmax ignores) / scale = U Σ V^T (SVD) and M M^+ = I:

        W_Q = M^+ U Σ^(1/2),   W_K = M^+ V Σ^(1/2),   zero columns up to k   (n <= k)
    """
    n, k = P.shape[0], psi.k
    if psi.score_name != "dam" or n > k:
        got = f"scores {psi.score_name!r}, n = {n}, k = {k}"
        raise ValueError(f"the probe's start needs the dam scores and n <= k, but got {got}")
    M = P.double().mean(1)  # (n, d)
    if torch.linalg.matrix_rank(M) < n:
        raise ValueError("the probe's start needs independent mean-pooled prompts: use another")
    R = R() if callable(R) else R  # the probe costs minutes: only now
    C = (torch.as_tensor(R, dtype=torch.float64) + margin * torch.eye(n)) / tau  # (n, n)
    U, sig, Vh = torch.linalg.svd((C - C.mean(1, keepdim=True)) / psi.scale)  # (n, n) each
    W = torch.zeros(2, psi.d, k, dtype=torch.float64)  # W_Q, W_K (d, k) each
    M_pinv = torch.linalg.pinv(M)  # (d, n): M M^+ = I
    W[0, :, :n], W[1, :, :n] = M_pinv @ U * sig.sqrt(), M_pinv @ Vh.T * sig.sqrt()  # (d, n) each
    psi.W_Q.copy_(W[0]), psi.W_K.copy_(W[1])
    A = torch.softmax(psi.attention_scores(P), dim=-1)  # (n, n)
    moved = sum(int(A[i].argmax()) != i for i in range(n))
    line = f"A = softmax((probe + {margin:g} I) / {tau:g}): "
    return line + f"{moved} of {n} tasks start mostly from another's prompt"


def psi_start(psi, P, names, how, R=None):
    """train.py --psi-init: "auto" or "orthonormal" (start_near_identity), "probe" (from R, the
    probe's dev scores or a function giving them)."""
    if how == "probe":
        return start_from_scores(psi, P, R)
    return start_near_identity(psi, P, names=names, basis=how)
