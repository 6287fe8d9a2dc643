"""Condition number across many depths from one pass of the recursion, and the depth limit.

The input angles are computed once. At ``sigma_b = 0``, ``Delta > 0`` every depth's kernel
comes from its interpolant (:mod:`eoc_ntk.core._numerics.depth_kernels`: one matrix product per interval
for a chunk of depths, all interpolants from one recursion pass); otherwise the recursion of
docs/math.md §2-3 produces ``theta_1, theta_2, ...`` in one pass. Each depth then needs one
certified extreme-eigenvalue solve, started from the previous depth's eigenvectors and from
a shift extrapolated from the previous depths' ``lambda_min``: usually one float64 Cholesky
factorisation and a few Lanczos steps.

Depth limit (docs/math.md §5, ``Delta > 0``, ``sigma_b = 0``, no duplicate inputs):
``K(x_i, x_j) / (l chi^(l-1)) -> (3/4) q_i delta_ij + (1/4) sqrt(q_i q_j)``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import brentq

from eoc_ntk.core._numerics.blas_threads import one_blas_thread
from eoc_ntk.core._numerics.depth_kernels import MAX_ENTRIES, TriangleKernels
from eoc_ntk.core._numerics.diagnosis import diagnose
from eoc_ntk.core._numerics.interp import (
    INTERVALS,
    U_MAX,
    eoc_interpolant,
    interval_of,
    u_to_angles,
)
from eoc_ntk.core._numerics.near_duplicates import PARALLEL_ANGLE, near_duplicate_reason
from eoc_ntk.core._numerics.recursion import eoc_recursion_all_depths, general_recursion_steps
from eoc_ntk.core.activations import parse_activation
from eoc_ntk.core.alignment import label_fit_by_depth
from eoc_ntk.core.angles import largest_exponent, pair_u, scaled_unit_rows
from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.eigen import all_eigenvalues, extreme_eigenvalues, largest_eigenvalue
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.jsonsafe import json_float
from eoc_ntk.core.kernels import check_scale, normalised_kernels, scale_split
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import Model, model_of
from eoc_ntk.core.progress import ProgressFn, report, scaled
from eoc_ntk.core.smooth_sweep import smooth_depth_sweep
from eoc_ntk.core.spectra import singular_tolerance
from eoc_ntk.core.validation import MAX_DEPTH, check_data

__all__ = ["activation_sweep", "depth_sweep", "DepthSweep", "depth_limit_matrix", "limit_condition_number",
           "MAX_SWEEP_DEPTHS"]

#: Most depths one sweep may ask for.
MAX_SWEEP_DEPTHS = 10_000
#: Largest relative disagreement of the extrapolations for which a guess is offered.
_MAX_SPREAD = 0.02


@dataclass(frozen=True)
class DepthSweep:
    """Extreme eigenvalues of ``K / n`` per depth, for one activation.

    Attributes
    ----------
    depths : ndarray of int, ascending and unique
    lambda_min, lambda_max, condition_number : ndarray of float, one per depth
        ``condition_number`` is ``inf`` where singular.
    singular : ndarray of bool
    limit_condition_number : float or None
        Condition number of the depth-limit matrix (None when the limit is not defined:
        ``Delta = 0`` or ``sigma_b != 0``; ``inf`` when it is singular).
    singular_reason : str or None
        Structural cause, if some depth is singular.
    limit_note : str or None
        Why ``limit_condition_number`` is None, when it is (off the edge of chaos, ``sigma_b != 0`` for
        the family, ``Delta = 0``, a repelling variance fixed point with a ``sigma_b`` to use instead).
    alignment : ndarray of float or None
        With labels ``y``: kernel-target alignment per depth (:func:`eoc_ntk.alignment`).
    top_k_fraction : dict or None
        With labels ``y``: ``{k: ndarray}`` for k in 1, 10, 100, the share of ``|y|^2`` in the
        k leading eigen-directions of ``K`` per depth (docs/learning.md §6).
    """

    depths: np.ndarray
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    condition_number: np.ndarray
    singular: np.ndarray
    limit_condition_number: float | None
    delta: float
    singular_reason: str | None = None
    limit_note: str | None = None
    alignment: np.ndarray | None = None
    top_k_fraction: dict[int, np.ndarray] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become None); ``alignment`` and
        ``top_k_fraction`` (keys ``"1"``, ``"10"``, ``"100"``) only when labels were given."""
        out: dict[str, Any] = {
            "depths": [int(d) for d in self.depths],
            "lambda_min": [json_float(v) for v in self.lambda_min],
            "lambda_max": [json_float(v) for v in self.lambda_max],
            "condition_number": [json_float(v) for v in self.condition_number],
            "singular": [bool(s) for s in self.singular],
            "limit_condition_number": json_float(self.limit_condition_number),
            "delta": self.delta,
            "singular_reason": self.singular_reason,
            "limit_note": self.limit_note,
        }
        if self.alignment is not None and self.top_k_fraction is not None:
            out["alignment"] = [json_float(v) for v in self.alignment]
            out["top_k_fraction"] = {str(k): [json_float(v) for v in f] for k, f in self.top_k_fraction.items()}
        return out


