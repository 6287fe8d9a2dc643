"""Eigenvalues of symmetric positive semi-definite kernel matrices: the dense solver and a
verified fast path for the two extremes.

Fast path (:func:`extreme_eigenvalues`), for ``K`` symmetric positive definite:

1. ``lambda_max``: Lanczos on ``K`` from a random start (or the caller's vector). The Ritz
   value ``theta`` is a lower bound of ``lambda_max`` and the residual
   ``r = |K v - theta v|`` must be below ``RTOL_CERTIFY * theta``, which puts an eigenvalue
   within ``r`` of ``theta``. (That it is the largest one rests on the start vector not being
   orthogonal to its eigenvector, which has probability zero; the top of an NTK spectrum is
   moreover well separated.)
2. A rough ``lambda_min`` (about 1e-3 relative) from Lanczos on ``K^{-1}`` through a float32
   Cholesky factor, skipped when the caller gives a guess (a depth sweep extrapolates one).
3. ``sigma`` a little below it: a float64 Cholesky factorisation of ``K - sigma I``
   *certifies* that every eigenvalue exceeds ``sigma`` (Sylvester's inertia), and the
   same factor drives shift-and-invert Lanczos, which converges in a few steps because
   ``sigma`` is close to ``lambda_min``. ``sigma + 1/mu`` (``mu`` the Ritz value) is an upper
   bound of ``lambda_min`` and its residual must be below ``RTOL_CERTIFY`` times it.

The bottom of an NTK spectrum is a dense cluster (the lowest eigenvalues of 4000 MNIST-like
points lie within 1 % of each other), so step 2 needs 20-40 Lanczos steps. Each step is a
solve with the triangular factor; LAPACK's ``trsv`` runs on one core at a fraction of the
memory bandwidth, so :class:`_FactorSolver` does it as a sequence of matrix-vector products
with panels of the factor (every core) and with the precomputed inverses of its small
diagonal blocks (bench/README.md, "How the figures are reached").

Any failed step (not positive definite, no convergence, residual too large) falls back
to the dense solver rather than answer wrong. Peak memory: ``K`` plus one n x n float64
buffer (the float32 copy is freed first).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas, lapack

from eoc_ntk.core._numerics.blas_threads import factorisation_threads
from eoc_ntk.core.arrays import FloatArray

#: ``v -> A v`` (or ``v -> A^{-1} v``) of a symmetric operator.
MatVec = Callable[[np.ndarray], np.ndarray]
#: ``accept(mu, y, estimate)`` of :func:`lanczos_top`.
Accept = Callable[[float, np.ndarray, float], bool]
#: ``(lambda_min, lambda_max, method, vectors)`` of :func:`extreme_eigenvalues`.
Extremes = tuple[float, float, str, np.ndarray | None]

__all__ = ["all_eigenvalues", "extreme_eigenvalues", "largest_eigenvalue", "RTOL_CERTIFY"]

#: Relative accuracy certified for the extremes by the fast path.
RTOL_CERTIFY = 1e-9
#: Below this size the dense solver is as fast as anything else (bench/README.md:
#: ``python bench/bench_extremes.py --n 1000``).
DENSE_BELOW = 1000
#: Shifts tried after the rough estimate, as ``sigma = fraction * rough``, until ``K - sigma I``
#: factorises; the first fraction is ``1 - margin`` from the rough estimate's own error bound.
RETRY_FRACTIONS = (0.9, 0.5)
_ROUGH_STEPS = 40
_FINAL_STEPS = 80
_MAX_STEPS = 60
_PANEL = 256
#: Solves done by LAPACK potrs before :class:`_FactorSolver` builds its panel inverses.
_DIRECT_SOLVES = 3


def _fortran_view(k: np.ndarray) -> np.ndarray:
    """``k`` itself or, for a C-ordered symmetric ``k``, its transpose: the same matrix and the
    same memory in the Fortran order LAPACK wants (otherwise f2py silently copies it)."""
    return k.T if k.flags.c_contiguous and not k.flags.f_contiguous else k


def all_eigenvalues(k: FloatArray, overwrite: bool = False) -> FloatArray:
    """All eigenvalues of the symmetric matrix ``k``, ascending (LAPACK ``syevd``)."""
    with factorisation_threads(k.shape[0]):
        eig: np.ndarray = sla.eigh(_fortran_view(k), eigvals_only=True, driver="evd", overwrite_a=overwrite,
                                   check_finite=False)
    return eig


def extreme_eigenvalues(k: FloatArray, v0: FloatArray | None = None, force_fast: bool = False,
                        lmin_guess: float | None = None) -> Extremes:
    """``(lambda_min, lambda_max, method, vectors)`` of the symmetric matrix ``k``.

    Parameters
    ----------
    k : ndarray of shape (n, n)
        Symmetric; not modified. Only the lower triangle of its Fortran-order view is read
        (for a C-ordered ``k``: the upper triangle and the diagonal), as by
        :func:`all_eigenvalues`.
    v0 : ndarray of shape (n, 2), optional
        Starting vectors for ``lambda_min`` and ``lambda_max`` (e.g. the eigenvectors at a
        neighbouring depth).
    force_fast : bool
        Use the fast path below ``DENSE_BELOW`` too.
    lmin_guess : float, optional
        A shift believed to lie just below ``lambda_min`` (e.g. extrapolated from
        neighbouring depths): it replaces the float32 estimate. The closer, the fewer
        Lanczos steps; a guess above ``lambda_min`` only costs a failed factorisation
        (then the float32 estimate is made); correctness never depends on it.

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
            result = _certified_extremes(_fortran_view(k), v0, lmin_guess)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError, sla.LinAlgError):
            # Every failure of the fast path (a factorisation, SciPy's finiteness checks,
            # an overflow) falls back to the dense solver rather than surface or answer wrong.
            result = None
    if result is None:
        eig = all_eigenvalues(k)
        return float(eig[0]), float(eig[-1]), "dense", None
    return result


