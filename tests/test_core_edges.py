"""The core at the edges (issue #17): extreme input scales, chi^(l-1) off the edge of chaos,
the depth limit, near-duplicates, near-antipodal entries, unusual input types, huge depths.

Every value is compared with an independent reference: the 50-digit mpmath recursion of
``tests/_reference`` (exact in the float64 data it is given), closed forms of docs/math.md §3/§5,
dense ``eigvalsh`` of the reference matrix, or a depth-20000 run of the exact recursion.
Each test failed on the code before issue #17 (the reason is in its docstring).
"""
from __future__ import annotations

import functools
import math
import re
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse

import eoc_ntk
from _reference.mp_kernel import ref_kernel, ref_kernel_mp, ref_spectrum
from eoc_ntk.core import eigen as _eigen
from eoc_ntk.core import validation as _validation
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.model import Model

RELU = dict(a=0.5, b=0.5)


def approx(expected, rel):
    """``pytest.approx`` without its default absolute tolerance of 1e-12 (which would hide
    every error in the tiny values these tests are about)."""
    return pytest.approx(expected, rel=rel, abs=0.0)

TINY = float(np.finfo(np.float64).tiny)


def _data(n=8, m0=5, seed=0):
    """Standard normal rows scaled (by a power of two, exactly) so that max |entry| is in [0.5, 1)."""
    x = np.random.default_rng(seed).standard_normal((n, m0))
    _, e = np.frexp(np.abs(x).max())
    return np.ldexp(x, -int(e))


def _ref_cond(x, depth, **settings):
    ev = ref_spectrum(x, depth=depth, **settings)
    return float(ev[-1] / ev[0]), float(ev[0]), float(ev[-1])


# ---------------------------------------------------------------- 1. scale-free inputs

SCALES = [1e-300, 1e-250, 1e-170, 1e-160, 1e-100, 1.0, 1e100, 1e150]
SWEEP_DEPTHS = [1, 2, 5, 40]


@pytest.mark.parametrize("scale", SCALES)
def test_every_documented_input_scale_gives_the_scale_free_answer(scale, monkeypatch):
    """kernel, spectrum ("all" and "extremes"), depth_sweep at input scales 1e-300..1e150.

    The kernel is homogeneous of degree 1 in each input's norm (docs/math.md §3): the answer at
    scale ``s`` is the reference at scale 1 times ``s`` (cross-kernel with unscaled
    inputs) or ``s^2``, and the condition numbers do not change. Before issue #17 norms
    underflowed: cond 20.1346 instead of 20.1176 at 1e-160, "zero input rows" at 1e-170.
    """
    x = _data()
    y = _data(5, 5, seed=1)
    xs = x * scale
    depth = 4
    k_ref = ref_kernel(x, depth=depth, **RELU)
    cross_ref = ref_kernel(x, y, depth=depth, **RELU)
    # Cross-kernel K(s x, y) = s K(x, y): representable at every scale.
    cross = eoc_ntk.kernel(xs, y, depth=depth, **RELU)
    np.testing.assert_allclose(cross / scale, cross_ref, rtol=0, atol=1e-12 * np.abs(cross_ref).max())
    # Square kernel s^2 K(x): computed where float64 holds it, refused by name where it cannot.
    if scale * scale * np.abs(k_ref).max() >= 2.0 ** 53 * TINY:
        k = eoc_ntk.kernel(xs, depth=depth, **RELU)
        np.testing.assert_allclose(k / (scale * scale), k_ref, rtol=0, atol=1e-12 * np.abs(k_ref).max())
    elif scale * scale * np.abs(k_ref).max() < TINY:
        with pytest.raises(InvalidParameterError, match="below 2.2e-308") as err:
            eoc_ntk.kernel(xs, depth=depth, **RELU)
        assert err.value.param == "x"
    cond, lmin, lmax = _ref_cond(x, depth, **RELU)
    monkeypatch.setattr(_eigen, "DENSE_BELOW", 3)   # the certified fast path at n = 8
    for mode in ("all", "extremes"):
        spec = eoc_ntk.spectrum(xs, depth=depth, eigenvalues=mode, **RELU)
        assert not spec.singular and spec.zero_rows == ()
        assert spec.condition_number == approx(cond, rel=1e-11), mode
        if mode == "extremes":
            assert spec.method == "lanczos" and spec.lambda_min_error >= _eigen.RTOL_CERTIFY
        if scale * scale * lmin >= TINY:     # the eigenvalues themselves, where representable
            assert spec.lambda_min == approx(lmin * scale * scale, rel=1e-9)
            assert spec.lambda_max == approx(lmax * scale * scale, rel=1e-12)
    sweep = eoc_ntk.depth_sweep(xs, depths=SWEEP_DEPTHS, **RELU)
    assert sweep.singular[0] and not sweep.singular[1:].any()   # depth 1: rank <= m0 = 5 < 8
    for i, d in enumerate(SWEEP_DEPTHS[1:], start=1):
        assert sweep.condition_number[i] == approx(_ref_cond(x, d, **RELU)[0], rel=1e-9), d
    assert sweep.limit_condition_number == approx(
        eoc_ntk.limit_condition_number(x, **RELU), rel=1e-12)


