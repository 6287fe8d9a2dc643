"""Smooth-activation kernels against the independent 60-digit reference (``_reference.mp_smooth``).

The stored table ``tests/_reference/smooth_values.json`` holds NNGP and NTK entries of erf, tanh,
GELU and SiLU MLPs at depths 1..1000 for generic, diagonal, near-duplicate (1e-6 rad),
near-opposite and different-norm pairs, at the EOC for ``sigma_b = 0.1`` and off it
(``sigma_w = 1.2, sigma_b = 0.3``). The core must agree to 1e-12 relative everywhere.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from _reference.mp_smooth import ACTIVATIONS, JSON_PATH, MP, ref_pair, stored_inputs
from eoc_ntk.core.model import Model
from eoc_ntk.core.smooth_kernels import smooth_kernels_by_depth

TOL = 1e-12

needs_table = pytest.mark.skipif(not JSON_PATH.exists(), reason="the stored reference table is not committed yet")


def _table():
    return json.loads(JSON_PATH.read_text())


def _inputs(data):
    return {k: np.array([float(v) for v in x]) for k, x in data["inputs"].items()}


@needs_table
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_eoc_matches_the_reference(name):
    entry = _table()["activations"][name]["eoc"]
    model = Model(1, activation=name, sigma_b=float(entry["sigma_b"]))
    assert abs(MP.mpf(model.sigma_w) / MP.mpf(entry["sigma_w"]) - 1) <= 1e-14
    assert abs(MP.mpf(model.q_star) / MP.mpf(entry["q_star"]) - 1) <= 1e-13


def _worst(name, label):
    data = _table()
    inputs = _inputs(data)
    entry = data["activations"][name][label]
    model = Model(1, activation=name, sigma_w=float(entry["sigma_w"]), sigma_b=float(entry["sigma_b"]))
    depths = [int(d) for d in data["depths"]]
    worst = {}
    for plabel, pair in entry["pairs"].items():
        x = np.stack([inputs[pair["x"]], inputs[pair["y"]]])
        for depth, kernels in smooth_kernels_by_depth(x, None, model, depths, ("ntk", "nngp")):
            for kind in ("ntk", "nngp"):
                ref = MP.mpf(pair[kind][str(depth)])
                err = float(abs(MP.mpf(kernels[kind][0, 1]) - ref) / abs(ref))
                key = (plabel, kind, depth)
                worst[key] = err
    return worst


@needs_table
@pytest.mark.parametrize("label", ["eoc", "off_eoc"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_kernels_match_the_reference_at_every_depth(name, label):
    worst = _worst(name, label)
    bad = {k: v for k, v in worst.items() if v > TOL}
    assert not bad, bad


@pytest.mark.slow  # the reference recomputed live: seconds per pair and layer set
@pytest.mark.parametrize("name", ["tanh", "silu"])
def test_kernels_match_the_live_reference_to_depth_30(name):
    inputs = stored_inputs()
    model = Model(1, activation=name, sigma_b=0.1)
    for a, b in (("x0", "x1"), ("x0", "x0_near"), ("x0", "x0_opposite"), ("x1", "x_small")):
        ref = ref_pair(name, model.sigma_w, 0.1, inputs[a], inputs[b], 30)
        x = np.array([inputs[a], inputs[b]])
        for depth, kernels in smooth_kernels_by_depth(x, None, model, [1, 3, 10, 30], ("ntk", "nngp")):
            for kind, col in (("nngp", 0), ("ntk", 1)):
                want = ref[depth - 1][col]
                assert abs(MP.mpf(kernels[kind][0, 1]) - want) <= TOL * abs(want), (a, b, depth, kind)
