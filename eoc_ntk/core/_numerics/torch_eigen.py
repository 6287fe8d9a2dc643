"""Eigenvalues of a kernel matrix held on a torch device: all of them, or the certified extremes.

The certified fast path is :mod:`eoc_ntk.core.eigen`'s, with the matrix work on the device:

1. ``lambda_max``: Lanczos on ``K`` (products ``K v`` on the device), accepted when the residual
   ``|K v - theta v|`` is below ``RTOL_CERTIFY * theta``.
2. A rough ``lambda_min`` from Lanczos on ``K^{-1}`` through a **float32** Cholesky factor
   (the one reduced-precision step: nothing is certified by it, it only proposes a shift).
3. A **float64** Cholesky factorisation of ``K - sigma I`` certifies that every eigenvalue
   exceeds ``sigma``; shift-and-invert Lanczos through it gives ``lambda_min``, accepted when
   its float64 residual against ``K`` itself is below ``RTOL_CERTIFY`` times it.

The Lanczos bases, the tridiagonal eigenproblems and the acceptance tests are the NumPy core's
own functions (:func:`eoc_ntk.core.eigen.certified_top`, ...), on host vectors of length n; only
the O(n^2) products and the O(n^3) factorisations run on the device. Any failure falls back to
the dense ``eigvalsh`` on the device. Peak device memory: ``K`` plus one n x n float64 buffer
(the float32 factor, n x n x 4, is freed first). Where that buffer does not fit, the factors go
into ``K``'s own lower triangle (:mod:`eoc_ntk.core._numerics.torch_inplace`: ``K`` plus a few
panels), and a matrix the fast path cannot certify is refused by name (the dense fallback would
need the second matrix).
"""
from __future__ import annotations

import math

import numpy as np

from eoc_ntk.core._numerics.torch_device import BLOCK_ENTRIES, DeviceMemoryError, Tensor, load_torch, spare_memory
from eoc_ntk.core._numerics.torch_inplace import BLOCK, InPlaceKernel, inplace_extremes
from eoc_ntk.core.eigen import (
    DENSE_BELOW,
    RETRY_FRACTIONS,
    MatVec,
    certified_lambda_min_from_solver,
    certified_top,
    rough_lambda_min_from_solver,
)

__all__ = ["torch_all_eigenvalues", "torch_extremes", "torch_largest", "UncertifiedInPlace"]

#: The start vectors' seed, as in the NumPy core (same starts, same Krylov spaces).
_SEED = 20250122


class UncertifiedInPlace(DeviceMemoryError):
    """The fast path in ``K``'s own memory could not certify, and the dense fallback does not fit.
    ``K``'s strict upper triangle and diagonal (hence :func:`torch_largest` with ``in_place``) still hold."""


def torch_all_eigenvalues(k: Tensor) -> np.ndarray:
    """All eigenvalues of the symmetric tensor ``k``, ascending, as a NumPy array."""
    values: np.ndarray = load_torch().linalg.eigvalsh(k).cpu().numpy()
    return values


def _matvec(k: Tensor) -> MatVec:
    torch = load_torch()
    return lambda v: (k @ torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).to(k.device)).cpu().numpy()


def torch_largest(k: Tensor, in_place: bool = False) -> float:
    """``lambda_max`` of the symmetric tensor ``k``: certified Lanczos, or the dense solver. ``in_place``:
    ``k`` after :class:`UncertifiedInPlace` (only its upper triangle and diagonal are read)."""
    n = k.shape[0]
    if n >= 3:
        matvec = InPlaceKernel(k).matvec if in_place else _matvec(k)
        theta, _ = certified_top(matvec, np.random.default_rng(_SEED).standard_normal(n))
        if theta is not None:
            return theta
    return float(torch_all_eigenvalues(k)[-1])


Extremes = tuple[float, float, str, np.ndarray | None]


