"""Shared assertions: one set of checks that every kernel / spectrum case goes through.

Error measures (why not plain entrywise relative error):

- NTK and NNGP entries are compared relative to ``sqrt(K(x_i,x_i) K(x'_j,x'_j))``, the
  natural scale of entry ``(i, j)`` (Cauchy-Schwarz: ``|K_ij| <= sqrt(K_ii K_jj)``). Plain
  entrywise relative error is meaningless for entries that are 0 or nearly so (orthogonal
  inputs at depth 1, NNGP of nearly orthogonal inputs), and the matrix maximum would hide
  errors in the rows of small-norm inputs (the ``norms`` dataset spans 1e-3..1e3). Where
  the scale is 0 (zero rows without bias) the entry must be exactly 0.
- Angles (``kind="angle"``) are compared with ``|err| <= rtol*alpha + atol``: even an exact
  algorithm on float64 data sees each input only to a relative 1e-16, which moves the
  angle between two inputs by ~1e-16 *absolutely*; the recursion carries that absolute
  error forward without amplification. ``atol = 1e-14`` (~50 ulp of 1 rad) allows for it.
- ICD entries ``~ 1/alpha_l`` inherit the angle's error relatively:
  ``|err| / icd <= rtol + atol / alpha_l``.
"""
from __future__ import annotations

import math

import numpy as np

KERNEL_RTOL = 1e-12
ANGLE_ATOL = 1e-14


def scaled_error(actual: np.ndarray, expected: np.ndarray, diag_rows: np.ndarray,
                 diag_cols: np.ndarray) -> np.ndarray:
    """``|actual - expected| / sqrt(d_i d_j)``, with ``inf`` where the scale is 0 and the entries differ."""
    scale = np.sqrt(np.outer(diag_rows, diag_cols))
    diff = np.abs(actual - expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(scale > 0.0, diff / np.where(scale > 0.0, scale, 1.0),
                       np.where(diff == 0.0, 0.0, np.inf))
    return err


def assert_kernel_close(actual, expected, diag_rows, diag_cols, rtol=KERNEL_RTOL, what=""):
    """NTK / NNGP entries within ``rtol * sqrt(d_i d_j)`` (see module docstring)."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.float64, f"{what}: dtype {actual.dtype}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite entries\n{actual}"
    err = scaled_error(actual, expected, diag_rows, diag_cols)
    worst = np.unravel_index(np.argmax(err), err.shape)
    assert err[worst] <= rtol, (
        f"{what}: scaled error {err[worst]:.3g} > {rtol:g} at {worst}: "
        f"core {actual[worst]!r}, reference {expected[worst]!r}"
    )


def assert_angle_close(actual, expected, mask=None, rtol=KERNEL_RTOL, atol=ANGLE_ATOL, what=""):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    assert np.all(np.isfinite(actual)), f"{what}: non-finite angles\n{actual}"
    assert np.all((actual >= 0.0) & (actual <= math.pi)), f"{what}: angle outside [0, pi]\n{actual}"
    bad = np.abs(actual - expected) > rtol * expected + atol
    if mask is not None:
        bad &= mask
    assert not bad.any(), (
        f"{what}: angles differ at {np.argwhere(bad).tolist()}\ncore\n{actual!r}\nreference\n{expected!r}"
    )


def assert_icd_close(actual, expected, ref_alpha, mask, rtol=KERNEL_RTOL, atol=ANGLE_ATOL, what=""):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    assert np.all(np.isfinite(actual[mask])), f"{what}: non-finite ICD entries\n{actual}"
    tol = np.full(actual.shape, np.inf)
    rel = np.zeros(actual.shape)
    tol[mask] = rtol + atol / ref_alpha[mask]
    rel[mask] = np.abs(actual[mask] - expected[mask]) / np.abs(expected[mask])
    bad = rel > tol
    assert not bad.any(), (
        f"{what}: ICD entries differ at {np.argwhere(bad).tolist()}: rel err {rel[bad]}, tol {tol[bad]}"
    )


def check_symmetric(k: np.ndarray, rtol: float = 1e-15) -> None:
    scale = np.sqrt(np.outer(np.abs(np.diag(k)), np.abs(np.diag(k))))
    assert np.all(np.abs(k - k.T) <= rtol * scale), f"not symmetric:\n{k - k.T}"


def check_psd(k: np.ndarray, rtol: float = 1e-13) -> None:
    ev = np.linalg.eigvalsh(k)
    assert ev[0] >= -rtol * max(abs(ev[-1]), 1e-300), f"not PSD: eigenvalues {ev}"


def check_finite_tree(obj, path="result") -> None:
    """No NaN anywhere in a (nested) result: floats, arrays, tuples, dicts, dataclass fields."""
    if isinstance(obj, float):
        assert not math.isnan(obj), f"NaN at {path}"
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            assert not np.isnan(obj).any(), f"NaN at {path}: {obj}"
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_finite_tree(v, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check_finite_tree(v, f"{path}[{k!r}]")
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            check_finite_tree(getattr(obj, name), f"{path}.{name}")


def check_spectrum_consistent(spec, n: int) -> None:
    """Internal consistency of any ``Spectrum`` (regular or singular)."""
    check_finite_tree(spec, "spectrum")
    assert isinstance(spec.singular, bool)
    assert isinstance(spec.condition_number, float)
    assert isinstance(spec.lambda_min, float) and isinstance(spec.lambda_max, float)
    assert 0.0 <= spec.lambda_min <= spec.lambda_max
    if spec.eigenvalues is not None:
        ev = spec.eigenvalues
        assert ev.shape == (n,) and ev.dtype == np.float64
        assert np.all(np.diff(ev) >= 0.0), f"eigenvalues not ascending: {ev}"
        assert ev[0] == spec.lambda_min and ev[-1] == spec.lambda_max
    if spec.singular:
        assert spec.condition_number == math.inf
        assert isinstance(spec.singular_reason, str) and spec.singular_reason
    else:
        assert spec.singular_reason is None
        assert 1.0 <= spec.condition_number < math.inf
        assert math.isclose(spec.condition_number, spec.lambda_max / spec.lambda_min, rel_tol=1e-15)
