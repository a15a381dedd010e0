"""
Tests of dam.py: the DAM forms agree (values and gradients), match a hand-computed
example, differ from max pooling where they should, DAMAttention behaves as the
paper's attention component psi (3.2.1, 3.2.2), and its near-identity start gives every
task the largest weight of its own row, or stops with one line where it cannot.

    python test_dam.py            # one line per test, exit code 1 on any failure
    python -m pytest -q test_dam.py
"""

import sys
import time
import traceback
import unittest

import torch

from dam import SCORERS, DAMAttention, dam_conv, dam_einsum, dam_loop, dam_mean, maxpool_scores
from dam import start_near_identity
from studies.psi_variants import start_from_scores

DAM_FORMS = {"loop": dam_loop, "conv": dam_conv, "einsum": dam_einsum, "mean": dam_mean}
# (n, m, l, k, magnitude): n != m, l = 1, k = 1, the paper's l = 100 and k = 768, large values
SHAPES = [(3, 5, 4, 6, 1.0), (1, 1, 1, 1, 1.0), (4, 2, 1, 7, 1.0), (2, 3, 9, 1, 1.0)]
SHAPES += [(5, 5, 3, 3, 1.0), (3, 2, 100, 768, 1.0), (2, 4, 7, 5, 1e3), (2, 2, 100, 768, 1e3)]


def rand(*shape, scale=1.0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def close(a, b, rel):
    """|a - b| <= rel * (1 + max|b|), elementwise: a relative test that also works near 0."""
    return bool(((a - b).abs() <= rel * (1 + b.abs().max())).all())


def test_dam_forms_agree_float64():
    for s, (n, m, l, k, mag) in enumerate(SHAPES):
        Q, K = rand(n, l, k, scale=mag, seed=s), rand(m, l, k, scale=mag, seed=100 + s)
        ref = dam_loop(Q, K)
        assert ref.shape == (n, m)
        for name, f in DAM_FORMS.items():
            assert close(f(Q, K), ref, 1e-10), (name, n, m, l, k, mag)


def test_dam_gradients_agree_float64():
    for s, (n, m, l, k, mag) in enumerate(SHAPES):
        R = rand(n, m, seed=200 + s)  # a random linear read-out of the scores
        grads = {}
        for name, f in DAM_FORMS.items():
            Q = rand(n, l, k, scale=mag, seed=s).requires_grad_()
            K = rand(m, l, k, scale=mag, seed=100 + s).requires_grad_()
            (f(Q, K) * R).sum().backward()
            grads[name] = (Q.grad, K.grad)
        for name, (gQ, gK) in grads.items():
            assert close(gQ, grads["loop"][0], 1e-10) and close(gK, grads["loop"][1], 1e-10), name
        # and the mean form's gradient by hand: dS'_ij/dQ[i, a] = mean(K_j) / l
        by_hand = R @ rand(m, l, k, scale=mag, seed=100 + s).mean(1) / l  # (n, k)
        assert close(grads["mean"][0], by_hand[:, None, :].expand(n, l, k), 1e-10)


def test_hand_computed_example():
    # l = 2, k = 1: query rows 1, 2; key rows 3, 5
    # DAM = (1*3 + 1*5 + 2*3 + 2*5) / 2^2 = 24 / 4 = 6; max-pool = max(1, 2) * max(3, 5) = 10
    Q = torch.tensor([[[1.0], [2.0]]], dtype=torch.float64)  # (1, 2, 1)
    K = torch.tensor([[[3.0], [5.0]]], dtype=torch.float64)  # (1, 2, 1)
    for name, f in DAM_FORMS.items():
        assert f(Q, K).item() == 6.0, name
    assert maxpool_scores(Q, K).item() == 10.0
    # l = 2, k = 2: q = [1, 0], [0, 2]; k = [1, 1], [3, -1]; dots 1, 3, 2, -2 -> 4 / 4 = 1
    Q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]], dtype=torch.float64)
    K = torch.tensor([[[1.0, 1.0], [3.0, -1.0]]], dtype=torch.float64)
    for name, f in DAM_FORMS.items():
        assert f(Q, K).item() == 1.0, name
    assert maxpool_scores(Q, K).item() == 1.0 * 3.0 + 2.0 * 1.0


