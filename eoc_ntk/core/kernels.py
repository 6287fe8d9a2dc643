"""Public kernel functions: NTK, NNGP, ICD approximation and last-layer angle.

The kernels are unnormalised: ``kernel(x)[i, j] = K(x_i, x_j)``. The paper's matrix
(docs/math.md §5) is ``K / n``; :mod:`eoc_ntk.core.spectra` works with that one.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from eoc_ntk.core._numerics.interp import (
    INTERVALS,
    U_MAX,
    AngleInterpolant,
    angles_to_u,
    eoc_interpolant,
    interval_of,
    u_to_angles,
)
from eoc_ntk.core._numerics.recursion import eoc_recursion, general_recursion
from eoc_ntk.core.angles import (
    GRAM_ROWS,
    gram,
    largest_exponent,
    scaled_unit_rows,
    u_from_cos,
)
from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.model import Model, model_of
from eoc_ntk.core.progress import ProgressFn
from eoc_ntk.core.smooth_kernels import SMOOTH_KINDS, smooth_kernels
from eoc_ntk.core.validation import check_pair
from eoc_ntk.core.variance import check_variance_products

__all__ = ["kernel", "check_kinds", "check_kernel_request", "KINDS"]

KINDS = ("ntk", "nngp", "icd", "angle")
# Entries of one block of the output computed at once (bounds temporary memory:
# about a dozen float64 temporaries of this many entries, 32 MiB each).
_BLOCK_ENTRIES = 1 << 22



def kernel(x: ArrayLike, x2: ArrayLike | None = None, *, depth: int, a: float | None = None, b: float | None = None,
           activation: Any = None, sigma_w: float | None = None,
           sigma_b: float = 0.0, kind: str = "ntk") -> FloatArray:
    """Infinite-width kernel of an MLP with activation ``phi(s) = a*s + b*|s|`` or a smooth one.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Inputs, one per row; converted to float64.
    x2 : array-like of shape (n2, m0), optional
        Second set of inputs for a cross-kernel ``K(x, x2)``; defaults to ``x``.
    depth : int
        Number of weight layers ``l >= 1``.
    a, b : float
        Activation coefficients (not both 0); or give ``activation`` instead.
    activation : str, dict, (a, b) or Activation, optional
        Any spelling of :func:`eoc_ntk.core.activations.parse_activation` (``"relu"`` is
        ``a = b = 1/2``, ``"abs"`` is ``(0, 1)``, ``"leaky_relu:0.1"`` is ``(0.55, 0.45)``),
        instead of ``a`` and ``b``; giving both is an ``InvalidParameterError``. Also the smooth
        activations ``"erf"``, ``"tanh"``, ``"gelu"``, ``"silu"`` and ``Activation.custom(phi, dphi)``
        (kinds ``"ntk"``, ``"nngp"``, ``"angle"``; :mod:`eoc_ntk.core.smooth_kernels`).
    sigma_w : float, optional
        Weight standard deviation; default the edge of chaos ``1/sqrt(a^2+b^2)`` (for a smooth
        activation the EOC for ``sigma_b``, :class:`eoc_ntk.core.model.Model`).
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
        ``sigma_b = 0`` the NTK is ``sqrt(q q') chi^(l-1) theta_l(alpha_1)`` (docs/math.md §3);
        otherwise the general recursion of docs/math.md §2. Norms and angles are computed
        scale-free (every finite input works, down to the smallest normal float): at
        ``sigma_b = 0`` each entry is formed as ``theta * mantissa * 2^exponent``, so it
        is the correctly scaled value wherever float64 can represent it (entries below
        2.2e-308 are subnormal or 0).

    Raises
    ------
    InvalidParameterError (a ValueError and a TypeError)
        On invalid inputs; the message names the argument and its shape. Also when the
        whole kernel falls below float64's normal range (``param="x"``, or ``"depth"`` when
        ``chi^(l-1)`` is the cause) or overflows it, and for ``kind="angle"`` with a zero
        input row at ``sigma_b = 0`` (``param="x"`` or ``"x2"``): the angle to a zero vector is
        undefined (with a bias every input has a non-zero pre-activation and a defined angle).
    """
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, where="kernel")
    x, x2 = check_pair(x, x2)
    check_kernel_request(x, x2, model, (kind,))
    return compute_kernels(x, x2, model, (kind,))[kind]


def check_kernel_request(x: FloatArray, x2: FloatArray | None, model: Model, kinds: Sequence[str]) -> None:
    """Refuse kernels of checked data that have no answer, before computing anything.

    Every kind must be defined for ``model`` (:func:`check_kinds`); ``"angle"`` is undefined
    for zero rows at ``sigma_b = 0``; the other kinds are refused when every entry falls below
    float64's normal range. Shared by :func:`kernel` and the service's kernel jobs.
    """
    check_kinds(kinds, model)
    if model.sigma_b != 0.0 or model.is_smooth:
        return
    if "angle" in kinds:
        _refuse_zero_rows_for_angle(x, "x")
        if x2 is not None:
            _refuse_zero_rows_for_angle(x2, "x2")
    if any(kind != "angle" for kind in kinds):
        _refuse_underflow(x, x2, model)


def _refuse_zero_rows_for_angle(x: np.ndarray, name: str) -> None:
    """``kind="angle"`` is undefined for zero rows: refuse them by index."""
    zero = np.flatnonzero(~np.any(x != 0.0, axis=1))
    if zero.size:
        raise InvalidParameterError(
            f"kind='angle' is undefined for zero input rows: {name} rows {zero[:10].tolist()} are zero "
            f"(shape {x.shape}); the angle between a zero vector and any input has no value. "
            "Drop those rows, or ask for kind='ntk' or 'nngp' (their entries are 0)", param=name)


def _log2_scale(model: Model, m0: int) -> float:
    """``log2((sigma_w^2 / m0) chi^(l-1))`` without forming the (possibly unrepresentable) power."""
    return math.log2(model.sigma_w2) - math.log2(m0) + (model.depth - 1) * math.log2(model.chi)


def _pow_split(base: float, power: int) -> tuple[float, int]:
    """``base^power = mantissa * 2^exponent`` (``mantissa`` in [0.5, 1)) for any ``power >= 0``,
    by binary exponentiation on mantissa/exponent pairs: never under- or overflows, relative
    error about ``2 log2(power) eps``."""
    mant, exp = 0.5, 1
    b_mant, b_exp = math.frexp(base)
    while power:
        if power & 1:
            mant, e = math.frexp(mant * b_mant)
            exp += e + b_exp
        b_mant, e = math.frexp(b_mant * b_mant)
        b_exp = 2 * b_exp + e
        power >>= 1
    return mant, exp


def scale_split(model: Model, m0: int) -> tuple[float, int]:
    """``(sigma_w^2 / m0) chi^(l-1) = mantissa * 2^exponent``, exact to a few ulps at any depth.

    The carried scale ``chi^(l-1)`` of docs/math.md §3 under- or overflows float64 off the edge of
    chaos at large depth (chi = 0.5 at depth 1200 gives 2^-1199); kept apart it never does.
    """
    c_mant, c_exp = _pow_split(model.chi, model.depth - 1)
    s_mant, s_exp = math.frexp(model.sigma_w2 / m0) if model.sigma_w2 / m0 >= 2.3e-308 else \
        math.frexp(math.ldexp(model.sigma_w2, 600) / m0)
    if model.sigma_w2 / m0 < 2.3e-308:
        s_exp -= 600
    mant, e = math.frexp(c_mant * s_mant)
    return mant, c_exp + s_exp + e


def _refuse_underflow(x: np.ndarray, x2: np.ndarray | None, model: Model) -> None:
    """Refuse (by name) a kernel whose every entry would fall below the normal float64 range."""
    _, m1, e1 = scaled_unit_rows(x)
    m2, e2 = (m1, e1) if x2 is None else scaled_unit_rows(x2)[1:]
    if not (np.any(m1 > 0.0) and np.any(m2 > 0.0)):
        return  # zero rows only: the kernel is exactly 0, a representable answer
    top1 = float(np.max(np.log2(m1[m1 > 0.0]) + e1[m1 > 0.0]))
    top2 = float(np.max(np.log2(m2[m2 > 0.0]) + e2[m2 > 0.0]))
    log2_max = _log2_scale(model, x.shape[1]) + top1 + top2 + math.log2(model.depth)
    if log2_max < math.log2(np.finfo(np.float64).tiny):
        chi_part = (model.depth - 1) * math.log2(model.chi)
        param = "depth" if chi_part < -1000.0 else "x"
        raise InvalidParameterError(
            f"every kernel entry is below 2.2e-308 (largest about 2^{log2_max:.0f}, from input norms up to "
            f"2^{max(top1, top2):.0f}, depth {model.depth} and chi^(l-1) = 2^{chi_part:.0f} with "
            f"chi = sigma_w^2 (a^2+b^2) = {model.chi:.6g}): float64 cannot represent it. Rescale x "
            "(the kernel is homogeneous of degree 1 in each input's norm at sigma_b = 0), lower the depth or "
            "move sigma_w toward the edge of chaos; spectrum() and depth_sweep() work scale-free", param=param)


def check_kinds(kinds: Sequence[str], model: Model) -> None:
    """Raise InvalidParameterError (``param="kind"``) unless every kind is known and defined for ``model``
    (e.g. ICD needs Delta > 0)."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    for kind in kinds:
        if kind not in KINDS:
            raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", param="kind")
        if model.is_smooth and kind not in SMOOTH_KINDS:
            raise InvalidParameterError(
                f"kind={kind!r} (the inverse-cosine-distance approximation) is specific to the paper's family "
                f"phi(s) = a*s + b*|s|, not activation {model.summary()['activation']!r}; use one of "
                f"{', '.join(SMOOTH_KINDS)}", param="kind")
    if "icd" in kinds:
        if model.delta == 0.0:
            raise InvalidParameterError("kind='icd' needs Delta = b^2/(a^2+b^2) > 0; for b = 0 (linear) the ICD "
                                        "approximation is undefined", param="kind")
        if model.sigma_b != 0.0:
            raise InvalidParameterError("kind='icd' is defined for sigma_b = 0 only, got "
                                        f"sigma_b={model.sigma_b}", param="kind")


