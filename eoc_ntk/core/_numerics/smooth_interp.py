"""Depth-independent kernels of smooth activations: the composed layer map as an interpolant.

Rows of equal first-layer variance form a group (norms equal to 4 ulps). For a pair of groups
``(g, h)`` the variances of every layer are fixed numbers ``q_g^l, q_h^l`` (each input's own
trajectory), so ``Theta_L`` and ``Sigma_L`` of a pair are functions of its first-layer
correlation ``rho_1 = Sigma_1 / sqrt(q_g^1 q_h^1)`` alone. We tabulate them in
``u = log((1 - rho_1) / (1 + rho_1))`` as piecewise polynomials (the grid of
:mod:`eoc_ntk.core._numerics.interp`: intervals of width 0.5 on ``[-40, 40]``, degree 9 at
Chebyshev nodes, each checked between two nodes against the exact recursion), built only
where pairs fall. The exact recursion at a node is one pass of ``depth`` layers on a vector
of ``rho`` values: ``O(K)`` flops per node and layer with the Hermite series
(:mod:`eoc_ntk.core._numerics.smooth_series`; closed forms for erf), so the cost of depth is
that of propagating about a thousand nodes, and every pair then costs one polynomial
evaluation, whatever the depth. Entries whose interval fails its check (tolerance
:data:`TOLERANCE` relative to the interval's largest ``|Theta_L|``) or with
``|u| > 40`` go through the same exact recursion themselves.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
from scipy.special import expit

from eoc_ntk.core._numerics.interp import (
    CHECK_POINT,
    DEGREE,
    INTERVALS,
    U_MAX,
    evaluate_pieces,
    horner_pieces,
    interval_of,
    node_solve,
    sample_points,
)
from eoc_ntk.core._numerics.smooth_moments import CLOSED_FORMS, pair_moments
from eoc_ntk.core._numerics.smooth_recursion import SmoothSpec
from eoc_ntk.core._numerics.smooth_series import coefficients, series_moments

__all__ = ["ComposedMap", "group_rows", "layer_moments", "erf_moment_gap", "TOLERANCE"]

# Entries sent to the exact recursion at once (its powers rho^k take entries x K floats).
_EXACT_CHUNK = 1 << 13
#: Accepted interpolation error, relative to the largest ``|Theta_L|`` of the interval's nodes, at
#: shallow depth; from depth 200 on ``5e-16 * depth`` (the exact recursion's own rounding, which the
#: check cannot see below, grows like ``depth * eps``; measured 7e-14 at depth 1000).
TOLERANCE = 1e-13


def group_rows(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, inverse)``: representative variances of groups equal to 4 ulps, and each row's group."""
    order = np.argsort(q, kind="stable")
    sq = q[order]
    breaks = np.flatnonzero(np.diff(sq) > 4.0 * np.finfo(np.float64).eps * np.maximum(sq[1:], 1e-300)) + 1
    labels = np.zeros(q.size, dtype=np.intp)
    labels[order] = np.cumsum(np.isin(np.arange(q.size), breaks))
    starts = np.concatenate([[0], breaks])
    return sq[starts], labels


