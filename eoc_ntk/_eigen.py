"""Eigenvalues of symmetric positive semi-definite kernel matrices: the dense solver and a
verified fast path for the two extremes.

Fast path (:func:`extreme_eigenvalues`), for ``K`` symmetric positive definite:

1. ``lambda_max``: Lanczos on ``K`` from a random start. The Ritz value ``theta`` is a
   lower bound of ``lambda_max`` and the residual ``r = |K v - theta v|`` must be below
   ``RTOL_CERTIFY * theta``, which puts an eigenvalue within ``r`` of ``theta``. (That it is
   the largest one rests on the start vector not being orthogonal to its eigenvector,
   which has probability zero; the top of an NTK spectrum is moreover well separated.)
2. A rough ``lambda_min`` (about 1e-3) from 30 Lanczos steps on ``K^{-1}`` through a
   float32 Cholesky factor (half the cost of float64).
3. ``sigma`` a little below it: a float64 Cholesky factorisation of ``K - sigma I``
   *certifies* that every eigenvalue exceeds ``sigma`` (Sylvester's inertia), and the
   same factor drives shift-and-invert Lanczos, which converges in a few steps because
   ``sigma`` is close to ``lambda_min``. ``sigma + 1/mu`` (``mu`` the Ritz value) is an upper
   bound of ``lambda_min`` and its residual must be below ``RTOL_CERTIFY`` times it.

Any failed step (not positive definite, no convergence, residual too large) falls back
to the dense solver rather than answer wrong. Peak memory: ``K`` plus one n x n float64
buffer (the float32 copy is freed first).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

__all__ = ["all_eigenvalues", "extreme_eigenvalues", "RTOL_CERTIFY"]

#: Relative accuracy certified for the extremes by the fast path.
RTOL_CERTIFY = 1e-9
#: Below this size the dense solver is as fast as anything else (measured on 2 cores: the
#: fast path was 0.8-0.9x of dense at n = 2000 and 1.6-2.0x at n = 4000; bench/README.md).
DENSE_BELOW = 2500
_SHIFT_FRACTIONS = (0.97, 0.8, 0.5)


def _fortran_view(k: np.ndarray) -> np.ndarray:
    """``k`` itself or, for a C-ordered symmetric ``k``, its transpose: the same matrix and the
    same memory in the Fortran order LAPACK wants (otherwise f2py silently copies it)."""
    return k.T if k.flags.c_contiguous and not k.flags.f_contiguous else k


def all_eigenvalues(k: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """All eigenvalues of the symmetric matrix ``k``, ascending (LAPACK ``syevd``)."""
    return sla.eigh(_fortran_view(k), eigvals_only=True, driver="evd", overwrite_a=overwrite,
                    check_finite=False)


def extreme_eigenvalues(k: np.ndarray, v0: np.ndarray | None = None, force_fast: bool = False,
                        lmin_guess: float | None = None):
    """``(lambda_min, lambda_max, method, vectors)`` of the symmetric matrix ``k``.

    Parameters
    ----------
    k : ndarray of shape (n, n)
        Symmetric; not modified.
    v0 : ndarray of shape (n, 2), optional
        Starting vectors for ``lambda_min`` and ``lambda_max`` (e.g. the eigenvectors at a
        neighbouring depth).
    force_fast : bool
        Use the fast path below ``DENSE_BELOW`` too (for tests).
    lmin_guess : float, optional
        An estimate of ``lambda_min`` within about 1% (e.g. extrapolated from neighbouring
        depths): it replaces the float32 estimate. A guess that is too high only costs a
        failed factorisation; correctness never depends on it.

    Returns
    -------
    lambda_min, lambda_max : float
    method : str
        ``"lanczos"`` when the fast path certified both values, ``"dense"`` otherwise.
    vectors : ndarray of shape (n, 2) or None
        Eigenvectors of ``lambda_min`` and ``lambda_max`` from the fast path.
    """
    n = k.shape[0]
    result = None
    if n >= DENSE_BELOW or (force_fast and n >= 3):
        try:
            result = _certified_extremes(k, v0, lmin_guess)
        except (ArpackError, ArpackNoConvergence, np.linalg.LinAlgError, sla.LinAlgError):
            result = None
    if result is None:
        eig = all_eigenvalues(k)
        return float(eig[0]), float(eig[-1]), "dense", None
    return result


def _factor_solver(factor: np.ndarray, potrs, dtype) -> LinearOperator:
    n = factor.shape[0]

    def solve(v):
        return potrs(factor, np.asarray(v, dtype=factor.dtype).reshape(n, -1), lower=1)[0].astype(np.float64)

    return LinearOperator((n, n), matvec=solve, matmat=solve, dtype=dtype)


def _residual(k: np.ndarray, lam: float, vec: np.ndarray) -> float:
    return float(np.linalg.norm(k @ vec - lam * vec) / np.linalg.norm(vec))


def _certified_extremes(k: np.ndarray, v0, lmin_guess=None):
    n = k.shape[0]
    rng = np.random.default_rng(20250122)
    start_min = v0[:, 0] if v0 is not None else rng.standard_normal(n)
    start_max = v0[:, 1] if v0 is not None else rng.standard_normal(n)

    theta_arr, vmax = eigsh(k, k=1, which="LA", v0=start_max, tol=1e-12)
    theta, vmax = float(theta_arr[0]), vmax[:, 0]
    r_max = _residual(k, theta, vmax)
    if not theta > 0.0 or r_max > RTOL_CERTIFY * theta:
        return None

    buffer = np.empty(k.shape, order="F")
    if lmin_guess is not None and lmin_guess > 0.0:
        found = _shifted_lambda_min(k, buffer, 0.99 * lmin_guess, start_min)
        if found is not None:
            return found[0], theta, "lanczos", np.column_stack([found[1], vmax])
    del buffer
    rough, v_rough = _rough_lambda_min(k, start_min)
    if rough is None:
        return None
    buffer = np.empty(k.shape, order="F")
    for fraction in _SHIFT_FRACTIONS:
        found = _shifted_lambda_min(k, buffer, fraction * rough, v_rough)
        if found is not None:
            return found[0], theta, "lanczos", np.column_stack([found[1], vmax])
    return None


def _rough_lambda_min(k: np.ndarray, start: np.ndarray, steps: int = 30):
    """``lambda_min`` to about 1e-3 from a float32 Cholesky factor, or ``(None, None)``.

    A fixed number of Lanczos steps on ``K^{-1}`` (full reorthogonalisation): the largest
    Ritz value converges much faster than its vector when the small eigenvalues cluster,
    and only the value is needed here; it is an upper bound of ``lambda_min`` in exact
    arithmetic, and any error is caught later by the float64 factorisation.
    """
    n = k.shape[0]
    low = _fortran_view(k).astype(np.float32)  # keeps the Fortran order
    low, info = lapack.spotrf(low, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        return None, None
    steps = min(steps, n)
    basis = np.empty((n, steps))
    alpha, beta = np.zeros(steps), np.zeros(steps)
    v = start / np.linalg.norm(start)
    used = steps
    for j in range(steps):
        basis[:, j] = v
        w = lapack.spotrs(low, v.astype(np.float32)[:, None], lower=1)[0][:, 0].astype(np.float64)
        alpha[j] = v @ w
        w -= basis[:, : j + 1] @ (basis[:, : j + 1].T @ w)  # full reorthogonalisation, twice
        w -= basis[:, : j + 1] @ (basis[:, : j + 1].T @ w)
        beta[j] = np.linalg.norm(w)
        if beta[j] <= 1e-12 * abs(alpha[j]) or j == steps - 1:
            used = j + 1
            break
        v = w / beta[j]
    del low
    ritz, vectors = sla.eigh_tridiagonal(alpha[:used], beta[: used - 1])
    mu = float(ritz[-1])
    if not mu > 0.0:
        return None, None
    return 1.0 / mu, basis[:, :used] @ vectors[:, -1]


def _shifted_lambda_min(k: np.ndarray, buffer: np.ndarray, sigma: float, start: np.ndarray):
    """Certified ``(lambda_min, vector)`` from a factorisation of ``K - sigma I``, or None.

    None when ``K - sigma I`` is not positive definite (``sigma`` too high) or the
    shift-and-invert Lanczos result fails its residual check.
    """
    np.copyto(buffer, _fortran_view(k))  # a straight copy: K is symmetric
    np.fill_diagonal(buffer, np.diag(k) - sigma)
    factor, info = lapack.dpotrf(buffer, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        return None
    mu_arr, vmin = eigsh(_factor_solver(factor, lapack.dpotrs, np.float64), k=1, which="LA",
                         v0=start, tol=1e-12)
    lmin, vmin = sigma + 1.0 / float(mu_arr[0]), vmin[:, 0]
    if not lmin > sigma or _residual(k, lmin, vmin) > RTOL_CERTIFY * lmin:
        return None
    return lmin, vmin
