"""Self-checks of the smooth-activation reference (``_reference.mp_smooth``) and its stored values.

The reference's recursion uses Mehler's Hermite series; here it is compared with the erf arcsine
closed forms and with quadrature in whitened coordinates (a different route to the same
expectations), and the stored table ``smooth_values.json`` is recomputed in part (slow) so that it
cannot drift from the code that wrote it.
"""
from __future__ import annotations

import json

import pytest

from _reference.mp_smooth import (
    ACTIVATIONS,
    DEPTHS,
    JSON_PATH,
    MP,
    PAIRS,
    POINTS,
    dphi,
    eoc,
    erf_closed,
    expect1,
    expect2_mehler,
    expect2_quad,
    hermite,
    phi,
    ref_pair,
    stored_inputs,
)

# (S11, S12, S22): different variances, a generic correlation, near-duplicate and near-opposite.
_COVARIANCES = (
    ("0.25", "0.1", "0.4"),
    ("0.3", "0.2999999999997", "0.3"),
    ("0.05", "-0.0749999", "0.1125"),
)


def _derf(t):
    return dphi("erf", t)


def _rel(got, want):
    return abs(got - want) / abs(want)


@pytest.mark.parametrize("cov", _COVARIANCES)
def test_whitened_quadrature_matches_erf_closed_form(cov):
    with MP.workdps(20):
        s11, s12, s22 = (MP.mpf(v) for v in cov)
        want_pp, want_dd = erf_closed(s11, s12, s22)
        got_pp = expect2_quad(MP.erf, MP.erf, s11, s12, s22)
        got_dd = expect2_quad(_derf, _derf, s11, s12, s22)
        assert _rel(got_pp, want_pp) < MP.mpf(10) ** -17
        assert _rel(got_dd, want_dd) < MP.mpf(10) ** -17


@pytest.mark.parametrize("cov", _COVARIANCES)
def test_mehler_series_matches_erf_closed_form_to_50_digits(cov):
    s11, s12, s22 = (MP.mpf(v) for v in cov)
    ha, hb = hermite("erf", s11), hermite("erf", s22)
    got_pp, got_dd = expect2_mehler(ha, hb, s12 / MP.sqrt(s11 * s22))
    want_pp, want_dd = erf_closed(s11, s12, s22)
    assert _rel(got_pp, want_pp) < MP.mpf(10) ** -50
    assert _rel(got_dd, want_dd) < MP.mpf(10) ** -50


def test_one_dimensional_moments_match_erf_closed_form():
    for q in (MP.mpf("0.01"), MP.mpf("0.25"), MP.mpf(3)):
        want_pp, want_dd = erf_closed(q, q, q)
        assert _rel(expect1(lambda t: MP.erf(t) ** 2, q), want_pp) < MP.mpf(10) ** -55
        assert _rel(expect1(lambda t: dphi("erf", t) ** 2, q), want_dd) < MP.mpf(10) ** -55


@pytest.mark.slow  # nested tanh-sinh quadrature, seconds per activation
@pytest.mark.parametrize("name", ["tanh", "gelu", "silu"])
def test_mehler_series_matches_whitened_quadrature(name):
    s11, s12, s22 = MP.mpf("0.2"), MP.mpf("0.15"), MP.mpf("0.3")
    got_pp, got_dd = expect2_mehler(hermite(name, s11, 400), hermite(name, s22, 400),
                                    s12 / MP.sqrt(s11 * s22))
    with MP.workdps(20):
        want_pp = expect2_quad(lambda t: phi(name, t), lambda t: phi(name, t), s11, s12, s22)
        want_dd = expect2_quad(lambda t: dphi(name, t), lambda t: dphi(name, t), s11, s12, s22)
    assert _rel(got_pp, want_pp) < MP.mpf(10) ** -17
    assert _rel(got_dd, want_dd) < MP.mpf(10) ** -17


def _table():
    return json.loads(JSON_PATH.read_text())


def test_stored_table_is_complete():
    data = _table()
    assert data["depths"] == list(DEPTHS)
    assert set(data["activations"]) == set(ACTIVATIONS)
    for name in ACTIVATIONS:
        for label, _, _ in POINTS:
            entry = data["activations"][name][label]
            for plabel, _, _ in PAIRS:
                pair = entry["pairs"][plabel]
                for kind in ("nngp", "ntk"):
                    for d in DEPTHS:
                        digits = pair[kind][str(d)].lstrip("-").split("e")[0].replace(".", "").lstrip("0")
                        assert len(digits) >= 30, (name, label, plabel, kind, d)


def test_stored_eoc_satisfies_its_definition():
    """chi = 1 and q* a fixed point of the variance map, from the stored strings (60-digit moments)."""
    data = _table()
    for name in ACTIVATIONS:
        entry = data["activations"][name]["eoc"]
        sw2, sb2, q = MP.mpf(entry["sigma_w"]) ** 2, MP.mpf(float(entry["sigma_b"])) ** 2, MP.mpf(entry["q_star"])
        chi = sw2 * expect1(lambda t, n=name: dphi(n, t) ** 2, q, name)
        q_next = sw2 * expect1(lambda t, n=name: phi(n, t) ** 2, q, name) + sb2
        # The stored strings have 40 digits; chi and the map move by ~ their sensitivity times 1e-40.
        assert abs(chi - 1) < MP.mpf(10) ** -36
        assert _rel(q_next, q) < MP.mpf(10) ** -36


@pytest.mark.slow  # recomputes the first 30 layers of several pairs at 60 digits (tens of seconds)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_stored_values_are_reproduced(name):
    data = _table()
    inputs = stored_inputs()
    assert data["inputs"] == {k: [repr(v) for v in x] for k, x in inputs.items()}
    for label, sw, sb in POINTS:
        entry = data["activations"][name][label]
        sigma_w = eoc(name, sb)[0] if sw is None else sw
        if sw is None:
            assert _rel(sigma_w, MP.mpf(entry["sigma_w"])) < MP.mpf(10) ** -38
        for plabel in ("generic", "near_duplicate", "near_opposite"):
            pair = entry["pairs"][plabel]
            vals = ref_pair(name, sigma_w, sb, inputs[pair["x"]], inputs[pair["y"]], 30)
            for d in (1, 3, 30):
                assert _rel(vals[d - 1][0], MP.mpf(pair["nngp"][str(d)])) < MP.mpf(10) ** -35
                assert _rel(vals[d - 1][1], MP.mpf(pair["ntk"][str(d)])) < MP.mpf(10) ** -35
