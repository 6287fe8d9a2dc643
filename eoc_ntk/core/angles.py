"""Stable pairwise angles between inputs (docs/math.md §4).

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

    Zero rows stay zero (their angle to anything is set to pi/2 by :func:`pair_u`,
    a value that is always multiplied by the zero norm).
    """
    u, mantissa, exponent = scaled_unit_rows(x)
    return u, np.ldexp(mantissa, exponent)


def scaled_unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(u, m, e)``: unit rows of ``x`` and the norms ``|x_i| = m_i 2^e_i``, scale-free.

    Each row is first multiplied by a power of two (exact) that brings its largest entry
    to [0.5, 1), so that neither the squares of tiny entries (below 1e-154) underflow nor
    those of huge ones overflow: every finite non-zero row gets its exact direction and
    norm. ``m`` is in [0.5, 1) (0 for zero rows), ``e`` an integer array.
    """
    _, shift = np.frexp(np.max(np.abs(x), axis=1) if x.shape[1] else np.zeros(x.shape[0]))
    scaled = np.ldexp(x, -shift[:, None])
    norm = np.linalg.norm(scaled, axis=1)
    safe = np.where(norm > 0.0, norm, 1.0)
    mantissa, extra = np.frexp(norm)
    return scaled / safe[:, None], mantissa, (shift + extra).astype(np.int64)


def largest_exponent(mantissa: np.ndarray, exponent: np.ndarray) -> int:
    """``max e_i`` over the non-zero rows of :func:`scaled_unit_rows` (0 when all are zero):
    the power of two that scale-free computations divide out (a zero row's exponent means nothing)."""
    nonzero = mantissa > 0.0
    return int(np.max(exponent[nonzero])) if np.any(nonzero) else 0


#: Rows of one GEMM call in :func:`gram` (a multiple of every block size that reads its output).
GRAM_ROWS = 4096


def gram(u: np.ndarray, v: np.ndarray | None = None, *, out: np.ndarray | None = None, upper: bool = False,
         block_rows: int = GRAM_ROWS) -> np.ndarray:
    """``u @ v.T`` of shape (n, n2); ``v=None``: the Gram matrix ``u @ u.T`` of shape (n, n).

    NumPy hands ``u @ u.T`` (one array times its own transpose) to BLAS's ``syrk``, whose
    threaded OpenBLAS version with AVX-512 kernels crashes at large n (bench/README.md, "A crash
    this benchmark found"). So ``u @ u.T`` is formed by GEMM calls on blocks of ``block_rows``
    rows, each a product of two different arrays.

    ``upper``: for ``v=None``, rows ``i0:i1`` of a block get their columns from ``i0`` on
    only (the upper triangle plus the lower part of the block's own diagonal square): the flops
    of ``syrk``; the rest of ``out`` is left as it was. A reader of blocks of rows whose size
    divides ``block_rows`` then finds every entry it reads from its first row's column on.
    """
    if v is not None:
        return np.matmul(u, v.T, out=out)
    n = u.shape[0]
    if out is None:
        out = np.empty((n, n))
    for i0 in range(0, n, block_rows):
        i1 = min(n, i0 + block_rows)
        j0 = i0 if upper else 0
        if i1 - i0 == n:  # a single block (n <= block_rows): far below the failing sizes
            np.matmul(u, u.T, out=out)
        else:
            np.matmul(u[i0:i1], u[j0:].T, out=out[i0:i1, j0:])
    return out


def pair_u(u: np.ndarray, v: np.ndarray, diagonal: bool = False) -> np.ndarray:
    """``2 log tan(alpha/2) = log((1 - cos)/(1 + cos))`` for every pair of rows of ``u`` and ``v``.

    This one number determines ``alpha`` and ``beta = pi - alpha`` with full relative
    accuracy at both ends (:func:`eoc_ntk.core._numerics.interp.u_to_angles`): ``-inf`` for pairs
    pointing the same way, ``+inf`` for opposite ones.

    Parameters
    ----------
    u : ndarray of shape (n, m0)
        Unit (or zero) rows.
    v : ndarray of shape (n2, m0)
        Unit (or zero) rows.
    diagonal : bool
        Whether row ``k`` of ``u`` is the same point as row ``k`` of ``v`` (a diagonal
        block of a symmetric matrix): those entries are exactly ``-inf``.

    Returns
    -------
    ndarray of shape (n, n2)
        Pairs involving a zero row get 0 (``alpha = pi/2``, even on the diagonal), a value
        that is always multiplied by the zero norm.
    """
    return u_from_cos(gram(u, None if v is u else v), u, v, diagonal)


def u_from_cos(cos: np.ndarray, u: np.ndarray, v: np.ndarray, diagonal: bool = False) -> np.ndarray:
    """:func:`pair_u` from a precomputed block ``cos = u @ v.T`` (not modified)."""
    cos = np.clip(cos, -1.0, 1.0)
    near = np.abs(cos) > 1.0 - _NEAR_PARALLEL
    with np.errstate(divide="ignore"):
        out: np.ndarray = np.arctanh(cos, out=cos)  # log((1 - c)/(1 + c)) = -2 atanh(c)
    out *= -2.0
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
        with np.errstate(divide="ignore"):
            out[i, j] = 2.0 * (np.log(diff) - np.log(summ))
    if diagonal:
        k = np.arange(min(out.shape))
        out[k, k] = -np.inf
    out[zero_u, :] = 0.0  # also on the diagonal: K(X) and K(X, X) agree for zero rows
    out[:, zero_v] = 0.0
    return out