def test_maxpool_differs_from_dam_on_generic_inputs():
    Q, K = rand(4, 6, 5, seed=1), rand(3, 6, 5, seed=2)
    assert (maxpool_scores(Q, K) - dam_mean(Q, K)).abs().min() > 1e-3


def test_maxpool_equals_dam_when_prompt_rows_repeat():
    Q = rand(4, 1, 5, seed=1).expand(4, 6, 5)  # every row of each prompt the same
    K = rand(3, 1, 5, seed=2).expand(3, 6, 5)
    assert close(maxpool_scores(Q, K), dam_loop(Q, K), 1e-12)


def test_mismatched_shapes_raise_value_error_naming_both():
    cases = [((2, 3, 4), (2, 5, 4)), ((2, 3, 4), (2, 3, 6)), ((6, 4), (2, 3, 4))]
    cases.append(((2, 3, 4), (3, 4)))
    for f in list(DAM_FORMS.values()) + [maxpool_scores]:
        for sq, sk in cases:
            try:
                f(torch.zeros(sq), torch.zeros(sk))
            except ValueError as e:
                assert str(sq) in str(e) and str(sk) in str(e), str(e)
            else:
                raise AssertionError(f"{f.__name__} accepted Q {sq} and K {sk}")
    for P in (torch.zeros(2, 3, 5), torch.zeros(3, 8)):
        try:
            DAMAttention(8)(P)
        except ValueError as e:
            assert str(tuple(P.shape)) in str(e), str(e)
        else:
            raise AssertionError(f"DAMAttention(8) accepted P of shape {tuple(P.shape)}")


def test_attention_rows_are_probabilities():
    _, A = DAMAttention(16, init="random")(rand(5, 4, 16, dtype=torch.float32))
    assert A.shape == (5, 5) and (A >= 0).all()
    assert torch.allclose(A.sum(-1), torch.ones(5), atol=1e-6)


def test_eye_init_scores_are_mean_prompt_dot_products():
    P = rand(5, 7, 16)
    psi = DAMAttention(16, init="eye").double()
    P_bar = P.mean(1)  # (n, d)
    assert close(psi.attention_scores(P), P_bar @ P_bar.T, 1e-12)
    psi_k = DAMAttention(16, k=6, init="eye").double()  # k < d: the first k coordinates
    assert close(psi_k.attention_scores(P), P_bar[:, :6] @ P_bar[:, :6].T, 1e-12)


def test_target_prompts_are_convex_combinations_at_init():
    P = rand(4, 5, 8)
    for init in ("eye", "random"):
        P_target, A = DAMAttention(8, init=init).double()(P)
        for i in range(4):
            explicit = sum(A[i, j] * P[j] for j in range(4))  # W_V = I: sum_j A_ij P_j
            assert close(P_target[i], explicit, 1e-12), init
        assert (A >= 0).all() and close(A.sum(-1), torch.ones(4, dtype=A.dtype), 1e-12)


def test_random_init_gives_near_uniform_attention():
    torch.manual_seed(0)
    n, l, d = 6, 16, 256
    P = rand(n, l, d, scale=0.25, dtype=torch.float32)  # mean prompts of norm about 1
    _, A_random = DAMAttention(d, init="random")(P)
    _, A_eye = DAMAttention(d, init="eye")(P)
    assert (A_random - 1 / n).abs().max() < 0.03
    assert A_eye.diagonal().min() > 1 / n + 0.1  # the eye init, on the same P, is not uniform


def test_unknown_init_or_scores_raise_value_error():
    cases = [({"init": "zeros"}, ["zeros", "eye", "random"])]
    for kwargs, names in cases + [({"scores": "cosine"}, ["cosine"] + list(SCORERS))]:
        try:
            DAMAttention(8, **kwargs)
        except ValueError as e:
            assert all(name in str(e) for name in names), str(e)
        else:
            raise AssertionError(f"DAMAttention accepted {kwargs}")


def test_every_scorer_is_selectable():
    P = rand(4, 6, 8)
    A = {}
    for name, f in SCORERS.items():
        torch.manual_seed(0)  # the same random W_Q, W_K for every scorer
        psi = DAMAttention(8, scores=name, init="random", scale=2.0).double()
        _, A[name] = psi(P)
        S_ = 2.0 * f(P @ psi.W_Q, P @ psi.W_K)  # (n, n), computed outside the module
        assert close(A[name], torch.softmax(S_, -1), 1e-12), name
    for name in ("loop", "conv", "einsum"):
        assert close(A[name], A["dam"], 1e-12), name
    assert (A["maxpool"] - A["dam"]).abs().max() > 1e-3


