"""Spectra of the paper's normalised NTK matrix ``K / n`` (docs/math.md §5)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eoc_ntk.core._numerics.diagnosis import Diagnosis, diagnose
from eoc_ntk.core._numerics.near_duplicates import near_duplicate_reason
from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.eigen import RTOL_CERTIFY, all_eigenvalues, extreme_eigenvalues
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.jsonsafe import json_float
from eoc_ntk.core.kernels import compute_scaled_kernels
from eoc_ntk.core.model import Model, model_of
from eoc_ntk.core.progress import ProgressFn, report, scaled
from eoc_ntk.core.validation import check_data

__all__ = ["spectrum", "Spectrum", "singular_tolerance", "EIGENVALUE_MODES"]

EIGENVALUE_MODES = ("all", "extremes")


def singular_tolerance(n: int) -> float:
    """Relative tolerance below which ``lambda_min / lambda_max`` counts as zero.

    ``8 * n * eps``: the dense solver's error in ``lambda_min`` is a small multiple of
    ``eps * lambda_max``, so a smaller ratio carries no information.
    """
    return float(8.0 * max(n, 1) * np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Spectrum:
    """Spectrum of ``K / n`` for one model and dataset.

    Attributes
    ----------
    eigenvalues : ndarray of shape (n,) or None
        Ascending eigenvalues of ``K / n`` (None when only the extremes were computed).
        ``K`` is positive semi-definite, so rounding noise below 0 is reported as 0.
    lambda_min, lambda_max : float
        The true values rounded to float64: the spectrum is computed scale-free (the
        kernel divided by a power of two), so ``condition_number`` and ``singular`` hold
        even where these fall below float64's range (e.g. ``chi^(l-1)`` = 2^-1199 at depth
        1200 with chi = 0.5): there they are subnormal or 0 while ``singular`` is False.
    condition_number : float
        ``lambda_max / lambda_min``; ``math.inf`` when singular.
    lambda_min_error : float
        Forward error estimate of ``lambda_min``, relative to it (``inf`` when singular):
        ``2 n eps lambda_max / lambda_min``, Weyl's bound ``||dK||_2 / lambda_min`` for two
        perturbations of size ``n eps ||K||_2``: the dense solver's backward error, and the
        entries' rounding (each entry, including the input angles it is computed from, is
        accurate to a few ulps of the largest entries, and ``||dK||_2 <= n max |dK_ij|``).
        Near-duplicate inputs ``d`` apart (relative) make ``lambda_min`` of order ``d``, so
        the estimate grows like ``eps / d``; measured against the 50-digit reference the
        true error lies 5-500x below it (tests/test_core_edges.py). With ``method="lanczos"``
        the fast path's certified tolerance ``RTOL_CERTIFY`` (1e-9) is added.
    singular : bool
        ``lambda_min <= singular_tolerance(n) * lambda_max`` or a structural cause
        (zero rows, duplicate directions, the abs activation with ``x, -c x``, rank bound).
    singular_reason : str or None
    zero_rows, duplicate_groups, antipodal_pairs : tuples of row indices
        Offending inputs (searched for only when singular).
    trace : float
        ``trace(K / n)``.
    multiplicity : int
        Each eigenvalue's multiplicity in the full ``(n ml) x (n ml)`` NTK (``ml = output_dim``).
    method : str
        ``"dense"`` or ``"lanczos"`` (certified fast path for the extremes).
    """

    lambda_min: float
    lambda_max: float
    condition_number: float
    singular: bool
    trace: float
    n: int
    multiplicity: int = 1
    eigenvalues: np.ndarray | None = field(default=None, repr=False)
    singular_reason: str | None = None
    zero_rows: tuple[int, ...] = ()
    duplicate_groups: tuple[tuple[int, ...], ...] = ()
    antipodal_pairs: tuple[tuple[int, int], ...] = ()
    method: str = "dense"
    tolerance: float = 0.0
    lambda_min_error: float = math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become None)."""
        return {
            "n": self.n,
            "eigenvalues": None if self.eigenvalues is None else [float(v) for v in self.eigenvalues],
            "lambda_min": json_float(self.lambda_min),
            "lambda_max": json_float(self.lambda_max),
            "condition_number": json_float(self.condition_number),
            "singular": self.singular,
            "singular_reason": self.singular_reason,
            "zero_rows": list(self.zero_rows),
            "duplicate_groups": [list(g) for g in self.duplicate_groups],
            "antipodal_pairs": [list(p) for p in self.antipodal_pairs],
            "trace": json_float(self.trace),
            "multiplicity": self.multiplicity,
            "method": self.method,
            "singular_tolerance": self.tolerance,
            "lambda_min_error": json_float(self.lambda_min_error),
        }


