"""Invariances of docs/math.md §3, run as shared checks over one list of cases (as sklearn does).

Each check is one test function parametrised over every (activation, hyperparameters,
dataset) case, looping over a few depths; none needs the reference, only the core itself.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import eoc_ntk
from _reference.checks import check_psd, check_symmetric, scaled_error
from _reference.data import ACTIVATIONS, HYPERS, dataset

INV_DEPTHS = (1, 3, 30)
INV_SETS = ("random", "near_opposite", "structured")
NUMERIC_SETS = ("random", "near_parallel_1e-6", "near_opposite", "norms", "structured")


def _cases(hypers, sets):
    return [pytest.param(act, hyper, ds, id=f"{act}-{hyper}-{ds}")
            for act in ACTIVATIONS for hyper in hypers for ds in sets]


CASES = _cases(("eoc", "bias"), INV_SETS)
CASES_ALL_HYPERS = _cases(("eoc", "off_eoc", "bias"), INV_SETS)
CASES_NO_BIAS = _cases(("eoc", "off_eoc"), INV_SETS)
CASES_NUMERIC = _cases(("eoc", "bias"), NUMERIC_SETS)
TOL = 1e-13


def _settings(act, hyper, **over):
    a, b = ACTIVATIONS[act]
    sigma_w, sigma_b = HYPERS[hyper](a, b)
    out = dict(a=a, b=b, sigma_w=sigma_w, sigma_b=sigma_b)
    out.update(over)
    return out


def _kinds(settings, x=None):
    kinds = ["ntk", "nngp", "angle"]
    if x is not None and settings["sigma_b"] == 0.0 and not np.all(np.any(x != 0.0, axis=1)):
        kinds.remove("angle")  # undefined for zero rows: refused by name (tests/test_core_edges.py)
    if settings["sigma_b"] == 0.0 and settings["b"] != 0.0:
        kinds.append("icd")
    return kinds


def _assert_same(actual, expected, kind, tol=TOL, what=""):
    """Equality up to ``tol`` on the scale of each entry (absolute + relative for angles)."""
    assert actual.shape == expected.shape
    if kind == "angle":
        ok = np.abs(actual - expected) <= tol * expected + 1e-14
    elif kind == "icd":
        ok = np.isclose(actual, expected, rtol=1e-9, atol=0.0)    # ~1/angle: see checks.py
    else:
        d = np.abs(np.diag(expected)) if expected.shape[0] == expected.shape[1] else None
        if d is None:
            ok = np.abs(actual - expected) <= tol * np.abs(expected).max()
        else:
            ok = scaled_error(actual, expected, d, d) <= tol
    assert ok.all(), f"{what} kind={kind}: differs at {np.argwhere(~ok).tolist()}\n{actual}\n{expected}"


@pytest.mark.parametrize("act, hyper, ds", CASES)
def test_symmetric_psd_and_cross_form(act, hyper, ds):
    """K is symmetric and PSD, and ``K(X) == K(X, X)``."""
    x = dataset(ds)
    s = _settings(act, hyper)
    for depth in INV_DEPTHS:
        for kind in _kinds(s, x):
            k = eoc_ntk.kernel(x, depth=depth, kind=kind, **s)
            k2 = eoc_ntk.kernel(x, x, depth=depth, kind=kind, **s)
            if kind in ("ntk", "nngp"):
                check_symmetric(k)
                check_psd(k)
            else:
                assert np.array_equal(k, k.T) or np.allclose(k, k.T, rtol=1e-13, atol=1e-15)
            if kind == "angle":
                # A (nonzero) point and itself: angle 0. The angle to a zero input is
                # undefined (no convention in the contract): not compared.
                nz = np.linalg.norm(x, axis=1) > 0
                assert np.all(np.diag(k2)[nz] <= 1e-7)
                k, k2 = k[np.ix_(nz, nz)], k2[np.ix_(nz, nz)]
            _assert_same(k2, k, kind, what=f"K(X,X) vs K(X), l={depth}")


@pytest.mark.parametrize("act, hyper, ds", CASES_NO_BIAS)
def test_diagonal_is_depth_times_q(act, hyper, ds):
    """``K(x, x) = l q chi^(l-1)`` with ``q = sigma_w^2 |x|^2 / m0`` (docs/math.md §3, sigma_b = 0)."""
    x = dataset(ds)
    s = _settings(act, hyper)
    a, b = s["a"], s["b"]
    sw2 = 1.0 / (a * a + b * b) if s["sigma_w"] is None else s["sigma_w"] ** 2
    chi = sw2 * (a * a + b * b)
    q = sw2 * np.sum(x * x, axis=1) / x.shape[1]
    for depth in INV_DEPTHS:
        k = eoc_ntk.kernel(x, depth=depth, **s)
        assert np.allclose(np.diag(k), depth * q * chi ** (depth - 1), rtol=1e-13, atol=0.0)
        nngp = eoc_ntk.kernel(x, depth=depth, kind="nngp", **s)
        assert np.allclose(np.diag(nngp), q * chi ** (depth - 1), rtol=1e-13, atol=0.0)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("ds", ("random", "structured"))
@pytest.mark.parametrize("c", [0.1, 3.7])
def test_activation_scaling_scales_kernel(act, ds, c):
    """``(a, b) -> (c a, +-c b)`` at the default (EOC) sigma_w: K / c^2, eigenvalues / c^2, same cond."""
    x = dataset(ds)
    a, b = ACTIVATIONS[act]
    for depth in INV_DEPTHS:
        base = eoc_ntk.kernel(x, depth=depth, a=a, b=b)
        for sign in (1.0, -1.0):
            k = eoc_ntk.kernel(x, depth=depth, a=c * a, b=sign * c * b)
            _assert_same(k * c * c, base, "ntk", tol=1e-13, what=f"c={c} sign={sign} l={depth}")
            angle = ("angle",) if np.all(np.any(x != 0.0, axis=1)) else ()  # refused for zero rows
            for kind in angle + (("icd",) if b else ()):
                factor = 1.0 if kind == "angle" else c * c
                _assert_same(eoc_ntk.kernel(x, depth=depth, a=c * a, b=sign * c * b, kind=kind) * factor,
                             eoc_ntk.kernel(x, depth=depth, a=a, b=b, kind=kind), kind)
    if ds == "random":      # regular spectra: eigenvalues scale, cond unchanged
        for depth in INV_DEPTHS:
            s0 = eoc_ntk.spectrum(x, depth=depth, a=a, b=b)
            s1 = eoc_ntk.spectrum(x, depth=depth, a=c * a, b=-c * b)
            assert s0.singular == s1.singular
            assert np.allclose(s1.eigenvalues * c * c, s0.eigenvalues, rtol=1e-9, atol=1e-13 * s0.lambda_max)
            if not s0.singular:
                assert math.isclose(s1.condition_number, s0.condition_number, rel_tol=1e-9 * s0.condition_number)


@pytest.mark.parametrize("act, hyper, ds", CASES_ALL_HYPERS)
def test_sign_flips_change_nothing(act, hyper, ds):
    """The kernels depend on a^2 and b^2 only (any sigma_w, sigma_b)."""
    x = dataset(ds)
    s = _settings(act, hyper)
    for depth in INV_DEPTHS:
        for kind in _kinds(s, x):
            base = eoc_ntk.kernel(x, depth=depth, kind=kind, **s)
            for sa, sb in ((-1, 1), (1, -1), (-1, -1)):
                flipped = dict(s, a=sa * s["a"], b=sb * s["b"])
                _assert_same(eoc_ntk.kernel(x, depth=depth, kind=kind, **flipped), base, kind, tol=1e-15)


@pytest.mark.parametrize("act, hyper, ds", _cases(("eoc", "off_eoc"), NUMERIC_SETS))
def test_norm_scaling(act, hyper, ds):
    """``K(c_i x_i, c_j x_j) = c_i c_j K(x_i, x_j)`` for c > 0 (sigma_b = 0); angles unchanged.

    Not for the ICD entries of ``structured``: rounding ``c x`` breaks the exact parallelism
    of its rows, where the ICD entry is undefined (docs/math.md §5).
    """
    x = dataset(ds)
    c = np.array([0.3, 7.0, 1.0, 2.5, 1e-2, 40.0])[: x.shape[0]]
    s = _settings(act, hyper)
    for depth in INV_DEPTHS:
        for kind in _kinds(s, x):
            if kind == "icd" and ds == "structured":
                continue
            base = eoc_ntk.kernel(x, depth=depth, kind=kind, **s)
            k = eoc_ntk.kernel(c[:, None] * x, depth=depth, kind=kind, **s)
            expected = base if kind == "angle" else base * np.outer(c, c)
            _assert_same(k, expected, kind, tol=1e-12, what=f"l={depth}")


@pytest.mark.parametrize("act, hyper, ds", CASES_NUMERIC)
def test_rotation_invariance(act, hyper, ds):
    x = dataset(ds)
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((x.shape[1], x.shape[1])))
    s = _settings(act, hyper)
    near_parallel = ds == "near_parallel_1e-6"
    for depth in INV_DEPTHS:
        for kind in _kinds(s, x):
            base = eoc_ntk.kernel(x, depth=depth, kind=kind, **s)
            k = eoc_ntk.kernel(x @ q, depth=depth, kind=kind, **s)
            # Rotating rounds the data: angles move by ~1e-16 absolutely, which is 1e-10
            # relatively for the ICD entries (~1/angle) of inputs 1e-6 apart.
            if kind == "icd" and near_parallel:
                assert np.allclose(k, base, rtol=1e-8, atol=0.0)
            else:
                _assert_same(k, base, kind, tol=1e-12, what=f"l={depth}")


@pytest.mark.parametrize("act, hyper, ds", CASES)
def test_permutation_equivariance(act, hyper, ds):
    x = dataset(ds)
    perm = np.random.default_rng(4).permutation(x.shape[0])
    s = _settings(act, hyper)
    for depth in INV_DEPTHS:
        for kind in _kinds(s, x):
            base = eoc_ntk.kernel(x, depth=depth, kind=kind, **s)
            k = eoc_ntk.kernel(x[perm], depth=depth, kind=kind, **s)
            _assert_same(k, base[np.ix_(perm, perm)], kind, tol=1e-14, what=f"l={depth}")


@pytest.mark.parametrize("act", ["relu", "abs", "delta_0.1", "linear"])
def test_spectrum_invariant_under_rotation_and_permutation(act):
    x = dataset("random")
    a, b = ACTIVATIONS[act]
    q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((x.shape[1], x.shape[1])))
    perm = np.array([3, 0, 4, 1, 2])
    for depth in INV_DEPTHS:
        s0 = eoc_ntk.spectrum(x, depth=depth, a=a, b=b)
        for y in (x @ q, x[perm]):
            s1 = eoc_ntk.spectrum(y, depth=depth, a=a, b=b)
            assert np.allclose(s1.eigenvalues, s0.eigenvalues, rtol=0, atol=1e-12 * s0.lambda_max)
            assert math.isclose(s1.condition_number, s0.condition_number, rel_tol=1e-11 * s0.condition_number)
