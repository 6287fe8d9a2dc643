"""Eigenvalues of symmetric kernel matrices: the dense solver and a verified fast path
for the two extremes.

The fast path (:func:`extreme_eigenvalues`) finds ``lambda_max`` by Lanczos on ``K`` and
``lambda_min`` by Lanczos on ``K^{-1}`` applied through a Cholesky factor, then *certifies*
both: the residual ``|K v - lambda v|`` must be below ``RTOL_CERTIFY * lambda`` and a Cholesky
factorisation of ``K - (lambda_min - margin) I`` and of ``(lambda_max + margin) I - K`` must
succeed (so no eigenvalue lies outside the reported range by more than ``margin``). If any
step fails it falls back to the dense solver rather than answer wrong.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

__all__ = ["all_eigenvalues", "extreme_eigenvalues", "RTOL_CERTIFY"]

#: Relative accuracy certified for the extremes by the fast path.
RTOL_CERTIFY = 1e-9
#: Below this size the dense solver is as fast as anything else.
_DENSE_BELOW = 600


def all_eigenvalues(k: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """All eigenvalues of the symmetric matrix ``k``, ascending (LAPACK ``syevd``)."""
    return sla.eigh(k, eigvals_only=True, driver="evd", overwrite_a=overwrite, check_finite=False)


def _cholesky_succeeds(buffer: np.ndarray, k: np.ndarray, sign: float, shift: float) -> bool:
    """Whether ``sign * k + shift * I`` has a Cholesky factor (is numerically positive definite)."""
    np.multiply(k, sign, out=buffer)
    buffer.flat[:: k.shape[0] + 1] += shift
    _, info = lapack.dpotrf(buffer, lower=1, clean=0, overwrite_a=1)
    return info == 0


def extreme_eigenvalues(k: np.ndarray, v0: np.ndarray | None = None):
    """``(lambda_min, lambda_max, method, vectors)`` of the symmetric matrix ``k``.

    Parameters
    ----------
    k : ndarray of shape (n, n)
        Symmetric; not modified.
    v0 : ndarray of shape (n,) or (n, 2), optional
        Starting vectors (e.g. eigenvectors at a neighbouring depth) for ``lambda_min``
        and ``lambda_max``.

    Returns
    -------
    lambda_min, lambda_max : float
    method : str
        ``"lanczos"`` when the fast path certified both values, ``"dense"`` otherwise.
    vectors : ndarray of shape (n, 2) or None
        The eigenvectors of ``lambda_min`` and ``lambda_max`` from the fast path.
    """
    n = k.shape[0]
    if n < _DENSE_BELOW:
        eig = all_eigenvalues(k)
        return float(eig[0]), float(eig[-1]), "dense", None
    try:
        result = _certified_extremes(k, v0)
    except (ArpackError, ArpackNoConvergence, np.linalg.LinAlgError, sla.LinAlgError):
        result = None
    if result is None:
        eig = all_eigenvalues(k)
        return float(eig[0]), float(eig[-1]), "dense", None
    return result


def _certified_extremes(k: np.ndarray, v0):
    n = k.shape[0]
    rng = np.random.default_rng(20250122)
    start_min = v0[:, 0] if v0 is not None else rng.standard_normal(n)
    start_max = v0[:, 1] if v0 is not None else rng.standard_normal(n)
    tol = 0.1 * RTOL_CERTIFY
    lmax_arr, vmax = eigsh(k, k=1, which="LA", v0=start_max, tol=tol)
    lmax = float(lmax_arr[0])
    if not lmax > 0.0:
        return None
    factor, info = lapack.dpotrf(k, lower=1, clean=1, overwrite_a=0)
    if info != 0:
        return None  # not numerically positive definite: singular or nearly so

    def solve(v):
        return lapack.dpotrs(factor, v, lower=1)[0]

    inverse = LinearOperator((n, n), matvec=solve, dtype=np.float64)
    mu_arr, vmin = eigsh(inverse, k=1, which="LA", v0=start_min, tol=tol)
    mu = float(mu_arr[0])
    if not mu > 0.0:
        return None
    lmin = 1.0 / mu
    vmin, vmax = vmin[:, 0], vmax[:, 0]
    for lam, vec in ((lmin, vmin), (lmax, vmax)):
        residual = np.linalg.norm(k @ vec - lam * vec) / np.linalg.norm(vec)
        if residual > RTOL_CERTIFY * lam:
            return None
    buffer = factor  # reuse the factor's memory: at most two n x n matrices live at once
    if not _cholesky_succeeds(buffer, k, 1.0, -(lmin - RTOL_CERTIFY * lmin)):
        return None
    if not _cholesky_succeeds(buffer, k, -1.0, lmax + RTOL_CERTIFY * lmax):
        return None
    return lmin, lmax, "lanczos", np.column_stack([vmin, vmax])
