"""One eigen-decomposition of ``K / n`` shared by the label-aware functions (docs/learning.md §2).

``K / n = V diag(lambda) V^T`` with ``lambda`` descending. Eigenvalues at or below
``singular_tolerance(n) * lambda_max`` carry no information (the dense solver's error is a
small multiple of ``eps * lambda_max``): they form the *null space*, are set to exactly 0,
and a pseudo-inverse drops them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from eoc_ntk.core.arrays import FloatArray
from eoc_ntk.core.spectra import singular_tolerance

__all__ = ["KernelEigen", "kernel_eigen", "regression_coefficients"]


@dataclass(frozen=True)
class KernelEigen:
    """Eigen-decomposition of ``K / n`` and the labels' energy per direction.

    Attributes
    ----------
    eigenvalues : ndarray of shape (n,)
        Descending eigenvalues of ``K / n``; null-space ones (see :attr:`null`) are 0.
    vectors : ndarray of shape (n, n)
        Orthonormal eigenvectors, column ``i`` for ``eigenvalues[i]``.
    null : ndarray of bool, shape (n,)
        ``eigenvalues_raw <= singular_tolerance(n) * lambda_max``.
    energy : ndarray of shape (n,)
        ``|V_i^T y|^2`` summed over the k outputs; sums to ``|y|^2``.
    tolerance : float
        ``singular_tolerance(n)``.
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    null: np.ndarray
    energy: np.ndarray
    tolerance: float

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[0])


def kernel_eigen(k: FloatArray, y: FloatArray) -> KernelEigen:
    """Eigen-decomposition of ``k / n`` for an unnormalised kernel ``k`` (n, n) and labels ``y`` (n, k)."""
    n = k.shape[0]
    lam, vec = sla.eigh(k / n, check_finite=False)
    lam, vec = lam[::-1].copy(), np.ascontiguousarray(vec[:, ::-1])
    tol = singular_tolerance(n)
    lmax = max(float(lam[0]), 0.0)
    null = lam <= tol * lmax
    lam[null] = 0.0
    proj = vec.T @ y
    return KernelEigen(lam, vec, null, np.sum(proj * proj, axis=1), tol)


def regression_coefficients(k: FloatArray, y: FloatArray, ridge: float) -> FloatArray:
    """``(k + n ridge I)^-1 y`` (n, k_out) for an unnormalised kernel ``k`` of shape (n, n).

    With ``ridge = 0`` the pseudo-inverse: directions whose eigenvalue of ``k / n`` is at or
    below ``singular_tolerance(n) * lambda_max`` are dropped (the minimum-norm solution).
    One symmetric eigen-decomposition; for ``ridge > 0`` every direction is kept, so the
    result is the exact regularised solve (the one scikit-learn's ``KernelRidge`` computes
    with ``alpha = n ridge``).
    """
    n = k.shape[0]
    lam, vec = sla.eigh(k / n, check_finite=False)
    proj = vec.T @ y
    if ridge > 0.0:
        inverse = 1.0 / (n * (lam + ridge))
    else:
        keep = lam > singular_tolerance(n) * max(float(lam[-1]), 0.0)
        inverse = np.zeros_like(lam)
        inverse[keep] = 1.0 / (n * lam[keep])
    coefficients: np.ndarray = vec @ (inverse[:, None] * proj)
    return coefficients
