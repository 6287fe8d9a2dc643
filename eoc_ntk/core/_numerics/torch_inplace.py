"""Certified extremes of ``K`` in the memory of ``K`` alone: factors in its lower triangle.

When the device cannot hold ``K`` and a second n x n buffer, the n x n array keeps ``K`` in its
strict upper triangle and its diagonal in a vector of n, and its lower triangle (with the
diagonal) is the work area of float64 Cholesky factors of ``K - sigma I``, computed by a blocked
right-looking factorisation that never writes above the diagonal. Products ``K v`` read the
upper triangle and the diagonal vector; solves read the factor's panels. Workspace: a few
``BLOCK x n`` arrays.

The certificate is :mod:`eoc_ntk.core.eigen`'s: Lanczos for ``lambda_max`` with its residual
checked against ``K``; a rough ``lambda_min`` from Lanczos on ``K^{-1}`` (here through a float64
factor of ``K`` itself: no room for a float32 copy); a successful float64 factorisation of
``K - sigma I`` proves every eigenvalue above ``sigma``, and shift-and-invert Lanczos through it
gives ``lambda_min`` with its residual checked against ``K``.
"""
from __future__ import annotations

import numpy as np

from eoc_ntk.core._numerics.torch_device import Tensor, load_torch
from eoc_ntk.core.eigen import (
    RETRY_FRACTIONS,
    certified_lambda_min_from_solver,
    certified_top,
    rough_lambda_min_from_solver,
)

__all__ = ["InPlaceKernel", "inplace_extremes", "BLOCK"]

#: Rows of one panel of the blocked factorisation, products and solves.
BLOCK = 2048


class InPlaceKernel:
    """``K`` held in the strict upper triangle of ``m`` (row-major n x n, symmetric on entry) plus
    its diagonal; the lower triangle and the diagonal of ``m`` hold the latest Cholesky factor."""

    def __init__(self, m: Tensor, block: int | None = None):
        self.torch = load_torch()
        self.m, self.n, self.block = m, m.shape[0], max(1, int(BLOCK if block is None else block))
        self.d = m.diagonal().clone()
        self.edges = [(i0, min(self.n, i0 + self.block)) for i0 in range(0, self.n, self.block)]

    def _vector(self, v: np.ndarray) -> Tensor:
        t = self.torch
        return t.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).to(self.m.device)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``K v`` from the strict upper triangle and the diagonal (never the lower triangle)."""
        t, m = self.torch, self.m
        x = self._vector(v)
        y = self.d * x
        for i0, i1 in self.edges:
            square = t.triu(m[i0:i1, i0:i1], 1)
            y[i0:i1] += square @ x[i0:i1] + square.T @ x[i0:i1]
            if i1 < self.n:
                right = m[i0:i1, i1:]
                y[i0:i1] += right @ x[i1:]
                y[i1:] += right.T @ x[i0:i1]
        out: np.ndarray = y.cpu().numpy()
        return out

    def factor(self, sigma: float) -> bool:
        """Overwrite the lower triangle with the Cholesky factor of ``K - sigma I``; False when it is not
        positive definite (the upper triangle, hence ``K``, is never written)."""
        t, m = self.torch, self.m
        for i0, i1 in self.edges:  # the lower triangle := K - sigma I, from the upper one
            if i0:
                m[i0:i1, :i0] = m[:i0, i0:i1].T
            square = m[i0:i1, i0:i1]
            lower = t.tril(square.T, -1) + t.diag(self.d[i0:i1] - sigma)
            square.copy_(t.triu(square, 1) + lower)
        for k0, k1 in self.edges:
            square = m[k0:k1, k0:k1]
            low, info = t.linalg.cholesky_ex(square)  # reads the lower triangle only
            if int(info.item()) != 0:
                return False
            square.copy_(t.triu(square, 1) + low)
            if k1 == self.n:
                break
            panel = t.linalg.solve_triangular(low, m[k1:, k0:k1].T, upper=False).T  # P L^-T
            m[k1:, k0:k1] = panel
            for j0, j1 in self.edges:
                if j0 < k1:
                    continue
                block = panel[j0 - k1:] @ panel[j0 - k1:j1 - k1].T   # rows j0:, columns j0:j1
                m[j1:, j0:j1] -= block[j1 - j0:]
                sq = m[j0:j1, j0:j1]
                sq -= t.tril(block[:j1 - j0])
        return True

    def solve(self, v: np.ndarray) -> np.ndarray:
        """``(L L^T)^{-1} v`` with the factor of the last successful :meth:`factor`."""
        t, m = self.torch, self.m
        y = self._vector(v).clone()  # a copy: on the CPU the tensor would share the caller's array
        for i0, i1 in self.edges:  # L y = v
            rhs = y[i0:i1] - (m[i0:i1, :i0] @ y[:i0] if i0 else 0.0)
            y[i0:i1] = t.linalg.solve_triangular(t.tril(m[i0:i1, i0:i1]), rhs[:, None], upper=False)[:, 0]
        for i0, i1 in reversed(self.edges):  # L^T x = y
            rhs = y[i0:i1] - (m[i1:, i0:i1].T @ y[i1:] if i1 < self.n else 0.0)
            y[i0:i1] = t.linalg.solve_triangular(t.tril(m[i0:i1, i0:i1]).T, rhs[:, None], upper=True)[:, 0]
        out: np.ndarray = y.cpu().numpy()
        return out


def inplace_extremes(m: Tensor, v0: np.ndarray | None = None, seed: int = 20250122,
                     block: int | None = None) -> tuple[float, float, str, np.ndarray] | None:
    """``(lambda_min, lambda_max, "lanczos", vectors)`` of the symmetric ``m`` certified in its own
    memory, or None when the fast path cannot certify (``m``'s lower triangle is overwritten; its
    strict upper triangle keeps ``K``)."""
    kernel = InPlaceKernel(m, block)
    n = kernel.n
    rng = np.random.default_rng(seed)
    start_min = v0[:, 0] if v0 is not None else rng.standard_normal(n)
    start_max = v0[:, 1] if v0 is not None else rng.standard_normal(n)
    top = certified_top(kernel.matvec, start_max)
    if top[0] is None or not kernel.factor(0.0):
        return None
    theta, vmax = top
    estimate = rough_lambda_min_from_solver(kernel.solve, start_min)
    if estimate[0] is None:
        return None
    rough, margin, v_rough = estimate
    for fraction in (1.0 - margin, *RETRY_FRACTIONS):
        sigma = fraction * rough
        if kernel.factor(sigma):
            found = certified_lambda_min_from_solver(kernel.solve, sigma, v_rough, kernel.matvec)
            if found is not None:
                return found[0], theta, "lanczos", np.column_stack([found[1], vmax])
    return None
