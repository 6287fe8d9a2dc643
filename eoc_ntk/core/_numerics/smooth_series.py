"""Pair moments of smooth activations as Hermite (Mehler) series: ``O(K)`` flops per pair.

With the normalised probabilists' Hermite polynomials ``h_k = He_k / sqrt(k!)`` and
``a_k(q) = E[phi(sqrt(q) z) h_k(z)]``, ``b_k(q) = E[phi'(sqrt(q) z) h_k(z)]`` (``z ~ N(0, 1)``),
Mehler's formula gives for ``(u, v)`` centred Gaussian with variances ``q1, q2`` and correlation ``rho``

    ``E[phi(u) phi(v)] = sum_k a_k(q1) a_k(q2) rho^k``,   ``E[phi'(u) phi'(v)] = sum_k b_k(q1) b_k(q2) rho^k``.

The coefficients come from the trapezoidal rule on the Hermite functions
``psi_k(z) = h_k(z) exp(-z^2/4)`` (bounded, by the stable three-term recurrence
``psi_{k+1} = (z psi_k - sqrt(k) psi_{k-1}) / sqrt(k+1)``) against ``phi(sqrt(q) z) exp(-z^2/4) / sqrt(2 pi)``.
Parseval checks them: ``sum_{k<K} a_k^2 = E[phi^2]`` up to the truncated tail and the quadrature
error, so ``|E[phi^2] - sum a_k^2| / E[phi^2]`` (the same for ``phi'``) is the error estimate; ``K``
is the first of :data:`TERMS` where it is below :data:`SERIES_TOL`. At ``|rho| <= 1`` the series
converges absolutely, so the estimate bounds the truncation at every correlation.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from eoc_ntk.core._numerics.smooth_moments import CLOSED_FORMS, Fn, diag_moments, quadrature_order

__all__ = ["Coefficients", "coefficients", "coefficients_many", "series_moments", "series_estimate",
           "largest_accurate_variance", "TERMS", "SERIES_TOL", "SERIES_REFUSE"]

#: Numbers of terms tried.
TERMS = (32, 64, 128, 256, 512)
#: Relative Parseval defect accepted.
SERIES_TOL = 2e-15
#: A Parseval defect above this at the largest variance met refuses the series (the kernel would not
#: be accurate to 1e-12); the defect grows with the variance, since ``phi(sqrt(q) z)`` sharpens.
SERIES_REFUSE = 1e-13


class Coefficients:
    """``a_k(q)`` and ``b_k(q)`` (arrays of ``K`` terms) of one activation at one variance, with the
    Parseval error estimate."""

    def __init__(self, a: np.ndarray, b: np.ndarray, estimate: float):
        self.a, self.b, self.estimate = a, b, estimate


@functools.lru_cache(maxsize=16)
def _hermite_functions(terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, weight, psi)``: nodes, trapezoid weights of ``exp(-z^2/4) / sqrt(2 pi)`` and the Hermite
    functions ``psi_k(z_j)``, shape ``(terms, nodes)``."""
    z_max = min(2.0 * math.sqrt(terms) + 12.0, 52.0)  # exp(-z^2/4) stays a normal float
    nodes = 8 * terms + 801
    z = np.linspace(-z_max, z_max, nodes)
    zl = z.astype(np.longdouble)
    # Trapezoid weights of exp(-z^2/4) / sqrt(2 pi), normalised so that E[1] = sum psi_0 weight = 1.
    weight = np.exp(-0.25 * zl * zl) / np.exp(-0.5 * zl * zl).sum()
    psi = np.empty((terms, nodes), dtype=np.longdouble)
    psi[0] = np.exp(-0.25 * zl * zl)
    if terms > 1:
        psi[1] = z * psi[0]
    for k in range(1, terms - 1):
        psi[k + 1] = (zl * psi[k] - np.sqrt(np.longdouble(k)) * psi[k - 1]) / np.sqrt(np.longdouble(k + 1))
    return z, weight, psi


def _project(fn: Fn, q: float, terms: int) -> np.ndarray:
    z, weight, psi = _hermite_functions(terms)
    values = fn(math.sqrt(q) * z) * weight
    out: np.ndarray = (psi @ values).astype(np.float64)
    return out


def coefficients(key: str | None, phi: Fn, dphi: Fn, q: float) -> Coefficients:
    """The Hermite coefficients of ``phi`` and ``phi'`` at variance ``q`` (cached per activation and ``q``)."""
    return _coefficients(key, phi, dphi, float(q))


