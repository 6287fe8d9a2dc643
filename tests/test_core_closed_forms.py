"""Closed forms and cross-checks of docs/math.md §6, and the depth limit of §5."""
from __future__ import annotations

import math

import numpy as np
import pytest

import eoc_ntk
from _reference.checks import assert_kernel_close
from _reference.data import ACTIVATIONS, dataset, delta_of, random_unit_rows, unit_pair
from _reference.mp_kernel import MP, ref_eigenvalues, ref_theta_unit


@pytest.mark.parametrize("a", [1.0, -0.3, 2.5])
@pytest.mark.parametrize("ds", ["random", "near_parallel_1e-6", "near_opposite", "structured"])
@pytest.mark.parametrize("depth", [1, 2, 7, 200])
def test_linear_activation_is_depth_times_gram(a, ds, depth):
    """``b = 0``: ``K(x, x') = l <x, x'> / (a^2 m0)``."""
    x = dataset(ds)
    gram = depth * (x @ x.T) / (a * a * x.shape[1])
    k = eoc_ntk.kernel(x, depth=depth, a=a, b=0.0)
    d = np.diag(gram)
    assert_kernel_close(k, gram, d, d, rtol=1e-13, what=f"b=0, a={a}")


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("ds", ["random", "norms", "structured"])
def test_depth_one_is_scaled_gram(act, ds):
    """``l = 1``: ``K = <x, x'> / ((a^2 + b^2) m0)`` (and NNGP = NTK)."""
    a, b = ACTIVATIONS[act]
    x = dataset(ds)
    gram = (x @ x.T) / ((a * a + b * b) * x.shape[1])
    d = np.diag(gram)
    for kind in ("ntk", "nngp"):
        assert_kernel_close(eoc_ntk.kernel(x, depth=1, a=a, b=b, kind=kind), gram, d, d, rtol=1e-13)


@pytest.mark.parametrize("act", ["relu", "abs", "delta_0.1", "linear"])
def test_depth_one_rank_at_most_m0(act):
    a, b = ACTIVATIONS[act]
    x = np.random.default_rng(8).standard_normal((7, 3))
    spec = eoc_ntk.spectrum(x, depth=1, a=a, b=b)
    assert spec.singular and spec.condition_number == math.inf
    assert np.sum(spec.eigenvalues > 1e-12 * spec.lambda_max) == 3


def _theta2(t: float, delta: float) -> float:
    rho2 = math.cos(t) + delta * (2 / math.pi) * (math.sin(t) - t * math.cos(t))
    return rho2 + math.cos(t) * (1 - 2 * delta * t / math.pi)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("t", [0.0, 1e-7, 0.3, math.pi / 2, 2.0, math.pi - 1e-6, math.pi])
def test_depth_two_formula(act, t):
    """``l = 2``, unit inputs at angle t: ``theta_2 = rho_2 + cos(t) (1 - 2 Delta t / pi)``."""
    a, b = ACTIVATIONS[act]
    x = unit_pair(t)
    q = 1.0 / ((a * a + b * b) * 2)        # |x|^2 / ((a^2+b^2) m0)
    k = eoc_ntk.kernel(x, depth=2, a=a, b=b)
    delta = delta_of(a, b)
    # The float pair's true angle differs from t by ~1e-16, theta_2 by as little.
    assert math.isclose(k[0, 1] / q, _theta2(t, delta), rel_tol=0, abs_tol=1e-14)
    assert math.isclose(k[0, 0] / q, 2.0, rel_tol=1e-15)


# docs/math.md §6: ReLU, unit inputs, theta_l at 90 degrees and at arccos(0.9), as printed there.
TABLE = [
    (math.pi / 2, 2, "0.3183099"), (math.pi / 2, 10, "3.1559474"), (math.pi / 2, 50, "14.357364"),
    (math.acos(0.9), 2, "1.6803287"), (math.acos(0.9), 10, "5.8134442"), (math.acos(0.9), 50, "17.485119"),
]


@pytest.mark.parametrize("angle, depth, printed", TABLE)
def test_reference_values_table(angle, depth, printed):
    """Both the core and the 50-digit reference reproduce the printed digits."""
    half_ulp = 0.5 * 10.0 ** -(len(printed.split(".")[1]))
    x = unit_pair(angle)         # a = b = 1/2: q = |x|^2 / (0.5 * 2) = 1
    k = eoc_ntk.kernel(x, depth=depth, a=0.5, b=0.5)
    assert abs(k[0, 1] - float(printed)) <= half_ulp
    exact = MP.acos(0) if angle == math.pi / 2 else MP.acos(MP.mpf("0.9"))
    assert abs(float(ref_theta_unit(exact, depth, 0.5, 0.5)) - float(printed)) <= half_ulp
    # The core on the float pair agrees with the reference at the exact angle to ~1e-15.
    assert math.isclose(k[0, 1], float(ref_theta_unit(exact, depth, 0.5, 0.5)), rel_tol=1e-13)


