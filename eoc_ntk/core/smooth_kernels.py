"""Kernels of MLPs with smooth activations (erf, tanh, GELU, SiLU, custom functions).

The recursion (docs/math.md, "Activations beyond the family"): with each input's own variance
``q_l(x)`` and ``(u, v)`` centred Gaussian of covariance ``[[q_l(x), Sigma_l], [Sigma_l, q_l(x')]]``,

- ``Sigma_1 = Theta_1 = sigma_w^2 <x, x'> / m0 + sigma_b^2`` (the family's first layer),
- ``Sigma_{l+1} = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2``,
- ``Theta_{l+1} = Sigma_{l+1} + sigma_w^2 E[phi'(u) phi'(v)] Theta_l``.

Expectations in closed form for erf (arcsine kernel, Williams 1997), otherwise by trapezoidal
quadrature with an error estimate (:mod:`eoc_ntk.core._numerics.smooth_moments`). Many pairs at
depth go through depth-independent interpolants of the composed correlation map
(:mod:`eoc_ntk.core._numerics.smooth_interp`); the others layer by layer.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.special import expit as special_expit

from eoc_ntk.core._numerics.interp import DEGREE, U_MAX, interval_of
from eoc_ntk.core._numerics.smooth_interp import group_rows
from eoc_ntk.core._numerics.smooth_onepass import DepthMaps, pair_steps
from eoc_ntk.core._numerics.smooth_recursion import (
    QUADRATURE_REFUSE,
    SmoothSpec,
    converging_trajectory,
    pair_layers,
    quadrature_for,
    variance_trajectory,
)
from eoc_ntk.core._numerics.smooth_series import SERIES_REFUSE, largest_accurate_variance, series_estimate
from eoc_ntk.core.angles import pair_u, scaled_unit_rows
from eoc_ntk.core.arrays import FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.model import Model

__all__ = ["SMOOTH_KINDS", "smooth_kernels", "smooth_kernels_by_depth", "spec_of"]

#: Kernel kinds defined for smooth activations (the ICD approximation is the family's).
SMOOTH_KINDS = ("ntk", "nngp", "angle")


def spec_of(model: Model) -> SmoothSpec:
    """The recursion's view of a smooth ``model``."""
    act = model.activation
    if act is None:
        raise InvalidParameterError("smooth_kernels needs a smooth activation (erf, tanh, gelu, silu, custom)",
                                    param="activation")
    return SmoothSpec(act.key, act.phi, act.dphi, model.sigma_w2, model.sigma_b ** 2)