def test_large_inputs_give_finite_outputs_float32():
    P = rand(4, 100, 768, scale=1e3, dtype=torch.float32).requires_grad_()
    for scores in ("dam", "conv", "maxpool"):
        psi = DAMAttention(768, scores=scores)
        P_target, A = psi(P)
        P_target.sum().backward()
        assert torch.isfinite(P_target).all() and torch.isfinite(A).all(), scores
        assert torch.allclose(A.sum(-1), torch.ones(4)), scores
        assert all(torch.isfinite(p.grad).all() for p in psi.parameters()), scores


def test_output_shapes_and_dtype_preserved():
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        P = rand(3, 5, 8, dtype=dtype)
        for name in SCORERS:
            P_target, A = DAMAttention(8, k=4, scores=name)(P)
            assert P_target.shape == (3, 5, 8) and A.shape == (3, 3), name
            assert P_target.dtype == dtype and A.dtype == dtype, (name, dtype)
        # and the values are right in low precision: compare with float64
        Q, K = rand(3, 5, 8, seed=1), rand(2, 5, 8, seed=2)
        for name, f in SCORERS.items():
            S_ = f(Q.to(dtype), K.to(dtype))
            assert S_.dtype == dtype and close(S_.double(), f(Q, K), 2e-2), (name, dtype)


def test_device_preserved_on_cuda():
    if not torch.cuda.is_available():
        raise unittest.SkipTest("CUDA not available")
    P = rand(3, 5, 8, dtype=torch.float32).cuda()
    for name, f in SCORERS.items():
        P_target, A = DAMAttention(8, scores=name).cuda()(P)
        assert P_target.is_cuda and A.is_cuda, name
        assert torch.allclose(A.cpu(), DAMAttention(8, scores=name)(P.cpu())[1], atol=1e-5), name


def test_frozen_wv_is_not_trainable_but_is_saved():
    psi = DAMAttention(8, train_wv=False)
    assert "W_V" not in dict(psi.named_parameters()) and "W_V" in psi.state_dict()
    assert torch.equal(psi.state_dict()["W_V"], torch.eye(8))
    opt = torch.optim.SGD(psi.parameters(), lr=0.1)
    P = rand(4, 5, 8, dtype=torch.float32)
    (psi(P)[0] * rand(4, 5, 8, dtype=torch.float32, seed=3)).sum().backward()
    opt.step()
    assert torch.equal(psi.W_V, torch.eye(8)) and not torch.equal(psi.W_Q, torch.eye(8))
    copy = DAMAttention(8, train_wv=False)
    copy.load_state_dict(psi.state_dict())
    assert torch.equal(copy(P)[0], psi(P)[0])


def test_start_near_identity_reaches_its_diagonal_and_ranks_by_mean_prompt():
    P = rand(6, 5, 16, dtype=torch.float32, seed=7)  # (n, l, d)
    psi = DAMAttention(16, train_wv=False)
    line = start_near_identity(psi, P, target=0.9)
    s = psi.W_Q[0, 0].item()
    A = psi(P)[1]  # (n, n)
    assert line.startswith(f"W_Q = W_K = {s:.3f}·I"), line
    assert "every task is its own best match" in line, line
    assert abs(A.diagonal().mean().item() - 0.9) < 1e-3 and s > 1
    assert torch.allclose(psi.W_Q, s * torch.eye(16)) and torch.equal(psi.W_Q, psi.W_K)
    dots = P.mean(1) @ P.mean(1).T  # (n, n): the other sources rank as mean-prompt dot products do
    for i in range(6):
        others = [j for j in range(6) if j != i]
        assert sorted(others, key=lambda j: -A[i, j].item()) == sorted(
            others, key=lambda j: -dots[i, j].item()
        )


NAMES = ["alpha", "bravo", "charlie", "delta", "echo"]


def task_prompts(seed=0):
    """(5, 4, 16) float32: task i adds 1 to its own 3 coordinates on every row, so mean- and
    max-pooled prompts are nearly orthogonal and each task is its own best match under s·I."""
    P = rand(5, 4, 16, scale=0.1, dtype=torch.float32, seed=seed)  # (n, l, d)
    for i in range(5):
        P[i, :, 3 * i : 3 * i + 3] += 1.0
    return P


