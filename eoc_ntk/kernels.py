"""Public kernel functions: NTK, NNGP, ICD approximation and last-layer angle.

The kernels are unnormalised: ``kernel(x)[i, j] = K(x_i, x_j)``. The paper's matrix
(MATH.md §5) is ``K / n``; :mod:`eoc_ntk.spectra` works with that one.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ._angles import pair_angles, unit_rows
from ._recursion import eoc_recursion, general_recursion
from ._validation import check_pair
from .model import Model

__all__ = ["kernel", "KINDS"]

KINDS = ("ntk", "nngp", "icd", "angle")
# Entries of one block of the output computed at once (bounds temporary memory:
# about a dozen float64 temporaries of this many entries, 32 MiB each).
_BLOCK_ENTRIES = 1 << 22

ProgressFn = Callable[[float], None]


def kernel(x, x2=None, *, depth, a, b, sigma_w=None, sigma_b=0.0, kind="ntk"):
    """Infinite-width kernel of an MLP with activation ``phi(s) = a*s + b*|s|``.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Inputs, one per row; converted to float64.
    x2 : array-like of shape (n2, m0), optional
        Second set of inputs for a cross-kernel ``K(x, x2)``; defaults to ``x``.
    depth : int
        Number of weight layers ``l >= 1``.
    a, b : float
        Activation coefficients (not both 0).
    sigma_w : float, optional
        Weight standard deviation; default the edge of chaos ``1/sqrt(a^2+b^2)``.
    sigma_b : float
        Bias standard deviation; default 0 (edge of chaos).
    kind : {"ntk", "nngp", "icd", "angle"}
        ``"ntk"``: ``Theta_l(x, x')``; ``"nngp"``: ``Sigma_l(x, x')``; ``"icd"``: the
        inverse-cosine-distance approximation ``sqrt(q q') chi^(l-1) 3 pi / (8 Delta alpha_l)``
        of the NTK (exact ``theta_l(0) = l`` where the input angle is 0; needs ``Delta > 0``
        and ``sigma_b = 0``); ``"angle"``: the last-layer angle ``alpha_l`` in radians.

    Returns
    -------
    ndarray of shape (n, n2), float64
        With ``q = sigma_w^2 |x|^2 / m0`` and ``chi = sigma_w^2 (a^2 + b^2)``, for
        ``sigma_b = 0`` the NTK is ``sqrt(q q') chi^(l-1) theta_l(alpha_1)`` (MATH.md §3);
        otherwise the general recursion of MATH.md §2.

    Raises
    ------
    ValueError, TypeError
        On invalid inputs; the message names the argument and its shape.
    """
    model = Model(depth, a, b, sigma_w, sigma_b)
    x, x2 = check_pair(x, x2)
    _check_kinds((kind,), model)
    return compute_kernels(x, x2, model, (kind,))[kind]


def _check_kinds(kinds, model: Model) -> None:
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if "icd" in kinds:
        if model.delta == 0.0:
            raise ValueError("kind='icd' needs Delta = b^2/(a^2+b^2) > 0; for b = 0 (linear) the ICD approximation is undefined")
        if model.sigma_b != 0.0:
            raise ValueError(f"kind='icd' is defined for sigma_b = 0 only, got sigma_b={model.sigma_b}")


def _check_scale(model: Model, r: np.ndarray, m0: int) -> None:
    """Refuse models and data whose kernel would overflow float64."""
    rmax = float(np.max(r)) if r.size else 0.0
    if rmax == 0.0:
        return
    sw2 = model.sigma_w2
    log_scale = (math.log(sw2) - math.log(m0) + 2.0 * math.log(rmax)
                 + (model.depth - 1) * math.log(model.chi) + math.log(model.depth + 1.0))
    if model.sigma_b > 0.0:
        log_scale = max(log_scale, 2.0 * math.log(model.sigma_b) + math.log(model.depth + 1.0)
                        + max(0.0, (model.depth - 1) * math.log(model.chi)))
    if log_scale > 700.0:
        raise ValueError(
            f"the kernel overflows float64 (largest input norm {rmax:.3g}, depth {model.depth}, "
            f"chi = sigma_w^2 (a^2+b^2) = {model.chi:.6g}); rescale the inputs or move sigma_w toward the edge of chaos"
        )


def compute_kernels(x: np.ndarray, x2: np.ndarray | None, model: Model, kinds,
                    progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
    """Several kernels from one recursion pass, for checked float64 inputs (no validation).

    ``x2 is None`` means the symmetric kernel of ``x``: only the upper triangle is
    computed, in row blocks, and mirrored, so the result is exactly symmetric.
    """
    m0 = x.shape[1]
    u, r = unit_rows(x)
    if x2 is None:
        v, r2 = u, r
    else:
        v, r2 = unit_rows(x2)
    _check_scale(model, np.concatenate([r, r2]), m0)
    n, n2 = u.shape[0], v.shape[0]
    out = {kind: np.empty((n, n2)) for kind in kinds}
    rows = max(1, _BLOCK_ENTRIES // max(n2, 1))
    done = 0
    total = n * n2 if x2 is not None else n * (n + 1) // 2
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        j0 = i0 if x2 is None else 0
        blocks = _pair_block(u[i0:i1], r[i0:i1], v[j0:], r2[j0:], x2 is None, model, m0, kinds)
        for kind, block in blocks.items():
            out[kind][i0:i1, j0:] = block
            if x2 is None:
                out[kind][i1:, i0:i1] = block[:, i1 - i0:].T
        done += block.size - (((i1 - i0) * (i1 - i0 - 1)) // 2 if x2 is None else 0)
        if progress is not None:
            progress(min(1.0, done / total))
    return out


def _pair_block(u_i, r_i, u_j, r_j, diagonal: bool, model: Model, m0: int, kinds) -> dict[str, np.ndarray]:
    """Kernels between the rows of one block and a set of columns."""
    alpha, beta = pair_angles(u_i, u_j, diagonal)
    depth, delta = model.depth, model.delta
    if model.sigma_b != 0.0:
        rec = general_recursion(r_i[:, None], r_j[None, :], alpha, beta, m0, depth, delta,
                                model.a ** 2 + model.b ** 2, model.sigma_w2, model.sigma_b)
        return {kind: rec[kind if kind != "angle" else "alpha"] for kind in kinds}
    want = tuple({"ntk": "theta", "nngp": "rho", "icd": "alpha", "angle": "alpha"}[k] for k in kinds)
    rec = eoc_recursion(alpha, beta, depth, delta, want)
    prefactor = (model.sigma_w2 / m0) * model.chi ** (depth - 1) * np.outer(r_i, r_j)
    out = {}
    for kind in kinds:
        if kind == "ntk":
            out[kind] = prefactor * rec["theta"]
        elif kind == "nngp":
            out[kind] = prefactor * rec["rho"]
        elif kind == "angle":
            out[kind] = rec["alpha"].copy()
        else:
            out[kind] = prefactor * _icd_theta(rec["alpha"], alpha, depth, delta)
    return out


def _icd_theta(alpha_last: np.ndarray, alpha_first: np.ndarray, depth: int, delta: float) -> np.ndarray:
    """``3 pi / (8 Delta alpha_l)``, and the exact ``theta_l(0) = l`` where the input angle is 0."""
    parallel = alpha_first == 0.0
    safe = np.where(parallel | (alpha_last == 0.0), 1.0, alpha_last)
    approx = 3.0 * np.pi / (8.0 * delta * safe)
    approx[parallel] = float(depth)
    # Distinct inputs whose last angle underflowed to 0: the approximation is unbounded.
    approx[(alpha_last == 0.0) & ~parallel] = np.finfo(np.float64).max
    return approx
