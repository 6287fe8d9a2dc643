"""The NTK of one dataset at many depths, sharing every depth-independent step.

With ``sigma_b = 0`` and ``Delta > 0`` the depth-``l`` NTK is
``K_l[i, j] = (sigma_w^2 / m0) |x_i| |x_j| chi^(l-1) theta_l(u_ij)`` (docs/math.md §3), and
:mod:`eoc_ntk.core._numerics.interp` represents ``theta_l`` on every interval of ``u`` by a degree-9
polynomial in a local variable ``t`` in ``[-1, 1]``. The intervals are the same for every
depth, so the entries of the upper triangle are sorted by interval once and the powers
``t^0 .. t^9`` of each entry computed once; the values at a chunk of depths are then one
matrix product per interval, ``(depths x 10) @ (10 x entries)``, and each depth costs one
scatter of its values into the matrix. Entries outside the interpolants' range (or in an
interval whose check failed) go to the exact recursion, as in :mod:`eoc_ntk.core.kernels`.

Only the upper triangle and the diagonal of each yielded matrix are written: the
eigenvalue solvers read only that triangle (:mod:`eoc_ntk.core.eigen`).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from eoc_ntk.core._numerics.interp import (
    DEGREE,
    INTERVALS,
    U_MAX,
    WIDTH,
    AngleInterpolant,
    ensure_depths,
    eoc_interpolant,
    u_to_angles,
)
from eoc_ntk.core._numerics.recursion import eoc_recursion

__all__ = ["TriangleKernels", "MAX_ENTRIES"]

#: Bytes of values held at once for a chunk of depths.
_CHUNK_BYTES = 1 << 27
#: Entries whose powers of t are formed at once (21 MB): few, large products for BLAS.
_PIECE = 1 << 18
#: Largest triangle handled this way (n of about 5000): 32 bytes an entry besides the values.
MAX_ENTRIES = 12_500_000
#: Interpolants built together by one pass of the recursion (about 26 kB each).
_BUILD_AHEAD = 256


class TriangleKernels:
    """Upper triangles of ``K_l`` (times a constant) for ascending depths ``l >= 2`` of one dataset.

    Parameters
    ----------
    uu : ndarray of shape (n, n)
        ``u = 2 log tan(alpha/2)`` of every pair (only the strictly upper triangle and the
        diagonal are read; ``-inf`` marks pairs pointing the same way).
    weights : ndarray of shape (n,)
        ``w_i = sqrt(c sigma_w^2 / m0) |x_i|``: entry ``(i, j)`` is ``w_i w_j chi^(l-1) theta_l``,
        ``c`` the caller's constant (``1/n`` for the paper's matrix).
    delta, chi : float
        The activation's ``Delta`` and ``chi``.
    """

    def __init__(self, uu: np.ndarray, weights: np.ndarray, delta: float, chi: float):
        n = uu.shape[0]
        self.n, self.delta, self.chi = n, delta, chi
        rows, cols = np.triu_indices(n, 1)
        flat = rows * n + cols
        u = uu.ravel()[flat]
        inside = np.abs(u) <= U_MAX
        # Entries the interpolants do not cover: duplicates (u = -inf), far out or opposite;
        # their w_i w_j (like the diagonal's) do not depend on the depth.
        same = ~inside & (u == -np.inf)
        far = ~inside & (u != -np.inf)
        self.same_flat, self.same_base = flat[same], weights[rows[same]] * weights[cols[same]]
        self.far_flat, self.far_u = flat[far], u[far]
        self.far_base = weights[rows[far]] * weights[cols[far]]
        position = (u[inside] + U_MAX) * (1.0 / WIDTH)
        interval = np.minimum(position.astype(np.intp), INTERVALS - 1)
        order = np.argsort(interval.astype(np.int16), kind="stable")  # radix sort: INTERVALS < 2^15
        interval = interval[order]
        t = (position[order] - interval) * 2.0 - 1.0
        self.flat = flat[inside][order]
        self.uu = uu
        self.t = t
        self.base = weights[rows[inside][order]] * weights[cols[inside][order]]
        self._buffer: np.ndarray | None = None
        del rows, cols, position, order
        present = np.flatnonzero(np.bincount(interval, minlength=INTERVALS))
        starts = np.searchsorted(interval, present)
        stops = np.searchsorted(interval, present, side="right")
        #: (interval, first, stop) of each run of sorted entries in one interval.
        self.segments = list(zip(present.tolist(), starts.tolist(), stops.tolist(), strict=True))
        self.diagonal_u = np.diagonal(uu).copy()
        self.diagonal_same = self.diagonal_u == -np.inf
        self.diagonal_base = weights * weights

    def matrices(self, depths: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(depth, K)`` for ``depths`` (ascending, each >= 2) in one reused matrix.

        ``K`` (the same C-ordered array every time) holds ``w_i w_j chi^(l-1) theta_l`` in its
        upper triangle and diagonal; its strictly lower triangle is zero.
        """
        k = np.zeros((self.n, self.n))
        flat = k.ravel()
        chunk = max(1, min(32, _CHUNK_BYTES // max(8 * self.flat.size, 1)))
        order = [int(d) for d in depths]
        present = np.array([j for j, _, _ in self.segments], dtype=np.intp)
        interpolants = {}
        for c0 in range(0, len(order), chunk):
            block = order[c0:c0 + chunk]
            if block[-1] not in interpolants:  # build the next _BUILD_AHEAD depths' interpolants in one pass
                ahead = order[c0:c0 + max(chunk, _BUILD_AHEAD)]
                interpolants = {d: eoc_interpolant(d, self.delta) for d in ahead}
                ensure_depths(list(interpolants.values()), present)
            values, failed = self._values([interpolants[d] for d in block], present)
            for row, depth in enumerate(block):
                factor = self.chi ** (depth - 1)
                flat[self.flat] = values[row]
                if failed[row].size:
                    where = self.flat[failed[row]]
                    flat[where] = factor * self.base[failed[row]] * self._theta(self.uu.ravel()[where], depth)
                if self.far_flat.size:
                    flat[self.far_flat] = factor * self.far_base * self._theta(self.far_u, depth)
                flat[self.same_flat] = (depth * factor) * self.same_base
                theta = np.full(self.n, float(depth))
                if not self.diagonal_same.all():
                    theta[~self.diagonal_same] = self._theta(self.diagonal_u[~self.diagonal_same], depth)
                np.fill_diagonal(k, theta * factor * self.diagonal_base)
                yield depth, k

    def _values(self, interpolants: list[AngleInterpolant],
                present: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``w_i w_j chi^(l-1) theta_l`` at the sorted entries, one row per depth, and per
        depth the indices (into the sorted entries) whose interval failed its check.

        The rows live in one buffer reused for every chunk of depths (first-touching fresh
        memory costs more than the products on a virtual machine).
        """
        count = len(interpolants)
        if self._buffer is None or self._buffer.shape[0] < count:
            self._buffer = np.empty((count, self.flat.size))
        values = self._buffer[:count]
        failed, coefficients = [], []
        for interp in interpolants:
            interp.ensure(present)  # a no-op unless another thread raced ensure_depths
            coefficients.append(interp.coefficients("theta") * self.chi ** (interp.depth - 1))
            bad = [np.arange(a, b) for j, a, b in self.segments if interp.state[j] != 1]
            failed.append(np.concatenate(bad) if bad else np.empty(0, np.intp))
        stacked = np.stack(coefficients)  # (depths, degree + 1, intervals)
        powers = np.empty((DEGREE + 1, _PIECE))
        for j, a, b in self.segments:
            block = np.ascontiguousarray(stacked[:, :, j])  # contiguous operands keep matmul on BLAS
            for p0 in range(a, b, _PIECE):
                p1 = min(b, p0 + _PIECE)
                here = powers[:, : p1 - p0]
                here[0] = self.base[p0:p1]  # w_i w_j t^k: the products are then kernel values
                for k in range(1, DEGREE + 1):
                    np.multiply(here[k - 1], self.t[p0:p1], out=here[k])
                np.matmul(block, here, out=values[:, p0:p1])
        return values, failed

    def _theta(self, u: np.ndarray, depth: int) -> np.ndarray:
        alpha, beta = u_to_angles(u)
        return eoc_recursion(alpha, beta, depth, self.delta, ("theta",))["theta"]
