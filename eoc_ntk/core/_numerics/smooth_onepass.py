"""Kernels of smooth activations at many depths from one pass over the layers.

Two engines, each a generator over layers that stops at the depths asked for:

- :func:`pair_steps`: every pair with its own variances (``O(K)`` flops per pair and layer with the
  Hermite series, closed forms for erf and GELU); a layer's Hermite coefficients are computed once, for
  every distinct variance of the layer, and shared by all chunks of pairs.
- :class:`DepthMaps`: the composed map of one pair of variance trajectories as piecewise polynomials in
  ``u = log((1 - rho) / (1 + rho))`` at every depth asked for (the grid and the check between nodes of
  :mod:`eoc_ntk.core._numerics.smooth_interp`), all fitted from one pass of the node points; entries of
  an interval whose check fails at any depth, or with ``|u| > U_MAX``, go through one exact pass of their
  own, advanced in step with the depths served.

With ``tail=True`` a :class:`DepthMaps` is the composed tail map: once every input's variance is one
number ``q_L0`` (to a few ulps) at layer ``L0``, every pair follows the same map from there, and with
``u`` of the pair's correlation at ``L0``, ``Theta_L = P_L(u) + D_L(u) Theta_L0`` and ``Sigma_L = S_L(u)``
(the recursion is linear in ``Theta``; docs/math.md §9).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

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
from eoc_ntk.core._numerics.smooth_interp import TOLERANCE, ComposedMap, erf_moment_gap
from eoc_ntk.core._numerics.smooth_moments import CLOSED_FORMS, pair_moments
from eoc_ntk.core._numerics.smooth_recursion import SmoothSpec
from eoc_ntk.core._numerics.smooth_series import coefficients, coefficients_many

__all__ = ["DepthMaps", "pair_steps"]

# Pairs per chunk of a layer (the coefficient products take pairs x K floats).
_PAIR_CHUNK = 1 << 13
# Entries per exact chain of :class:`DepthMaps` (its powers rho^k take entries x K floats).
_EXACT_CHUNK = 1 << 13

Stacked = tuple[np.ndarray, np.ndarray, np.ndarray]


def _stacked(spec: SmoothSpec, qs: np.ndarray) -> Stacked:
    """``(values, A, B)``: the distinct variances of ``qs`` and their Hermite coefficients of ``phi`` and
    ``phi'``, zero-padded to one length (rows in the order of ``values``)."""
    values = np.unique(qs)
    if values.size <= 4:
        coefs = [coefficients(spec.key, spec.phi, spec.dphi, float(q)) for q in values]
        a = np.zeros((values.size, max(c.a.size for c in coefs)))
        b = np.zeros((values.size, max(c.b.size for c in coefs)))
        for i, c in enumerate(coefs):
            a[i, :c.a.size] = c.a
            b[i, :c.b.size] = c.b
        return values, a, b
    a, b = coefficients_many(spec.key, spec.phi, spec.dphi, values)
    return values, a, b