def _first_layer(x: FloatArray, x2: FloatArray | None, model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q_i, q_j, Sigma_1)``: first-layer variances of rows and columns and covariances."""
    u, m1, e1 = scaled_unit_rows(x)
    v, m2, e2 = (u, m1, e1) if x2 is None else scaled_unit_rows(x2)
    m0 = x.shape[1]
    sw2, sb2 = model.sigma_w2, model.sigma_b ** 2
    with np.errstate(over="ignore"):
        r1, r2 = np.ldexp(m1, e1), np.ldexp(m2, e2)
        q1 = sw2 * (r1 / np.sqrt(m0)) ** 2 + sb2
        q2 = sw2 * (r2 / np.sqrt(m0)) ** 2 + sb2
        # cos(alpha) = -tanh(u/2) from the accurate half-angle variable of the pair.
        cos = -np.tanh(0.5 * pair_u(u, u if x2 is None else v, diagonal=x2 is None))
        c1 = (sw2 / m0) * (r1[:, None] * r2[None, :]) * cos + sb2
    if not (np.all(np.isfinite(q1)) and np.all(np.isfinite(q2))):
        raise InvalidParameterError("the first layer's variance sigma_w^2 |x|^2 / m0 overflows float64; rescale x",
                                    param="x")
    return q1, q2, c1


#: Largest layer variance served: Theta_l sums l terms of up to this size, and depths reach 1e5.
MAX_VARIANCE = 1e290


def _trajectories(model: Model, q1: np.ndarray, q2: np.ndarray, depth: int, settle: bool = False
                  ) -> tuple[list[np.ndarray], list[np.ndarray], int, list[float]]:
    """``(qa, qb, order, tail)``: the rows' and columns' variances at layers ``1..L0`` and, with ``settle``,
    the one variance of every input at layers ``L0..depth`` once they settle
    (:func:`~eoc_ntk.core._numerics.smooth_recursion.converging_trajectory`; otherwise ``tail`` is empty and
    ``L0 = depth``). Refuses variances that overflow or that the quadrature does not cover."""
    spec = spec_of(model)
    if settle:
        both, tail, order, est = converging_trajectory(spec, np.concatenate([q1, q2]), depth)
    else:
        (both, order, est), tail = variance_trajectory(spec, np.concatenate([q1, q2]), depth), []
    top_layer = next((layer for layer, q in enumerate(both, 1) if not np.all(q <= MAX_VARIANCE)), None)
    if top_layer is not None:  # before any pair work: the kernel would overflow, and pairs cost far more
        raise InvalidParameterError(
            f"activation {spec_label(model)!r}: the variances grow from {float(np.max(both[0])):.3g} past "
            f"{MAX_VARIANCE:g} by layer {top_layer} of {depth}, so the kernel overflows float64 (the fixed point "
            f"q* = {model.q_star:.3g} repels them; for gelu and silu at small sigma_b it is unstable): scale x so "
            "that sigma_w^2 |x|^2 / m0 + sigma_b^2 is near q*, give a larger sigma_b, or use fewer layers",
            param="depth")
    if est > QUADRATURE_REFUSE:
        top = max(float(np.max(q)) for q in both)
        grows = top > 4.0 * float(np.max(both[0]))
        why = (f"the variances grow from {float(np.max(both[0])):.3g} to {top:.3g} over {depth} layers (the variance "
               f"map's fixed point q* = {model.q_star:.3g} repels them: for gelu and silu at small sigma_b it is "
               "unstable; scale x so that sigma_w^2 |x|^2 / m0 + sigma_b^2 is near q*, or use fewer layers)"
               if grows else
               f"the variances reach {top:.3g}; rescale x (smaller norms) or lower sigma_w / sigma_b")
        raise InvalidParameterError(
            f"activation {spec_label(model)!r}: trapezoidal quadrature with {order} nodes is accurate to {est:.1e} "
            f"only (above {QUADRATURE_REFUSE:g}): {why}", param="depth" if grows else "x")
    n = q1.size
    return [q[:n] for q in both], [q[n:] for q in both], order, tail


def spec_label(model: Model) -> str:
    return model.activation.label if model.activation is not None else "family"


#: Most pairs of variance groups served by composed-map interpolants; beyond, every pair layer by layer
#: with its own Hermite coefficients (:func:`pairs_exact`).
MAX_GROUP_PAIRS = 64
#: Fewer entries per pair of groups than this are computed by the exact recursion directly.
INTERPOLATE_FROM = 4096


def _pair_u1(x: FloatArray, x2: FloatArray | None, model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u1, q_i, q_j)``: ``u1 = log((1 - rho_1)/(1 + rho_1))`` of every pair's first-layer correlation,
    formed without cancellation (``1 -+ rho_1`` from the pair's half-angle variable and the norms),
    and the first-layer variances of rows and columns."""
    u, m1, e1 = scaled_unit_rows(x)
    v, m2, e2 = (u, m1, e1) if x2 is None else scaled_unit_rows(x2)
    m0 = x.shape[1]
    s, sb2 = model.sigma_w2 / m0, model.sigma_b ** 2
    with np.errstate(over="ignore", divide="ignore"):
        r1, r2 = np.ldexp(m1, e1), np.ldexp(m2, e2)
        q1, q2 = s * r1 * r1 + sb2, s * r2 * r2 + sb2
        uu = pair_u(u, u if x2 is None else v, diagonal=x2 is None)
        ri, rj = r1[:, None], r2[None, :]
        c = s * ri * rj
        sq = np.sqrt(q1[:, None] * q2[None, :])
        one_minus = (s * sb2 * (ri - rj) ** 2 / (sq + c + sb2) + c * 2.0 * special_expit(uu)) / sq
        one_plus = ((s * sb2 * (ri * ri + rj * rj) + sb2 * sb2) / (sq + c) + sb2 + c * 2.0 * special_expit(-uu)) / sq
        u1 = np.log(one_minus) - np.log(one_plus)
    if not (np.all(np.isfinite(q1)) and np.all(np.isfinite(q2))):
        raise InvalidParameterError("the first layer's variance sigma_w^2 |x|^2 / m0 overflows float64; rescale x",
                                    param="x")
    return u1, q1, q2


