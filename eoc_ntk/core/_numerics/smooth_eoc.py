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
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from eoc_ntk.core._numerics.smooth_moments import CLOSED_FORMS, Fn, diag_moments, quadrature_order

__all__ = ["moments_at", "eoc_point", "variance_fixed_point", "Q_GRID"]

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