def with_shorter_copy(P, noise=0.05):
    """echo's prompt becomes half of alpha's plus noise: its pooled prompt is a shorter copy."""
    P = P.clone()
    P[4] = 0.5 * P[0] + rand(4, 16, scale=noise, dtype=torch.float32, seed=99)
    return P


def test_start_near_identity_keeps_s_eye_on_ordinary_prompts_for_both_scorers():
    for scores in ("dam", "maxpool"):
        psi = DAMAttention(16, scores=scores, train_wv=False)
        line = start_near_identity(psi, task_prompts(), names=NAMES)
        s = psi.W_Q[0, 0].item()
        assert s > 0 and torch.allclose(psi.W_Q, s * torch.eye(16)), (scores, line)  # s·I, kept
        assert line.startswith("W_Q = W_K =") and "would" not in line, (scores, line)


def test_start_near_identity_replaces_s_eye_when_a_task_is_a_shorter_copy():
    for scores, tol in (("dam", 1e-3), ("maxpool", 0.01)):
        P = with_shorter_copy(task_prompts())
        pool = P.mean(1) if scores == "dam" else P.amax(1)  # (n, d)
        assert (pool[4] @ pool[0]) > (pool[4] @ pool[4])  # s·I would hand echo alpha's prompt
        psi = DAMAttention(16, scores=scores, train_wv=False)
        line = start_near_identity(psi, P, names=NAMES)
        A = psi(P)[1]  # (n, n)
        assert "echo would take alpha's prompt" in line and "\n" not in line, line
        assert torch.equal(A.argmax(-1), torch.arange(5)), (scores, A)  # own weight the largest
        diag = A.diagonal()  # (n,)
        assert abs(diag.mean().item() - 0.9) < tol and diag.min() > 0.5, (scores, diag)
        if scores == "dam":  # S' = s^2 I exactly: each row at the target, the others share the rest
            assert (diag - 0.9).abs().max() < 1e-3 and (A[A < 0.5] - 0.025).abs().max() < 1e-3


def test_start_near_identity_floor_replaces_s_eye_when_a_row_keeps_under_half():
    # alpha's mean prompt u; the others 0.98 u + 3 e_j: alpha is its own best match, but only just,
    # and the others reach 1.0 so early that a mean diagonal of 0.9 leaves alpha's row at about 0.2
    P_bar = torch.zeros(8, 16, dtype=torch.float64)  # (n, d)
    P_bar[:, 0] = torch.tensor([1.0] + [0.98] * 7)
    P_bar[1:, 1:8] = 3 * torch.eye(7, dtype=torch.float64)
    P = (P_bar[:, None, :] + rand(8, 3, 16, scale=0.1, seed=5)).float()  # (n, l, d)
    P = P - P.mean(1, keepdim=True) + P_bar[:, None, :].float()  # rows vary, the mean stays P_bar
    psi = DAMAttention(16, train_wv=False)
    line = start_near_identity(psi, P, names=[f"t{i}" for i in range(8)])
    A = psi(P)[1]
    assert "t0 keeps only 0.2" in line and "would take" not in line, line
    assert (A.diagonal() - 0.9).abs().max() < 1e-3


def test_start_near_identity_orthonormal_on_request_puts_every_row_at_the_target():
    psi = DAMAttention(16, train_wv=False)
    line = start_near_identity(psi, task_prompts(), target=0.8, names=NAMES, basis="orthonormal")
    A = psi(task_prompts())[1]
    assert line.startswith("basis 'orthonormal' asked for"), line
    assert (A.diagonal() - 0.8).abs().max() < 1e-3, line