def test_single_tiny_row_cross_kernel_is_representable():
    """One row scaled by 1e-170: its cross-kernel entries are ~1e-170 (representable), not 0."""
    x, y = _data(3, 4, seed=2), _data(4, 4, seed=3)
    xs = x.copy()
    xs[1] *= 1e-170
    got = eoc_ntk.kernel(xs, y, depth=3, **RELU)
    ref = ref_kernel(x, y, depth=3, **RELU)
    np.testing.assert_allclose(got[1] / 1e-170, ref[1], rtol=1e-12)
    np.testing.assert_allclose(got[[0, 2]], ref[[0, 2]], rtol=1e-12)


def test_tiny_inputs_with_a_bias_match_the_reference():
    """sigma_b != 0 is not homogeneous: computed as it is (the bias dominates tiny inputs)."""
    x = _data(4, 3, seed=4) * 1e-300
    settings = dict(RELU, sigma_b=0.3)
    got = eoc_ntk.kernel(x, depth=3, **settings)
    ref = ref_kernel(x, depth=3, **settings)
    np.testing.assert_allclose(got, ref, rtol=1e-13)


# ---------------------------------------------------------------- 2. chi^(l-1) off the EOC

def test_chi_below_one_at_depth_1200_keeps_the_edge_of_chaos_condition_number():
    """``K = chi^(l-1) K_EOC`` (docs/math.md §3): sigma_w = 1 (chi = 1/2) at depth 1200 has the EOC
    condition number. Before: ``inf``, "numerically singular: lambda_min = 0"."""
    x = _data(5, 4, seed=5)
    cond, _, _ = _ref_cond(x, 1200, **RELU)
    spec = eoc_ntk.spectrum(x, depth=1200, sigma_w=1.0, **RELU)
    assert not spec.singular
    assert spec.condition_number == approx(cond, rel=1e-10)
    sweep = eoc_ntk.depth_sweep(x, depths=[600, 1200], sigma_w=1.0, **RELU)
    assert not sweep.singular.any()
    assert sweep.condition_number[1] == approx(cond, rel=1e-10)
    # The kernel itself: 2^-1199 * O(1) is below float64: refused naming the depth.
    with pytest.raises(InvalidParameterError, match="chi") as err:
        eoc_ntk.kernel(x, depth=1200, sigma_w=1.0, **RELU)
    assert err.value.param == "depth"


def test_subnormal_chi_power_with_large_inputs_gives_exact_entries():
    """chi = 0.3 at depth 600: chi^599 ~ 1e-313 is subnormal (8 digits lost when formed
    directly), while the entries with inputs ~1e100 are ~1e-110: exact to 1e-12."""
    x = _data(4, 3, seed=6)
    sigma_w = math.sqrt(0.3 / 0.5)
    ref = np.array([[float(v) for v in row] for row in
                    ref_kernel_mp(x, depth=600, sigma_w=sigma_w, **RELU)])
    got = eoc_ntk.kernel(x * 1e100, depth=600, sigma_w=sigma_w, **RELU)
    np.testing.assert_allclose(got / 1e200, ref, rtol=1e-11)