def _pairs(x: FloatArray, x2: FloatArray | None, model: Model, depths: list[int],
           kinds: Sequence[str]) -> Iterator[tuple[int, dict[str, FloatArray]]]:
    """The kernels at every depth of ``depths`` (increasing) from one pass over the layers: composed maps
    per pair of variance groups, or every pair on its own beyond :data:`MAX_GROUP_PAIRS` (then, once every
    input's variance has settled at layer ``L0``, one composed tail map for all pairs)."""
    u1, q1, q2 = _pair_u1(x, x2, model)
    g1, lab1 = group_rows(q1)
    g2, lab2 = (g1, lab1) if x2 is None else group_rows(q2)
    ia, ib = np.triu_indices(u1.shape[0]) if x2 is None else np.indices(u1.shape).reshape(2, -1)
    u = u1[ia, ib]
    spec = spec_of(model)
    ungrouped = g1.size * g2.size > MAX_GROUP_PAIRS
    qa, qb, _, tail = _trajectories(model, g1, g2, depths[-1], settle=ungrouped)
    top = max(max(float(np.max(q)) for q in qa + qb), max(tail, default=0.0))
    estimate = series_estimate(spec.key, spec.phi, spec.dphi, top)
    if estimate > SERIES_REFUSE:  # before any yield: the caller goes layer by layer instead, or refuses
        raise _SeriesTooShort(top, estimate, grows=top > 4.0 * max(float(np.max(g1)), float(np.max(g2))))
    steps = (_ungrouped(spec, qa, qb, tail, u, lab1[ia], lab2[ib], depths) if ungrouped
             else _grouped(spec, qa, qb, u, lab1[ia], lab2[ib], depths))
    for depth, theta_p, sigma_p in steps:
        theta, sigma = np.zeros(u1.shape), np.zeros(u1.shape)
        theta[ia, ib], sigma[ia, ib] = theta_p, sigma_p
        if depth <= len(qa):
            q_i, q_j = qa[depth - 1][lab1], qb[depth - 1][lab2]
        else:
            q_i, q_j = np.full(lab1.size, tail[depth - len(qa)]), np.full(lab2.size, tail[depth - len(qa)])
        yield depth, _assemble(theta, sigma, q_i, q_j, kinds, x2 is None)


class _SeriesTooShort(Exception):
    """The Hermite series is not accurate at the largest variance met (raised before any kernel)."""

    def __init__(self, top: float, estimate: float, grows: bool):
        super().__init__(top, estimate)
        self.top, self.estimate, self.grows = top, estimate, grows


#: Most evaluations of ``phi`` (pairs x layers x quadrature nodes) for which the layer-by-layer recursion
#: stands in for an inaccurate Hermite series; beyond, the request is refused.
LAYERWISE_BUDGET = 3e8


def _layerwise_or_refuse(x: FloatArray, x2: FloatArray | None, model: Model, depth: int,
                         short: _SeriesTooShort) -> None:
    """Return when the layer-by-layer recursion (closed forms or 2-D quadrature) is affordable for these
    inputs; otherwise raise the refusal that says which variance the series covers."""
    spec = spec_of(model)
    order = quadrature_for(spec, short.top)[0]
    n, n2 = x.shape[0], (x.shape[0] if x2 is None else x2.shape[0])
    pairs = n * (n + 1) // 2 if x2 is None else n * n2
    work = pairs * depth * max(order, 1) ** 2
    if work <= LAYERWISE_BUDGET:
        return
    q_ok = largest_accurate_variance(spec.key, spec.phi, spec.dphi)
    fix = (f"the variances grow to {short.top:.3g} (the fixed point q* = {model.q_star:.3g} repels them): give a "
           "larger sigma_b (see the sweep's limit_note), use fewer layers, or scale x so that "
           f"sigma_w^2 |x|^2 / m0 + sigma_b^2 stays near q*" if short.grows else
           f"the variances reach {short.top:.3g}: scale x so that sigma_w^2 |x|^2 / m0 + sigma_b^2 stays below "
           f"about {q_ok:.3g}")
    raise InvalidParameterError(
        f"activation {spec_label(model)!r}: at variance {short.top:.3g} its Hermite series is accurate to "
        f"{short.estimate:.1e} only (above {SERIES_REFUSE:g}, since phi(sqrt(q) z) sharpens as q grows), and the "
        f"layer-by-layer recursion would take {work:.2g} evaluations (more than {LAYERWISE_BUDGET:g}) for "
        f"{n} x {n2} inputs at depth {depth}; {fix}", param="depth" if short.grows else "x")


