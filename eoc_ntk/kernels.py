"""Public kernel functions: NTK, NNGP, ICD approximation and last-layer angle.

The kernels are unnormalised: ``kernel(x)[i, j] = K(x_i, x_j)``. The paper's matrix
(MATH.md §5) is ``K / n``; :mod:`eoc_ntk.spectra` works with that one.
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._angles import u_from_cos, unit_rows
from ._interp import INTERVALS, U_MAX, angles_to_u, eoc_interpolant, interval_of, u_to_angles
from ._recursion import eoc_recursion, general_recursion
from ._validation import check_pair
from .model import Model
from .progress import ProgressFn
from .errors import InvalidParameterError

__all__ = ["kernel", "check_kinds", "KINDS"]

KINDS = ("ntk", "nngp", "icd", "angle")
# Entries of one block of the output computed at once (bounds temporary memory:
# about a dozen float64 temporaries of this many entries, 32 MiB each).
_BLOCK_ENTRIES = 1 << 22



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
    check_kinds((kind,), model)
    return compute_kernels(x, x2, model, (kind,))[kind]


def check_kinds(kinds, model: Model) -> None:
    """Raise InvalidParameterError (``param="kind"``) unless every kind is known and defined for ``model`` (e.g. ICD needs Delta > 0)."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    for kind in kinds:
        if kind not in KINDS:
            raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", param="kind")
    if "icd" in kinds:
        if model.delta == 0.0:
            raise InvalidParameterError("kind='icd' needs Delta = b^2/(a^2+b^2) > 0; for b = 0 (linear) the ICD approximation is undefined", param="kind")
        if model.sigma_b != 0.0:
            raise InvalidParameterError(f"kind='icd' is defined for sigma_b = 0 only, got sigma_b={model.sigma_b}", param="kind")


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
        raise InvalidParameterError(
            f"the kernel overflows float64 (largest input norm {rmax:.3g}, depth {model.depth}, "
            f"chi = sigma_w^2 (a^2+b^2) = {model.chi:.6g}); rescale the inputs or move sigma_w toward the edge of chaos", param="x")


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def compute_kernels(x: np.ndarray, x2: np.ndarray | None, model: Model, kinds,
                    progress: ProgressFn | None = None, method: str = "auto") -> dict[str, np.ndarray]:
    """Several kernels from one recursion pass, for checked float64 inputs (no validation).

    ``x2 is None`` means the symmetric kernel of ``x``: only the upper triangle is
    computed, in row blocks spread over the CPU cores, and mirrored, so the result is
    exactly symmetric. ``method`` is ``"exact"`` (the recursion for every entry, cost
    linear in depth), ``"interpolated"`` (depth-independent interpolants, used for
    ``sigma_b = 0``, ``depth >= 2``, ``Delta > 0``) or ``"auto"`` (interpolated when it is
    cheaper). Memory: the outputs plus a few temporaries of ``_BLOCK_ENTRIES`` per core.
    """
    kinds = tuple(kinds)
    m0 = x.shape[1]
    u, r = unit_rows(x)
    v, r2 = (u, r) if x2 is None else unit_rows(x2)
    _check_scale(model, np.concatenate([r, r2]), m0)
    n, n2 = u.shape[0], v.shape[0]
    symmetric = x2 is None
    interp = _choose_interpolant(model, n * n2, method)
    out = {kind: np.empty((n, n2)) for kind in kinds}
    # The first output array holds the cosines, then (with an interpolant) the u values,
    # then its own kernel. Each block reads only its upper part before overwriting it, and
    # the mirror writes only the lower triangle, which no block reads.
    work = np.matmul(u, v.T, out=out[kinds[0]])
    rows = max(1, min(256, _BLOCK_ENTRIES // max(n2, 1)))
    blocks = [(i0, min(n, i0 + rows), i0 if symmetric else 0) for i0 in range(0, n, rows)]
    tracker = _Progress(progress, sum((i1 - i0) * (n2 - j0) for i0, i1, j0 in blocks))

    def to_u(i0, i1, j0):
        region = work[i0:i1, j0:]
        region[...] = u_from_cos(region, u[i0:i1], v[j0:], symmetric)
        inside = np.abs(region) <= U_MAX
        counts = np.bincount(interval_of(region[inside]), minlength=INTERVALS)
        tracker.add(0.3 * (i1 - i0) * (n2 - j0))
        return counts

    def fill(i0, i1, j0, from_u):
        region = work[i0:i1, j0:]
        uu = region if from_u else u_from_cos(region, u[i0:i1], v[j0:], symmetric)
        values = _kernels_from_u(uu, r[i0:i1], r2[j0:], model, m0, kinds, interp)
        for kind in kinds[::-1]:  # the first kind last: it overwrites the shared region
            out[kind][i0:i1, j0:] = values[kind]
            if symmetric:
                out[kind][i1:, i0:i1] = values[kind][:, i1 - i0:].T
        tracker.add((0.7 if from_u else 1.0) * (i1 - i0) * (n2 - j0))

    if interp is None:
        _run_blocks(blocks, lambda b: fill(*b, from_u=False))
    else:
        counts = sum(_run_blocks(blocks, lambda b: to_u(*b)))
        interp.ensure(np.flatnonzero(counts))
        _run_blocks(blocks, lambda b: fill(*b, from_u=True))
    return out


class _Progress:
    """Thread-safe progress reporting as a fraction of ``total`` units of work."""

    def __init__(self, callback: ProgressFn | None, total: float):
        self.callback, self.total, self.done = callback, max(float(total), 1.0), 0.0
        self.lock = threading.Lock()

    def add(self, units: float) -> None:
        if self.callback is None:
            return
        with self.lock:
            self.done += units
            self.callback(min(1.0, self.done / self.total))


def _run_blocks(blocks, fn) -> list:
    """``[fn(block) for block in blocks]``, spread over the CPU cores (NumPy releases the GIL)."""
    threads = _threads()
    if threads == 1 or len(blocks) == 1:
        return [fn(b) for b in blocks]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [f.result() for f in [pool.submit(fn, b) for b in blocks]]


def _choose_interpolant(model: Model, entries: int, method: str):
    if method not in ("auto", "exact", "interpolated"):
        raise InvalidParameterError(f"method must be 'auto', 'exact' or 'interpolated', got {method!r}", param="method")
    usable = model.sigma_b == 0.0 and model.depth >= 2 and model.delta > 0.0
    if method == "exact" or not usable:
        return None
    # Building an interval costs 11 entries' worth of exact recursion.
    if method == "auto" and entries < 4096:
        return None
    return eoc_interpolant(model.depth, model.delta)


def _kernels_from_u(uu, r_i, r_j, model: Model, m0: int, kinds, interp) -> dict[str, np.ndarray]:
    """Kernels of one block from the input angles given as ``u = 2 log tan(alpha/2)``."""
    depth, delta = model.depth, model.delta
    if model.sigma_b != 0.0:
        alpha, beta = u_to_angles(uu)
        rec = general_recursion(r_i[:, None], r_j[None, :], alpha, beta, m0, depth, delta,
                                model.a ** 2 + model.b ** 2, model.sigma_w2, model.sigma_b)
        return {kind: rec[kind if kind != "angle" else "alpha"] for kind in kinds}
    need_theta = "ntk" in kinds
    need_angle = any(k in kinds for k in ("nngp", "icd", "angle"))
    theta, u_last = _normalised(uu, depth, delta, interp, need_theta, need_angle)
    prefactor = (model.sigma_w2 / m0) * model.chi ** (depth - 1) * np.outer(r_i, r_j)
    out = {}
    if need_angle:
        alpha_last = u_to_angles(u_last)[0]
    for kind in kinds:
        if kind == "ntk":
            out[kind] = prefactor * theta
        elif kind == "nngp":
            out[kind] = prefactor * -np.tanh(0.5 * u_last)
        elif kind == "angle":
            out[kind] = alpha_last
        else:
            out[kind] = prefactor * _icd_theta(alpha_last, depth, delta)
    return out


def _normalised(uu, depth, delta, interp, need_theta, need_angle):
    """``theta_l`` and ``u_l`` for input angles given as ``u = 2 log tan(alpha/2)``.

    Pairs pointing the same way (``u = -inf``, the diagonal) have ``theta_l = l`` and
    ``u_l = -inf`` exactly; at depth 1 ``theta_1 = cos(alpha) = -tanh(u/2)``.
    """
    if depth == 1:
        return (-np.tanh(0.5 * uu) if need_theta else None), (uu.copy() if need_angle else None)
    theta = np.empty_like(uu) if need_theta else None
    u_last = np.empty_like(uu) if need_angle else None
    same = uu == -np.inf
    if interp is None:
        exact = ~same
    else:
        fast = np.abs(uu) <= U_MAX
        vals = uu[fast]
        valid = np.ones(vals.shape, dtype=bool)
        if need_theta:
            values, ok = interp.theta(vals)
            theta[fast] = values
            valid &= ok
        if need_angle:
            values, ok = interp.u_last(vals)
            u_last[fast] = values
            valid &= ok
        if not valid.all():
            fast[fast] = valid
        exact = ~(fast | same)
    if need_theta:
        theta[same] = float(depth)
    if need_angle:
        u_last[same] = -np.inf
    if exact.any():
        alpha, beta = u_to_angles(uu[exact])
        rec = eoc_recursion(alpha, beta, depth, delta, ("theta", "alpha", "beta"))
        if need_theta:
            theta[exact] = rec["theta"]
        if need_angle:
            u_last[exact] = angles_to_u(rec["alpha"], rec["beta"])
    return theta, u_last


def _icd_theta(alpha_last: np.ndarray, depth: int, delta: float) -> np.ndarray:
    """``3 pi / (8 Delta alpha_l)``, and the exact ``theta_l = l`` where ``alpha_l = 0``.

    ``alpha_l = 0`` happens only for inputs pointing the same way, or for opposite inputs
    of an even activation (Delta = 1, depth >= 2): their activations coincide.
    """
    collapsed = alpha_last == 0.0
    approx = 3.0 * np.pi / (8.0 * delta * np.where(collapsed, 1.0, alpha_last))
    approx[collapsed] = float(depth)
    return approx