def check_depths(depths: Any) -> np.ndarray:
    """The checked depths of a sweep, unique and ascending (int64); :class:`InvalidParameterError`
    (``param="depths"``) for an empty, non-integer, out-of-range or too long list."""
    if isinstance(depths, (str, bytes)) or not hasattr(depths, "__iter__"):
        raise InvalidParameterError(f"depths must be a list of integers >= 1, got {depths!r}", param="depths")
    values = list(depths)
    if not values:
        raise InvalidParameterError("depths is empty; give at least one depth >= 1", param="depths")
    if len(values) > MAX_SWEEP_DEPTHS:
        raise InvalidParameterError(f"depths has {len(values)} entries; at most {MAX_SWEEP_DEPTHS} per "
                                    "sweep", param="depths")
    out = []
    for i, d in enumerate(values):
        if isinstance(d, bool) or not isinstance(d, numbers.Real) or not float(d).is_integer():
            raise InvalidParameterError(f"depths[{i}] must be an integer >= 1, got {d!r}", param="depths")
        depth = int(d) if isinstance(d, numbers.Integral) else int(float(d))
        if depth < 1:
            raise InvalidParameterError(f"depths[{i}] must be >= 1, got {d}", param="depths")
        if depth > MAX_DEPTH:
            raise InvalidParameterError(f"depths[{i}] = {depth} is above MAX_DEPTH = {MAX_DEPTH} "
                                        "(eoc_ntk.MAX_DEPTH); the depth limit is limit_condition_number",
                                        param="depths")
        out.append(depth)
    return np.unique(np.array(out, dtype=np.int64))


def depth_sweep(x: ArrayLike, *, depths: Iterable[int], a: float | None = None, b: float | None = None,
                activation: Any = None, sigma_w: float | None = None,
                sigma_b: float = 0.0, eigenvalues: str = "extremes", progress: ProgressFn | None = None,
                y: ArrayLike | None = None) -> DepthSweep:
    """``lambda_min``, ``lambda_max`` and condition number of ``K / n`` for many depths at once.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    depths : iterable of int
        Depths ``l >= 1``; duplicates are merged and the result is sorted.
    a, b, sigma_w, sigma_b, activation : see :func:`eoc_ntk.kernel`.
    eigenvalues : {"extremes", "all"}
        Solver per depth: the certified fast path (default) or the dense one.
    progress : callable, optional
        Called with the completed fraction in [0, 1].
    y : array-like of shape (n,) or (n, k), optional
        Labels: adds :attr:`DepthSweep.alignment` and :attr:`DepthSweep.top_k_fraction`
        (one more kernel and partial eigen-decomposition per depth).

    Returns
    -------
    DepthSweep
    """
    depth_list = check_depths(depths)
    model = model_of(int(depth_list[-1]), a, b, activation, sigma_w, sigma_b, where="depth_sweep")
    x = check_data(x)
    if eigenvalues not in ("extremes", "all"):
        raise InvalidParameterError("eigenvalues must be 'extremes' or 'all', got "
                                    f"{eigenvalues!r}", param="eigenvalues")
    labels = None if y is None else check_labels(y, x.shape[0])
    if model.is_smooth:
        result = DepthSweep(**smooth_depth_sweep(x, depth_list, model, eigenvalues, progress))
    else:
        result = _depth_sweep(x, depth_list, model, eigenvalues, progress)
    if labels is None:
        return result
    aligned, top_k = label_fit_by_depth(x, labels.values, depth_list, model)
    return replace(result, alignment=aligned, top_k_fraction=top_k)


