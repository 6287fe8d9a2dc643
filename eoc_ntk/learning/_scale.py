"""Kernels with their scale carried apart, for the label-aware functions (docs/learning.md §2).

At ``sigma_b = 0`` the NTK is ``(sigma_w^2/m0) chi^(l-1) |x| |x'| theta_l`` (docs/math.md §3): its
scale leaves float64 for inputs near 1e-160 or 1e150, or for ``chi^(l-1)`` at large depth off the
edge of chaos, while its shape does not. :func:`eoc_ntk.core.kernels.compute_scaled_kernels`
returns ``K 2^-shift`` with entries of order ``depth``; the learning functions work on those and
put the power of two back only into answers that carry the kernel's unit (eigenvalues, rates).
"""
from __future__ import annotations

import math

import numpy as np

from eoc_ntk.core.kernels import compute_scaled_kernels
from eoc_ntk.core.model import Model

__all__ = ["relative_kernels", "times_two_to", "is_normal"]

_TINY = float(np.finfo(np.float64).tiny)
_HUGE = float(np.finfo(np.float64).max)


def relative_kernels(x: np.ndarray, x2: np.ndarray | None, model: Model,
                     kinds: tuple[str, ...]) -> tuple[dict[str, np.ndarray], int]:
    """``(kernels, shift)``: the true kernels are ``np.ldexp(kernels[kind], shift)``; for checked inputs."""
    return compute_scaled_kernels(x, x2, model, tuple(kinds))


def times_two_to(value: float, exponent: int) -> float:
    """``value * 2^exponent`` with overflow as ``inf`` (``math.ldexp`` raises instead)."""
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


def is_normal(value: float) -> bool:
    """Whether ``|value|`` is a normal float64 number (neither 0, subnormal, inf nor NaN)."""
    return _TINY <= abs(value) <= _HUGE