def _rows_horner(c: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """``sum_k c[:, k] rho^k`` row by row."""
    acc = c[:, -1].copy()
    for k in range(c.shape[1] - 2, -1, -1):
        acc *= rho
        acc += c[:, k]
    return acc


def _pairs_layer(spec: SmoothSpec, stacked: Stacked | None, q1: np.ndarray, q2: np.ndarray, sq_next: np.ndarray,
                 gap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Sigma', Sigma_dot', 1 - rho')`` of one layer for pairs of variances ``q1, q2`` (next layer's
    ``sqrt(q1' q2') = sq_next``) at ``1 - rho = gap``; ``1 - rho'`` with full relative accuracy as in
    :func:`eoc_ntk.core._numerics.smooth_interp.next_gap`."""
    rho = np.clip(1.0 - gap, -1.0, 1.0)
    if spec.key in CLOSED_FORMS:
        e_phi, e_dphi = pair_moments(spec.key, spec.phi, spec.dphi, q1, q2, rho * np.sqrt(q1 * q2), 0)
    if stacked is None:  # erf: closed forms throughout
        at_one = pair_moments("erf", spec.phi, spec.dphi, q1, q2, np.sqrt(q1 * q2), 0)[0]
        m_gap = erf_moment_gap(q1, q2, gap, rho)
    else:
        values, a, b = stacked
        i1, i2 = np.searchsorted(values, q1), np.searchsorted(values, q2)
        ca = a[i1] * a[i2]
        if spec.key not in CLOSED_FORMS:
            e_phi, e_dphi = _rows_horner(ca, rho), _rows_horner(b[i1] * b[i2], rho)
        at_one = ca.sum(axis=1)
        tails = np.cumsum(ca[:, ::-1], axis=1)[:, ::-1][:, 1:]
        m_gap = gap * _rows_horner(tails, rho) if tails.shape[1] else np.zeros_like(gap)
    sigma = spec.sw2 * e_phi + spec.sb2
    g0 = np.where(q1 == q2, 0.0, np.maximum(sq_next - (spec.sw2 * at_one + spec.sb2), 0.0))
    return sigma, spec.sw2 * e_dphi, np.minimum((g0 + spec.sw2 * m_gap) / sq_next, 2.0)


def pair_steps(spec: SmoothSpec, qa: list[np.ndarray], qb: list[np.ndarray], u: np.ndarray, ia: np.ndarray,
               ib: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(l, Theta_l, Sigma_l, 1 - rho_l)`` for ``l = 1..len(qa)`` of pairs of any variances.

    Pair ``p`` (flat arrays of shape (P,)) joins row ``ia[p]``, of variances ``qa[l][ia[p]]``, and column
    ``ib[p]``; ``u = log((1 - rho_1) / (1 + rho_1))``. The yielded arrays are not modified afterwards.
    Cost per layer: ``O(K)`` flops per pair plus the Hermite coefficients of the layer's distinct
    variances, once.
    """
    sigma = -np.tanh(0.5 * u) * np.sqrt(qa[0][ia] * qb[0][ib])
    gap = 2.0 * expit(u)
    theta = sigma.copy()
    yield 1, theta, sigma, gap
    for layer in range(1, len(qa)):
        stacked = None if spec.key == "erf" else _stacked(spec, np.concatenate([qa[layer - 1], qb[layer - 1]]))
        new_theta, new_sigma, new_gap = np.empty_like(theta), np.empty_like(sigma), np.empty_like(gap)
        for start in range(0, u.size, _PAIR_CHUNK):
            part = slice(start, start + _PAIR_CHUNK)
            i, j = ia[part], ib[part]
            sq_next = np.sqrt(qa[layer][i] * qb[layer][j])
            s, factor, g = _pairs_layer(spec, stacked, qa[layer - 1][i], qb[layer - 1][j], sq_next, gap[part])
            new_theta[part] = theta[part] * factor + s
            new_sigma[part], new_gap[part] = s, g
        theta, sigma, gap = new_theta, new_sigma, new_gap
        yield layer + 1, theta, sigma, gap


class DepthMaps:
    """``u -> (Theta_l, Sigma_l)`` of one pair of variance trajectories at several depths ``l``.

    Parameters
    ----------
    spec : SmoothSpec
    qa, qb : list of float
        The two variances at layers ``1..L`` (``L >= max(depths)``).
    depths : sequence of int
        Increasing layers ``l`` in ``1..L`` to serve.
    tail : bool
        The composed tail map: :meth:`run` takes each entry's ``Theta_1`` and adds ``D_l Theta_1``.
    """

    def __init__(self, spec: SmoothSpec, qa: list[float], qb: list[float], depths: Sequence[int], tail: bool):
        self.cmap = ComposedMap(spec, qa[:max(depths)], qb[:max(depths)])
        self.depths, self.tail = [int(d) for d in depths], tail
        self._names = ("theta", "sigma", "dprod") if tail else ("theta", "sigma")
        fitted = [d for d in self.depths if d > 1]  # layer 1 is a closed form of u
        self._coef = {d: {k: np.zeros((DEGREE + 1, INTERVALS)) for k in self._names} for d in fitted}
        self._state = {d: np.zeros(INTERVALS, dtype=np.int8) for d in fitted}

    def _build(self, intervals: np.ndarray) -> None:
        """Fit every interval listed at every depth from one pass of its nodes and check points."""
        todo = np.unique(np.asarray(intervals, dtype=np.intp))
        if not todo.size:
            return
        k = todo.size * (DEGREE + 1)
        wanted = set(self._state)
        for layer, theta, sigma, dprod in self.cmap.steps(sample_points(todo), self.tail):
            if layer not in wanted:
                continue
            values = {"theta": theta, "sigma": sigma, "dprod": dprod}
            good = np.ones(todo.size, dtype=bool)
            t = np.full(todo.size, CHECK_POINT)
            tol = max(TOLERANCE, 5e-16 * layer)
            for name in self._names:
                v = values[name]
                assert v is not None
                nodes = v[:k].reshape(todo.size, -1)
                coef = self._coef[layer][name]
                coef[:, todo] = node_solve(nodes)
                scale = np.max(np.abs(nodes), axis=1)
                good &= np.abs(horner_pieces(coef, todo, t) - v[k:]) <= tol * scale
            self._state[layer][todo] = np.where(good, 1, -1)

    def run(self, u: np.ndarray, theta1: np.ndarray | None = None, interpolate: bool = True
            ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(l, Theta_l, Sigma_l)`` at ``u`` (flat) for each depth, interpolated where every depth's
        interval passed its check (``interpolate=False``: all exact), otherwise from one exact pass.

        ``theta1``: each entry's ``Theta_1`` (tail maps only).
        """
        inside = np.abs(u) <= U_MAX if interpolate else np.zeros(u.shape, dtype=bool)
        idx = interval_of(u[inside])
        self._build(idx)
        failed = np.zeros(INTERVALS, dtype=bool)
        for state in self._state.values():
            failed |= state != 1
        exact = ~inside
        exact[inside] = failed[idx]
        where = np.flatnonzero(exact)
        # Equal u, equal values: identical inputs (u = -inf, the diagonal) go through the exact chain once.
        distinct, inverse = np.unique(u[where], return_inverse=True)
        chains = [self.cmap.steps(distinct[s:s + _EXACT_CHUNK], self.tail)
                  for s in range(0, distinct.size, _EXACT_CHUNK)]
        vals = u[inside]
        for depth in self.depths:
            if depth == 1:
                _, theta, sigma, _ = next(self.cmap.steps(u, self.tail))
                yield 1, theta if theta1 is None else theta + theta1, sigma
                continue
            out = {}
            for name in self._names:
                full = np.empty_like(u)
                full[inside] = evaluate_pieces(self._coef[depth][name], self._state[depth], vals)[0]
                out[name] = full
            parts = [_advance(chain, depth) for chain in chains]
            for name, col in zip(self._names, range(3), strict=False):
                if parts:
                    out[name][where] = np.concatenate([p[col] for p in parts])[inverse.reshape(-1)]
            theta = out["theta"] if theta1 is None else out["theta"] + out["dprod"] * theta1
            yield depth, theta, out["sigma"]


def _advance(chain: Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]],
             depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    for layer, theta, sigma, dprod in chain:
        if layer == depth:
            return theta, sigma, dprod
    raise ValueError(f"the exact chain ended before depth {depth}")