def _depth_sweep(x: np.ndarray, depth_list: np.ndarray, model: Model, eigenvalues: str,
                 progress: ProgressFn | None) -> DepthSweep:
    n, m0 = x.shape
    u, mant, expo = scaled_unit_rows(x)
    check_scale(model, np.ldexp(mant, expo), m0)
    top = largest_exponent(mant, expo)
    # At sigma_b = 0 the matrices are computed scale-free: norms relative to the largest and
    # without (sigma_w^2/m0) chi^(l-1), which multiply the eigenvalues afterwards (docs/math.md §3).
    homogeneous = model.sigma_b == 0.0
    r = np.ldexp(mant, expo - top) if homogeneous else np.ldexp(mant, expo)
    uu = pair_u(u, u, diagonal=True)
    with one_blas_thread():  # the loop's many small BLAS calls; factorisations get every thread
        lmins, lmaxs = _extremes_by_depth(uu, r, m0, depth_list, model, eigenvalues, progress)
    lmin_arr, lmax_arr = np.array(lmins), np.array(lmaxs)
    tol = singular_tolerance(n)
    singular = ~((lmax_arr > 0.0) & (lmin_arr > tol * lmax_arr))
    cond = np.full(lmin_arr.shape, math.inf)
    cond[~singular] = lmax_arr[~singular] / lmin_arr[~singular]
    if homogeneous:
        for i, depth in enumerate(depth_list):
            scale_mant, scale_exp = scale_split(Model(int(depth), model.a, model.b, model.sigma_w), m0)
            lmin_arr[i] = math.ldexp(lmin_arr[i] * scale_mant, scale_exp + 2 * top)
            lmax_arr[i] = math.ldexp(lmax_arr[i] * scale_mant, scale_exp + 2 * top)
    reason = None
    if singular.any():
        first = int(depth_list[singular][0])
        at_first = Model(first, model.a, model.b, model.sigma_w, model.sigma_b)
        diag = diagnose(x, at_first)
        reason = near_duplicate_reason(x, at_first, diag, n) or diag.reason(n)
        if reason is None:
            worst = int(np.argmin(np.where(singular, lmin_arr / np.maximum(lmax_arr, 1e-300), np.inf)))
            reason = (f"numerically singular at depths {[int(d) for d in depth_list[singular][:10]]}: "
                      f"lambda_min <= {tol:.2g} * lambda_max (at depth {int(depth_list[worst])}: "
                      f"lambda_min = {lmin_arr[worst]:.3g}, lambda_max = {lmax_arr[worst]:.3g})")
    return DepthSweep(
        depths=depth_list, lambda_min=lmin_arr, lambda_max=lmax_arr, condition_number=cond,
        singular=singular, limit_condition_number=_limit_or_none(x, model), delta=model.delta,
        singular_reason=reason, limit_note=_family_limit_note(model),
    )


def _extremes_by_depth(uu: np.ndarray, r: np.ndarray, m0: int, depth_list: np.ndarray, model: Model, eigenvalues: str,
                       progress: ProgressFn | None) -> tuple[list[float], list[float]]:
    """``lambda_min`` and ``lambda_max`` of ``K / n`` per depth (lists, negatives clipped to 0),
    each depth warm-started from the previous ones (eigenvectors, extrapolated shift)."""
    n = uu.shape[0]
    lmins: list[float] = []
    lmaxs: list[float] = []
    vectors = None
    for count, (depth, kn) in enumerate(_kernels_by_depth(uu, r, m0, depth_list, model, 1.0 / n), start=1):
        if eigenvalues == "all" or n < 3:
            eig = all_eigenvalues(kn, overwrite=True)
            lmin, lmax = float(eig[0]), float(eig[-1])
        elif depth == 1 and model.sigma_b == 0.0 and n > m0:
            # (sigma_w^2 / m0) X X^T has rank at most m0 < n: lambda_min is exactly 0.
            lmin, lmax = 0.0, largest_eigenvalue(kn)
        else:
            guess = _extrapolate(depth_list[: count - 1], lmins, depth)
            # With a guess the fast path needs one factorisation: worth it below DENSE_BELOW too.
            lmin, lmax, _, found = extreme_eigenvalues(kn, vectors, force_fast=guess is not None and n >= 500,
                                                       lmin_guess=guess)
            vectors = found if found is not None else vectors
        lmins.append(max(lmin, 0.0))
        lmaxs.append(max(lmax, 0.0))
        report(progress, count / len(depth_list))
    return lmins, lmaxs


