"""Stability of the smooth EOC's variance fixed point: the slope of the variance map at q*, against mpmath.

The reference differentiates ``V(q) = E[phi(sqrt(q) z)^2]`` numerically (``mpmath.diff`` of a
``mpmath.quad`` in 30 digits), from the activation's formula alone: no closed form, no Stein identity.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from eoc_ntk import depth_sweep
from eoc_ntk.core.model import Model
from eoc_ntk.core.smooth_sweep import limit_note, suggested_sigma_b

MP = mpmath.MPContext()
MP.dps = 30

PHI = {
    "erf": MP.erf,
    "tanh": MP.tanh,
    "gelu": lambda x: x * (1 + MP.erf(x / MP.sqrt(2))) / 2,
    "silu": lambda x: x / (1 + MP.exp(-x)),
}


def _mp_variance(name: str, q) -> mpmath.mpf:
    """``E[phi(sqrt(q) z)^2]``, ``z ~ N(0, 1)``, by tanh-sinh quadrature."""
    phi, s = PHI[name], MP.sqrt(q)
    f = lambda z: phi(s * z) ** 2 * MP.exp(-z * z / 2)  # noqa: E731
    return MP.quad(f, [-MP.inf, -3, 0, 3, MP.inf]) / MP.sqrt(2 * MP.pi)


def mp_slope(model: Model) -> float:
    """``sigma_w^2 V'(q*)`` with ``V'`` a 30-digit numerical derivative of the quadrature."""
    name = model.activation.key
    q = MP.mpf(model.q_star)
    return float(MP.mpf(model.sigma_w) ** 2 * MP.diff(lambda t: _mp_variance(name, t), q))


@pytest.mark.parametrize("name", ["erf", "tanh", "gelu", "silu"])
@pytest.mark.parametrize("sigma_b", [0.1, 1.0])
def test_variance_slope_matches_mpmath(name, sigma_b):
    m = Model(3, activation=name, sigma_b=sigma_b)
    assert m.variance_slope == pytest.approx(mp_slope(m), rel=1e-12)


def test_slopes_at_sigma_b_0p1():
    # the values quoted in docs/math.md §9
    slopes = {a: Model(1, activation=a, sigma_b=0.1).variance_slope for a in ("erf", "tanh", "gelu", "silu")}
    assert slopes["erf"] < 1 and slopes["tanh"] < 1
    assert round(slopes["gelu"], 3) == 1.098 and round(slopes["silu"], 3) == 1.072


def test_family_has_no_variance_slope():
    assert math.isnan(Model(3, activation="relu").variance_slope)


@pytest.mark.parametrize("name, threshold", [("gelu", 0.416), ("silu", 0.745)])
def test_suggested_sigma_b_attracts_and_threshold_is_the_crossing(name, threshold):
    found = suggested_sigma_b(Model(1, activation=name, sigma_b=0.1))
    assert found is not None
    crossing, suggestion = found
    assert crossing == pytest.approx(threshold, abs=1e-3)
    assert mp_slope(Model(1, activation=name, sigma_b=suggestion)) < 1.0
    # the slope crosses 1 at the threshold (mpmath on both sides)
    assert mp_slope(Model(1, activation=name, sigma_b=0.97 * crossing)) > 1.0
    assert mp_slope(Model(1, activation=name, sigma_b=1.03 * crossing)) < 1.0


def test_no_suggestion_where_q_star_attracts():
    assert suggested_sigma_b(Model(1, activation="tanh", sigma_b=0.1)) is None
    assert limit_note(Model(1, activation="tanh", sigma_b=0.1)) is None


def test_sweep_says_why_the_limit_is_missing_and_what_to_do():
    x = np.random.default_rng(0).normal(size=(6, 4))
    res = depth_sweep(x, depths=[1, 2, 3], activation="gelu", sigma_b=0.1)
    assert res.limit_condition_number is None
    assert "repels" in res.limit_note and "sigma_b = 0.5" in res.limit_note
    assert res.to_dict()["limit_note"] == res.limit_note
    relu = depth_sweep(x, depths=[1, 2], activation="relu", sigma_b=0.1)
    assert relu.limit_condition_number is None and "sigma_b = 0" in relu.limit_note
    assert depth_sweep(x, depths=[1, 2], activation="relu").limit_note is None


def test_cli_sweep_explains_the_missing_limits(tmp_path, capsys):
    from eoc_ntk.cli import main

    x = np.random.default_rng(0).normal(size=(6, 4))
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    assert main(["sweep", str(tmp_path / "x.csv"), "--activations", "relu,tanh,gelu", "--sigma-b", "0.1",
                 "--depths", "1:3", "-q"]) == 0
    out = capsys.readouterr().out
    limit_row = next(line for line in out.splitlines() if line.strip().startswith("limit"))
    assert limit_row.split()[1:] == ["n/a", "4", "n/a"]  # tanh: 1 + n/2
    assert "gelu: limit n/a: no depth limit at sigma_b = 0.1" in out and "sigma_b = 0.5" in out
    assert "relu: limit n/a:" in out and "give sigma_b = 0" in out
    assert "q* repels: variance-map slope 1.098 > 1" in out and out.count("q* repels: variance-map") == 1
