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
