"""
DAM, the attention between matrices of AMP, and the attention component psi.

AMP (paper section 3.2) mixes n source prompts P (n, l, d) into n target prompts.
The attention component psi projects P to queries, keys and values, scores every
query prompt against every key prompt with DAM (3.2.1), and mixes the values with
the softmax of the scores (3.2.2, step four).

DAM (3.2.1) averages the dot products of all l x l pairs of rows of a query q and
a key k. By bilinearity this is the dot product of their row means:

    DAM(q, k) = (1/l^2) sum_a sum_b q_a . k_b = (1/l sum_a q_a) . (1/l sum_b k_b)

so DAM scores are dot products of mean-pooled queries and keys (a fact the paper
does not state). This file keeps the paper's forms next to the mean form, and
test_dam.py checks that they agree, values and gradients:

    dam_loop        3.2.1 read literally, Python loops over pairs of tasks
    dam_conv        3.2.2: S = Q K^T (nl x ml), l x l all-ones conv, stride l
    dam_einsum      one einsum
    dam_mean        mean pooling, O(l(n+m)k + nmk): the form training uses
    maxpool_scores  the 4.2 "Max-pooling method" ablation (Figure 2)

So the paper's Figure 2 compares mean pooling with max pooling, and the cost the
Limitations section attributes to DAM belongs to the conv implementation only.

Range: every score is at most l^2 k x^2 before the 1/l^2 (x = the largest |entry|),
so in float32 and bfloat16 no form overflows for |entries| below ~1e15 (l = 100,
k = 768); float16 (max 65504) overflows already near |entries| ~ 10: use bfloat16.

    python dam.py --bench     # times and memory of every form (add --help)
    python test_dam.py        # the tests (or: python -m pytest -q test_dam.py)
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check(Q, K):
    """Q (n, l, k) and K (m, l, k) must be 3-D and share l and k."""
    if Q.dim() != 3 or K.dim() != 3:
        raise ValueError(f"Q and K must be 3-D, (n, l, k) and (m, l, k), but got Q of "
                         f"shape {tuple(Q.shape)} and K of shape {tuple(K.shape)}.")
    if Q.shape[1:] != K.shape[1:]:
        raise ValueError(f"Q and K must have the same prompt length l and size k, but got "
                         f"Q of shape {tuple(Q.shape)} and K of shape {tuple(K.shape)}.")


def dam_loop(Q, K):
    """Paper 3.2.1, read literally: the reference every other form is checked against.

        S'[i, j] = (1/l^2) sum_a sum_b Q[i, a] . K[j, b]
    """
    _check(Q, K)
    (n, l, k), m = Q.shape, K.shape[0]
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

        S'[i, j] = max_a Q[i, a] . max_b K[j, b]     max taken per dimension
    """
    _check(Q, K)
    Q_max = Q.amax(dim=1)  # (n, k)
    K_max = K.amax(dim=1)  # (m, k)
    return Q_max @ K_max.T  # (n, m)


SCORERS = {"dam": dam_mean, "maxpool": maxpool_scores, "loop": dam_loop,
           "conv": dam_conv, "einsum": dam_einsum}


def orthonormal_basis(P, k, pool="mean", steps=100):
    """B (d, k): I (d x k) changed by least-norm steps until the pooled projected prompts P_i B are orthonormal.

        U = the orthonormal rows nearest to M = pool(P B) (n, k), n <= k: Y Z^T from the SVD M = Y Σ Z^T
        mean: M = P_bar B is linear, so one step is exact:  B = I + P_bar^T (P_bar P_bar^T)^-1 (U - P_bar I)
        max:  M[:, c] = R_c b_c with R_c (n, d) the rows of the P_i that win column c: per column the same
              least-norm step, b_c += R_c^T (R_c R_c^T)^+ (U - M)[:, c], repeated while the winners change
    """
    n, l, d = P.shape
    B = torch.eye(d, k, dtype=P.dtype, device=P.device)  # (d, k)
    for _ in range(steps):
        X = P @ B  # (n, l, k)
        if pool == "max":
            M, win = X.max(dim=1)  # (n, k) values and winning rows
            R = P[torch.arange(n, device=P.device)[:, None], win].transpose(0, 1)  # (k, n, d)
        else:
            M, R = X.mean(dim=1), P.mean(dim=1).expand(k, n, d)  # (n, k), (k, n, d): same rows for every c
        if (M @ M.T - torch.eye(n, dtype=P.dtype, device=P.device)).abs().max() < 1e-9:
            break
        Y, _, Zh = torch.linalg.svd(M, full_matrices=False)  # (n, n), (n, k)
        Rt = R.transpose(1, 2)  # (k, d, n)
        B = B + (Rt @ torch.linalg.pinv(R @ Rt, hermitian=True) @ (Y @ Zh - M).T[..., None])[..., 0].T  # (d, k)
    return B