def check_scale(model: Model, r: np.ndarray, m0: int) -> None:
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
            f"chi = sigma_w^2 (a^2+b^2) = {model.chi:.6g}); rescale the inputs or move sigma_w toward the edge of "
            "chaos",
            param="x" if (model.depth - 1) * math.log(model.chi) < 350.0 else "depth",
        )
    check_variance_products(model, rmax, m0)



def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def compute_kernels(x: FloatArray, x2: FloatArray | None, model: Model, kinds: Sequence[str],
                    progress: ProgressFn | None = None, method: str = "auto") -> dict[str, FloatArray]:
    """Several kernels from one recursion pass, for checked float64 inputs (no validation).

    ``x2 is None`` means the symmetric kernel of ``x``: only the upper triangle is
    computed, in row blocks spread over the CPU cores, and mirrored, so the result is
    exactly symmetric. Entries are formed scale-free (see :func:`compute_scaled_kernels`).
    ``method`` is ``"exact"`` (the recursion for every entry, cost
    linear in depth), ``"interpolated"`` (depth-independent interpolants, used for
    ``sigma_b = 0``, ``depth >= 2``, ``Delta > 0``) or ``"auto"`` (interpolated when it is
    cheaper). Memory: the outputs plus a few temporaries of ``_BLOCK_ENTRIES`` per core.
    """
    return compute_scaled_kernels(x, x2, model, kinds, progress, method, relative=False)[0]


