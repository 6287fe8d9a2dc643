"""Large variances, where the Hermite series of a smooth activation is not accurate.

``phi(sqrt(q) z)`` sharpens as ``q`` grows, so its Hermite series needs more terms than the
series path carries (tanh from about q = 3.5, GELU and SiLU from about 15). There the kernels
come from the layer-by-layer recursion (closed forms, or 2-D quadrature) when that is
affordable, and are refused with a message naming the variance otherwise: never a kernel off
by 1e-8 (tanh at q = 9 was, through the series, for a near-duplicate pair).

Reference: depth 2 by SciPy's adaptive ``dblquad`` over the Gaussian pair, independent of the
project's quadrature and series.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from eoc_ntk import Model
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.smooth_kernels import smooth_kernels

ACTIVATIONS = {
    "tanh": (np.tanh, lambda s: 1.0 / np.cosh(s) ** 2),
    "silu": (lambda s: s / (1.0 + np.exp(-s)),
             lambda s: (1.0 + np.exp(-s) + s * np.exp(-s)) / (1.0 + np.exp(-s)) ** 2),
}


def _pair_expectation(f, q1: float, q2: float, c: float) -> float:
    """E[f(u, v)] for (u, v) centred Gaussian with covariance [[q1, c], [c, q2]], by dblquad."""
    rho = c / math.sqrt(q1 * q2)
    perp = math.sqrt(max(1.0 - rho * rho, 0.0))

    def integrand(t: float, z: float) -> float:
        u = math.sqrt(q1) * z
        v = math.sqrt(q2) * (rho * z + perp * t)
        return float(f(u, v)) * math.exp(-0.5 * (z * z + t * t)) / (2.0 * math.pi)

    value, _ = integrate.dblquad(integrand, -12.0, 12.0, -12.0, 12.0, epsabs=1e-14, epsrel=1e-13)
    return value


def _depth2(name: str, model: Model, x: np.ndarray) -> tuple[float, float]:
    """(Sigma_2, Theta_2) of the pair x[0], x[1]."""
    phi, dphi = ACTIVATIONS[name]
    sw2, sb2 = model.sigma_w ** 2, model.sigma_b ** 2
    m0 = x.shape[1]
    q1, q2 = (sw2 * float(r @ r) / m0 + sb2 for r in x)
    c = sw2 * float(x[0] @ x[1]) / m0 + sb2
    sigma = sw2 * _pair_expectation(lambda u, v: phi(u) * phi(v), q1, q2, c) + sb2
    theta = sigma + sw2 * _pair_expectation(lambda u, v: dphi(u) * dphi(v), q1, q2, c) * c
    return sigma, theta


@pytest.mark.parametrize("name, sigma_b, scale", [("tanh", 0.1, 2.2), ("silu", 1.0, 3.5)])
def test_kernels_past_the_series_range_match_an_adaptive_integral(name, sigma_b, scale):
    # A near-duplicate pair: there the series' truncated terms (damped by rho^k) matter most.
    x = np.array([[1.0, -0.5, 2.0, 0.3], [1.01, -0.49, 1.99, 0.31]]) * scale
    model = Model(2, activation=name, sigma_b=sigma_b)
    q_first = model.sigma_w ** 2 * np.sum(x * x, axis=1) / x.shape[1] + sigma_b ** 2
    assert q_first.max() > {"tanh": 4.0, "silu": 16.0}[name]  # beyond what the series covers
    found = smooth_kernels(x, None, model, ["ntk", "nngp"])
    sigma, theta = _depth2(name, model, x)
    assert found["nngp"][0, 1] == pytest.approx(sigma, rel=1e-11)
    assert found["ntk"][0, 1] == pytest.approx(theta, rel=1e-11)


def test_many_inputs_past_the_series_range_are_refused_naming_x_and_the_variance():
    x = np.random.default_rng(0).normal(size=(400, 8)) * 2.0
    model = Model(50, activation="tanh", sigma_b=0.1)
    with pytest.raises(InvalidParameterError) as err:
        smooth_kernels(x, None, model, ["ntk"])
    assert err.value.param == "x"
    message = str(err.value)
    assert "Hermite series" in message and "scale x" in message and "below about 3.5" in message