def _grouped(spec: SmoothSpec, qa: list[np.ndarray], qb: list[np.ndarray], u: np.ndarray, ga: np.ndarray,
             gb: np.ndarray, depths: list[int]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Pairs (flat; groups ``ga``, ``gb``) through one :class:`DepthMaps` per pair of groups."""
    key = ga * qb[0].size + gb
    blocks = []
    for k in np.unique(key):
        sel = np.flatnonzero(key == k)
        g, h = divmod(int(k), qb[0].size)
        maps = DepthMaps(spec, [float(q[g]) for q in qa], [float(q[h]) for q in qb], depths, tail=False)
        blocks.append((sel, maps.run(u[sel], interpolate=sel.size >= INTERPOLATE_FROM)))
    for depth in depths:
        theta, sigma = np.empty_like(u), np.empty_like(u)
        for sel, run in blocks:
            _, theta[sel], sigma[sel] = next(run)
        yield depth, theta, sigma


def _ungrouped(spec: SmoothSpec, qa: list[np.ndarray], qb: list[np.ndarray], tail: list[float], u: np.ndarray,
               ga: np.ndarray, gb: np.ndarray, depths: list[int]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Every pair with its own variances (:func:`pair_steps`) to layer ``L0 = len(qa)``, then through the
    composed tail map of the settled variance ``tail`` (layers ``L0..``) when deeper layers are asked for."""
    start = len(qa)
    wanted = set(depths)
    theta0, gap0 = np.empty(0), np.empty(0)
    for layer, theta, sigma, gap in pair_steps(spec, qa, qb, u, ga, gb):
        if layer in wanted:
            yield layer, theta, sigma
        theta0, gap0 = theta, gap
    later = [d - start + 1 for d in depths if d > start]
    if not later:
        return
    with np.errstate(divide="ignore"):
        u0 = np.log(gap0) - np.log(2.0 - gap0)
    maps = DepthMaps(spec, tail, tail, later, tail=True)
    # Interpolate where it saves work: the fit propagates DEGREE + 2 points per interval the pairs touch.
    touched = np.unique(interval_of(u0[np.abs(u0) <= U_MAX])).size
    for local, theta, sigma in maps.run(u0, theta0, interpolate=u.size > (DEGREE + 2) * touched):
        yield local + start - 1, theta, sigma


def smooth_kernels_by_depth(x: FloatArray, x2: FloatArray | None, model: Model, depths: Sequence[int],
                            kinds: Sequence[str], method: str = "auto") -> Iterator[tuple[int, dict[str, FloatArray]]]:
    """Yield ``(depth, {kind: K})`` for each of ``depths`` (increasing): through composed-map interpolants
    when the inputs have few distinct variances, otherwise pair by pair (or, with ``method="quadrature"``,
    in one pass of the layer-by-layer recursion with 2-D trapezoidal quadrature; cost linear in depth).

    At ``sigma_b = 0`` a zero input has variance 0 at every layer when ``phi(0) = 0`` (every built-in):
    its rows and columns are exactly 0 and are filled in apart; ``kind="angle"`` is undefined for it,
    and a custom activation with ``phi(0) != 0`` is refused for zero rows (``param="x"``).
    """
    for depth, found in _by_depth(x, x2, model, depths, kinds, method):
        for kind, value in found.items():
            if not np.all(np.isfinite(value)):
                raise InvalidParameterError(
                    f"activation {spec_label(model)!r}: the {kind} kernel at depth {depth} overflows float64 (the "
                    f"variances leave the fixed point q* = {model.q_star:.3g} and grow without bound; for gelu and "
                    "silu at small sigma_b q* is unstable): scale x so that sigma_w^2 |x|^2 / m0 + sigma_b^2 is "
                    "near q*, give a larger sigma_b, or use fewer layers", param="depth")
        yield depth, found


def _by_depth(x: FloatArray, x2: FloatArray | None, model: Model, depths: Sequence[int],
              kinds: Sequence[str], method: str) -> Iterator[tuple[int, dict[str, FloatArray]]]:
    zero1 = ~np.any(x != 0.0, axis=1)
    zero2 = zero1 if x2 is None else ~np.any(x2 != 0.0, axis=1)
    if model.sigma_b != 0.0 or not (zero1.any() or zero2.any()):
        yield from _nonzero_by_depth(x, x2, model, depths, kinds, method)
        return
    act = model.activation
    if act is None or float(np.asarray(act.phi(np.zeros(1)))[0]) != 0.0 or "angle" in kinds:
        raise InvalidParameterError(
            f"zero input rows {np.flatnonzero(zero1)[:10].tolist()} of x"
            + ("" if x2 is None else f" and {np.flatnonzero(zero2)[:10].tolist()} of x2") + " at sigma_b = 0: "
            + ("kind='angle' is undefined for them" if "angle" in kinds else
               f"activation {spec_label(model)!r} has phi(0) != 0, so their variance map leaves 0")
            + "; drop the zero rows or give sigma_b > 0", param="x")
    sub2 = None if x2 is None else x2[~zero2]
    for depth, found in _nonzero_by_depth(x[~zero1], sub2, model, depths, kinds, method):
        full = {}
        for kind, value in found.items():
            out = np.zeros((x.shape[0], x.shape[0] if x2 is None else x2.shape[0]))
            out[np.ix_(~zero1, ~zero2)] = value
            full[kind] = out
        yield depth, full


def _nonzero_by_depth(x: FloatArray, x2: FloatArray | None, model: Model, depths: Sequence[int],
                      kinds: Sequence[str], method: str) -> Iterator[tuple[int, dict[str, FloatArray]]]:
    if x.shape[0] == 0 or (x2 is not None and x2.shape[0] == 0):
        for depth in depths:
            yield int(depth), {kind: np.zeros((x.shape[0], x.shape[0] if x2 is None else x2.shape[0]))
                               for kind in kinds}
        return
    if method != "quadrature":
        pairs = _pairs(x, x2, model, sorted({int(d) for d in depths}), kinds)
        try:
            first = next(pairs)
        except _SeriesTooShort as short:
            _layerwise_or_refuse(x, x2, model, int(max(depths)), short)
        else:
            yield first
            yield from pairs
            return
    q1, q2, c1 = _first_layer(x, x2, model)
    max_depth = int(max(depths))
    qa, qb, order, _ = _trajectories(model, q1, q2, max_depth)
    wanted = set(int(d) for d in depths)
    for depth, theta, sigma in pair_layers(spec_of(model), qa, qb, c1, max_depth, order):
        if depth in wanted:
            yield depth, _assemble(theta, sigma, qa[depth - 1], qb[depth - 1], kinds, x2 is None)


def _assemble(theta: np.ndarray, sigma: np.ndarray, q_i: np.ndarray, q_j: np.ndarray, kinds: Sequence[str],
              symmetric: bool) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    for kind in kinds:
        if kind == "ntk":
            value = theta.copy()
        elif kind == "nngp":
            value = sigma.copy()
        elif kind == "angle":
            rho = sigma / np.sqrt(q_i[:, None] * q_j[None, :])
            value = np.arccos(np.clip(rho, -1.0, 1.0))
        else:
            raise InvalidParameterError(f"kind={kind!r} is not defined for smooth activations; use one of "
                                        f"{', '.join(SMOOTH_KINDS)}", param="kind")
        if symmetric:
            lower = np.tril_indices(value.shape[0], -1)
            value[lower] = value.T[lower]
            if kind == "angle":
                np.fill_diagonal(value, 0.0)
        out[kind] = value
    return out


def smooth_kernels(x: FloatArray, x2: FloatArray | None, model: Model,
                   kinds: Sequence[str], method: str = "auto") -> dict[str, FloatArray]:
    """``{kind: K}`` at ``model.depth`` for checked float64 inputs (``x2=None``: the symmetric kernel of ``x``).

    ``method``: ``"auto"`` (composed maps per pair of variance groups, see :func:`smooth_kernels_by_depth`)
    or ``"quadrature"`` (layer by layer, 2-D quadrature: an independent check, cost linear in depth).

    Returns
    -------
    dict of ndarray of shape (n, n2)
        ``"ntk"``: ``Theta_l``; ``"nngp"``: ``Sigma_l``; ``"angle"``:
        ``arccos(Sigma_l / sqrt(q_l(x) q_l(x')))``, the angle between the last pre-activations.
    """
    return next(iter(smooth_kernels_by_depth(x, x2, model, (model.depth,), kinds, method)))[1]