def _extrapolate(depths: np.ndarray, values: Sequence[float], depth: int) -> float | None:
    """A shift just below ``lambda_min`` at ``depth``, extrapolated from the previous depths.

    ``lambda_min`` is smooth in the depth: the linear extrapolation from the last two depths
    and the quadratic one from the last three (geometric with only two) bracket it closely
    far from the first depths. The guess is the lower of the two minus their spread, or None
    when the step is long (sparse depths), the spread above 2 % or a previous value 0. A
    shift that turns out above ``lambda_min`` costs one failed factorisation, never a wrong
    answer.
    """
    if len(values) < 2 or not (values[-1] > 0.0 and values[-2] > 0.0):
        return None
    d0, d1 = int(depths[-2]), int(depths[-1])
    step = (depth - d1) / (d1 - d0)
    if step > 2.0:
        return None
    linear = values[-1] + (values[-1] - values[-2]) * step
    if len(values) >= 3 and values[-3] > 0.0:
        other = float(np.polyval(np.polyfit(np.array(depths[-3:], dtype=float), values[-3:], 2), depth))
    else:
        other = values[-1] * (values[-1] / values[-2]) ** step
    spread = max(abs(other - linear), 1e-4 * abs(linear))  # the floor covers third-order terms
    guess = min(linear, other) - spread
    # A shift far below lambda_min converges no faster than the float32 estimate.
    return guess if guess > 0.0 and spread <= _MAX_SPREAD * guess else None


