"""50-digit reference of the erf MLP's NNGP/NTK recursion (closed forms), for the tests only.

Written from the recursion, not from ``eoc_ntk``: with per-input variances ``q_l(x)``,

- ``Sigma_1 = sigma_w^2 <x, x'> / m0 + sigma_b^2``, ``Theta_1 = Sigma_1``;
- ``Sigma_{l+1} = sigma_w^2 (2/pi) asin(2 S12 / sqrt((1 + 2 S11)(1 + 2 S22))) + sigma_b^2``;
- ``Sigma_dot_{l+1} = sigma_w^2 (4/pi) / sqrt((1 + 2 S11)(1 + 2 S22) - 4 S12^2)``;
- ``Theta_{l+1} = Sigma_{l+1} + Sigma_dot_{l+1} Theta_l``.

Inputs and parameters are converted exactly from float64.
"""
from __future__ import annotations

import mpmath

MP = mpmath.MPContext()
MP.dps = 50


def erf_pair(x, y, sigma_w: float, sigma_b: float, depths):
    """``{depth: (Theta, Sigma)}`` as mpf for one pair of float64 rows ``x``, ``y``."""
    sw2, sb2 = MP.mpf(sigma_w) ** 2, MP.mpf(sigma_b) ** 2
    mx, my = [MP.mpf(float(v)) for v in x], [MP.mpf(float(v)) for v in y]
    m0 = len(mx)
    s11 = sw2 * MP.fsum(a * a for a in mx) / m0 + sb2
    s22 = sw2 * MP.fsum(b * b for b in my) / m0 + sb2
    s12 = sw2 * MP.fsum(a * b for a, b in zip(mx, my, strict=True)) / m0 + sb2
    theta = s12
    out = {}
    wanted = set(depths)
    if 1 in wanted:
        out[1] = (theta, s12)
    for layer in range(2, max(depths) + 1):
        d = (1 + 2 * s11) * (1 + 2 * s22)
        ratio = 2 * s12 / MP.sqrt(d)
        ratio = min(max(ratio, MP.mpf(-1)), MP.mpf(1))
        sdot = sw2 * (4 / MP.pi) / MP.sqrt(d - 4 * s12 * s12)
        s12 = sw2 * (2 / MP.pi) * MP.asin(ratio) + sb2
        s11 = sw2 * (2 / MP.pi) * MP.asin(2 * s11 / (1 + 2 * s11)) + sb2
        s22 = sw2 * (2 / MP.pi) * MP.asin(2 * s22 / (1 + 2 * s22)) + sb2
        theta = s12 + sdot * theta
        if layer in wanted:
            out[layer] = (theta, s12)
    return out


def erf_eoc(sigma_b: float):
    """``(sigma_w, q*)`` of erf's EOC at ``sigma_b``: ``q* = V/D + sb^2`` with ``V = (2/pi) asin(2q/(1+2q))``,
    ``D = (4/pi)/sqrt(1+4q)``, ``sigma_w^2 = 1/D(q*)`` (findroot from the float answer's neighbourhood)."""
    sb2 = MP.mpf(sigma_b) ** 2

    def g(q):
        return (2 / MP.pi) * MP.asin(2 * q / (1 + 2 * q)) / ((4 / MP.pi) / MP.sqrt(1 + 4 * q)) + sb2 - q

    return g
