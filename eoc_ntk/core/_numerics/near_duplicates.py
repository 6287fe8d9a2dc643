"""Tell inputs that point the same way from distinct inputs too close for float64 (docs/math.md §4).

The singularity diagnosis groups inputs whose angle is below ``DUPLICATE_ANGLE`` (1e-8).
Only those within a few ulps of the same direction give proportional kernel rows; others
(e.g. two inputs 1e-12 apart) are distinct, and the matrix is singular only numerically:
the kernel's rows differ by less than float64 resolves at this depth.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from eoc_ntk.core.angles import scaled_unit_rows

if TYPE_CHECKING:
    from eoc_ntk.core._numerics.diagnosis import Diagnosis
    from eoc_ntk.core.model import Model

#: Pairs whose stable angle is below this (64 ulps of 1) point the same way to float64's
#: resolution: rounding ``c * x`` moves its direction by about one ulp.
PARALLEL_ANGLE = 64.0 * float(np.finfo(np.float64).eps)


def pair_angle_and_distance(x: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """``(angle, relative distance)`` of rows ``i`` and ``j``, scale-free.

    ``angle = 2 arcsin(|u_i - u_j| / 2)`` from the unit rows; the distance is
    ``|x_i - x_j| / max(|x_i|, |x_j|)``, formed after scaling both rows by one power of two.
    """
    u, _, _ = scaled_unit_rows(x[[i, j]])
    angle = 2.0 * float(np.arcsin(min(1.0, 0.5 * float(np.linalg.norm(u[0] - u[1])))))
    _, top = np.frexp(np.max(np.abs(x[[i, j]])))
    pair = np.ldexp(x[[i, j]], -int(top))
    scale = max(np.linalg.norm(pair[0]), np.linalg.norm(pair[1]))
    return angle, float(np.linalg.norm(pair[0] - pair[1]) / scale) if scale > 0.0 else 0.0


def near_duplicate_reason(x: np.ndarray, model: Model, diag: Diagnosis, n: int) -> str | None:
    """The singular reason when some "duplicate" group holds distinct inputs, else None.

    Parameters
    ----------
    x : ndarray of shape (n, m0)
        Checked data.
    model : Model
    diag : Diagnosis
        The structural diagnosis of ``x`` (its ``duplicate_groups`` are re-examined).
    n : int

    Returns
    -------
    str or None
        ``"numerically singular: inputs i and j are 1e-12 apart (relative), below the
        resolution of float64 at this depth"`` (one clause per such pair, at most 10),
        joined with the diagnosis' reason for the remaining causes; None when every group
        points the same way (then the diagnosis' own reason is right).
    """
    near, parallel_groups = [], []
    for group in diag.duplicate_groups:
        first = group[0]
        pairs = [(first, j, *pair_angle_and_distance(x, first, j)) for j in group[1:]]
        close = [(i, j, dist) for i, j, angle, dist in pairs if angle > PARALLEL_ANGLE]
        if close:
            near.extend(close)
        else:
            parallel_groups.append(group)
    if not near:
        return None
    clauses = [f"inputs {i} and {j} are {dist:.1g} apart (relative)" for i, j, dist in near[:10]]
    text = (f"numerically singular: {', '.join(clauses)}, below the resolution of float64 at this depth "
            f"(depth {model.depth}): distinct inputs, but their kernel rows agree to rounding")
    rest = dataclasses.replace(diag, duplicate_groups=tuple(parallel_groups)).reason(n)
    return text if rest is None else f"{text}; {rest}"