def spectrum(x: ArrayLike, *, depth: int, a: float | None = None, b: float | None = None,
             activation: Any = None, sigma_w: float | None = None, sigma_b: float = 0.0,
             output_dim: int = 1, eigenvalues: str = "all", progress: ProgressFn | None = None) -> Spectrum:
    """Eigenvalues and condition number of the paper's NTK matrix ``K / n``.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Inputs, converted to float64.
    depth, a, b, sigma_w, sigma_b, activation : see :func:`eoc_ntk.kernel`.
    output_dim : int
        Output dimension ``ml``: the multiplicity of every eigenvalue.
    eigenvalues : {"all", "extremes"}
        ``"all"``: dense ``syevd``; ``"extremes"``: only ``lambda_min`` and ``lambda_max``,
        by the certified fast path (falls back to the dense solver when it cannot certify
        1e-9 relative accuracy).
    progress : callable, optional
        Called with the completed fraction in [0, 1].

    Returns
    -------
    Spectrum
    """
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, output_dim, where="spectrum")
    x = check_data(x)
    if eigenvalues not in EIGENVALUE_MODES:
        raise InvalidParameterError(f"eigenvalues must be one of {EIGENVALUE_MODES}, got "
                                    f"{eigenvalues!r}", param="eigenvalues")
    kernels, shift = compute_scaled_kernels(x, None, model, ("ntk",), scaled(progress, 0.0, 0.6))
    result = spectrum_of_kernel(kernels["ntk"], x, model, eigenvalues, overwrite=True, shift=shift)
    report(progress, 1.0)
    return result


def spectrum_of_kernel(k: FloatArray, x: FloatArray, model: Model, eigenvalues: str = "all",
                       overwrite: bool = False, v0: FloatArray | None = None, shift: int = 0) -> Spectrum:
    """Spectrum of ``k / n`` for a precomputed unnormalised NTK ``np.ldexp(k, shift)`` of checked data ``x``.

    With ``overwrite`` the caller's ``k`` may be destroyed (saves one n x n copy). ``k`` is
    best given scale-free (:func:`eoc_ntk.core.kernels.compute_scaled_kernels`): the eigenvalues
    are computed from it and multiplied by ``2^shift`` only when reported.
    """
    n = k.shape[0]
    kn = np.divide(k, n, out=k if overwrite else None)
    trace = float(np.trace(kn))
    if eigenvalues == "all":
        eig = np.maximum(all_eigenvalues(kn, overwrite=True), 0.0)
        lmin, lmax, method = float(eig[0]), float(eig[-1]), "dense"
    else:
        eig = None
        lmin, lmax, method, _ = extreme_eigenvalues(kn, v0)
        lmin, lmax = max(lmin, 0.0), max(lmax, 0.0)
    return assemble_spectrum(lmin, lmax, trace, n, x, model, eig, method, shift)


def lambda_min_error_estimate(lmin: float, lmax: float, n: int) -> float:
    """``2 n eps lambda_max / lambda_min``: see :attr:`Spectrum.lambda_min_error` (scale-free)."""
    if not lmin > 0.0:
        return math.inf
    return float(2.0 * n * np.finfo(np.float64).eps * lmax / lmin)


def assemble_spectrum(lmin: float, lmax: float, trace: float, n: int, x: FloatArray, model: Model,
                      eig: FloatArray | None, method: str, shift: int = 0) -> Spectrum:
    tol = singular_tolerance(n)
    singular = not (lmax > 0.0 and lmin > tol * lmax)
    diag = diagnose(x, model) if singular else Diagnosis()
    if singular:
        reason = near_duplicate_reason(x, model, diag, n) or diag.reason(n) or (
            f"numerically singular: lambda_min = {lmin:.3g} <= {tol:.2g} * lambda_max"
        )
    else:
        reason = None
    cond = math.inf if singular else lmax / lmin
    error = math.inf if singular else lambda_min_error_estimate(lmin, lmax, n)
    if method == "lanczos":  # the fast path certifies lambda_min to RTOL_CERTIFY only
        error += RTOL_CERTIFY
    if shift:
        lmin, lmax, trace = (math.ldexp(v, shift) for v in (lmin, lmax, trace))
        eig = None if eig is None else np.ldexp(eig, shift)
    return Spectrum(
        lambda_min=lmin,
        lambda_max=lmax,
        condition_number=cond,
        singular=singular,
        trace=trace,
        n=n,
        multiplicity=model.output_dim,
        eigenvalues=eig,
        singular_reason=reason,
        zero_rows=diag.zero_rows,
        duplicate_groups=diag.duplicate_groups,
        antipodal_pairs=diag.antipodal_pairs,
        method=method,
        tolerance=tol,
        lambda_min_error=error,
    )