SINGULAR_CASES = {
    "duplicate": lambda x: np.vstack([x, x[:1]]),
    "zero_row": lambda x: np.vstack([x, np.zeros((1, x.shape[1]))]),
    "same_direction": lambda x: np.vstack([x, 3.0 * x[:1]]),
    "near_duplicate_1e-13": lambda x: np.vstack([x, x[:1] * (1.0 + 1e-13 * np.arange(1, x.shape[1] + 1))]),
    "rank_bound": lambda x: x,
}


@pytest.mark.parametrize("case", list(SINGULAR_CASES))
@pytest.mark.parametrize("sigma_w", [None, 1.0, 1.6])
@pytest.mark.parametrize("act", [(0.5, 0.5), (0.0, 1.0), (0.3, 0.7)])
def test_singular_always_comes_with_a_reason(case, sigma_w, act):
    """``singular`` implies a ``singular_reason`` in spectrum and depth_sweep. Before issue #17
    depth_sweep reported ``singular_reason = None`` for numerically singular depths."""
    x = SINGULAR_CASES[case](_data(6, 4, seed=7))
    settings = dict(a=act[0], b=act[1], sigma_w=sigma_w)
    depths = [1, 2, 3, 30] + ([1200] if sigma_w == 1.0 else [])
    for depth in (1, 3):
        spec = eoc_ntk.spectrum(x, depth=depth, **settings)
        assert not spec.singular or (isinstance(spec.singular_reason, str) and spec.singular_reason), (depth, spec)
    sweep = eoc_ntk.depth_sweep(x, depths=depths, **settings)
    if sweep.singular.any():
        assert isinstance(sweep.singular_reason, str) and sweep.singular_reason
    if case == "rank_bound":
        assert sweep.singular[0] and not sweep.singular[1:].any()


# ---------------------------------------------------------------- 3. extremes at any scale

@pytest.mark.parametrize("scale", [1e21, 1e-30])
def test_extremes_work_where_the_float32_copy_would_overflow(scale, monkeypatch):
    """Inputs ~1e21 put K/n above float32's range: the fast path's float32 copy held inf and
    SciPy raised. Compared with dense eigvalsh of the (rounded) 50-digit reference matrix."""
    monkeypatch.setattr(_eigen, "DENSE_BELOW", 3)
    x = _data(12, 4, seed=8)
    ref = np.linalg.eigvalsh(ref_kernel(x, depth=3, **RELU) / 12)
    spec = eoc_ntk.spectrum(x * scale, depth=3, eigenvalues="extremes", **RELU)
    assert spec.condition_number == approx(ref[-1] / ref[0], rel=1e-9)
    assert spec.lambda_max == approx(ref[-1] * scale * scale, rel=1e-12)
    sweep = eoc_ntk.depth_sweep(x * scale, depths=[2, 3], **RELU)
    assert sweep.condition_number[1] == approx(ref[-1] / ref[0], rel=1e-9)
    # The solver itself, given an unscaled matrix beyond float32: certified, not a crash.
    k = ref_kernel(x, depth=3, **RELU) / 12 * 1e45
    lmin, lmax, method, _ = _eigen.extreme_eigenvalues(k, force_fast=True)
    assert lmin == approx(ref[0] * 1e45, rel=1e-9) and lmax == approx(ref[-1] * 1e45, rel=1e-12)


@pytest.mark.parametrize("error", [ValueError("array must not contain infs or NaNs"), FloatingPointError("overflow"),
                                   ZeroDivisionError("division by zero")])
def test_every_fast_path_failure_falls_back_to_dense(error, monkeypatch):
    """Before: only LinAlgError fell back; SciPy's ValueError escaped to the caller."""
    def broken(*args, **kwargs):
        raise error
    monkeypatch.setattr(_eigen, "_certified_extremes", broken)
    x = _data(6, 3, seed=9)
    ref = np.linalg.eigvalsh(ref_kernel(x, depth=2, **RELU))
    lmin, lmax, method, _ = _eigen.extreme_eigenvalues(ref_kernel(x, depth=2, **RELU), force_fast=True)
    assert method == "dense"
    assert lmin == approx(ref[0], rel=1e-9) and lmax == approx(ref[-1], rel=1e-13)


