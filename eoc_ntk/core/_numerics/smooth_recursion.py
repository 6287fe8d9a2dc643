"""The exact NNGP/NTK recursion of a smooth activation, pair by pair and layer by layer.

With ``(u, v)`` centred Gaussian of covariance ``[[q_i, Sigma_l], [Sigma_l, q_j]]`` at layer ``l``:

- layer 1 (as for the family): ``Sigma_1 = sigma_w^2 <x, x'> / m0 + sigma_b^2``, ``Theta_1 = Sigma_1``,
  ``q_1(x) = sigma_w^2 |x|^2 / m0 + sigma_b^2``;
- ``Sigma_{l+1} = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2``,
  ``Sigma_dot_{l+1} = sigma_w^2 E[phi'(u) phi'(v)]``,
  ``Theta_{l+1} = Sigma_{l+1} + Sigma_dot_{l+1} Theta_l``,
- ``q_{l+1}(x) = sigma_w^2 E[phi(sqrt(q_l(x)) z)^2] + sigma_b^2`` (each input's own variance, exactly).

The expectations come from :mod:`eoc_ntk.core._numerics.smooth_moments` (closed forms for erf,
trapezoidal quadrature otherwise). Cost: ``depth`` layers for every pair, each ``O(N^2)`` function
evaluations with quadrature (``N`` the order); the depth-independent route for many pairs is
:mod:`eoc_ntk.core._numerics.smooth_interp`.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from eoc_ntk.core._numerics.smooth_moments import CLOSED_FORMS, Fn, diag_moments, pair_moments, quadrature_order

__all__ = ["SmoothSpec", "variance_trajectory", "pair_layers", "quadrature_for", "QUADRATURE_REFUSE", "SETTLED_ULPS"]

#: A quadrature error estimate above this is refused (the inputs' variance is too large).
QUADRATURE_REFUSE = 1e-13
# Entries times quadrature nodes evaluated at once (bounds temporary memory).
_CHUNK = 1 << 21


class SmoothSpec:
    """What the recursion needs of a model: ``phi``, ``phi'``, the closed-form key and ``sigma_w^2, sigma_b^2``."""

    def __init__(self, key: str | None, phi: Fn, dphi: Fn, sw2: float, sb2: float):
        self.key, self.phi, self.dphi, self.sw2, self.sb2 = key, phi, dphi, sw2, sb2

    def diag(self, q: np.ndarray, order: int) -> np.ndarray:
        """``q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2``."""
        out: np.ndarray = self.sw2 * diag_moments(self.key, self.phi, self.dphi, q, order)[0] + self.sb2
        return out


def quadrature_for(spec: SmoothSpec, q_max: float) -> tuple[int, float]:
    """``(order, estimate)`` for variances up to ``q_max`` (order 0 and estimate 0 for erf's closed form)."""
    if spec.key in CLOSED_FORMS:
        return 0, 0.0
    return quadrature_order(spec.phi, spec.dphi, float(q_max))


def variance_trajectory(spec: SmoothSpec, q1: np.ndarray, depth: int) -> tuple[list[np.ndarray], int, float]:
    """``([q_1, ..., q_depth], order, estimate)`` of every input's variance, and the quadrature order that
    covers the largest variance met (with its error estimate)."""
    qs = [np.asarray(q1, dtype=np.float64)]
    order, est = quadrature_for(spec, float(np.max(qs[0], initial=0.0)))
    for _ in range(depth - 1):
        qs.append(spec.diag(qs[-1], order))
        top = float(np.max(qs[-1], initial=0.0))
        o, e = quadrature_for(spec, top)
        if o > order:
            order, est = o, e
    return qs, order, est


#: Inputs whose variances all lie within this many ulps of one value, a fixed point of the variance map
#: to as many ulps with slope below 1 there, follow one trajectory from then on: the spread then only
#: shrinks, and it is of the order of the variance recursion's own rounding.
SETTLED_ULPS = 8


def _settled(spec: SmoothSpec, q: np.ndarray, order: int) -> bool:
    """Whether the variances ``q`` of one layer count as one, at an attracting fixed point (:data:`SETTLED_ULPS`)."""
    top = float(np.max(q, initial=0.0))
    tol = SETTLED_ULPS * np.finfo(np.float64).eps * top
    if not (top > 0.0 and top - float(np.min(q)) <= tol):
        return False
    h = 1e-4 * top
    nxt, up, down = spec.diag(np.array([top, top + h, top - h]), order)
    return bool(abs(nxt - top) <= tol and abs(up - down) < 2.0 * h)


def converging_trajectory(spec: SmoothSpec, q1: np.ndarray, depth: int
                          ) -> tuple[list[np.ndarray], list[float], int, float]:
    """``(qs, tail, order, estimate)``: :func:`variance_trajectory`, except that once the variances of layer
    ``L0`` count as one (:data:`SETTLED_ULPS`), ``qs`` stops at ``L0`` and ``tail`` holds that one variance
    at layers ``L0..depth`` (``tail`` is empty when they never settle, and ``qs`` then reaches ``depth``)."""
    qs = [np.asarray(q1, dtype=np.float64)]
    order, est = quadrature_for(spec, float(np.max(qs[0], initial=0.0)))
    tail: list[float] = [float(np.max(qs[0]))] if depth > 1 and _settled(spec, qs[0], order) else []
    for _ in range(depth - 1):
        cur = np.array(tail[-1:]) if tail else qs[-1]
        nxt = spec.diag(cur, order)
        o, e = quadrature_for(spec, float(np.max(nxt, initial=0.0)))
        if o > order:
            order, est = o, e
        if tail:
            tail.append(float(nxt[0]))
            continue
        qs.append(nxt)
        if len(qs) < depth and _settled(spec, nxt, order):
            tail.append(float(np.max(nxt)))
    return qs, tail, order, est


def pair_layers(spec: SmoothSpec, qa: list[np.ndarray], qb: list[np.ndarray], c1: np.ndarray, depth: int,
                order: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(l, Theta_l, Sigma_l)`` for ``l = 1..depth``.

    Parameters
    ----------
    qa, qb : lists of ndarray of shapes (n,) and (n2,)
        Variance trajectories of the rows and columns (:func:`variance_trajectory`).
    c1 : ndarray of shape (n, n2)
        ``Sigma_1``.
    """
    sigma = c1
    theta = c1.copy()
    yield 1, theta, sigma
    rows = max(1, _CHUNK // max(1, c1.shape[1] * max(order, 1)))
    for layer in range(1, depth):
        q_i, q_j = qa[layer - 1], qb[layer - 1]
        new_sigma = np.empty_like(sigma)
        for s in range(0, sigma.shape[0], rows):
            blk = slice(s, s + rows)
            e_phi, e_dphi = pair_moments(spec.key, spec.phi, spec.dphi,
                                         np.broadcast_to(q_i[blk, None], sigma[blk].shape),
                                         np.broadcast_to(q_j[None, :], sigma[blk].shape), sigma[blk], order)
            new_sigma[blk] = spec.sw2 * e_phi + spec.sb2
            theta[blk] *= spec.sw2 * e_dphi
        theta += new_sigma
        sigma = new_sigma
        yield layer + 1, theta, sigma
