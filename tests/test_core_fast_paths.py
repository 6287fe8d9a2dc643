"""The performance machinery of issue 4 against independent references.

- :class:`eoc_ntk.core._numerics.depth_kernels.TriangleKernels` (all depths of a sweep from shared powers
  of the interpolation variable) and :func:`eoc_ntk.core._numerics.interp.ensure_depths` (interpolants of
  many depths from one recursion pass) against the 50-digit mpmath recursion.
- :class:`eoc_ntk.core.eigen._FactorSolver` (panel substitution) against LAPACK ``potrs``.
- The solvers read one triangle only; the sweep's warm starts and depth-1 rank shortcut
  against dense ``eigvalsh`` of the exact kernel.
- :mod:`eoc_ntk.core._numerics.blas_threads` restores the BLAS thread counts.
"""
from __future__ import annotations

import math
import threading

import mpmath
import numpy as np
import pytest
import scipy.linalg as sla

import eoc_ntk
from _reference.checks import assert_kernel_close
from _reference.mp_kernel import ref_kernel, ref_theta_unit
from eoc_ntk.core import eigen as _eigen
from eoc_ntk.core import sweep
from eoc_ntk.core._numerics import blas_threads as _blas_threads
from eoc_ntk.core._numerics import interp as _interp
from eoc_ntk.core._numerics.depth_kernels import TriangleKernels
from eoc_ntk.core.angles import pair_u, unit_rows
from eoc_ntk.core.kernels import compute_kernels
from eoc_ntk.core.model import Model

_ACTIVATIONS = {"relu": (0.5, 0.5), "abs": (0.0, 1.0), "leaky": (0.3, 0.9)}