# ---------------------------------------------------------------- 4. the depth limit per pair

DEEP = 20000


def _unit(n, m0, seed):
    x = np.random.default_rng(seed).standard_normal((n, m0))
    return x / np.linalg.norm(x, axis=1)[:, None]


# Generic rows (norms 0.5..3), plus one special pair per activation: x0 and -2 x0 (antipodal,
# for abs) and x0 and 3 x0 (parallel, for ReLU). The depth-20000 kernel of all rows comes
# from one run of the exact recursion per activation (its cost is the number of layers).
GENERIC = _unit(6, 3, seed=10) * np.array([1.0, 2.0, 0.5, 1.5, 1.0, 3.0])[:, None]
SPECIAL = {(0.0, 1.0): -2.0 * GENERIC[:1], (0.5, 0.5): 3.0 * GENERIC[:1]}


@functools.lru_cache(maxsize=None)
def _deep(act):
    x = np.vstack([GENERIC, SPECIAL[act]])
    return x, eoc_ntk.kernel(x, depth=DEEP, a=act[0], b=act[1])


@pytest.mark.parametrize("act", list(SPECIAL))
def test_depth_limit_of_generic_data_matches_depth_20000(act):
    """Generic pairs: ``theta_l / l -> 1/4``; the limit's condition number is that of K at
    depth 20000 up to the O(1/l) approach (docs/math.md §5: ``theta_l ~ l/4 + 3 pi/(8 Delta alpha)``)."""
    x, k = _deep(act)
    k, x = k[:6, :6], x[:6]
    limit = eoc_ntk.depth_limit_matrix(x, a=act[0], b=act[1])
    np.testing.assert_allclose(k / DEEP, limit, rtol=0, atol=2e-3 * limit.max())
    ev = np.linalg.eigvalsh(k)
    assert eoc_ntk.limit_condition_number(x, a=act[0], b=act[1]) == approx(ev[-1] / ev[0], rel=2e-2)


def test_depth_limit_under_delta_one_with_an_antipodal_pair_is_singular():
    """abs: ``K(x, -x) / l -> q`` (``theta_l(pi) = l``), so the limit is singular. Before:
    ``limit_condition_number = 8.49`` while every depth was ``inf``, and the matrix held q/4."""
    x, k = _deep((0.0, 1.0))
    limit = eoc_ntk.depth_limit_matrix(x, a=0.0, b=1.0)
    assert limit[0, 6] == approx(k[0, 6] / DEEP, rel=1e-12)
    q = np.sum(x * x, axis=1) / 3        # sigma_w^2 |x|^2 / m0 with sigma_w = 1
    assert limit[0, 6] == approx(math.sqrt(q[0] * q[6]), rel=1e-14)
    np.testing.assert_allclose(k[:6, :6] / DEEP, limit[:6, :6], rtol=0, atol=2e-3 * limit.max())
    sweep = eoc_ntk.depth_sweep(x, depths=[10, 100], a=0.0, b=1.0)
    assert sweep.singular.all()
    assert sweep.limit_condition_number == math.inf
    # ReLU (Delta = 1/2): the same pair is generic, theta_l(pi)/l -> 1/4.
    assert math.isfinite(eoc_ntk.limit_condition_number(x, **RELU))


def test_depth_limit_of_parallel_inputs_matches_depth_20000():
    """x and 3x: ``theta_l(0) = l``, the limit entry is ``sqrt(q q')`` and the limit singular."""
    x, k = _deep((0.5, 0.5))
    limit = eoc_ntk.depth_limit_matrix(x, **RELU)
    assert limit[0, 6] == approx(k[0, 6] / DEEP, rel=1e-12)
    assert eoc_ntk.limit_condition_number(x, **RELU) == math.inf