class DAMAttention(nn.Module):
    """The attention component psi of paper 3.2.1: W_Q (d, k), W_K (d, k), W_V (d, d).

        P'_i = sum_j A_ij (P_j W_V),   A = softmax_j(S'),   S'_ij = DAM(P_i W_Q, P_j W_K)

    d: prompt (encoder) size; k: query/key size, default d (paper: k = d = 768).
    scores: a key of SCORERS; "dam" is DAM in its mean form, "maxpool" the 4.2 ablation.
    train_wv: train W_V (the paper); if False W_V stays I_d, a buffer: saved, not trained.
    init: "eye"    W_Q = W_K = I (d x k): at start S'_ij = mean(P_i) . mean(P_j) (first k coords);
          "random" W_Q, W_K ~ N(0, 1/d): scores start ~sqrt(k)/d times those of "eye", A near uniform.
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
            raise ValueError(f"P must have shape (n, l, d) with d = {self.d}, "
                             f"but got P of shape {tuple(P.shape)}.")
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

    @torch.no_grad()
    def start_near_identity(self, P, target=0.9, names=None, basis="auto"):
        """Init "identity" (not in the paper; chosen by measurement, see README): W_Q = W_K = s·B, s found by
        bisection so that A's mean diagonal on the source prompts P (n, l, d) is `target`: each target prompt
        starts near its own source prompt, which its frozen head reads. Returns one line: which B, and why.

        B = I (d x k): pooling commutes with s > 0, so S'_ij = s^2 pool(P_i)·pool(P_j) (pool: mean, or max for
        "maxpool"; first k coords): row i's own weight grows to 1 with s only if P_i is its own best match. A task
        whose pooled prompt is a shorter copy of another's direction is not: raising s hands it the other's prompt,
        saturating the softmax, with no gradient to undo it. basis="auto" keeps s·I (today's start; the rest of a
        row ranks the other sources by pooled-prompt dot product) if at some s < 1e4 the mean diagonal is the
        target and every row has A_ii >= 0.5: below, P'_i = sum_j A_ij P_j W_V is mostly other tasks' prompts while
        the mean may read 0.9 (one row 0.2, seven 1.0). On prompts drawn like the source prompts' init (MiniLM
        word-embedding rows, n 4-16, l 5-100) the mean scorer's worst row was 0.65, so the floor keeps s·I there.

        Otherwise, or with basis="orthonormal", B = orthonormal_basis(P) makes pool(P_i B)·pool(P_j B) = delta_ij:
            S' = s^2 I,   A_ii = e^{s^2} / (e^{s^2} + n - 1) on every row,   s^2 = log(target (n-1) / (1-target))
        (scale = 1), the rest shared equally. Max pooling gets B by iteration, so its start is checked (each row's
        own weight largest and >= 0.5, the mean diagonal the target). Where there is no such start (n > k,
        dependent mean-pooled prompts, max-pooled scaled copies) it raises ValueError with one line.
        """
        n, pool = P.shape[0], "max" if self.score_name == "maxpool" else "mean"
        names = [f"task {i}" for i in range(n)] if names is None else list(names)
        if basis not in ("auto", "orthonormal") or not 0.5 < target < 1 or len(names) != n:
            raise ValueError(f"start_near_identity needs basis 'auto' or 'orthonormal', 0.5 < target < 1 and a "
                             f"name per task, but got {basis!r}, {target} and {len(names)} names for {n} tasks")
        eye = torch.eye(self.d, self.k, dtype=self.W_Q.dtype, device=self.W_Q.device)  # (d, k)
        if n == 1:
            self.W_Q.copy_(eye), self.W_K.copy_(eye)
            return "W_Q = W_K = I: with one task A = [[1]], whatever W_Q and W_K are"
        why = "basis 'orthonormal' asked for"
        if basis == "auto":
            s, A, why = self._calibrate(P, eye, target, names)
            if not why:
                i = A.diagonal().argmin().item()
                return (f"W_Q = W_K = {s:.3f}·I: A's mean diagonal {A.diagonal().mean():.3f}, lowest row "
                        f"{A[i, i]:.2f} ({names[i]}); every task is its own best match")
            why = f"s·I would not start near identity ({pool}-pooled scores: {why})"
        stop = f"ψ cannot start near identity: {why}; the orthonormal start "
        fix = "--psi-init random" + (", or --scores dam" if pool == "max" else "")
        if n > self.k:
            raise ValueError(stop + f"needs n <= k, but n = {n} and k = {self.k}: use --k {n} or more, or {fix}.")
        rank = torch.linalg.matrix_rank(P.double().mean(1), rtol=max(n, self.d) * torch.finfo(P.dtype).eps)
        if pool == "mean" and rank < n:
            raise ValueError(stop + f"needs independent mean-pooled prompts; their rank is {rank} < {n}: use {fix}.")
        s, A, left = self._calibrate(P, orthonormal_basis(P.double(), self.k, pool).to(eye), target, names)
        if left:
            raise ValueError(stop + f"leaves {left}: use {fix}.")
        return (f"{why}; W_Q = W_K = {s:.3f}·B, B making the {pool}-pooled projected prompts orthonormal: "
                f"A's diagonal {A.diagonal().min():.3f} to {A.diagonal().max():.3f}, mean {A.diagonal().mean():.3f}")

    def _calibrate(self, P, B, target, names):
        """W_Q = W_K = s·B, s bisected (<= 1e4) to A's mean diagonal = target: s, A, why A is no near identity."""
        def A_at(s):
            self.W_Q.copy_(s * B), self.W_K.copy_(s * B)  # (d, k) each
            return torch.softmax(self.attention_scores(P), dim=-1)  # (n, n)
        lo, hi = 0.0, 1.0
        while A_at(hi).diagonal().mean().item() < target and hi < 1e4:  # grows while each P_i is its best match
            lo, hi = hi, 2 * hi
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if A_at(mid).diagonal().mean().item() < target else (lo, mid)
        A = A_at(hi)  # (n, n)
        why = [f"{names[i]} would take {names[j]}'s prompt ({A[i, j]:.2f}, own {A[i, i]:.2f})" if j != i else
               f"{names[i]} keeps only {A[i, i]:.2f} of its own prompt"
               for i, j in enumerate(A.argmax(dim=-1).tolist()) if j != i or A[i, i] < 0.5]
        if abs(A.diagonal().mean().item() - target) > 1e-3:
            why.append(f"the mean diagonal stops at {A.diagonal().mean():.3f} (s <= 1e4)")
        return hi, A, "; ".join(why)

    def num_parameters(self):
        """Trainable parameters (paper A.1): 2dk + d^2 with W_V, 2dk without."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self):
        return f"d={self.d}, k={self.k}, scores={self.score_name!r}, train_wv={self.train_wv}"


# ----------------------------------------------------------------------------------------
# Benchmark. Time: median over timed runs after one warm-up (fast forms repeat the call
# inside each run). Memory, two columns: "est" is the dominant allocation computed from
# the shapes; "peak" is measured: on CPU the growth of the process's peak resident memory
# (VmHWM in /proc/self/status, reset through /proc/self/clear_refs) during the timed runs,
# i.e. memory the form had to take from the OS; on CUDA torch.cuda.max_memory_allocated.

def _proc(path, key, kib=True):
    """The 'key: value' field of a /proc file (in bytes if kib); None where there is no /proc."""
    try:
        value = next(ln.split(":", 1)[1].strip() for ln in open(path) if ln.startswith(key))
    except (OSError, StopIteration):
        return None
    return int(value.split()[0]) * 1024 if kib else value


def _mem_start(device):
    """Reset the peak-memory counter; return the baseline in bytes (None: cannot measure)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS
    except OSError:
        return None
    return _proc("/proc/self/status", "VmRSS")


