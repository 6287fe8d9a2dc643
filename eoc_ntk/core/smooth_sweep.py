"""Depth sweeps and the depth limit for smooth activations at their edge of chaos.

The depth limit (docs/math.md, "Activations beyond the family"). At the EOC with ``sigma_b > 0``
and a stable variance fixed point (``q_l -> q*``), the normalised correlation map
``F(rho) = (sigma_w^2 E[phi(u) phi(v)] + sigma_b^2) / q*`` (``u, v`` of variance ``q*``) has
``F(1) = 1`` and ``F'(1) = chi = 1``, and ``F'(rho) = Sigma_dot(rho) = sigma_w^2 E[phi'(u) phi'(v)]``.
With ``e_l = 1 - rho_l`` and ``k = F''(1) > 0``: ``e_{l+1} = e_l - (k/2) e_l^2 + O(e_l^3)``, so
``e_l ~ 2 / (k l)`` and ``Sigma_dot_l = 1 - k e_l + O(e_l^2) = 1 - 2/l + ...``. Unrolling
``Theta_L = sum_j Sigma_j prod_{m > j} Sigma_dot_m`` with ``prod_{m=j+1}^{L} (1 - 2/m) ~ (j/L)^2``:

    ``Theta_L(x, x') / L -> q* / 3``  for ``x != x'``,   ``Theta_L(x, x) / L -> q*``,

whatever the activation (the approach is ``O(log L / L)``). So ``K / (n L q*) -> ((2/3) I + (1/3) 1 1^T
+ (2/3) D) / n`` with ``D`` joining identical inputs, and for distinct inputs the limit condition number
is ``1 + n / 2``. With biases only identical inputs stay at ``rho = 1``.

The limit needs ``q_l -> q*``: the variance map's slope at ``q*`` (:attr:`Model.variance_slope`) below 1.
Where it is not, :func:`limit_note` says why and names a ``sigma_b`` whose ``q*`` attracts.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from eoc_ntk.core._numerics.diagnosis import diagnose
from eoc_ntk.core._numerics.near_duplicates import near_duplicate_reason
from eoc_ntk.core._numerics.smooth_eoc import attracting_sigma_b
from eoc_ntk.core.eigen import all_eigenvalues, extreme_eigenvalues
from eoc_ntk.core.model import Model
from eoc_ntk.core.progress import ProgressFn, report
from eoc_ntk.core.smooth_kernels import smooth_kernels_by_depth
from eoc_ntk.core.spectra import singular_tolerance

__all__ = ["smooth_depth_sweep", "smooth_limit_matrix", "smooth_limit_condition_number", "variance_map_slope",
           "limit_note", "suggested_sigma_b"]


def variance_map_slope(model: Model) -> float:
    """``d/dq (sigma_w^2 E[phi(sqrt(q) z)^2])`` at ``q*`` (:attr:`Model.variance_slope`): the fixed point is
    stable below 1."""
    return model.variance_slope


def _limit_defined(model: Model) -> bool:
    return model.is_eoc and model.sigma_b > 0.0 and variance_map_slope(model) < 1.0


#: Round bias scales offered by :func:`suggested_sigma_b` (times powers of ten).
_ROUND = (1.0, 2.0, 5.0)


def suggested_sigma_b(model: Model) -> tuple[float, float] | None:
    """``(threshold, suggestion)`` for a smooth EOC ``model`` whose ``q*`` repels (slope >= 1).

    ``threshold``: the ``sigma_b`` where the EOC's slope crosses 1 (:func:`attracting_sigma_b`);
    ``suggestion``: the first of 1, 2, 5 x 10^k at or above 1.2 x threshold whose EOC slope is below 1.
    None when no crossing is found, or for other models.
    """
    act = model.activation
    if act is None or not model.is_eoc or not model.variance_slope >= 1.0:
        return None
    threshold = attracting_sigma_b(act.key, act.phi, act.dphi, model.q_star)
    if threshold is None:
        return None
    k = math.floor(math.log10(1.2 * threshold))
    candidates = sorted(r * 10.0 ** e for e in (k, k + 1) for r in _ROUND)
    for sigma_b in (c for c in candidates if c >= 1.2 * threshold):
        try:
            if Model(1, activation=act, sigma_b=sigma_b).variance_slope < 1.0:
                return threshold, float(f"{sigma_b:.3g}")
        except ValueError:
            break
    return None


def limit_note(model: Model) -> str | None:
    """Why a smooth ``model`` has no depth limit (None when it has one): off the EOC, ``sigma_b = 0``, or a
    repelling ``q*`` (with the ``sigma_b`` to give instead)."""
    if _limit_defined(model):
        return None
    if not model.is_eoc:
        return (f"no depth limit off the edge of chaos (chi = {model.chi:.4g}); leave sigma_w unset to "
                "get the EOC value")
    if model.sigma_b == 0.0:
        return "no depth limit at sigma_b = 0; give sigma_b > 0"
    slope = model.variance_slope
    text = (f"no depth limit at sigma_b = {model.sigma_b:g}: the variance fixed point q* = "
            f"{model.q_star:.4g} repels (slope of the variance map there {slope:.4g} >= 1): the inputs' "
            "variances drift away from q* with depth (those above it grow until they overflow, after a few "
            "hundred layers)")
    found = suggested_sigma_b(model)
    if found is None:
        return text + "; use another activation or sigma_b (docs/math.md §9)"
    threshold, suggestion = found
    return text + (f"; q* attracts for sigma_b above {threshold:.3g}: use e.g. sigma_b = {suggestion:g} "
                   "(docs/math.md §9)")


def smooth_limit_matrix(x: np.ndarray, model: Model) -> np.ndarray | None:
    """``lim Theta_L / L`` of checked ``x``: ``q*/3`` off the diagonal, ``q*`` between identical inputs.

    None where the limit is not derived: off the EOC, at ``sigma_b = 0`` or with an unstable
    variance fixed point (the variances then leave ``q*``).
    """
    if not _limit_defined(model):
        return None
    _, inverse = np.unique(x, axis=0, return_inverse=True)
    same = inverse.reshape(-1)[:, None] == inverse.reshape(-1)[None, :]
    out: np.ndarray = np.where(same, 1.0, 1.0 / 3.0) * model.q_star
    return out


def smooth_limit_condition_number(x: np.ndarray, model: Model) -> float | None:
    """Condition number of :func:`smooth_limit_matrix` (``1 + n/2`` for distinct inputs), None where undefined."""
    limit = smooth_limit_matrix(x, model)
    if limit is None:
        return None
    eig = np.linalg.eigvalsh(limit)
    return math.inf if eig[0] <= singular_tolerance(x.shape[0]) * eig[-1] else float(eig[-1] / eig[0])


def smooth_depth_sweep(x: np.ndarray, depth_list: np.ndarray, model: Model, eigenvalues: str,
                       progress: ProgressFn | None) -> dict[str, Any]:
    """Fields of a :class:`eoc_ntk.core.sweep.DepthSweep` for a smooth ``model`` (checked ``x``), from one
    pass of the exact recursion; ``delta`` is NaN (the family's parameter)."""
    n = x.shape[0]
    lmins, lmaxs = [], []
    vectors = None
    passes = smooth_kernels_by_depth(x, None, model, [int(d) for d in depth_list], ("ntk",))
    for count, (_, kernels) in enumerate(passes, start=1):
        kn = kernels["ntk"] / n
        if eigenvalues == "all" or n < 3:
            eig = all_eigenvalues(kn, overwrite=True)
            lmin, lmax = float(eig[0]), float(eig[-1])
        else:
            lmin, lmax, _, found = extreme_eigenvalues(kn, vectors)
            vectors = found if found is not None else vectors
        lmins.append(max(lmin, 0.0))
        lmaxs.append(max(lmax, 0.0))
        report(progress, count / len(depth_list))
    lmin_arr, lmax_arr = np.array(lmins), np.array(lmaxs)
    tol = singular_tolerance(n)
    singular = ~((lmax_arr > 0.0) & (lmin_arr > tol * lmax_arr))
    cond = np.full(lmin_arr.shape, math.inf)
    cond[~singular] = lmax_arr[~singular] / lmin_arr[~singular]
    reason = None
    if singular.any():
        at_first = model.at_depth(int(depth_list[singular][0]))
        diag = diagnose(x, at_first)
        reason = near_duplicate_reason(x, at_first, diag, n) or diag.reason(n) or (
            f"numerically singular at depths {[int(d) for d in depth_list[singular][:10]]}: "
            f"lambda_min <= {tol:.2g} * lambda_max")
    return {"depths": depth_list, "lambda_min": lmin_arr, "lambda_max": lmax_arr, "condition_number": cond,
            "singular": singular, "limit_condition_number": smooth_limit_condition_number(x, model),
            "delta": math.nan, "singular_reason": reason, "limit_note": limit_note(model)}