def _awkward_data() -> np.ndarray:
    """Duplicates (also scaled), a zero row, an opposite pair, a near-parallel pair, obtuse angles."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12, 3))
    x[3] = 2.5 * x[7]
    x[5] = 0.0
    x[9] = -x[10]
    x[11] = x[0] + 1e-9 * rng.standard_normal(3)
    return x


def _full_from_upper(k: np.ndarray) -> np.ndarray:
    upper = np.triu(k)
    return upper + np.triu(k, 1).T


def _triangle_matrices(x, a, b, depths):
    model = Model(2, a, b)
    u, r = unit_rows(x)
    uu = pair_u(u, u, diagonal=True)
    weights = np.sqrt(model.sigma_w2 / x.shape[1]) * r
    kernels = TriangleKernels(uu, weights, model.delta, model.chi)
    return {depth: k.copy() for depth, k in kernels.matrices(depths)}


@pytest.mark.parametrize("activation", sorted(_ACTIVATIONS))
def test_triangle_kernels_match_mpmath_reference(activation):
    a, b = _ACTIVATIONS[activation]
    x = _awkward_data()
    depths = [2, 3, 7, 40]
    got = _triangle_matrices(x, a, b, depths)
    for depth in depths:
        k = got[depth]
        assert np.all(np.tril(k, -1) == 0.0), "only the upper triangle and the diagonal are written"
        ref = ref_kernel(x, depth=depth, a=a, b=b)
        d = np.diag(ref)
        assert_kernel_close(_full_from_upper(k), ref, d, d, what=f"{activation} depth {depth}")


@pytest.fixture
def fresh_interpolants():
    """An empty interpolant cache for the test, emptied again after it (no failed intervals leak)."""
    _interp.eoc_interpolant.cache_clear()
    yield
    _interp.eoc_interpolant.cache_clear()


def test_triangle_kernels_send_failed_intervals_to_the_exact_recursion(monkeypatch, fresh_interpolants):
    """With a negative tolerance every interval fails its check: all entries must then come
    from the exact recursion, and still match the reference."""
    monkeypatch.setattr(_interp, "TOLERANCE", -1.0)
    x = _awkward_data()
    got = _triangle_matrices(x, 0.5, 0.5, [2, 9])
    for depth in (2, 9):
        state = _interp.eoc_interpolant(depth, 0.5).state
        assert np.any(state == -1) and not np.any(state == 1)
        ref = ref_kernel(x, depth=depth, a=0.5, b=0.5)
        d = np.diag(ref)
        assert_kernel_close(_full_from_upper(got[depth]), ref, d, d, what=f"exact fallback depth {depth}")


def test_ensure_depths_builds_interpolants_that_match_mpmath(fresh_interpolants):
    rng = np.random.default_rng(3)
    u = np.concatenate([rng.uniform(-30.0, 30.0, 6), [-39.9, -0.01, 0.3, 39.7]])
    intervals = _interp.interval_of(u)
    depths = [2, 5, 30, 31]
    interps = [_interp.eoc_interpolant(d, 0.5) for d in depths]
    _interp.ensure_depths(interps, intervals)
    for interp in interps:
        assert np.all(interp.state[np.unique(intervals)] == 1)
        values, valid = interp.theta(u)
        assert valid.all()
        for ui, value in zip(u, values, strict=True):
            angle = 2 * mpmath.atan(mpmath.exp(mpmath.mpf(float(ui)) / 2))
            expected = float(ref_theta_unit(angle, interp.depth, 0.5, 0.5))
            assert abs(value - expected) <= 1e-12 * interp.depth, (interp.depth, ui, value, expected)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-3)])
def test_factor_solver_matches_lapack_potrs(dtype, rtol):
    """Panel substitution (after the first LAPACK solves) equals ``potrs`` with the same factor."""
    rng = np.random.default_rng(11)
    n = 700  # three panels, the last one partial
    g = rng.standard_normal((n, n))
    k = np.asfortranarray((g @ g.T / n + 0.5 * np.eye(n)).astype(dtype))
    factor, info = (sla.lapack.spotrf if dtype == np.float32 else sla.lapack.dpotrf)(k.copy(order="F"), lower=1,
                                                                                     clean=0)
    assert info == 0
    solve = _eigen._FactorSolver(factor)
    clean = np.tril(factor)
    for call in range(_eigen._DIRECT_SOLVES + 3):
        v = rng.standard_normal(n)
        expected = sla.cho_solve((clean.astype(np.float64), True), v)
        got = solve(v)
        assert got.dtype == np.float64
        assert np.linalg.norm(got - expected) <= rtol * np.linalg.norm(expected), call
    assert solve.inverses is not None, "the panel path must have been used"


def _spd_kernel(n=900, m0=30, depth=6):
    x = np.random.default_rng(5).random((n, m0)) + 0.1 * np.random.default_rng(6).standard_normal((n, m0))
    return compute_kernels(x, None, Model(depth, 0.5, 0.5), ("ntk",))["ntk"] / n


def test_solvers_read_only_the_upper_triangle_of_a_c_ordered_matrix():
    k = _spd_kernel()
    expected = np.linalg.eigvalsh(k)
    garbage = k.copy()
    garbage[np.tril_indices_from(garbage, -1)] = np.nan
    lmin, lmax, method, _ = _eigen.extreme_eigenvalues(garbage, force_fast=True)
    assert method == "lanczos"
    assert math.isclose(lmin, expected[0], rel_tol=1e-9)
    assert math.isclose(lmax, expected[-1], rel_tol=1e-9)
    dense = _eigen.all_eigenvalues(garbage)
    np.testing.assert_allclose(dense[[0, -1]], expected[[0, -1]], rtol=1e-9)
    assert math.isclose(_eigen.largest_eigenvalue(garbage), expected[-1], rel_tol=1e-9)


def test_extremes_fall_back_when_a_shift_guess_is_too_high():
    k = _spd_kernel()
    expected = np.linalg.eigvalsh(k)
    lmin, lmax, method, _ = _eigen.extreme_eigenvalues(k, force_fast=True, lmin_guess=1.5 * expected[0])
    assert method == "lanczos"
    assert math.isclose(lmin, expected[0], rel_tol=1e-9) and math.isclose(lmax, expected[-1], rel_tol=1e-9)


def test_sweep_over_consecutive_depths_matches_dense_eigvalsh(monkeypatch):
    """n = 500 > m0 = 20: depth 1 is singular by rank (lambda_min exactly 0); every other
    depth takes the warm-started certified path, with an extrapolated shift once the previous
    depths agree on one (n >= 500 is the sweep's threshold for it; here from depth 9 on, as at n = 600)."""
    calls = {"rough": 0}
    rough = _eigen._rough_lambda_min

    def counting(*args):
        calls["rough"] += 1
        return rough(*args)

    monkeypatch.setattr(_eigen, "_rough_lambda_min", counting)
    x = np.random.default_rng(9).random((500, 20))
    depths = list(range(1, 13))
    result = eoc_ntk.depth_sweep(x, depths=depths, a=0.5, b=0.5)
    n = x.shape[0]
    assert result.singular[0] and result.lambda_min[0] == 0.0
    assert "rank" in (result.singular_reason or "")
    for i, depth in enumerate(depths):
        eig = np.linalg.eigvalsh(compute_kernels(x, None, Model(depth, 0.5, 0.5), ("ntk",), method="exact")["ntk"] / n)
        assert math.isclose(result.lambda_max[i], eig[-1], rel_tol=1e-9), depth
        if depth > 1:
            assert math.isclose(result.lambda_min[i], eig[0], rel_tol=1e-9), depth
    # Depths 2 and 3 have no usable history (depth 1 is singular); from depth 4 on the
    # extrapolated shift must do (a float32 estimate at most once more).
    assert calls["rough"] <= 3


@pytest.mark.parametrize("depths, values, depth, expect_none", [
    ([1, 2, 3], [1.0, 2.0, 3.0], 4, False),   # linear: the quadratic agrees
    ([4, 5, 6], [1.0, 1.01, 1.0201], 7, False),  # smooth growth
    ([1, 2, 3], [1.0, 2.0, 2.5], 4, True),    # quadratic and linear disagree by more than 2 %
    ([2, 3], [4.0, 4.2], 10, True),           # long step (sparse depths): no guess
    ([1, 2, 3], [0.0, 1.0, 2.0], 4, True),    # geometric 4 vs linear 3: too far apart
    ([1, 2], [1.0, 0.0], 3, True),            # a singular depth just before
])
def test_extrapolated_shift(depths, values, depth, expect_none):
    guess = sweep._extrapolate(depths, values, depth)
    if expect_none:
        assert guess is None
    else:
        assert guess is not None and 0.0 < guess <= values[-1] + (values[-1] - values[-2])


def test_extrapolated_shift_lies_just_below_a_smooth_sequence():
    depths = list(range(10, 40))
    values = [1e-3 * (d + 0.02 * d * d - 2e-4 * d ** 3) for d in depths]  # concave, then convex
    for i in range(3, len(depths) - 1):
        guess = sweep._extrapolate(depths[:i], values[:i], depths[i])
        assert guess is not None
        assert values[i] * (1 - 0.02) < guess < values[i], depths[i]


def test_blas_thread_limit_nests_and_restores():
    before = _blas_threads._current()
    if not before:
        pytest.skip("threadpoolctl sees no BLAS library")
    with pytest.raises(RuntimeError):
        with _blas_threads.one_blas_thread():
            assert _blas_threads._current() == [1] * len(before)
            with _blas_threads.one_blas_thread():
                with _blas_threads.all_blas_threads():
                    assert _blas_threads._current() == before
                    with _blas_threads.one_blas_thread():  # a sweep inside a factorisation's block
                        assert _blas_threads._current() == [1] * len(before)
                    assert _blas_threads._current() == before
                assert _blas_threads._current() == [1] * len(before)
            assert _blas_threads._current() == [1] * len(before)
            raise RuntimeError("boom")
    assert _blas_threads._current() == before
    with _blas_threads.all_blas_threads():  # outside a limit: leaves the counts alone
        assert _blas_threads._current() == before


def test_blas_thread_limit_is_a_no_op_outside_the_main_thread():
    """OpenBLAS ignores thread counts set from other threads: the helper must not touch them there."""
    before = _blas_threads._current()
    seen = []

    def worker():
        with _blas_threads.one_blas_thread():
            seen.append(_blas_threads._current())
            with _blas_threads.all_blas_threads():
                seen.append(_blas_threads._current())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before, before]
    assert _blas_threads._current() == before