def layer_moments(spec: SmoothSpec, q1: float, q2: float, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` at correlations ``rho`` for scalar variances ``q1, q2``."""
    if spec.key in CLOSED_FORMS:
        s = np.sqrt(q1 * q2)
        return pair_moments(spec.key, spec.phi, spec.dphi, np.full(rho.shape, q1), np.full(rho.shape, q2), rho * s, 0)
    c1 = coefficients(spec.key, spec.phi, spec.dphi, q1)
    c2 = coefficients(spec.key, spec.phi, spec.dphi, q2)
    return series_moments(c1, c2, rho)


def _moment_gap(spec: SmoothSpec, q1: float, q2: float, gap: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``E[phi(u) phi(v)]`` at correlation 1 minus at ``rho = 1 - gap``, with full relative accuracy.

    Series: ``sum_k c_k (1 - rho^k) = gap * sum_j rho^j T_{j+1}``, ``T_j = sum_{k >= j} c_k``. erf, for
    ``rho >= 0``: with ``A = 2 sqrt(q1 q2) / s``, ``s = sqrt((1 + 2 q1)(1 + 2 q2))``,
    ``(2/pi) (asin(A) - asin(A rho)) = (2/pi) asin(A gap (1 + rho) / (sqrt(1 - A^2 rho^2) + rho sqrt(1 - A^2)))``
    with ``1 - A^2 = (1 + 2 q1 + 2 q2) / s^2``; below 0 the plain difference (no cancellation there).
    """
    if spec.key == "erf":
        return _erf_moment_gap(q1, q2, gap, rho)
    c1 = coefficients(spec.key, spec.phi, spec.dphi, q1)
    c2 = coefficients(spec.key, spec.phi, spec.dphi, q2)
    k = min(c1.a.size, c2.a.size)
    c = c1.a[:k] * c2.a[:k]
    tails = np.cumsum(c[::-1])[::-1][1:]  # T_1 .. T_{K-1}
    if tails.size == 0:
        return np.zeros_like(gap)
    acc = np.full(rho.shape, tails[-1])
    for t in tails[-2::-1]:
        acc *= rho
        acc += t
    result: np.ndarray = gap * acc
    return result


def _erf_moment_gap(q1: float | np.ndarray, q2: float | np.ndarray, gap: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """:func:`_moment_gap` of erf (closed form; variances scalars or arrays of the shape of ``gap``)."""
    s = np.sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2))
    a0 = 2.0 * np.sqrt(q1 * q2) / s
    one_minus_a2 = (1.0 + 2.0 * q1 + 2.0 * q2) / (s * s)
    pos = np.maximum(rho, 0.0)
    den = np.sqrt(one_minus_a2 + a0 * a0 * gap * (1.0 + pos)) + pos * np.sqrt(one_minus_a2)
    near = (2.0 / np.pi) * np.arcsin(np.minimum(a0 * gap * (1.0 + pos) / den, 1.0))
    far = (2.0 / np.pi) * (np.arcsin(a0) - np.arcsin(a0 * rho))
    out: np.ndarray = np.where(rho >= 0.0, near, far)
    return out


def next_gap(spec: SmoothSpec, q1: float, q2: float, q1_next: float, q2_next: float, gap: np.ndarray,
             rho: np.ndarray, e_phi: np.ndarray) -> np.ndarray:
    """``1 - rho'`` of the next layer from ``gap = 1 - rho``, with full relative accuracy.

    ``1 - rho' = (sqrt(q1' q2') - Sigma') / sqrt(q1' q2') = (g0 + sigma_w^2 (M(1) - M(rho))) / sqrt(q1' q2')``
    with ``g0 = sqrt(q1' q2') - (sigma_w^2 M(1) + sigma_b^2) >= 0`` (0 for equal variances, Cauchy-Schwarz
    otherwise) and ``M(1) - M(rho)`` from :func:`_moment_gap`.
    """
    sq = float(np.sqrt(q1_next * q2_next))
    if q1 == q2:
        g0 = 0.0
    else:
        at_one = float(layer_moments(spec, q1, q2, np.ones(1))[0][0])
        g0 = max(sq - (spec.sw2 * at_one + spec.sb2), 0.0)
    out: np.ndarray = (g0 + spec.sw2 * _moment_gap(spec, q1, q2, gap, rho)) / sq
    clipped: np.ndarray = np.minimum(out, 2.0)
    return clipped


class ComposedMap:
    """``u -> (Theta_L, Sigma_L)`` of one pair of groups, exact and interpolated.

    Parameters
    ----------
    spec : SmoothSpec
    qa, qb : list of float
        The two groups' variances at layers ``1..L``.
    """

    def __init__(self, spec: SmoothSpec, qa: list[float], qb: list[float]):
        self.spec, self.qa, self.qb = spec, qa, qb
        shape = (DEGREE + 1, INTERVALS)
        self._theta = np.zeros(shape)
        self._sigma = np.zeros(shape)
        self.state = np.zeros(INTERVALS, dtype=np.int8)
        self._lock = threading.Lock()

    def exact(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Theta_L, Sigma_L)`` at first-layer correlations ``rho_1 = -tanh(u/2)`` by the recursion.

        ``e = 1 - rho`` is carried with full relative accuracy (:func:`next_gap`): near ``rho = 1``,
        where the EOC keeps every deep pair (``e_l ~ 2 / (F''(1) l)``), ``Sigma_dot = 1 - F''(1) e + ...``
        and an absolute error ``eps`` in ``rho`` per layer would cost ``L eps / e_L`` of ``Theta_L``.
        """
        last = (np.empty(0), np.empty(0))
        for _, theta, sigma, _ in self.steps(u):
            last = (theta, sigma)
        return last

    def steps(self, u: np.ndarray, tail: bool = False
              ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Yield ``(l, Theta_l, Sigma_l, D_l)`` for ``l = 1..L`` (:meth:`exact` layer by layer).

        ``tail=False``: ``Theta_1 = Sigma_1`` and ``D_l`` is None. ``tail=True`` (the composed tail map):
        ``Theta`` is carried from ``Theta_1 = 0`` and ``D_l = prod_{m=2}^{l} Sigma_dot_m`` from 1, so that a
        pair entering with any ``Theta_1`` leaves with ``Theta_l + D_l Theta_1`` (the recursion is linear
        in ``Theta``).
        """
        spec = self.spec
        sigma = -np.tanh(0.5 * u) * np.sqrt(self.qa[0] * self.qb[0])
        gap = 2.0 * expit(u)
        theta = np.zeros_like(sigma) if tail else sigma.copy()
        dprod = np.ones_like(sigma) if tail else None
        yield 1, theta, sigma, dprod
        series: dict[tuple[float, float], np.ndarray] = {}
        for layer in range(1, len(self.qa)):
            q1, q2 = self.qa[layer - 1], self.qb[layer - 1]
            rho = np.clip(1.0 - gap, -1.0, 1.0)
            if spec.key not in CLOSED_FORMS:
                sigma, new_gap, factor = self._series_layer(series, q1, q2, layer, rho, gap)
            else:
                e_phi, e_dphi = layer_moments(spec, q1, q2, rho)
                sigma = spec.sw2 * e_phi + spec.sb2
                factor = spec.sw2 * e_dphi
                new_gap = next_gap(spec, q1, q2, self.qa[layer], self.qb[layer], gap, rho, e_phi)
            gap = new_gap
            theta = theta * factor
            theta += sigma
            if dprod is not None:
                dprod = dprod * factor
            yield layer + 1, theta, sigma, dprod

    def _series_layer(self, cache: dict[tuple[float, float], np.ndarray], q1: float, q2: float, layer: int,
                      rho: np.ndarray, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Sigma', 1 - rho', Sigma_dot')`` of one layer by the Hermite series, all three sums at once
        as one product of the powers ``rho^k`` with the columns ``[a_k a_k', b_k b_k', T_{k+1}]``."""
        spec = self.spec
        cols = cache.get((q1, q2))
        if cols is None:
            c1 = coefficients(spec.key, spec.phi, spec.dphi, q1)
            c2 = coefficients(spec.key, spec.phi, spec.dphi, q2)
            k = max(min(c1.a.size, c2.a.size), min(c1.b.size, c2.b.size))
            cols = np.zeros((k, 3))
            ka, kb = min(c1.a.size, c2.a.size), min(c1.b.size, c2.b.size)
            cols[:ka, 0] = c1.a[:ka] * c2.a[:ka]
            cols[:kb, 1] = c1.b[:kb] * c2.b[:kb]
            cols[:ka - 1, 2] = np.cumsum(cols[:ka, 0][::-1])[::-1][1:]
            cache[(q1, q2)] = cols
        powers = np.empty((rho.size, cols.shape[0]))
        powers[:, 0] = 1.0
        if cols.shape[0] > 1:
            powers[:, 1:] = rho[:, None]
            np.cumprod(powers[:, 1:], axis=1, out=powers[:, 1:])
        sums = powers @ cols
        q1n, q2n = self.qa[layer], self.qb[layer]
        sq = float(np.sqrt(q1n * q2n))
        g0 = 0.0 if q1 == q2 else max(sq - (spec.sw2 * float(cols[:, 0].sum()) + spec.sb2), 0.0)
        new_gap = np.minimum((g0 + spec.sw2 * gap * sums[:, 2]) / sq, 2.0)
        return spec.sw2 * sums[:, 0] + spec.sb2, new_gap, spec.sw2 * sums[:, 1]

    def ensure(self, intervals: np.ndarray) -> None:
        """Build (once) and check every interval listed."""
        with self._lock:
            todo = np.unique(np.asarray(intervals, dtype=np.intp))
            todo = todo[self.state[todo] == 0]
            if not todo.size:
                return
            theta, sigma = self.exact(sample_points(todo))
            k = todo.size * (DEGREE + 1)
            self._theta[:, todo] = node_solve(theta[:k].reshape(todo.size, -1))
            self._sigma[:, todo] = node_solve(sigma[:k].reshape(todo.size, -1))
            t = np.full(todo.size, CHECK_POINT)
            scale = np.max(np.abs(theta[:k].reshape(todo.size, -1)), axis=1)
            err_t = np.abs(horner_pieces(self._theta, todo, t) - theta[k:])
            err_s = np.abs(horner_pieces(self._sigma, todo, t) - sigma[k:])
            tol = max(TOLERANCE, 5e-16 * len(self.qa)) * scale
            good = (err_t <= tol) & (err_s <= tol)
            self.state[todo] = np.where(good, 1, -1)

    def evaluate(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Theta_L, Sigma_L)`` at ``u`` (flat array): interpolated where an interval is valid, else exact."""
        inside = np.abs(u) <= U_MAX
        self.ensure(interval_of(u[inside]))
        theta = np.empty_like(u)
        sigma = np.empty_like(u)
        vals = u[inside]
        t_in, ok_t = evaluate_pieces(self._theta, self.state, vals)
        s_in, _ = evaluate_pieces(self._sigma, self.state, vals)
        theta[inside], sigma[inside] = t_in, s_in
        exact = ~inside
        exact[inside] = ~ok_t
        where = np.flatnonzero(exact)
        for start in range(0, where.size, _EXACT_CHUNK):  # bounds the (entries x K) powers in memory
            part = where[start:start + _EXACT_CHUNK]
            theta[part], sigma[part] = self.exact(u[part])
        return theta, sigma


#: erf's ``E[phi(u) phi(v)]`` at correlation 1 minus at ``rho = 1 - gap``, for arrays of pairs.
erf_moment_gap = _erf_moment_gap