@functools.lru_cache(maxsize=4096)
def _coefficients(key: str | None, phi: Fn, dphi: Fn, q: float) -> Coefficients:
    order = quadrature_order(phi, dphi, q)[0] if key not in CLOSED_FORMS else 0
    e_phi, e_dphi = (float(v[0]) for v in diag_moments(key, phi, dphi, np.array([q]), order))
    est = math.inf
    for terms in TERMS:
        a, b = _project(phi, q, terms), _project(dphi, q, terms)
        est = max(abs(e_phi - float(a @ a)) / max(e_phi, 1e-300), abs(e_dphi - float(b @ b)) / max(e_dphi, 1e-300))
        if est <= SERIES_TOL:
            break
    cut_a = _significant(a)
    cut_b = _significant(b)
    return Coefficients(a[:cut_a], b[:cut_b], est)


def _significant(c: np.ndarray) -> int:
    """Number of leading terms whose tail is below ``1e-18`` of the total."""
    sq = c * c
    tail = np.cumsum(sq[::-1])[::-1]
    keep = np.flatnonzero(tail > 1e-18 * max(float(sq.sum()), 1e-300))
    return int(keep[-1]) + 1 if keep.size else 1


def _horner(c: np.ndarray, rho: np.ndarray) -> np.ndarray:
    acc = np.full(rho.shape, c[-1])
    for coef in c[-2::-1]:
        acc *= rho
        acc += coef
    return acc


def series_moments(c1: Coefficients, c2: Coefficients, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` at correlations ``rho`` (any shape, in [-1, 1]) for the
    variances whose coefficients are ``c1`` and ``c2``."""
    ka = min(c1.a.size, c2.a.size)
    kb = min(c1.b.size, c2.b.size)
    return _horner(c1.a[:ka] * c2.a[:ka], rho), _horner(c1.b[:kb] * c2.b[:kb], rho)


@functools.lru_cache(maxsize=16)
def _psi64(terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, weight, psi = _hermite_functions(terms)
    return z, weight.astype(np.float64), psi.astype(np.float64)


def coefficients_many(key: str | None, phi: Fn, dphi: Fn, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of shape ``(len(qs), K)``: the Hermite coefficients of ``phi`` and ``phi'`` at many variances
    in one float64 product (Parseval defect about 4e-15 instead of 1e-16), ``K`` the number of terms
    :func:`coefficients` needs at the grid variance ``2^(j/4)`` just above the largest (fewer suffice below it)."""
    # The terms needed grow with the variance: read them at the next grid variance 2^(j/4) above the largest,
    # so that the layers of one trajectory share one long-double projection.
    top_q = float(np.max(qs))
    grid_q = 2.0 ** (math.ceil(4.0 * math.log2(top_q)) / 4.0) if top_q > 0.0 else top_q
    top = coefficients(key, phi, dphi, max(grid_q, top_q))
    need = max(top.a.size, top.b.size)
    terms = next((t for t in TERMS if t >= need), TERMS[-1])
    z, weight, psi = _psi64(terms)
    arg = np.sqrt(np.asarray(qs, dtype=np.float64))[:, None] * z[None, :]
    a: np.ndarray = (phi(arg) * weight) @ psi.T
    b: np.ndarray = (dphi(arg) * weight) @ psi.T
    return a[:, :need], b[:, :need]


def series_estimate(key: str | None, phi: Fn, dphi: Fn, q_max: float) -> float:
    """The Parseval defect of the Hermite series at variance ``q_max`` with at most ``TERMS[-1]`` terms
    (0 for erf, whose moments and ``1 - rho`` are closed forms and never use the series)."""
    if key == "erf" or not q_max > 0.0:
        return 0.0
    return float(coefficients(key, phi, dphi, float(q_max)).estimate)


@functools.lru_cache(maxsize=64)
def largest_accurate_variance(key: str | None, phi: Fn, dphi: Fn) -> float:
    """About the largest variance ``q`` (within 10 %) at which :func:`series_estimate` is at most
    :data:`SERIES_REFUSE`, by bisection on ``log q`` over ``[1e-3, 1e6]``."""
    lo, hi = math.log(1e-3), math.log(1e6)
    if series_estimate(key, phi, dphi, math.exp(hi)) <= SERIES_REFUSE:
        return math.exp(hi)
    while hi - lo > 0.1:
        mid = 0.5 * (lo + hi)
        if series_estimate(key, phi, dphi, math.exp(mid)) <= SERIES_REFUSE:
            lo = mid
        else:
            hi = mid
    return math.exp(lo)