def test_depth_limit_of_inputs_1e8_apart_is_the_closed_form():
    """Distinct inputs 1e-8 apart are generic in the limit: equal norms give ``(n + 3) / 3``.
    Before: ``inf`` (they were taken for duplicates). (At depth 20000 that pair is still far
    from its limit: it needs ``l >> 3 pi / (2 Delta alpha)`` ~ 1e9 layers.)"""
    x = _unit(8, 4, seed=13)
    x[1] = x[0] + 1e-8 * np.array([0.3, -0.5, 0.2, 0.4])
    x[1] /= np.linalg.norm(x[1])
    assert eoc_ntk.limit_condition_number(x, **RELU) == approx(11.0 / 3.0, rel=1e-12)
    limit = eoc_ntk.depth_limit_matrix(x, **RELU)
    assert limit[0, 1] == approx(0.25 * math.sqrt(limit[0, 0] * limit[1, 1]), rel=1e-15)


# ---------------------------------------------------------------- 5. kind="angle" and zero rows

def test_angle_kind_refuses_zero_rows_by_name():
    """Before: a made-up angle (0.8217 rad at depth 5, even on the diagonal)."""
    x = _data(4, 3, seed=14)
    x[2] = 0.0
    with pytest.raises(InvalidParameterError, match=r"rows \[2\]") as err:
        eoc_ntk.kernel(x, depth=5, kind="angle", **RELU)
    assert err.value.param == "x"
    with pytest.raises(InvalidParameterError, match=r"rows \[2\]") as err:
        eoc_ntk.kernel(_data(3, 3, seed=15), x, depth=5, kind="angle", **RELU)
    assert err.value.param == "x2"
    # With a bias every input has an angle: defined and computed.
    got = eoc_ntk.kernel(x, depth=5, kind="angle", sigma_b=0.2, **RELU)
    ref = ref_kernel(x, depth=5, kind="angle", sigma_b=0.2, **RELU)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- 6. lambda_min_error

@pytest.mark.parametrize("apart", [1e-6, 1e-7, 1e-8, 1e-9, 1e-10])
def test_lambda_min_error_bounds_the_true_error_without_being_vacuous(apart):
    """Near-duplicates lose accuracy in lambda_min (1.2e-5 relative 1e-10 apart); the
    estimate must exceed the true error (vs the 50-digit reference) and be within 1e3x of it."""
    rng = np.random.default_rng(16)
    x = rng.standard_normal((8, 5))
    x[1] = x[0] + apart * np.linalg.norm(x[0]) / math.sqrt(5) * rng.standard_normal(5)
    spec = eoc_ntk.spectrum(x, depth=4, **RELU)
    ref = float(ref_spectrum(x, depth=4, **RELU)[0])
    true = abs(spec.lambda_min - ref) / ref
    assert not spec.singular
    assert true < spec.lambda_min_error < 1e3 * max(true, 1e-15), (true, spec.lambda_min_error)
    out = eoc_ntk.analyze(x, Model(4, 0.5, 0.5))
    assert out["lambda_min_error"] == approx(spec.lambda_min_error, rel=1e-6)


def test_lambda_min_error_is_small_on_ordinary_data_and_none_when_singular():
    x = _data(8, 5, seed=17)
    spec = eoc_ntk.spectrum(x, depth=4, **RELU)
    ref = float(ref_spectrum(x, depth=4, **RELU)[0])
    assert abs(spec.lambda_min - ref) / ref < spec.lambda_min_error < 1e-12
    dup = eoc_ntk.spectrum(np.vstack([x, x[:1]]), depth=4, **RELU)
    assert dup.lambda_min_error == math.inf and dup.to_dict()["lambda_min_error"] is None


# ---------------------------------------------------------------- 7. near-duplicate reason

