"""Tiled symmetric linear algebra as Dask tasks: products, Cholesky and triangular solves.

A symmetric ``n x n`` matrix lives on the workers as its lower tiles ``T[i, j]`` (``i >= j``,
square blocks of the ``edges``), each one Dask future. Nothing of size ``n^2`` ever reaches
the client: every task below either runs where its largest input lives (the scheduler's
choice) and returns a vector block, or produces a new tile on the workers.

- :meth:`TiledSymmetric.matvec`: ``v -> T v`` with one task per stored tile (both its
  contribution ``T[i, j] v_j`` and, off the diagonal, ``T[i, j]^T v_i``).
- :meth:`TiledSymmetric.cholesky`: the right-looking tiled Cholesky of ``T - sigma I``
  (``potrf`` on the diagonal tile, ``trsm`` on the tiles below it, then the rank-``b``
  update of the trailing tiles), submitted column by column as Dask tasks; ``None`` when a
  diagonal tile is not positive definite, which by Sylvester's law of inertia proves an
  eigenvalue of ``T`` below ``sigma``.
- :meth:`TiledFactor.solve`: ``v -> (L L^T)^{-1} v`` by tiled forward and back substitution.

Faults are Dask's: every tile is a task of the graph, so a tile lost with a worker is
recomputed from its inputs (down to the kernel tiles and the replicated data).

Why not ``dask.array.linalg.cholesky``: it reads the upper tiles of a full square array and
returns a full square factor (zero tiles above the diagonal, each off-diagonal tile also kept
transposed), while the kernel and this factor are lower tiles only, half the memory at the sizes
this path exists for; and a matrix that is not positive definite is an expected answer here (the
certificate), not a failed graph. At n = 2000 its single graph is faster and as accurate:
bench/README.md, "Why not dask.array.linalg.cholesky", has the measurement.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

__all__ = ["TiledSymmetric", "TiledFactor", "block_edges"]


def block_edges(n: int, chunks: int) -> list[tuple[int, int]]:
    """``[(0, chunks), (chunks, 2 chunks), ..., (., n)]``: the square tiles' row ranges."""
    return [(i0, min(n, i0 + chunks)) for i0 in range(0, n, chunks)]


# ----------------------------------------------------------------- task functions (workers)

def _tile_products(tile: np.ndarray, v_col: np.ndarray, v_row: np.ndarray | None):
    """``(tile @ v_col, tile.T @ v_row)`` (the second None on the diagonal)."""
    return tile @ v_col, (None if v_row is None else tile.T @ v_row)


def _shifted(tile: np.ndarray, sigma: float, dtype: str, diagonal: bool) -> np.ndarray:
    out = tile.astype(dtype, copy=True)
    if diagonal:
        out.flat[:: out.shape[0] + 1] -= sigma
    return out