def _mem_peak(device, base):
    if base is None:
        return None
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - base
    return _proc("/proc/self/status", "VmHWM") - base


def estimate_bytes(form, n, m, l, k, b):
    """Dominant allocation of one call, in bytes (b bytes per element)."""
    if form == "conv":
        return (n * l) * (m * l) * b + n * m * b  # S, then S'
    if form == "loop":
        return l * l * b + n * m * b  # one block b_ij at a time
    return (n + m) * k * b + n * m * b  # pooled Q and K (einsum sums a, b out first)


def bench(args):
    dtype, device = getattr(torch, args.dtype), torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else _proc("/proc/cpuinfo", "model name", kib=False) or "unknown CPU")
    print(f"DAM benchmark | {machine} | {torch.get_num_threads()} threads | torch {torch.__version__}")
    print(f"l={args.l} k={args.k} {args.dtype} on {device}; median of runs after 1 warm-up; peak = "
          f"measured ({'VmHWM growth' if device.type == 'cpu' else 'max_memory_allocated'}), est = from shapes")
    print(f"{'n':>6} {'form':>8} {'median ms':>11} {'runs':>5} {'peak MiB':>9} {'est MiB':>9}")
    torch.manual_seed(0)
    last = {}  # form -> (n, seconds) at its last timed size, to extrapolate to the next one
    for n in [int(s) for s in args.sizes.split(",")]:
        Q = torch.randn(n, args.l, args.k, dtype=dtype, device=device)  # (n, l, k)
        K = torch.randn(n, args.l, args.k, dtype=dtype, device=device)  # (n, l, k)
        med = {}
        for form in ("loop", "conv", "einsum", "dam", "maxpool"):
            f, row = SCORERS[form], f"{n:>6} {form:>8} "
            need = estimate_bytes(form, n, n, args.l, args.k, Q.element_size())
            free = (torch.cuda.mem_get_info(device)[0] if device.type == "cuda"
                    else _proc("/proc/meminfo", "MemAvailable"))
            if free is not None and need > 0.8 * free - 2**30:  # keep 20% + 1 GiB free
                print(row + f"skipped: needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
                continue
            est_s = last[form][1] * (n / last[form][0]) ** 2 if form in last else 0.0  # <= O(n^2)
            if est_s > args.max_seconds:
                print(row + f"skipped: ~{est_s:.0f} s estimated")
                continue
            sync(); t0 = time.perf_counter(); f(Q, K); sync()
            t_warm = max(time.perf_counter() - t0, 1e-9)
            inner = max(1, int(0.02 / t_warm))  # calls per run, so that fast forms run >= 20 ms
            runs = max(1, min(args.repeats, int(args.budget / t_warm)))
            times, peaks = [], []
            for _ in range(runs):
                base = _mem_start(device)
                sync(); t0 = time.perf_counter()
                for _ in range(inner):
                    f(Q, K)
                sync(); times.append((time.perf_counter() - t0) / inner)
                peaks.append(_mem_peak(device, base))
            peak = float("nan") if None in peaks else max(peaks)
            med[form] = sorted(times)[(len(times) - 1) // 2]
            last[form] = (n, med[form])
            print(row + f"{med[form] * 1e3:>11.3f} {runs:>5} {peak / 2**20:>9.1f} {need / 2**20:>9.1f}")
        ratios = [f"conv/dam time = {med['conv'] / med['dam']:.0f}x"] if "conv" in med else []
        ratios.append(f"dam/maxpool time = {med['dam'] / med['maxpool']:.2f}x")
        print(f"{'':>15} " + ", ".join(ratios))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="DAM forms: benchmark (see the docstring).")
    parser.add_argument("--bench", action="store_true", help="run the benchmark table")
    parser.add_argument("--sizes", default="11,64,256,1024", help="comma-separated numbers of tasks n (m = n)")
    parser.add_argument("--l", type=int, default=100, help="prompt length l (paper: 100)")
    parser.add_argument("--k", type=int, default=768, help="query/key size k (paper: 768)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up (at most)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds of timed runs per form and n")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="skip forms estimated slower")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"], help="dtype")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda given but CUDA is not available")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    bench(args) if args.bench else parser.print_help()