def torch_extremes(k: Tensor, v0: np.ndarray | None = None, force_fast: bool = False,
                   lmin_guess: float | None = None) -> Extremes:
    """``(lambda_min, lambda_max, method, vectors)`` of the symmetric tensor ``k`` (not modified),
    as :func:`eoc_ntk.core.eigen.extreme_eigenvalues`."""
    torch = load_torch()
    n = k.shape[0]
    result = None
    # Room for the second n x n buffer (and the dense fallback's copy), or K's memory alone.
    roomy = spare_memory(k.device, 8 * n * n) >= 8 * n * n + 8 * 4 * BLOCK * n
    if n >= DENSE_BELOW or (force_fast and n >= 3):
        try:
            result = _certified(k, v0, lmin_guess) if roomy else inplace_extremes(k, v0)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError, torch.linalg.LinAlgError):
            # Any failure of the fast path falls back to the dense solver rather than answer wrong.
            result = None
    if result is None and not roomy:
        raise UncertifiedInPlace(
            f"the extreme eigenvalues of n = {n} points could not be certified in the memory of K alone (the "
            f"matrix is not safely positive definite: duplicate or nearly dependent inputs?), and the dense "
            f"solver needs a second {8 * n * n / 2 ** 30:.3g} GiB matrix that {k.device} does not have; use a "
            "device with more memory, fewer points, or eigenvalues='extremes' on the NumPy backend", param="x")
    if result is None:
        eig = torch_all_eigenvalues(k)
        return float(eig[0]), float(eig[-1]), "dense", None
    return result


def _certified(k: Tensor, v0: np.ndarray | None, lmin_guess: float | None) -> Extremes | None:
    n = k.shape[0]
    rng = np.random.default_rng(_SEED)
    start_min = v0[:, 0] if v0 is not None else rng.standard_normal(n)
    start_max = v0[:, 1] if v0 is not None else rng.standard_normal(n)
    matvec = _matvec(k)
    top = certified_top(matvec, start_max)
    if top[0] is None:
        return None
    theta, vmax = top
    if lmin_guess is not None and lmin_guess > 0.0:
        found = _shifted_lambda_min(k, lmin_guess, start_min, matvec)
        if found is not None:
            return found[0], theta, "lanczos", np.column_stack([found[1], vmax])
    estimate = _rough_lambda_min(k, start_min)
    if estimate[0] is None:
        return None
    rough, margin, v_rough = estimate
    for fraction in (1.0 - margin, *RETRY_FRACTIONS):
        found = _shifted_lambda_min(k, fraction * rough, v_rough, matvec)
        if found is not None:
            return found[0], theta, "lanczos", np.column_stack([found[1], vmax])
    return None


def _factor_in_place(a: Tensor) -> tuple[Tensor, bool]:
    """Lower Cholesky factor of the symmetric row-major ``a``, computed in ``a``'s own memory (its
    transpose is the column-major array LAPACK and cuSOLVER factor); ``(factor, ok)``."""
    torch = load_torch()
    col = a.mT
    info = torch.empty((), dtype=torch.int32, device=a.device)
    try:
        torch.linalg.cholesky_ex(col, out=(col, info))
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise
        # A torch build that refuses the aliased output: the factor in new memory (one more n x n).
        col, info = torch.linalg.cholesky_ex(a)
    return col, int(info.item()) == 0


def _solver(factor: Tensor) -> MatVec:
    torch = load_torch()

    def solve(v: np.ndarray) -> np.ndarray:
        b = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).to(factor.device, factor.dtype)
        x: np.ndarray = torch.cholesky_solve(b[:, None], factor)[:, 0].to(torch.float64).cpu().numpy()
        return x

    return solve


def _rough_lambda_min(k: Tensor, start: np.ndarray) -> tuple[float, float, np.ndarray] | tuple[None, None, None]:
    """``(rough, margin, vector)`` from a float32 Cholesky factor of ``K`` scaled by a power of two
    (so that float32's range holds it), built row block by row block; ``(None,) * 3`` when it fails."""
    torch = load_torch()
    n = k.shape[0]
    _, shift = math.frexp(float(k.diagonal().abs().max()))
    low = torch.empty((n, n), dtype=torch.float32, device=k.device)
    rows = max(1, BLOCK_ENTRIES // n)
    for i0 in range(0, n, rows):
        low[i0:i0 + rows] = (k[i0:i0 + rows] * math.ldexp(1.0, -shift)).to(torch.float32)
    factor, ok = _factor_in_place(low)
    if not ok:
        return None, None, None
    estimate = rough_lambda_min_from_solver(_solver(factor), start)
    del factor, low
    if estimate[0] is None:
        return None, None, None
    rough, margin, vector = estimate
    return math.ldexp(rough, shift), margin, vector


def _shifted_lambda_min(k: Tensor, sigma: float, start: np.ndarray,
                        matvec: MatVec) -> tuple[float, np.ndarray] | None:
    """Certified ``(lambda_min, vector)`` from a float64 factorisation of ``K - sigma I``, or None."""
    buffer = k.clone()
    buffer.diagonal().sub_(sigma)
    factor, ok = _factor_in_place(buffer)
    if not ok:
        return None
    return certified_lambda_min_from_solver(_solver(factor), sigma, start, matvec)