# --- depth limit (docs/math.md §5) ---------------------------------------------------------------

def _limit_matrix(x, a, b):
    q = np.sum(x * x, axis=1) / ((a * a + b * b) * x.shape[1])
    s = np.sqrt(q)
    return 0.75 * np.diag(q) + 0.25 * np.outer(s, s), s


def _min_angle(x):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = np.clip(u @ u.T, -1.0, 1.0)
    return float(np.min(np.arccos(cos)[np.triu_indices(len(x), 1)]))


def _limit_error_bound(depth, delta, alpha_min):
    """Bound on ``max |theta_l / l - 1/4|`` off the diagonal, from docs/math.md §5's derivation.

    ``theta_l ~ 3 pi / (8 Delta alpha_l)`` with ``1/alpha_l = 1/alpha_1 + 2 Delta (l-1)/(3 pi) + O(log l)``,
    so ``theta_l - l/4 = 3 pi / (8 Delta alpha_1) + O(log l)``. The bound below takes that
    leading term plus ``1 + log l``; measured values stay within 80% of it for Delta in
    [0.1, 1], depths 100..10000 (e.g. Delta = 0.1, l = 4000: 26.7 / l against 35 / l).
    """
    return (3 * math.pi / (8 * delta * alpha_min) + 1.0 + math.log(depth)) / depth


@pytest.mark.parametrize("delta", [0.25, 1.0])
def test_depth_limit_matrix(delta):
    """``K * n / l`` (the paper's K/n times n/l) tends to ``(3/4) diag(q) + (1/4) s s^T``."""
    a, b = math.sqrt(1 - delta), math.sqrt(delta)
    x = np.random.default_rng(7).standard_normal((6, 4))
    limit, s = _limit_matrix(x, a, b)
    assert np.allclose(eoc_ntk.depth_limit_matrix(x, a=a, b=b), limit, rtol=1e-14, atol=0)
    alpha_min = _min_angle(x)
    errors = []
    for depth in (100, 1000, 4000):
        k = eoc_ntk.kernel(x, depth=depth, a=a, b=b) / depth
        err = np.max(np.abs(k - limit) / np.outer(s, s))
        assert err <= _limit_error_bound(depth, delta, alpha_min), (depth, err)
        assert np.allclose(np.diag(k), np.diag(limit), rtol=1e-13)     # theta_l(0) = l exactly
        errors.append(err)
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.slow
@pytest.mark.parametrize("delta", [0.1, 0.5])
def test_depth_limit_matrix_deep(delta):
    a, b = math.sqrt(1 - delta), math.sqrt(delta)
    x = np.random.default_rng(7).standard_normal((6, 4))
    limit, s = _limit_matrix(x, a, b)
    k = eoc_ntk.kernel(x, depth=10_000, a=a, b=b) / 10_000
    err = np.max(np.abs(k - limit) / np.outer(s, s))
    assert err <= _limit_error_bound(10_000, delta, _min_angle(x))


@pytest.mark.parametrize("delta", [0.25, 1.0])
def test_condition_number_tends_to_n_plus_3_over_3(delta):
    """Equal norms: ``cond -> (n + 3) / 3``, inside the Weyl interval of the limit bound.

    With ``K/l = M + E``, ``|E_ij| <= bound * q`` (equal norms), so ``||E||_2 <= n bound q`` and
    the eigenvalues of ``K/l`` lie within that of those of ``M``: ``3q/4`` (n-1 times) and
    ``(3/4 + n/4) q``.
    """
    a, b = math.sqrt(1 - delta), math.sqrt(delta)
    n = 8
    x = random_unit_rows(n, 5, seed=11)
    q = 1.0 / ((a * a + b * b) * 5)
    depths = [100, 1000, 4000]
    sweep = eoc_ntk.depth_sweep(x, depths=depths, a=a, b=b)
    assert list(sweep.depths) == depths
    assert math.isclose(sweep.limit_condition_number, (n + 3) / 3, rel_tol=1e-12)
    assert math.isclose(eoc_ntk.limit_condition_number(x, a=a, b=b), (n + 3) / 3, rel_tol=1e-12)
    alpha_min = _min_angle(x)
    gaps = []
    for depth, cond in zip(depths, sweep.condition_number, strict=True):
        eps = n * _limit_error_bound(depth, delta, alpha_min) * q
        lo = ((0.75 + n / 4) * q - eps) / (0.75 * q + eps)
        hi = ((0.75 + n / 4) * q + eps) / max(0.75 * q - eps, 1e-300)
        assert lo <= cond <= hi, (depth, lo, cond, hi)
        gaps.append(abs(cond - (n + 3) / 3))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] / ((n + 3) / 3) < 0.01


