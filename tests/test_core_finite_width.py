"""Finite width: the empirical NTK of random networks approaches eoc_ntk.kernel (docs/math.md §6).

The networks and their explicit Jacobians are in ``_reference.network`` (NumPy, NTK
parameterisation of docs/math.md §1); the Jacobian code itself is checked against central
finite differences first. Seeds are fixed, so the statistics below are deterministic.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import eoc_ntk
from _reference import network as net

# (name, a, b, sigma_w or None for the EOC, sigma_b, depth)
CONFIGS = [
    ("relu-eoc-l3", 0.5, 0.5, None, 0.0, 3),
    ("abs-eoc-l2", 0.0, 1.0, None, 0.0, 2),
    ("mixed-bias-l3", -0.3, 0.8, 1.2, 0.5, 3),
]
WIDTHS = (64, 256, 1024)
SEEDS = 24


def _inputs():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))
    x[1] *= 2.0
    return x


@pytest.mark.parametrize("sigma_b", [0.0, 0.7])
def test_jacobian_matches_finite_differences(sigma_b):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    a, b, sigma_w = 0.3, -0.8, 1.1
    params = net.init_params(4, 7, 3, rng)
    jac = net.jacobian(params, x, a, b, sigma_w, sigma_b)
    with_bias = sigma_b != 0.0
    v = net.flatten(params, with_bias)
    assert jac.shape == (3, v.size)
    h = 1e-6
    fd = np.empty_like(jac)
    for i in range(v.size):
        e = np.zeros_like(v)
        e[i] = h
        plus = net.output(net.unflatten(v + e, params, with_bias), x, a, b, sigma_w, sigma_b)
        minus = net.output(net.unflatten(v - e, params, with_bias), x, a, b, sigma_w, sigma_b)
        fd[:, i] = (plus - minus) / (2 * h)
    assert np.max(np.abs(jac - fd)) < 1e-8


@pytest.mark.parametrize("name, a, b, sigma_w, sigma_b, depth", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_empirical_ntk_converges(name, a, b, sigma_w, sigma_b, depth):
    """Mean relative error falls like ~1/sqrt(m); at the largest m the seed average is within 4 SE."""
    x = _inputs()
    k = eoc_ntk.kernel(x, depth=depth, a=a, b=b, sigma_w=sigma_w, sigma_b=sigma_b)
    sw = 1.0 / math.hypot(a, b) if sigma_w is None else sigma_w
    mean_err, samples = [], {}
    for m in WIDTHS:
        ks = np.array([net.empirical_ntk(x, width=m, depth=depth, a=a, b=b, sigma_w=sw, sigma_b=sigma_b,
                                         seed=100_000 * m + s) for s in range(SEEDS)])
        samples[m] = ks
        mean_err.append(float(np.mean(np.linalg.norm(ks - k, axis=(1, 2)) / np.linalg.norm(k))))
    # Decreasing with m, at roughly the 1/sqrt(m) rate (slope of log err vs log m: -1/2).
    assert mean_err[0] > mean_err[1] > mean_err[2], mean_err
    slope = np.polyfit(np.log(WIDTHS), np.log(mean_err), 1)[0]
    assert -0.8 < slope < -0.3, (slope, mean_err)
    # Unbiased at the largest width up to O(1/m): the seed mean is within 4 standard errors.
    ks = samples[WIDTHS[-1]]
    se = ks.std(axis=0, ddof=1) / math.sqrt(SEEDS)
    z = np.abs(ks.mean(axis=0) - k) / se
    assert np.all(z < 4.0), z
    # Fluctuations shrink like 1/sqrt(m): std ratio between m = 64 and 1024 near 4.
    ratio = np.mean(samples[WIDTHS[0]].std(axis=0)) / np.mean(ks.std(axis=0))
    assert 2.5 < ratio < 6.5, ratio
