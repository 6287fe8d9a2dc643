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

from eoc_ntk.core._numerics.smooth_recursion import (
    QUADRATURE_REFUSE,
    SmoothSpec,
    pair_layers,
    variance_trajectory,
)
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


def _trajectories(model: Model, q1: np.ndarray, q2: np.ndarray,
                  depth: int) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    spec = spec_of(model)
    both, order, est = variance_trajectory(spec, np.concatenate([q1, q2]), depth)
    if est > QUADRATURE_REFUSE:
        top = max(float(np.max(q)) for q in both)
        raise InvalidParameterError(
            f"the variances of activation {spec_label(model)!r} reach {top:.3g}, where trapezoidal quadrature "
            f"with {order} nodes is accurate to {est:.1e} only (above {QUADRATURE_REFUSE:g}); rescale x "
            "(smaller norms) or lower sigma_w / sigma_b", param="x")
    n = q1.size
    return [q[:n] for q in both], [q[n:] for q in both], order


def spec_label(model: Model) -> str:
    return model.activation.label if model.activation is not None else "family"


def smooth_kernels_by_depth(x: FloatArray, x2: FloatArray | None, model: Model, depths: Sequence[int],
                            kinds: Sequence[str]) -> Iterator[tuple[int, dict[str, FloatArray]]]:
    """Yield ``(depth, {kind: K})`` for each of ``depths`` (increasing), in one pass of the exact recursion."""
    q1, q2, c1 = _first_layer(x, x2, model)
    max_depth = int(max(depths))
    qa, qb, order = _trajectories(model, q1, q2, max_depth)
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
                   kinds: Sequence[str]) -> dict[str, FloatArray]:
    """``{kind: K}`` at ``model.depth`` for checked float64 inputs (``x2=None``: the symmetric kernel of ``x``).

    Returns
    -------
    dict of ndarray of shape (n, n2)
        ``"ntk"``: ``Theta_l``; ``"nngp"``: ``Sigma_l``; ``"angle"``:
        ``arccos(Sigma_l / sqrt(q_l(x) q_l(x')))``, the angle between the last pre-activations.
    """
    return next(iter(smooth_kernels_by_depth(x, x2, model, (model.depth,), kinds)))[1]

