"""The inverse-cosine-distance (ICD) approximation and certified spectral bounds (docs/math.md §5).

With ``E = K - A`` (``A`` the ICD matrix), Weyl's inequality gives
``|lambda_i(K) - lambda_i(A)| <= ||E||_2 <= min(max_i sum_j |E_ij|, ||E||_F)``, which turns
the spectrum of ``A`` into intervals for ``lambda_min(K)``, ``lambda_max(K)`` and the
condition number. Gershgorin discs of ``K`` bound its spectrum with no eigen-solve.
All matrices here are the paper's normalised ones (``/ n``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from eoc_ntk.core.activations import resolve_coefficients
from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.eigen import all_eigenvalues
from eoc_ntk.core.jsonsafe import json_float
from eoc_ntk.core.kernels import check_kinds, compute_scaled_kernels
from eoc_ntk.core.model import Model
from eoc_ntk.core.validation import check_data

__all__ = ["icd_analysis", "IcdAnalysis", "gershgorin_bounds"]


@dataclass(frozen=True)
class IcdAnalysis:
    """Errors of the ICD approximation ``A`` of ``K`` and the bounds they certify.

    Attributes
    ----------
    max_abs_error : float
        ``max_{i != j} |K_ij - A_ij|`` of the normalised matrices.
    max_rel_error : float
        ``max_{i != j} |K_ij - A_ij| / |K_ij|`` over entries with ``K_ij != 0``.
    error_norm_bound : float
        ``min(max_i sum_j |E_ij|, ||E||_F) >= ||E||_2``.
    lambda_min_bounds, lambda_max_bounds : (float, float)
        Weyl intervals for ``lambda_min(K/n)`` (clipped at 0: K is PSD) and ``lambda_max(K/n)``.
    condition_number_bounds : (float, float)
        Interval for ``cond(K)``; the upper end is ``inf`` when the ``lambda_min`` interval reaches 0.
    icd_lambda_min, icd_lambda_max : float
        Extreme eigenvalues of ``A / n``.
    gershgorin : (float, float)
        Gershgorin interval of the spectrum of ``K / n``.
    """

    max_abs_error: float
    max_rel_error: float
    error_norm_bound: float
    lambda_min_bounds: tuple[float, float]
    lambda_max_bounds: tuple[float, float]
    condition_number_bounds: tuple[float, float]
    icd_lambda_min: float
    icd_lambda_max: float
    gershgorin: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become None)."""
        def pair(p: tuple[float, float]) -> list[float | None]:
            return [json_float(p[0]), json_float(p[1])]

        return {
            "max_abs_error": json_float(self.max_abs_error),
            "max_rel_error": json_float(self.max_rel_error),
            "error_norm_bound": json_float(self.error_norm_bound),
            "lambda_min_bounds": pair(self.lambda_min_bounds),
            "lambda_max_bounds": pair(self.lambda_max_bounds),
            "condition_number_bounds": pair(self.condition_number_bounds),
            "icd_lambda_min": json_float(self.icd_lambda_min),
            "icd_lambda_max": json_float(self.icd_lambda_max),
            "gershgorin": pair(self.gershgorin),
        }


def icd_analysis(x: ArrayLike, *, depth: int, a: float | None = None, b: float | None = None,
                 activation: Any = None, sigma_w: float | None = None) -> IcdAnalysis:
    """ICD approximation errors and the Weyl and Gershgorin bounds of ``K / n``.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    depth, a, b, sigma_w, activation : see :func:`eoc_ntk.kernel` (``sigma_b`` is 0: the ICD is
        defined at ``sigma_b = 0`` only, and needs ``Delta > 0``).

    Returns
    -------
    IcdAnalysis
    """
    a, b = resolve_coefficients(a, b, activation, "icd_analysis")
    model = Model(depth, a, b, sigma_w, 0.0)
    x = check_data(x)
    check_kinds(("icd",), model)
    kernels, shift = compute_scaled_kernels(x, None, model, ("ntk", "icd"))
    return times_power_of_two(analyse_icd(kernels["ntk"], kernels["icd"]), shift)


def times_power_of_two(result: IcdAnalysis, shift: int) -> IcdAnalysis:
    """``result`` of a kernel scaled by ``2^-shift`` (scale-free), with its absolute values
    multiplied back by ``2^shift`` (relative errors and condition numbers are unchanged)."""
    if not shift:
        return result
    def up(v: float) -> float:
        return math.ldexp(v, shift)

    def pair(p: tuple[float, float]) -> tuple[float, float]:
        return (up(p[0]), up(p[1]))

    return dataclasses.replace(
        result, max_abs_error=up(result.max_abs_error), error_norm_bound=up(result.error_norm_bound),
        lambda_min_bounds=pair(result.lambda_min_bounds), lambda_max_bounds=pair(result.lambda_max_bounds),
        icd_lambda_min=up(result.icd_lambda_min), icd_lambda_max=up(result.icd_lambda_max),
        gershgorin=pair(result.gershgorin))


def gershgorin_bounds(kn: FloatArray) -> tuple[float, float]:
    """Gershgorin interval ``[min_i (k_ii - R_i), max_i (k_ii + R_i)]``, ``R_i = sum_{j != i} |k_ij|``."""
    diag = np.diag(kn)
    radius = np.abs(kn).sum(axis=1) - np.abs(diag)
    return float(np.min(diag - radius)), float(np.max(diag + radius))


def analyse_icd(k: np.ndarray, a_icd: np.ndarray) -> IcdAnalysis:
    """Analysis from the unnormalised NTK ``k`` and ICD matrix ``a_icd`` (not modified)."""
    n = k.shape[0]
    err = (k - a_icd) / n
    np.fill_diagonal(err, 0.0)  # the diagonal of A is exact
    abs_err = np.abs(err)
    max_abs = float(abs_err.max())
    kn_abs = np.abs(k) / n
    mask = kn_abs > 0.0
    np.fill_diagonal(mask, False)
    max_rel = float((abs_err[mask] / kn_abs[mask]).max()) if mask.any() else 0.0
    bound = min(float(abs_err.sum(axis=1).max()), float(np.sqrt(np.sum(abs_err * abs_err))))
    del err, abs_err, kn_abs, mask
    eig_a = all_eigenvalues(a_icd / n, overwrite=True)
    amin, amax = float(eig_a[0]), float(eig_a[-1])
    lmin_lo, lmin_hi = max(amin - bound, 0.0), max(amin + bound, 0.0)
    lmax_lo, lmax_hi = max(amax - bound, 0.0), amax + bound
    cond_lo = max(1.0, lmax_lo / lmin_hi) if lmin_hi > 0.0 else math.inf
    cond_hi = lmax_hi / lmin_lo if lmin_lo > 0.0 else math.inf
    return IcdAnalysis(
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        error_norm_bound=bound,
        lambda_min_bounds=(lmin_lo, lmin_hi),
        lambda_max_bounds=(lmax_lo, lmax_hi),
        condition_number_bounds=(cond_lo, cond_hi),
        icd_lambda_min=amin,
        icd_lambda_max=amax,
        gershgorin=gershgorin_bounds(k / n),
    )