def scaled_rows(x: FloatArray, x2: FloatArray | None, model: Model,
                relative: bool) -> tuple[FloatArray, FloatArray, tuple[Any, Any], int]:
    """``(u, v, (r, r2), shift)``: unit rows of checked ``x`` and ``x2`` (``v is u`` without ``x2``),
    the row weights that scale the kernel's entries, and the power of two taken out.

    At ``sigma_b = 0`` the weights are ``(mantissa, exponent)`` pairs, ``r = (M m_i, E + e_i)`` and
    ``r2 = (m_j, e_j)``, with ``shift = E + 2 max e`` taken out of the exponents when ``relative``
    (see :func:`compute_scaled_kernels`); with ``sigma_b != 0`` they are the norms themselves and
    ``shift`` is 0. Raises :class:`InvalidParameterError` (:func:`check_scale`) for a kernel beyond
    float64 at ``sigma_b != 0``.
    """
    m0 = x.shape[1]
    u, m1, e1 = scaled_unit_rows(x)
    v, m2, e2 = (u, m1, e1) if x2 is None else scaled_unit_rows(x2)
    norms = (np.ldexp(m1, e1), np.ldexp(m2, e2))
    check_scale(model, np.concatenate(norms), m0)
    if model.sigma_b != 0.0:
        return u, v, norms, 0
    mant, e_scale = scale_split(model, m0)
    shift = 0
    if relative:
        top = max(largest_exponent(m1, e1), largest_exponent(m2, e2))
        shift = e_scale + 2 * top
        e1, e2 = e1 - top, e2 - top
        e_scale = 0
    return u, v, ((mant * m1, e1 + e_scale), (m2, e2)), shift