def _potrf(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a diagonal tile (upper part zeroed); LinAlgError if not PD."""
    potrf = lapack.spotrf if a.dtype == np.float32 else lapack.dpotrf
    factor, info = potrf(a, lower=1, clean=1, overwrite_a=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"tile not positive definite (potrf info {info})")
    return factor


def _trsm(l_kk: np.ndarray, a_ik: np.ndarray) -> np.ndarray:
    """``a_ik L_kk^{-T}``: the factor's tile below the diagonal tile."""
    return sla.solve_triangular(l_kk, a_ik.T, lower=True, check_finite=False).T.copy()


def _update(a_ij: np.ndarray, l_ik: np.ndarray, l_jk: np.ndarray) -> np.ndarray:
    """``a_ij - L_ik L_jk^T``: the trailing update of the right-looking algorithm."""
    return a_ij - l_ik @ l_jk.T


def _product(tile: np.ndarray, v: np.ndarray, transpose: bool) -> np.ndarray:
    return (tile.T if transpose else tile) @ v


def _diagonal_solve(l_ii: np.ndarray, rhs: np.ndarray, transpose: bool, *partials) -> np.ndarray:
    """``L_ii^{-1} (rhs - sum(partials))`` (or with ``L_ii^T``)."""
    b = rhs.copy()
    for p in partials:
        b -= p
    return sla.solve_triangular(l_ii, b, lower=True, trans=1 if transpose else 0, check_finite=False)


def _trace(tile: np.ndarray) -> float:
    return float(np.trace(tile))


# --------------------------------------------------------------------------- client side

class TiledSymmetric:
    """A symmetric matrix held on the workers as lower tiles.

    Parameters
    ----------
    client : distributed.Client
    tiles : dict of (i, j) -> Future of ndarray of shape (b_i, b_j)
        The lower tiles ``i >= j`` (diagonal tiles full and exactly symmetric).
    edges : list of (start, stop)
        Row ranges of the tiles.
    """

    def __init__(self, client, tiles: dict, edges: list[tuple[int, int]]):
        self.client, self.tiles, self.edges = client, tiles, edges
        self.n = edges[-1][1]

    def trace(self) -> float:
        parts = [self.client.submit(_trace, self.tiles[i, i], pure=False) for i in range(len(self.edges))]
        return float(sum(self.client.gather(parts)))

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``T v`` for ``v`` of shape (n,)."""
        blocks = [v[i0:i1] for i0, i1 in self.edges]
        keys, futures = [], []
        for (i, j), tile in self.tiles.items():
            keys.append((i, j))
            futures.append(self.client.submit(_tile_products, tile, blocks[j], None if i == j else blocks[i],
                                              pure=False))
        out = np.zeros(self.n)
        for (i, j), (down, across) in zip(keys, self.client.gather(futures), strict=True):
            out[self.edges[i][0]:self.edges[i][1]] += down
            if across is not None:
                out[self.edges[j][0]:self.edges[j][1]] += across
        return out

    def cholesky(self, sigma: float, dtype: str = "float64",
                 progress: Callable[[float], None] | None = None) -> TiledFactor | None:
        """Lower Cholesky factor of ``T - sigma I`` in ``dtype``, or None when it is not positive definite.

        The tasks are submitted column by column (right-looking); intermediate trailing
        tiles are dropped by the client as soon as their update is submitted, so the
        workers hold at most the tiles of ``T`` plus one factor's worth of tiles.
        ``progress`` receives the fraction of the factor's tiles done.
        """
        from distributed import as_completed

        submit, nb = self.client.submit, len(self.edges)
        work = {(i, j): submit(_shifted, tile, sigma, dtype, i == j, pure=False)
                for (i, j), tile in self.tiles.items()}
        factor = {}
        for k in range(nb):
            factor[k, k] = submit(_potrf, work.pop((k, k)), pure=False)
            for i in range(k + 1, nb):
                factor[i, k] = submit(_trsm, factor[k, k], work.pop((i, k)), pure=False)
            for j in range(k + 1, nb):
                for i in range(j, nb):
                    work[i, j] = submit(_update, work[i, j], factor[i, k], factor[j, k], pure=False)
        del work
        # On a failure the client drops its futures, which releases every task still pending
        # (``Client.cancel`` is not used: it also cancels what other futures depend on).
        for done, future in enumerate(as_completed(list(factor.values()), loop=self.client.loop), start=1):
            if future.status == "error":
                exc = future.exception()
                if isinstance(exc, np.linalg.LinAlgError):
                    return None
                raise exc
            if progress is not None:
                progress(done / len(factor))
        return TiledFactor(self.client, factor, self.edges, np.dtype(dtype))


class TiledFactor:
    """A lower Cholesky factor ``L`` held on the workers as tiles; :meth:`solve` is ``(L L^T)^{-1}``."""

    def __init__(self, client, tiles: dict, edges: list[tuple[int, int]], dtype: np.dtype):
        self.client, self.tiles, self.edges, self.dtype = client, tiles, edges, dtype
        self.n = edges[-1][1]

    def solve(self, v: np.ndarray) -> np.ndarray:
        """``(L L^T)^{-1} v`` for ``v`` of shape (n,), in the factor's precision, returned as float64."""
        submit, tiles, nb = self.client.submit, self.tiles, len(self.edges)
        rhs = [np.asarray(v[i0:i1], dtype=self.dtype) for i0, i1 in self.edges]
        y: list[Any] = []
        for i in range(nb):  # L y = v
            partials = [submit(_product, tiles[i, j], y[j], False, pure=False) for j in range(i)]
            y.append(submit(_diagonal_solve, tiles[i, i], rhs[i], False, *partials, pure=False))
        x = [None] * nb
        for i in reversed(range(nb)):  # L^T x = y
            partials = [submit(_product, tiles[j, i], x[j], True, pure=False) for j in range(i + 1, nb)]
            x[i] = submit(_diagonal_solve, tiles[i, i], y[i], True, *partials, pure=False)
        return np.concatenate(self.client.gather(x)).astype(np.float64, copy=False)

    def release(self) -> None:
        """Free the factor's tiles on the workers (by dropping the client's futures)."""
        self.tiles = {}
