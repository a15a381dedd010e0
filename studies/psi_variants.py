"""psi_variants.py: what this project adds to the attention component ψ of dam.py (DAMAttention),
beyond the paper.

- `start_from_scores(psi, P, R)`: ψ's start with A = softmax((R + margin I) / tau), R the probe's
  dev scores (train.py --psi-init probe): each task starts from the sources the probe ranks best.
- `ValueOnly`: the ablation A = I, P'_i = P_i W_V (train.py --attn identity): W_V without transfer.

ψ's default start, start_near_identity, is in dam.py. Run: python test_dam.py
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