def test_start_near_identity_without_a_sound_start_raises_one_line():
    P = task_prompts()
    P_copy = P.clone()
    P_copy[4] = 0.5 * P[0]  # exactly: mean-pooled prompts dependent, and max pooling scales with it
    short = with_shorter_copy(P)
    cases = [("dam", 16, P_copy, "rank is 4 < 5")]
    cases += [("maxpool", 16, P_copy, "echo would take alpha's prompt")]
    cases += [("dam", 4, short, "n = 5 and k = 4"), ("maxpool", 4, short, "k = 4")]
    for scores, k, prompts, says in cases:
        try:
            start_near_identity(DAMAttention(16, k=k, scores=scores), prompts, names=NAMES)
        except ValueError as e:
            msg = str(e)
            assert says in msg and "--psi-init random" in msg and "\n" not in msg, (scores, k, msg)
        else:
            raise AssertionError(f"{scores}, k = {k}: no ValueError")
    for kwargs in ({"target": 0.4}, {"target": 1.0}, {"basis": "eye"}, {"names": NAMES[:3]}):
        try:
            start_near_identity(DAMAttention(16), P, **kwargs)
        except ValueError as e:
            assert "0.5 < target < 1" in str(e), str(e)
        else:
            raise AssertionError(f"accepted {kwargs}")


def test_the_probe_start_puts_A_at_the_softmax_of_the_probe_scores():
    R = [[90, 97, 60, 50, 70], [40, 88, 95, 30, 20], [10, 20, 99, 15, 50], [60, 61, 62, 50, 0]]
    R += [[33, 33, 33, 33, 30]]  # row = target, column = source, dev points as probe.py gives
    own = 5.0 * torch.eye(5, dtype=torch.float64)  # the margin: a task's own prompt favoured
    want = torch.softmax((torch.tensor(R, dtype=torch.float64) + own) / 2.0, dim=-1)  # (n, n)
    psi = DAMAttention(16, k=8, train_wv=False).double()
    line = start_from_scores(psi, task_prompts().double(), R, tau=2.0)
    assert torch.allclose(psi(task_prompts().double())[1], want, atol=1e-9), line
    assert "3 of 5 tasks start mostly from another's prompt" in line, line  # rows 0, 1, 3
    psi32 = DAMAttention(16, k=8, train_wv=False)  # float32, as training holds ψ
    start_from_scores(psi32, task_prompts().float(), R, tau=2.0)
    assert (psi32(task_prompts().float())[1] - want).abs().max() < 1e-3
    probed = []  # the probe is a function called only once the start is possible
    psi_fn = DAMAttention(16, k=8, train_wv=False).double()
    start_from_scores(psi_fn, task_prompts().double(), lambda: probed.append(1) or R, tau=2.0)
    assert probed == [1] and torch.allclose(psi_fn(task_prompts().double())[1], want, atol=1e-9)
    for scores, k in (("maxpool", 8), ("dam", 4)):  # not the mean scorer; n = 5 > k
        try:
            start_from_scores(DAMAttention(16, k=k, scores=scores), task_prompts(), probed.append)
        except ValueError as e:
            assert "needs the dam scores and n <= k" in str(e), str(e)
        else:
            raise AssertionError(f"{scores}, k = {k}: no ValueError")
    assert probed == [1]  # neither impossible start ran the probe


def test_num_parameters_matches_paper():
    assert DAMAttention(768).num_parameters() == 2 * 768 * 768 + 768**2 == 1_769_472  # ~1.77M (A.1)
    assert DAMAttention(768, train_wv=False).num_parameters() == 2 * 768 * 768
    assert DAMAttention(16, k=8).num_parameters() == 2 * 16 * 8 + 16**2


def test_gradients_reach_all_projections():
    psi = DAMAttention(8).double()
    P_target, _ = psi(rand(4, 5, 8))
    (P_target * rand(4, 5, 8, seed=3)).sum().backward()
    for name in ("W_Q", "W_K", "W_V"):
        grad = getattr(psi, name).grad
        assert grad is not None and grad.abs().max() > 1e-6, name


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny tensors: on a busy machine more threads only wait on each other
    tests = [(name, f) for name, f in list(globals().items()) if name.startswith("test_")]
    failed = skipped = 0
    start = time.perf_counter()
    for name, f in tests:
        t0 = time.perf_counter()
        try:
            f()
            status = "ok"
        except unittest.SkipTest as e:
            status, skipped = f"skipped ({e})", skipped + 1
        except Exception:
            status, failed = "FAILED", failed + 1
            traceback.print_exc()
        print(f"{name:<55} {status:<8} {time.perf_counter() - t0:6.2f} s")
    passed = len(tests) - failed - skipped
    s = f"{passed} passed, {failed} failed, {skipped} skipped"
    print(f"{s} in {time.perf_counter() - start:.1f} s")
    sys.exit(1 if failed else 0)