def largest_eigenvalue(k: FloatArray) -> float:
    """``lambda_max`` of the symmetric matrix ``k`` (only the triangle described in
    :func:`extreme_eigenvalues` is read): certified Lanczos, or the dense solver."""
    kf = _fortran_view(k)
    n: int = kf.shape[0]
    if n >= 3:
        theta, _ = certified_top(_symmetric_product(kf), np.random.default_rng(20250122).standard_normal(n))
        if theta is not None:
            return float(theta)
    return float(all_eigenvalues(k)[-1])


def certified_top(matvec: MatVec, start: np.ndarray) -> tuple[float, np.ndarray] | tuple[None, None]:
    """``(lambda_max, vector)`` by Lanczos on ``K`` with a residual below ``RTOL_CERTIFY``, or ``(None, None)``."""

    def certified(mu: float, y: np.ndarray, estimate: float) -> bool:
        return mu > 0.0 and _residual(matvec, mu, y) <= RTOL_CERTIFY * mu

    # On K itself Lanczos' estimate is the residual (in exact arithmetic): check it once.
    theta, vector, _, ok = lanczos_top(matvec, start, _MAX_STEPS, certified, 0.5 * RTOL_CERTIFY)
    return (theta, vector) if ok else (None, None)


class _FactorSolver:
    """``v -> (L L^T)^{-1} v`` for a lower Cholesky factor ``L`` (Fortran order, upper part ignored).

    Forward and back substitution by panels of ``_PANEL`` rows: a matrix-vector product with
    the panel left of (or below) the diagonal block, then a product with the block's
    precomputed inverse. Same result as LAPACK ``potrs`` up to rounding in the diagonal
    blocks' inverses (their condition numbers are at most that of ``L``); callers verify
    every eigenpair against ``K`` itself, so rounding can cost steps, never correctness.
    """

    def __init__(self, factor: np.ndarray):
        self.factor = factor
        self.inverses: list[np.ndarray] | None = None
        self.calls = 0

    def _prepare(self) -> None:
        factor = self.factor
        n = factor.shape[0]
        self.edges = [(i0, min(n, i0 + _PANEL)) for i0 in range(0, n, _PANEL)]
        trtri = lapack.strtri if factor.dtype == np.float32 else lapack.dtrtri
        inverses = []
        for i0, i1 in self.edges:
            inv, info = trtri(np.tril(factor[i0:i1, i0:i1]), lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular diagonal block in a Cholesky factor")
            inverses.append(inv)
        self.inverses = inverses

    def __call__(self, v: np.ndarray) -> np.ndarray:
        low = self.factor
        self.calls += 1
        if self.inverses is None:
            if self.calls <= _DIRECT_SOLVES:  # a few solves do not repay the panel inverses
                potrs = lapack.spotrs if low.dtype == np.float32 else lapack.dpotrs
                y, info = potrs(low, np.asarray(v, dtype=low.dtype), lower=1)
                solved: np.ndarray = y.astype(np.float64, copy=False)
                return solved
            self._prepare()
        inverses = self.inverses
        assert inverses is not None  # set by _prepare
        y = np.asarray(v, dtype=low.dtype).copy()
        for (i0, i1), inv in zip(self.edges, inverses, strict=True):   # L y = v
            if i0:
                y[i0:i1] -= low[i0:i1, :i0] @ y[:i0]
            y[i0:i1] = inv @ y[i0:i1]
        for (i0, i1), inv in zip(self.edges[::-1], inverses[::-1], strict=True):   # L^T x = y
            if i1 < y.shape[0]:
                y[i0:i1] -= low[i1:, i0:i1].T @ y[i1:]
            y[i0:i1] = inv.T @ y[i0:i1]
        return y.astype(np.float64, copy=False)


def _symmetric_product(kf: np.ndarray) -> MatVec:
    """``v -> K v`` reading only the lower triangle of the Fortran-ordered ``kf`` (half the memory traffic)."""
    return lambda v: blas.dsymv(1.0, kf, v, lower=1)


def lanczos_top(apply: MatVec, start: np.ndarray, max_steps: int, accept: Accept | None = None,
                offer_below: float = 1e-3) -> tuple[float, np.ndarray, float, bool]:
    """Largest eigenvalue ``mu`` and vector of a symmetric operator by Lanczos.

    Full reorthogonalisation (twice), so the basis stays orthonormal in floating point.
    After each step whose Lanczos residual estimate ``|A y - mu y|`` is below
    ``offer_below * mu`` the top Ritz pair ``(mu, y)`` is offered to
    ``accept(mu, y, estimate)``; the iteration stops as soon as it returns True. Returns
    ``(mu, y, estimate, accepted)``; without ``accept`` it runs ``max_steps`` steps (or
    until the Krylov space is invariant).
    """
    n = start.shape[0]
    steps = min(max_steps, n)
    basis = np.empty((steps, n))  # rows: contiguous vectors
    alpha, beta = np.zeros(steps), np.zeros(steps)
    v = start / np.linalg.norm(start)
    mu, y, estimate = 0.0, v, np.inf
    for j in range(steps):
        basis[j] = v
        w = apply(v)
        alpha[j] = v @ w
        span = basis[: j + 1]
        w -= span.T @ (span @ w)
        w -= span.T @ (span @ w)
        beta[j] = np.linalg.norm(w)
        ritz, vectors = sla.eigh_tridiagonal(alpha[: j + 1], beta[:j]) if j else (alpha[:1], np.ones((1, 1)))
        mu, estimate = float(ritz[-1]), float(beta[j] * abs(vectors[-1, -1]))
        invariant = beta[j] <= 1e-14 * max(abs(mu), 1e-300)
        if accept is not None and (estimate <= offer_below * abs(mu) or invariant or j == steps - 1):
            y = vectors[:, -1] @ span
            if accept(mu, y, estimate):
                return mu, y, estimate, True
        if invariant:
            break
        v = w / beta[j]
    y = vectors[:, -1] @ basis[: j + 1]
    return mu, y, estimate, False


def _residual(matvec: MatVec, lam: float, vec: np.ndarray) -> float:
    return float(np.linalg.norm(matvec(vec) - lam * vec) / np.linalg.norm(vec))


def _certified_extremes(kf: np.ndarray, v0: np.ndarray | None, lmin_guess: float | None = None) -> Extremes | None:
    n: int = kf.shape[0]
    rng = np.random.default_rng(20250122)
    start_min = v0[:, 0] if v0 is not None else rng.standard_normal(n)
    start_max = v0[:, 1] if v0 is not None else rng.standard_normal(n)
    matvec = _symmetric_product(kf)

    top = certified_top(matvec, start_max)
    if top[0] is None:
        return None
    theta, vmax = top

    buffer = np.empty(kf.shape, order="F")
    if lmin_guess is not None and lmin_guess > 0.0:
        found = _shifted_lambda_min(kf, buffer, lmin_guess, start_min, matvec)
        if found is not None:
            return found[0], theta, "lanczos", np.column_stack([found[1], vmax])
    del buffer
    estimate = _rough_lambda_min(kf, start_min)
    if estimate[0] is None:
        return None
    rough, margin, v_rough = estimate
    buffer = np.empty(kf.shape, order="F")
    for fraction in (1.0 - margin, *RETRY_FRACTIONS):
        found = _shifted_lambda_min(kf, buffer, fraction * rough, v_rough, matvec)
        if found is not None:
            return found[0], theta, "lanczos", np.column_stack([found[1], vmax])
    return None


def _rough_lambda_min(kf: np.ndarray,
                      start: np.ndarray) -> tuple[float, float, np.ndarray] | tuple[None, None, None]:
    """``(rough, margin, vector)``: ``lambda_min`` to about 1e-3 from a float32 Cholesky factor.

    Lanczos on ``K^{-1}`` until Lanczos' own error estimate is below 1e-3 of the Ritz value
    ``mu`` (or ``_ROUGH_STEPS`` steps). ``1/mu`` is an upper bound of ``lambda_min`` in exact
    arithmetic; ``margin`` (the relative distance to a shift that should lie below
    ``lambda_min``) is twice the estimate plus float32 rounding, at least 2e-3. Nothing
    depends on it being right: a shift above ``lambda_min`` fails the float64 factorisation.
    ``(None, None, None)`` when ``K`` does not factorise in float32.
    """
    # Scaled by a power of two (exact) so that the largest diagonal entry is in [0.5, 1):
    # K / n can exceed float32's range (3.4e38) or fall below it while float64 holds it.
    _, shift = np.frexp(np.max(np.abs(np.diagonal(kf))))
    low = np.ldexp(kf, -int(shift)).astype(np.float32)  # keeps the Fortran order
    with factorisation_threads(low.shape[0]):
        low, info = lapack.spotrf(low, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        return None, None, None
    estimate = rough_lambda_min_from_solver(_FactorSolver(low), start)
    if estimate[0] is None:
        return None, None, None
    rough, margin, vector = estimate
    return math.ldexp(rough, int(shift)), margin, vector


def rough_lambda_min_from_solver(solve: MatVec,
                                 start: np.ndarray) -> tuple[float, float, np.ndarray] | tuple[None, None, None]:
    """``(rough, margin, vector)`` of :func:`_rough_lambda_min` from ``solve: v -> K^{-1} v``
    (any factorisation of ``K``: shared with :mod:`eoc_ntk.distributed`)."""
    mu, vector, estimate, _ = lanczos_top(solve, start, _ROUGH_STEPS, lambda mu, y, est: est <= 1e-3 * mu)
    if not mu > 0.0:
        return None, None, None
    margin = min(0.5, max(2e-3, 2.0 * estimate / mu + 1e-4))
    return 1.0 / mu, margin, vector


def _shifted_lambda_min(kf: np.ndarray, buffer: np.ndarray, sigma: float, start: np.ndarray,
                        matvec: MatVec) -> tuple[float, np.ndarray] | None:
    """Certified ``(lambda_min, vector)`` from a factorisation of ``K - sigma I``, or None.

    None when ``K - sigma I`` is not positive definite (``sigma`` too high) or the
    shift-and-invert Lanczos result fails its residual check.
    """
    np.copyto(buffer, kf)
    buffer.flat[:: buffer.shape[0] + 1] -= sigma
    with factorisation_threads(buffer.shape[0]):
        factor, info = lapack.dpotrf(buffer, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        return None
    return certified_lambda_min_from_solver(_FactorSolver(factor), sigma, start, matvec)


def certified_lambda_min_from_solver(solve: MatVec, sigma: float, start: np.ndarray,
                                     matvec: MatVec) -> tuple[float, np.ndarray] | None:
    """Certified ``(lambda_min, vector)`` by shift-and-invert Lanczos, or None.

    ``solve: v -> (K - sigma I)^{-1} v`` from a successful factorisation of ``K - sigma I``
    (any implementation: shared with :mod:`eoc_ntk.distributed`); ``matvec: v -> K v``
    checks every offered eigenpair against ``K`` itself.
    """

    def certified(mu: float, y: np.ndarray, estimate: float) -> bool:
        lmin = sigma + 1.0 / mu
        return mu > 0.0 and lmin > sigma and _residual(matvec, lmin, y) <= RTOL_CERTIFY * lmin

    # Through the inverse the residual in K is a few times Lanczos' relative estimate
    # (more when sigma is far below lambda_min): checked from 10 x RTOL_CERTIFY on.
    mu, vmin, _, ok = lanczos_top(solve, start, _FINAL_STEPS, certified, 10 * RTOL_CERTIFY)
    if not ok:
        return None
    return sigma + 1.0 / mu, vmin