def test_singular_reason_for_near_duplicates_says_how_far_apart():
    """Inputs 1e-13 apart are distinct: not "pointing the same way", not "proportional rows"."""
    x = _data(20, 4, seed=18)
    x[1] = x[0] * (1.0 + 1e-13 * np.array([1.0, -2.0, 1.5, 0.5]))
    spec = eoc_ntk.spectrum(x, depth=3, **RELU)
    assert spec.singular
    reason = spec.singular_reason
    found = re.search(r"inputs 0 and 1 are ([0-9.e+-]+) apart \(relative\)", reason)
    assert found, reason
    # The relative distance, exactly from the data (fractions of the float64 values).
    diff = [Fraction(a) - Fraction(b) for a, b in zip(x[0], x[1], strict=True)]
    dist = math.sqrt(float(sum(d * d for d in diff))) / max(np.linalg.norm(x[0]), np.linalg.norm(x[1]))
    assert float(found.group(1)) == approx(dist, rel=0.5)
    assert "below the resolution of float64" in reason
    assert "same way" not in reason and "proportional" not in reason
    # x and 3x do point the same way: that reason stays.
    y = _data(20, 4, seed=18)
    y[1] = 3.0 * y[0]
    assert "pointing the same way" in eoc_ntk.spectrum(y, depth=3, **RELU).singular_reason


# ---------------------------------------------------------------- 8. ReLU depth 2 near-antipodal

@pytest.mark.parametrize("beta", [1e-3, 1e-6, 1e-9, 1e-12])
def test_relu_depth_two_near_antipodal_entry_keeps_relative_accuracy(beta):
    """``theta_2 ~ -beta/pi`` for ReLU near opposite inputs; ``rho_2`` and ``rho_dot`` used to
    cancel to ~eps absolute (relative error 1.5e-7 at beta = 1e-9, 1.5e-4 at 1e-12).
    Inputs at an exactly representable angle in R^2, so the input angle itself is exact."""
    x = np.array([[1.0, 0.0], [-math.cos(beta), math.sin(beta)]])
    for depth in (2, 3):
        got = eoc_ntk.kernel(x, depth=depth, **RELU)[0, 1]
        ref = ref_kernel(x, depth=depth, **RELU)[0, 1]
        assert got == approx(ref, rel=1e-13), depth


# ---------------------------------------------------------------- 9. input handling

def test_sparse_input_is_densified():
    """Before: a SciPy sparse matrix was reported as "ragged"."""
    x = _data(5, 4, seed=19)
    x[np.abs(x) < 0.1] = 0.0
    assert np.all(np.any(x != 0.0, axis=1)) and np.any(x == 0.0)
    ref = ref_kernel(x, depth=3, **RELU)
    for fmt in (scipy.sparse.csr_matrix, scipy.sparse.coo_matrix, scipy.sparse.csc_array):
        np.testing.assert_allclose(eoc_ntk.kernel(fmt(x), depth=3, **RELU), ref, rtol=1e-13, atol=1e-15)
    spec = eoc_ntk.spectrum(scipy.sparse.csr_matrix(x), depth=3, **RELU)
    assert spec.condition_number == approx(_ref_cond(x, 3, **RELU)[0], rel=1e-11)


def test_too_large_sparse_input_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(_validation, "MAX_SPARSE_ENTRIES", 10)
    with pytest.raises(InvalidParameterError, match="sparse") as err:
        eoc_ntk.kernel(scipy.sparse.csr_matrix(np.eye(4)), depth=2, **RELU)
    assert err.value.param == "x"


@pytest.mark.parametrize("bad", [[["1", "2"], ["3", "5"]], [[1.0, "2"], [3.0, 5.0]], np.array([["1", "2"]]),
                                 [[b"1", b"2"]]])
def test_strings_are_refused_even_when_numeric(bad):
    """Before: ``[["1", "2"], ["3", "5"]]`` was converted silently."""
    with pytest.raises(TypeError) as err:
        eoc_ntk.kernel(bad, depth=2, **RELU)
    assert getattr(err.value, "param", "x") == "x" and "x" in str(err.value)
    with pytest.raises(TypeError):
        eoc_ntk.kernel(np.eye(2), bad, depth=2, **RELU)


def test_masked_arrays_with_masked_entries_are_refused():
    """Before: the mask was silently dropped (the hidden values were used)."""
    x = _data(4, 3, seed=20)
    masked = np.ma.masked_array(x, mask=np.zeros_like(x, dtype=bool))
    masked.mask[2, 1] = True
    with pytest.raises(InvalidParameterError, match="masked") as err:
        eoc_ntk.spectrum(masked, depth=3, **RELU)
    assert err.value.param == "x"
    unmasked = np.ma.masked_array(x)
    np.testing.assert_allclose(eoc_ntk.kernel(unmasked, depth=3, **RELU), ref_kernel(x, depth=3, **RELU), rtol=1e-13)


