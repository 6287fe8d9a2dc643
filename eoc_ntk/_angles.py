"""Stable pairwise angles between inputs (MATH.md §4).

The angle ``alpha`` between ``x`` and ``x'`` and its complement ``beta = pi - alpha``
are both carried, each computed without cancellation:
``alpha = 2*atan2(|u - v|, |u + v|)`` and ``beta = 2*atan2(|u + v|, |u - v|)`` for the
unit vectors ``u, v``. For pairs whose Gram-based cosine is far from +-1 the cheap
``arccos`` is accurate and is used instead.
"""
from __future__ import annotations

import numpy as np

# Pairs with 1 - |cos| below this are recomputed from differences of unit vectors:
# arccos(c) has relative error about eps / alpha^2, 1e-13 at this threshold.
_NEAR_PARALLEL = 1e-3
# Rows of the exact recomputation done at once (bounds temporary memory).
_BLOCK_PAIRS = 1 << 16


def unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(u, r)``: rows of ``x`` scaled to unit norm, and the norms.

    Zero rows stay zero (their angle to anything is set to pi/2 by :func:`pair_angles`,
    a value that is always multiplied by the zero norm).
    """
    r = np.linalg.norm(x, axis=1)
    safe = np.where(r > 0.0, r, 1.0)
    return x / safe[:, None], r


def pair_angles(u: np.ndarray, v: np.ndarray, diagonal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Angles ``alpha`` and ``beta = pi - alpha`` between every row of ``u`` and of ``v``.

    Parameters
    ----------
    u : ndarray of shape (n, m0)
        Unit (or zero) rows.
    v : ndarray of shape (n2, m0)
        Unit (or zero) rows.
    diagonal : bool
        Whether row ``k`` of ``u`` is the same point as row ``k`` of ``v`` (a diagonal
        block of a symmetric matrix): those entries are set to exactly ``alpha = 0``.

    Returns
    -------
    alpha, beta : ndarray of shape (n, n2)
        In ``[0, pi]``, with ``alpha + beta == pi`` to rounding and each accurate
        to a few ulps relative to itself. Pairs involving a zero row get ``pi/2``.
    """
    cos = u @ v.T
    np.clip(cos, -1.0, 1.0, out=cos)
    alpha = np.arccos(cos)
    beta = np.pi - alpha
    near = np.abs(cos) > 1.0 - _NEAR_PARALLEL
    del cos
    zero_u = ~np.any(u != 0.0, axis=1)
    zero_v = ~np.any(v != 0.0, axis=1)
    near[zero_u, :] = False
    near[:, zero_v] = False
    if diagonal:
        k = np.arange(min(near.shape))
        near[k, k] = False
    rows, cols = np.nonzero(near)
    del near
    for start in range(0, rows.size, _BLOCK_PAIRS):
        i = rows[start:start + _BLOCK_PAIRS]
        j = cols[start:start + _BLOCK_PAIRS]
        diff = np.linalg.norm(u[i] - v[j], axis=1)
        summ = np.linalg.norm(u[i] + v[j], axis=1)
        alpha[i, j] = 2.0 * np.arctan2(diff, summ)
        beta[i, j] = 2.0 * np.arctan2(summ, diff)
    half_pi = 0.5 * np.pi
    alpha[zero_u, :] = half_pi
    beta[zero_u, :] = half_pi
    alpha[:, zero_v] = half_pi
    beta[:, zero_v] = half_pi
    if diagonal:
        k = np.arange(min(alpha.shape))
        alpha[k, k] = 0.0
        beta[k, k] = np.pi
    return alpha, beta
