"""The edge of chaos of a smooth activation for a given bias scale, and the variance fixed point.

With ``V(q) = E[phi(sqrt(q) z)^2]`` and ``D(q) = E[phi'(sqrt(q) z)^2]`` (``z ~ N(0, 1)``) the
variance map of one layer is ``q -> sigma_w^2 V(q) + sigma_b^2`` and the slope of the
correlation map at ``rho = 1`` is ``chi = sigma_w^2 D(q*)``. The EOC for a given ``sigma_b``
is the pair ``(sigma_w, q*)`` with

    ``q* = sigma_w^2 V(q*) + sigma_b^2``  and  ``sigma_w^2 D(q*) = 1``,

that is ``sigma_w^2 = 1 / D(q*)`` and ``q*`` a root of ``g(q) = V(q) / D(q) + sigma_b^2 - q``.
``g(0+) = sigma_b^2 > 0``; we take the smallest positive root (the branch that continues to
``q* -> 0`` as ``sigma_b -> 0``), bracketed on a logarithmic grid and refined by Brent's method.
For odd saturating activations (erf, tanh) ``V(q) / D(q) > q`` for every ``q > 0``, so at
``sigma_b = 0`` the only solution is ``q* = 0``: the EOC degenerates and is refused.

Stability of ``q*``: the variance map's slope there is ``sigma_w^2 V'(q*)`` with
``V'(q) = E[phi(sqrt(q) z) phi'(sqrt(q) z) z] / sqrt(q)`` (differentiating under the expectation);
``q*`` attracts the variances of every layer when it is below 1 and repels them above. On the EOC
curve, parametrised by ``q`` (``sigma_w^2 = 1 / D(q)``, ``sigma_b^2 = q - V(q) / D(q)``), the slope is
``V'(q) / D(q)``; :func:`attracting_sigma_b` finds where it crosses 1.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from eoc_ntk.core._numerics.smooth_moments import CLOSED_FORMS, Fn, diag_moments, quadrature_order

__all__ = ["moments_at", "eoc_point", "variance_fixed_point", "variance_slope", "attracting_sigma_b", "Q_GRID"]

#: Variances scanned for a sign change of ``g``.
Q_GRID = np.logspace(-8.0, 3.0, 111)


def moments_at(key: str | None, phi: Fn, dphi: Fn, q: float) -> tuple[float, float]:
    """``(V(q), D(q))`` at one variance, with the quadrature order chosen for ``q``."""
    order = 0 if key in CLOSED_FORMS else quadrature_order(phi, dphi, q)[0]
    v, d = diag_moments(key, phi, dphi, np.array([q]), order)
    return float(v[0]), float(d[0])


def eoc_point(key: str | None, phi: Fn, dphi: Fn, sigma_b: float) -> tuple[float, float] | None:
    """``(sigma_w^2, q*)`` of the EOC for ``sigma_b``, or None where it has no positive ``q*``.

    Returns
    -------
    tuple of float or None
        ``sigma_w^2 = 1 / D(q*)`` and the smallest positive root ``q*`` of
        ``V(q)/D(q) + sigma_b^2 - q`` on ``[1e-8, 1e3]``; None when ``g`` keeps one sign there.
    """
    sb2 = sigma_b * sigma_b

    def g(q: float) -> float:
        v, d = moments_at(key, phi, dphi, q)
        if not d > 0.0:
            return -q
        return v / d + sb2 - q

    prev_q, prev_g = None, None
    for q in Q_GRID:
        cur = g(float(q))
        if prev_g is not None and prev_q is not None and (cur <= 0.0) != (prev_g <= 0.0) and prev_g > 0.0:
            q_star = float(brentq(g, prev_q, float(q), xtol=1e-300, rtol=8.9e-16, maxiter=300))
            _, d = moments_at(key, phi, dphi, q_star)
            return 1.0 / d, q_star
        prev_q, prev_g = float(q), cur
    return None


def variance_fixed_point(key: str | None, phi: Fn, dphi: Fn, sw2: float, sb2: float,
                         start: float = 1.0) -> float:
    """The variance reached by iterating ``q -> sw2 V(q) + sb2`` from ``start`` (inf when it grows without bound).

    Iterates to a relative change below 1e-15 or 2,000 steps and returns the last iterate (a marginal
    fixed point such as ``q* = 0`` of tanh at ``sigma_w = 1``, approached like ``1/(2l)``, is reported
    as that iterate); 0 once below 1e-300.
    """
    q = start
    for _ in range(2_000):
        if q < 1e-300:
            return 0.0
        v, _ = moments_at(key, phi, dphi, q)
        nxt = sw2 * v + sb2
        if not math.isfinite(nxt) or nxt > 1e12:
            return math.inf
        if abs(nxt - q) <= 1e-15 * max(q, 1e-300):
            return nxt
        q = nxt
    return q


def _dv_dq(key: str | None, phi: Fn, dphi: Fn, q: float) -> float:
    """``V'(q) = E[phi(sqrt(q) z) phi'(sqrt(q) z) z] / sqrt(q)``; erf in closed form
    ``(4/pi) / ((1 + 2q) sqrt(1 + 4q))``, otherwise by the trapezoidal rule on ``[-10, 10]`` with the
    order that makes ``E[phi^2]`` and ``E[phi'^2]`` accurate at ``q``."""
    if key == "erf":
        return 4.0 / (math.pi * (1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q))
    order = quadrature_order(phi, dphi, q)[0]
    z = np.linspace(-10.0, 10.0, order)
    w = np.exp(-0.5 * z * z)
    u = math.sqrt(q) * z
    return float(np.sum(w * phi(u) * dphi(u) * z) / (w.sum() * math.sqrt(q)))


def variance_slope(key: str | None, phi: Fn, dphi: Fn, sw2: float, q: float) -> float:
    """``d/dq (sw2 V(q) + sigma_b^2) = sw2 V'(q)`` at ``q`` (module docstring); a fixed point attracts below 1.

    NaN for ``q`` not finite and positive.
    """
    if not (math.isfinite(q) and q > 0.0):
        return math.nan
    return sw2 * _dv_dq(key, phi, dphi, q)


def _eoc_slope_minus_one(key: str | None, phi: Fn, dphi: Fn, q: float) -> float:
    """``V'(q) / D(q) - 1``: the EOC slope at ``q*= q`` less 1 (negative where ``q*`` attracts)."""
    return _dv_dq(key, phi, dphi, q) / moments_at(key, phi, dphi, q)[1] - 1.0


def attracting_sigma_b(key: str | None, phi: Fn, dphi: Fn, q_from: float) -> float | None:
    """The ``sigma_b`` above which the EOC's ``q*`` attracts, for an EOC whose ``q* = q_from`` repels.

    Scans ``q > q_from`` on :data:`Q_GRID` for the first ``q`` where the EOC slope ``V'(q) / D(q)`` falls
    below 1, refines the crossing ``q_c`` by Brent's method and returns ``sqrt(q_c - V(q_c) / D(q_c))``
    (every larger ``sigma_b`` up to the next crossing has ``q*`` attracting). None without a crossing
    up to ``q = 1e3``.
    """
    prev = None
    for q in Q_GRID[Q_GRID > q_from]:
        q = float(q)
        if _eoc_slope_minus_one(key, phi, dphi, q) < 0.0:
            lo = q_from if prev is None else prev
            q_c = float(brentq(lambda t: _eoc_slope_minus_one(key, phi, dphi, t), lo, q, rtol=1e-12))
            v, d = moments_at(key, phi, dphi, q_c)
            return math.sqrt(max(q_c - v / d, 0.0))
        prev = q
    return None