def _kernels_by_depth(uu: np.ndarray, r: np.ndarray, m0: int, depth_list: np.ndarray, model: Model,
                      scale: float) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(depth, scale * K)`` for the requested depths (ascending), sharing the input angles.

    At ``sigma_b = 0`` ``K`` is scale-free: ``|x_i| |x_j| theta_l`` with ``r`` the norms
    relative to the largest, without ``(sigma_w^2/m0) chi^(l-1)`` (the caller multiplies the
    eigenvalues by it); otherwise ``r`` are the norms and ``K`` the kernel.

    With ``sigma_b = 0`` and ``Delta > 0`` every depth comes from its interpolant (cost
    independent of depth), all depths at once through :class:`TriangleKernels` up to its
    size limit; those matrices hold only their upper triangle and diagonal, which is all
    the eigenvalue solvers read. Otherwise one pass of the recursion serves every depth.
    """
    max_depth = int(depth_list[-1])
    wanted = set(int(d) for d in depth_list)
    n = uu.shape[0]
    if model.sigma_b == 0.0 and model.delta > 0.0 and uu.size >= 4096:
        if depth_list[0] == 1:
            theta, _ = normalised_kernels(uu, 1, model.delta, None, True, False)
            assert theta is not None  # asked for (need_theta=True)
            yield 1, theta * (scale * np.outer(r, r))
            depth_list = depth_list[1:]
        if n * (n - 1) // 2 <= MAX_ENTRIES:
            weights = np.sqrt(scale) * r
            yield from TriangleKernels(uu, weights, model.delta, 1.0).matrices(depth_list)
            return
        base = scale * np.outer(r, r)
        inside = np.abs(uu) <= U_MAX
        intervals = np.flatnonzero(np.bincount(interval_of(uu[inside]), minlength=INTERVALS))
        del inside
        for depth in depth_list:
            depth = int(depth)
            interp = eoc_interpolant(depth, model.delta)
            interp.ensure(intervals)
            theta, _ = normalised_kernels(uu, depth, model.delta, interp, True, False)
            assert theta is not None  # asked for (need_theta=True)
            theta *= base
            yield depth, theta
        return
    alpha, beta = u_to_angles(uu)
    if model.sigma_b == 0.0:
        base = scale * np.outer(r, r)
        for depth, theta, _ in eoc_recursion_all_depths(alpha, beta, max_depth, model.delta):
            if depth in wanted:
                yield depth, base * theta
    else:
        a2b2 = model.a ** 2 + model.b ** 2
        for depth, theta, _, _ in general_recursion_steps(r[:, None], r[None, :], alpha, beta, m0, max_depth,
                                                          model.delta, a2b2, model.sigma_w2, model.sigma_b):
            if depth in wanted:
                yield depth, scale * theta


def _family_limit_note(model: Model) -> str | None:
    """Why the family has no depth limit here (None where it has one)."""
    if model.delta == 0.0:
        return "linear activation (Delta = 0): K is l times the first layer's Gram matrix, no separate depth limit"
    if model.sigma_b != 0.0:
        return (f"no depth limit derived at sigma_b = {model.sigma_b:g}: the family's edge of chaos is at "
                "sigma_b = 0 (docs/math.md §5); give sigma_b = 0 for it")
    return None


def _limit_or_none(x: np.ndarray, model: Model) -> float | None:
    if model.delta == 0.0 or model.sigma_b != 0.0:
        return None
    return _limit_condition_number(x, model)


def depth_limit_matrix(x: ArrayLike, *, a: float, b: float, sigma_w: float | None = None) -> FloatArray:
    """``lim_{l -> inf} K(x_i, x_j) / (l chi^(l-1))`` as an (n, n) matrix (docs/math.md §5), per pair.

    With ``q_i = sigma_w^2 |x_i|^2 / m0`` the limit is ``c_ij sqrt(q_i q_j)``, from the exact
    asymptotics of each pair's ``theta_l / l``:

    - ``c_ii = 1`` and ``c_ij = 1`` for inputs pointing the same way (``theta_l(0) = l``);
    - ``c_ij = 1`` for opposite inputs under ``Delta = 1`` (the even activation: ``theta_l(pi) = l``
      for ``l >= 2``);
    - ``c_ij = 1/4`` for every other pair, however close (``1/alpha_l`` grows like
      ``2 Delta l / (3 pi)`` whatever the input angle, so ``theta_l / l -> 1/4``; for inputs
      ``alpha`` apart the approach takes ``l >> 3 pi / (2 Delta alpha)`` layers).

    "Same way" and "opposite" mean a stable angle (or ``pi`` minus it) below
    ``PARALLEL_ANGLE`` = 64 eps = 1.4e-14 rad, the resolution of directions of float64 data.
    Valid for ``Delta > 0`` and ``sigma_b = 0``. For generic pairs only this is
    ``(3/4) diag(q) + (1/4) s s^T`` with ``s = sqrt(q)``. The paper's matrix ``K / n`` is
    this times ``l chi^(l-1) / n``.
    """
    model = Model(1, a, b, sigma_w, 0.0)
    if model.delta == 0.0:
        raise InvalidParameterError("the depth limit needs Delta = b^2/(a^2+b^2) > 0; for b = 0 the kernel is l times "
                                    "the Gram matrix", param="b")
    x = check_data(x)
    u, mant, expo = scaled_unit_rows(x)
    s = np.ldexp(mant * math.sqrt(model.sigma_w2 / x.shape[1]), expo)
    return _limit_coefficients(u, model) * np.outer(s, s)


def _limit_coefficients(u: np.ndarray, model: Model) -> np.ndarray:
    """``c_ij`` of :func:`depth_limit_matrix` from the unit rows ``u`` (zero rows: 1/4, times 0)."""
    uu = pair_u(u, u, diagonal=True)
    cut = 2.0 * math.log(math.tan(0.5 * PARALLEL_ANGLE))
    special = uu <= cut
    if model.delta == 1.0:
        special |= uu >= -cut
    return np.where(special, 1.0, 0.25)


def limit_condition_number(x: ArrayLike, *, a: float, b: float, sigma_w: float | None = None) -> float:
    """Condition number of :func:`depth_limit_matrix`; ``(n + 3) / 3`` for equal norms."""
    model = Model(1, a, b, sigma_w, 0.0)
    if model.delta == 0.0:
        raise InvalidParameterError("the depth limit needs Delta = b^2/(a^2+b^2) > 0", param="b")
    return _limit_condition_number(check_data(x), model)


def _limit_condition_number(x: np.ndarray, model: Model) -> float:
    """Condition number of :func:`depth_limit_matrix`, scale-free.

    Inputs pointing the same way, or opposite ones under ``Delta = 1``, give proportional
    rows of the limit (``c_ij = 1``): ``inf``. Otherwise the limit is ``D + (1/4) s s^T``,
    ``D = (3/4) diag(q)``, and its extremes come from the secular equation: the eigenvalues
    interlace, ``d_1 <= lambda_min <= d_2`` and ``d_n <= lambda_max <= d_n + |s|^2/4``; each is
    the root of ``1 + (1/4) sum_i q_i / (d_i - lambda)`` in its interval. ``q`` is taken
    relative to the largest norm (the constant factors cancel).
    """
    n = x.shape[0]
    u, mant, expo = scaled_unit_rows(x)
    r = np.ldexp(mant, expo - largest_exponent(mant, expo))
    q = np.sort(r * r)
    if q[0] == 0.0:
        return math.inf
    if n == 1:
        return 1.0
    coefficients = _limit_coefficients(u, model)
    np.fill_diagonal(coefficients, 0.25)
    if np.any(coefficients == 1.0):
        return math.inf
    d = 0.75 * q

    def secular_from(base: int) -> Callable[[float], float]:
        # 1 + (1/4) sum q_i / (d_i - lambda) with lambda = d[base] + tau: the differences
        # d_i - d[base] are formed first, so nothing cancels near a pole.
        offsets = d - d[base]

        def f(tau: float) -> float:
            with np.errstate(divide="ignore"):
                return 1.0 + 0.25 * float(np.sum(q / (offsets - tau)))
        return f

    def root(f: Callable[[float], float], upper: float) -> float:
        # f -> -inf as tau -> 0+ and f(upper) >= 0: shrink the lower end until f < 0 there.
        lower = upper * 1e-15
        while f(lower) >= 0.0 and lower > 1e-300:
            lower *= 1e-6
        return float(brentq(f, lower, upper, xtol=1e-300, rtol=1e-15, maxiter=2000))

    spread = 0.25 * q.sum() * (1.0 + 1e-12)  # lambda_max <= d_n + |s|^2/4, attained for equal norms
    lmax = d[-1] + root(secular_from(n - 1), spread)
    gap = d[1] - d[0]
    if gap <= 1e-15 * d[1]:
        lmin = d[0]  # lambda_min lies between two equal diagonal entries
    else:
        lmin = d[0] + root(secular_from(0), gap * (1.0 - 1e-15))
    return float(lmax / lmin)


def activation_sweep(x: ArrayLike, depths: Iterable[int], activations: Iterable[Any], *,
                     sigma_w: float | Sequence[float] | None = None, sigma_b: float | Sequence[float] = 0.0,
                     progress: ProgressFn | None = None) -> dict[str, Any]:
    """:func:`depth_sweep` for each activation: the CLI's ``sweep``, the API's ``/v1/sweeps`` and its jobs.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    depths : sequence of int
        Depths ``l >= 1`` (answered sorted and distinct).
    activations : sequence
        Each one in a spelling of :func:`eoc_ntk.core.activations.parse_activation` (``"relu"``,
        ``(a, b)``, ``{"a": .., "b": ..}``, ...).
    sigma_w, sigma_b : float or sequence of float
        As for :func:`depth_sweep`: one value for every activation, or one per activation
        (``sigma_w=None``: each activation's edge-of-chaos value).
    progress : callable, optional
        Called with the fraction done; activation ``i`` of ``k`` covers ``[i/k, (i+1)/k]``.

    Returns
    -------
    dict
        ``{"depths": [...], "results": [{"activation": {"a", "b", "sigma_w", "sigma_b", "label"},
        **DepthSweep.to_dict()}]}``, the hyperparameters as ``Model.canonical()`` resolves them
        (for a smooth activation ``Model.summary()``: ``"activation"`` (its name), ``"sigma_w"``,
        ``"sigma_b"``, ``"q_star"``, ``"chi"``); non-finite numbers are None.
    """
    acts = [parse_activation(a) for a in activations]
    sigma_ws = _per_activation(sigma_w, len(acts), "sigma_w")
    sigma_bs = _per_activation(sigma_b, len(acts), "sigma_b")
    results = []
    for i, (act, sw, sb) in enumerate(zip(acts, sigma_ws, sigma_bs, strict=True)):
        sweep = depth_sweep(x, depths=depths, activation=act, sigma_w=sw, sigma_b=sb,
                            progress=scaled(progress, i / len(acts), (i + 1) / len(acts)))
        params = Model(1, activation=act, sigma_w=sw, sigma_b=sb).summary()
        for key in ("depth", "delta"):
            params.pop(key, None)
        results.append({"activation": {**params, "label": act.label}, **sweep.to_dict()})
    report(progress, 1.0)
    return {"depths": sorted({int(d) for d in depths}), "results": results}


def _per_activation(value: Any, count: int, param: str) -> list[Any]:
    """``value`` repeated ``count`` times, or the sequence ``value`` of length ``count``."""
    if value is None or isinstance(value, numbers.Real):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise InvalidParameterError(f"{param} has {len(values)} values for {count} activations; give one value "
                                    "or one per activation", param=param)
    return values