def _mp_limit_condition_number(x, a, b):
    """cond of (3/4) diag(q) + (1/4) s s^T by a 50-digit eigen-solve (resolves cond up to ~1e40)."""
    m0 = x.shape[1]
    q = [MP.fsum(MP.mpf(float(v)) ** 2 for v in row) / ((MP.mpf(a) ** 2 + MP.mpf(b) ** 2) * m0) for row in x]
    s = [MP.sqrt(v) for v in q]
    n = len(q)
    m = [[(MP.mpf(3) / 4 * q[i] if i == j else 0) + s[i] * s[j] / 4 for j in range(n)] for i in range(n)]
    ev = ref_eigenvalues(m)
    return float(ev[-1] / ev[0])


@pytest.mark.parametrize("x", [
    pytest.param(np.random.default_rng(7).standard_normal((6, 4)), id="random6x4"),
    pytest.param(np.array([[1.0, 0.0], [0.0, 2.0]]), id="norms-1-2"),
    # Nearly equal norms (e.g. normalised data with noise): the two smallest q differ by 2%.
    pytest.param(np.array([[1.0, 0.0], [0.0, 1.01]]), id="norms-1-1.01"),
    pytest.param(np.array([[1.0, 0.0, 0.0], [0.0, 1.0 + 1e-9, 0.0], [0.0, 0.0, 3.0]]), id="norms-1-1+1e-9-3"),
    # A nearly opposite pair has nearly equal norms too.
    pytest.param(np.array([[1.0, 0.5, -2.0], [-1.0, -0.5, 2.0 + 1e-12], [0.3, 1.0, 0.0]]), id="near-opposite"),
    # Norms ten orders of magnitude apart.
    pytest.param(np.array([[1e-10, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 2.0]]), id="norms-1e-10-1"),
])
def test_limit_condition_number_unequal_norms(x):
    expected = _mp_limit_condition_number(x, 0.5, 0.5)
    assert math.isclose(eoc_ntk.limit_condition_number(x, a=0.5, b=0.5), expected, rel_tol=1e-10)
    sweep = eoc_ntk.depth_sweep(x, depths=[5], a=0.5, b=0.5)
    assert math.isclose(sweep.limit_condition_number, expected, rel_tol=1e-10)


def test_limit_undefined_for_linear_and_bias():
    x = np.random.default_rng(7).standard_normal((4, 4))
    assert eoc_ntk.depth_sweep(x, depths=[3], a=1.0, b=0.0).limit_condition_number is None
    assert eoc_ntk.depth_sweep(x, depths=[3], a=0.5, b=0.5, sigma_b=0.1).limit_condition_number is None
    with pytest.raises(ValueError, match="Delta"):
        eoc_ntk.limit_condition_number(x, a=1.0, b=0.0)


# docs/math.md §5: 50 random unit vectors in R^20, depth 100: cond 25.1, 21.5, 20.1, 19.5 for
# Delta = 0.1, 0.25, 0.5, 1 (limit 17.67). The printed values depend on the sample; over
# seeds 0..3 they vary by at most 1.3% (e.g. 24.87..25.42 for Delta = 0.1), hence 3%.
MEASURED = [(0.1, 25.1), (0.25, 21.5), (0.5, 20.1), (1.0, 19.5)]


def test_measured_condition_numbers_at_depth_100():
    x = random_unit_rows(50, 20, seed=1)
    conds = []
    for delta, printed in MEASURED:
        spec = eoc_ntk.spectrum(x, depth=100, a=math.sqrt(1 - delta), b=math.sqrt(delta))
        assert math.isclose(spec.condition_number, printed, rel_tol=0.03), (delta, spec.condition_number)
        conds.append(spec.condition_number)
    assert conds == sorted(conds, reverse=True)          # larger Delta converges faster
    assert min(conds) > 53 / 3                            # above the limit (n + 3)/3 = 17.67


def test_linear_condition_number_independent_of_depth():
    x = np.random.default_rng(9).standard_normal((5, 6))
    conds = [eoc_ntk.spectrum(x, depth=d, a=1.0, b=0.0).condition_number for d in (1, 5, 100)]
    assert np.allclose(conds, conds[0], rtol=1e-10)