def compute_scaled_kernels(x: FloatArray, x2: FloatArray | None, model: Model, kinds: Sequence[str],
                           progress: ProgressFn | None = None, method: str = "auto",
                           relative: bool = True) -> tuple[dict[str, FloatArray], int]:
    """``(kernels, shift)``: :func:`compute_kernels` with a power of two taken out.

    Every row is scaled by a power of two before norms and angles are formed
    (:func:`eoc_ntk.core.angles.scaled_unit_rows`), so any finite input works. At
    ``sigma_b = 0`` an entry is ``theta * M m_i m_j * 2^(E + e_i + e_j)`` with
    ``(sigma_w^2/m0) chi^(l-1) = M 2^E`` and ``|x_i| = m_i 2^e_i`` (docs/math.md §3: the kernel is
    homogeneous of degree 1 in each norm); with ``relative`` the returned arrays hold it
    times ``2^-shift``, ``shift = E + 2 max_i e_i``, so their largest entries are O(depth)
    whatever the scale of the data or of ``chi^(l-1)``: the true ``ntk``, ``nngp`` and
    ``icd`` kernels are ``np.ldexp(kernels[kind], shift)`` (``angle`` is scale-free).
    Without ``relative`` (or with ``sigma_b != 0``, where the kernel is not homogeneous and
    is computed as it is, or for a smooth activation: :mod:`eoc_ntk.core.smooth_kernels`)
    ``shift`` is 0.
    """
    kinds = tuple(kinds)
    if model.is_smooth:
        return smooth_kernels(x, x2, model, kinds), 0
    m0 = x.shape[1]
    u, v, (r, r2), shift = scaled_rows(x, x2, model, relative)
    n, n2 = u.shape[0], v.shape[0]
    symmetric = x2 is None
    interp = _choose_interpolant(model, n * n2, method)
    out = {kind: np.empty((n, n2)) for kind in kinds}
    # The first output array holds the cosines, then (with an interpolant) the u values,
    # then its own kernel. Each block reads only its upper part before overwriting it, and
    # the mirror writes only the lower triangle, which no block reads.
    rows = max(1, min(256, _BLOCK_ENTRIES // max(n2, 1)))
    # Symmetric: the upper part only, in GEMM blocks whose size is a multiple of ``rows`` (gram).
    work = gram(u, None if symmetric else v, out=out[kinds[0]], upper=True, block_rows=rows * max(1, GRAM_ROWS // rows))
    blocks = [(i0, min(n, i0 + rows), i0 if symmetric else 0) for i0 in range(0, n, rows)]
    tracker = _Progress(progress, sum((i1 - i0) * (n2 - j0) for i0, i1, j0 in blocks))

    def to_u(i0: int, i1: int, j0: int) -> np.ndarray:
        region = work[i0:i1, j0:]
        region[...] = u_from_cos(region, u[i0:i1], v[j0:], symmetric)
        inside = np.abs(region) <= U_MAX
        counts = np.bincount(interval_of(region[inside]), minlength=INTERVALS)
        tracker.add(0.3 * (i1 - i0) * (n2 - j0))
        return counts

    def fill(i0: int, i1: int, j0: int, from_u: bool) -> None:
        region = work[i0:i1, j0:]
        uu = region if from_u else u_from_cos(region, u[i0:i1], v[j0:], symmetric)
        values = _kernels_from_u(uu, _rows(r, i0, i1), _rows(r2, j0, None), model, m0, kinds, interp)
        for kind in kinds[::-1]:  # the first kind last: it overwrites the shared region
            out[kind][i0:i1, j0:] = values[kind]
            if symmetric:
                out[kind][i1:, i0:i1] = values[kind][:, i1 - i0:].T
                # The diagonal square is computed whole, and row and column weights differ in
                # the order of their rounding (mantissa x scale): mirror its upper triangle so
                # that K is exactly symmetric, as the rest of the matrix is by construction.
                square = out[kind][i0:i1, i0:i1]
                lower = np.tril_indices(i1 - i0, -1)
                square[lower] = square.T[lower]
        tracker.add((0.7 if from_u else 1.0) * (i1 - i0) * (n2 - j0))

    if interp is None:
        _run_blocks(blocks, lambda b: fill(*b, from_u=False))
    else:
        counts = sum(_run_blocks(blocks, lambda b: to_u(*b)))
        interp.ensure(np.flatnonzero(counts))
        _run_blocks(blocks, lambda b: fill(*b, from_u=True))
    return out, shift


def _rows(weights: Any, start: int, stop: int | None) -> Any:
    """Rows ``start:stop`` of norms given as an array or as a ``(mantissa, exponent)`` pair."""
    if isinstance(weights, tuple):
        return tuple(w[start:stop] for w in weights)
    return weights[start:stop]


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


_T = TypeVar("_T")


def _run_blocks(blocks: Sequence[tuple[int, int, int]], fn: Callable[[tuple[int, int, int]], _T]) -> list[_T]:
    """``[fn(block) for block in blocks]``, spread over the CPU cores (NumPy releases the GIL)."""
    threads = _threads()
    if threads == 1 or len(blocks) == 1:
        return [fn(b) for b in blocks]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [f.result() for f in [pool.submit(fn, b) for b in blocks]]


def _choose_interpolant(model: Model, entries: int, method: str) -> AngleInterpolant | None:
    if method not in ("auto", "exact", "interpolated"):
        raise InvalidParameterError(f"method must be 'auto', 'exact' or 'interpolated', got {method!r}", param="method")
    usable = model.sigma_b == 0.0 and model.depth >= 2 and model.delta > 0.0
    if method == "exact" or not usable:
        return None
    # Building an interval costs 11 entries' worth of exact recursion.
    if method == "auto" and entries < 4096:
        return None
    return eoc_interpolant(model.depth, model.delta)


def _kernels_from_u(uu: np.ndarray, r_i: Any, r_j: Any, model: Model, m0: int, kinds: Sequence[str],
                    interp: AngleInterpolant | None) -> dict[str, np.ndarray]:
    """Kernels of one block from the input angles given as ``u = 2 log tan(alpha/2)``.

    At ``sigma_b = 0`` the norms come as ``(mantissa, exponent)`` pairs that already hold
    ``(sigma_w^2/m0) chi^(l-1)`` (see :func:`compute_scaled_kernels`); with a bias as norms.
    """
    depth, delta = model.depth, model.delta
    if model.sigma_b != 0.0:
        alpha, beta = u_to_angles(uu)
        rec = general_recursion(r_i[:, None], r_j[None, :], alpha, beta, m0, depth, delta,
                                model.a ** 2 + model.b ** 2, model.sigma_w2, model.sigma_b)
        return {kind: rec[kind if kind != "angle" else "alpha"] for kind in kinds}
    need_theta = "ntk" in kinds
    need_angle = any(k in kinds for k in ("nngp", "icd", "angle"))
    theta, u_last = normalised_kernels(uu, depth, delta, interp, need_theta, need_angle)
    (m_i, e_i), (m_j, e_j) = r_i, r_j
    mantissas, exponents = np.outer(m_i, m_j), np.add.outer(e_i, e_j)

    def prefactor_times(values: np.ndarray | None) -> np.ndarray:
        product: np.ndarray = np.ldexp(mantissas * values, exponents)
        return product

    out = {}
    if u_last is not None:
        alpha_last = u_to_angles(u_last)[0]
    for kind in kinds:
        if kind == "ntk":
            out[kind] = prefactor_times(theta)
        elif kind == "nngp":
            out[kind] = prefactor_times(None if u_last is None else -np.tanh(0.5 * u_last))
        elif kind == "angle":
            out[kind] = alpha_last
        else:
            out[kind] = prefactor_times(_icd_theta(alpha_last, depth, delta))
    return out


def normalised_kernels(uu: np.ndarray, depth: int, delta: float, interp: AngleInterpolant | None, need_theta: bool,
                       need_angle: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
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
        if theta is not None:
            values, ok = interp.theta(vals)
            theta[fast] = values
            valid &= ok
        if u_last is not None:
            values, ok = interp.u_last(vals)
            u_last[fast] = values
            valid &= ok
        if not valid.all():
            fast[fast] = valid
        exact = ~(fast | same)
    if theta is not None:
        theta[same] = float(depth)
    if u_last is not None:
        u_last[same] = -np.inf
    if exact.any():
        alpha, beta = u_to_angles(uu[exact])
        rec = eoc_recursion(alpha, beta, depth, delta, ("theta", "alpha", "beta"))
        if theta is not None:
            theta[exact] = rec["theta"]
        if u_last is not None:
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
