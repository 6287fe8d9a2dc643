"""Self-checks of the 50-digit reference (``_reference.mp_kernel``) against docs/math.md's other forms.

The reference runs the general rho-form recursion of §2; here it is compared, in 50 digits,
with the closed forms of §6 and with the angle-form recursion of §3 (a different formula),
so that a mistake in the reference cannot hide behind agreement with the core.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from _reference.data import ACTIVATIONS, dataset
from _reference.mp_kernel import MP, ref_kernel_mp, ref_theta_unit


def _angle_form_theta(t, depth, delta):
    """docs/math.md §3 in mp: theta_1 = cos t, rho_{k+1} = cos a + Delta (2/pi) g(a), ..."""
    alpha = MP.mpf(t)
    theta = MP.cos(alpha)
    for _ in range(depth - 1):
        g = MP.sin(alpha) - alpha * MP.cos(alpha)
        rho = MP.cos(alpha) + delta * 2 / MP.pi * g
        theta = rho + theta * (1 - 2 * delta * alpha / MP.pi)
        alpha = MP.acos(rho)
    return theta


@pytest.mark.parametrize("act", ["relu", "abs", "delta_0.1", "flipped_scaled_0.9"])
@pytest.mark.parametrize("t", ["1e-6", "0.3", "1.5707963267948966", "2.9", "3.14159"])
def test_reference_matches_angle_form(act, t):
    a, b = ACTIVATIONS[act]
    delta = MP.mpf(b) ** 2 / (MP.mpf(a) ** 2 + MP.mpf(b) ** 2)
    for depth in (1, 2, 7, 40):
        got = ref_theta_unit(MP.mpf(t), depth, a, b)
        want = _angle_form_theta(MP.mpf(t), depth, delta)
        # Both forms lose ~12 of the 50 digits near t = 0 (acos of rho ~ 1 - 5e-13).
        assert abs(got - want) <= MP.mpf(10) ** -34 * depth


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_reference_depth_two_closed_form(act):
    a, b = ACTIVATIONS[act]
    delta = MP.mpf(b) ** 2 / (MP.mpf(a) ** 2 + MP.mpf(b) ** 2)
    for t in (MP.mpf("0.01"), MP.mpf(1), MP.mpf("2.5")):
        rho2 = MP.cos(t) + delta * 2 / MP.pi * (MP.sin(t) - t * MP.cos(t))
        want = rho2 + MP.cos(t) * (1 - 2 * delta * t / MP.pi)
        assert abs(ref_theta_unit(t, 2, a, b) - want) <= MP.mpf(10) ** -45


def test_reference_linear_and_depth_one_closed_forms():
    x = dataset("random")
    m0 = x.shape[1]
    for depth in (1, 3, 50):
        k = ref_kernel_mp(x, depth=depth, a=-2.0, b=0.0)
        for i in range(x.shape[0]):
            for j in range(x.shape[0]):
                gram = MP.fsum(MP.mpf(float(u)) * MP.mpf(float(v)) for u, v in zip(x[i], x[j], strict=True))
                assert abs(k[i][j] - depth * gram / (4 * m0)) <= MP.mpf(10) ** -40 * (1 + abs(gram))
    k = ref_kernel_mp(x, depth=1, a=0.5, b=0.5)
    assert abs(k[0][1] - MP.fsum(MP.mpf(float(u)) * MP.mpf(float(v)) for u,
                                 v in zip(x[0], x[1], strict=True)) / (MP.mpf("0.5") * m0)) < MP.mpf(10) ** -40


def test_reference_off_eoc_scales_by_chi():
    """sigma_b = 0: K = sqrt(q q') chi^(l-1) theta_l(alpha) with theta_l from the EOC recursion."""
    x = dataset("random")
    sw = 1.3
    for depth in (1, 4, 30):
        off = ref_kernel_mp(x, depth=depth, a=0.5, b=0.5, sigma_w=sw)
        eoc = ref_kernel_mp(x, depth=depth, a=0.5, b=0.5)
        sw2, chi = MP.mpf(sw) ** 2, MP.mpf(sw) ** 2 * MP.mpf("0.5")
        factor = sw2 * MP.mpf("0.5") * chi ** (depth - 1)          # q scales by sw2 / (1/(a^2+b^2))
        assert abs(off[0][1] - eoc[0][1] * factor) <= MP.mpf(10) ** -40 * abs(off[0][0])


def test_reference_bias_diagonal():
    """With a bias, q_{k+1} = chi q_k + sigma_b^2 and Theta(x, x) = sum_k q_k chi^(l-k)."""
    x = dataset("random")[:2]
    sw, sb = 0.9, 0.4
    m0 = x.shape[1]
    for depth in (1, 5):
        k = ref_kernel_mp(x, depth=depth, a=0.5, b=0.5, sigma_w=sw, sigma_b=sb)
        chi = MP.mpf(sw) ** 2 * MP.mpf("0.5")
        q = MP.mpf(sw) ** 2 * MP.fsum(MP.mpf(float(v)) ** 2 for v in x[0]) / m0 + MP.mpf(sb) ** 2
        theta = q
        for _ in range(depth - 1):
            q = chi * q + MP.mpf(sb) ** 2
            theta = q + theta * chi
        assert abs(k[0][0] - theta) <= MP.mpf(10) ** -40 * theta


def test_reference_is_float_exact_in_its_inputs():
    """The reference sees the float64 data exactly: an angle of 1e-20 shows in 50 digits."""
    x = np.array([[1.0, 0.0], [1.0, 0.0]])
    y = x.copy()
    y[1, 1] = 1e-20
    k0 = ref_kernel_mp(x, depth=3, a=0.5, b=0.5)
    k1 = ref_kernel_mp(y, depth=3, a=0.5, b=0.5)
    assert k0[0][1] == k0[0][0]
    assert k1[0][1] < k1[0][0]
    assert math.isfinite(float(k1[0][1]))