def test_numpy_integers_everywhere_and_typeerror_for_wrong_types():
    """Before: ``output_dim=np.int64(3)`` was refused and ``'3'`` / ``3.0`` raised ValueError."""
    x = _data(4, 3, seed=21)
    spec = eoc_ntk.spectrum(x, depth=np.int64(3), output_dim=np.int64(3), **RELU)
    assert spec.multiplicity == 3 and isinstance(spec.multiplicity, int)
    assert spec.condition_number == approx(_ref_cond(x, 3, **RELU)[0], rel=1e-11)
    assert eoc_ntk.Model(np.int32(2), 0.5, 0.5, output_dim=np.uint8(2)).output_dim == 2
    sweep = eoc_ntk.depth_sweep(x, depths=np.array([2, 3], dtype=np.int16), **RELU)
    assert list(sweep.depths) == [2, 3]
    for wrong in ("3", 3.0, None):
        with pytest.raises(TypeError) as err:
            eoc_ntk.spectrum(x, depth=3, output_dim=wrong, **RELU)
        assert err.value.param == "output_dim"
    with pytest.raises(TypeError):
        eoc_ntk.kernel(x, depth="3", **RELU)


# ---------------------------------------------------------------- 10. MAX_DEPTH

def test_depth_above_max_depth_is_refused_by_name():
    """Before: ``kernel(np.eye(2), depth=10**9)`` ran without end."""
    assert eoc_ntk.MAX_DEPTH == 100_000
    for call in (lambda: eoc_ntk.kernel(np.eye(2), depth=10 ** 9, **RELU),
                 lambda: eoc_ntk.spectrum(np.eye(2), depth=eoc_ntk.MAX_DEPTH + 1, **RELU),
                 lambda: eoc_ntk.Model(10 ** 9, 0.5, 0.5)):
        with pytest.raises(InvalidParameterError, match="MAX_DEPTH") as err:
            call()
        assert err.value.param == "depth"
    with pytest.raises(InvalidParameterError, match="MAX_DEPTH") as err:
        eoc_ntk.depth_sweep(np.eye(2), depths=[3, 10 ** 9], **RELU)
    assert err.value.param == "depths"
    # MAX_DEPTH itself is accepted (computing it takes the exact recursion ~1 minute here).
    assert eoc_ntk.Model(eoc_ntk.MAX_DEPTH, 0.5, 0.5).depth == eoc_ntk.MAX_DEPTH
    assert eoc_ntk.Model(np.int64(eoc_ntk.MAX_DEPTH), 0.5, 0.5).depth == eoc_ntk.MAX_DEPTH


@pytest.mark.parametrize("scale, sigma_b, depth, refused", [
    (1.0, 1e76, 3, None), (1.0, 1e75, 40, None), (1e76, 1.0, 3, None),   # variances below 1e153: computed
    (1.0, 1e78, 3, "sigma_b"), (1.0, 4e149, 40, "sigma_b"), (1e78, 1.0, 3, "x"), (1e100, 1e60, 3, "x"),
])
def test_a_bias_whose_variances_square_past_float64_is_refused_or_exact(scale, sigma_b, depth, refused):
    """With sigma_b > 0 the recursion multiplies two layer variances: where they pass 1e153 the
    core refuses (naming sigma_b or x), never answers NaN or a wrong number; below, the kernel is
    the reference's."""
    x = _data(3, 2, seed=5) * scale
    settings = dict(RELU, sigma_b=sigma_b)
    if refused is not None:
        with pytest.raises(InvalidParameterError, match="1e154") as info:
            eoc_ntk.kernel(x, depth=depth, **settings)
        assert info.value.param == refused
        return
    got = eoc_ntk.kernel(x, depth=depth, **settings)
    np.testing.assert_allclose(got, ref_kernel(x, depth=depth, **settings), rtol=1e-12)
