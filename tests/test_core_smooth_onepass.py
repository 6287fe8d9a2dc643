"""Smooth kernels at many depths from one pass, and the composed tail map once every variance settles.

Values are checked against the independent 60-digit table ``tests/_reference/smooth_values.json``
(``_reference.mp_smooth``): the stored inputs are embedded among many rows so that the pairs go
through the new paths (every pair on its own, then the tail map; or a pair of variance groups large
enough to be interpolated), and every stored depth comes from one call.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from _reference.mp_smooth import JSON_PATH, MP
from eoc_ntk.core._numerics.smooth_recursion import converging_trajectory
from eoc_ntk.core.model import Model
from eoc_ntk.core.smooth_kernels import INTERPOLATE_FROM, MAX_GROUP_PAIRS, smooth_kernels_by_depth, spec_of

TOL = 1e-12

needs_table = pytest.mark.skipif(not JSON_PATH.exists(), reason="the stored reference table is not committed yet")


def _table():
    return json.loads(JSON_PATH.read_text())


def _stored(data):
    names = list(data["inputs"])
    return names, np.array([[float(v) for v in data["inputs"][k]] for k in names])


def _model(entry, name):
    return Model(1, activation=name, sigma_w=float(entry["sigma_w"]), sigma_b=float(entry["sigma_b"]))


def _errors(data, entry, names, x, depths):
    """Worst relative error per (pair, kind, depth) of the stored pairs, rows ``names`` of ``x``."""
    model = _model(entry, entry["name"])
    out = {}
    for depth, kernels in smooth_kernels_by_depth(x, None, model, depths, ("ntk", "nngp")):
        for label, pair in entry["pairs"].items():
            i, j = names.index(pair["x"]), names.index(pair["y"])
            for kind in ("ntk", "nngp"):
                ref = MP.mpf(pair[kind][str(depth)])
                out[(label, kind, depth)] = float(abs(MP.mpf(kernels[kind][i, j]) - ref) / abs(ref))
    return out


def _many_norms(x, count, seed=3):
    """``x`` and ``count`` rows of distinct norms within the stored inputs' range."""
    rng = np.random.default_rng(seed)
    extra = rng.normal(size=(count, x.shape[1]))
    lo, hi = np.min(np.linalg.norm(x, axis=1)), np.max(np.linalg.norm(x, axis=1))
    extra *= (rng.uniform(lo, hi, size=count) / np.linalg.norm(extra, axis=1))[:, None]
    return np.vstack([x, extra])


@needs_table
@pytest.mark.parametrize(("name", "label"), [
    ("erf", "eoc"), ("erf", "off_eoc"), ("tanh", "eoc"), ("tanh", "off_eoc"), ("gelu", "off_eoc"),
    pytest.param("gelu", "eoc", marks=pytest.mark.slow),  # settles at layer 289: 8 s
    ("silu", "off_eoc"),  # at its EOC with sigma_b = 0.1 SiLU's variances have not settled by depth 1000
])
def test_tail_map_matches_the_reference(name, label):
    """Inputs of many norms: pairs on their own to the layer where every variance settles, then the
    interpolated tail map (more than ``INTERPOLATE_FROM`` pairs) to depth 1000."""
    data = _table()
    entry = dict(data["activations"][name][label], name=name)
    names, x = _stored(data)
    x = _many_norms(x, 86)
    n = x.shape[0]
    assert n * (n + 1) // 2 >= INTERPOLATE_FROM and n * n > MAX_GROUP_PAIRS
    model = _model(entry, name)
    q1 = model.sigma_w2 * np.sum(x * x, axis=1) / x.shape[1] + model.sigma_b ** 2
    qs, tail, _, _ = converging_trajectory(spec_of(model), q1, 1000)
    assert tail and len(qs) < 300, len(qs)  # the tail map serves depths 300 and 1000 at least
    depths = [int(d) for d in data["depths"]]
    worst = _errors(data, entry, names, x, depths)
    bad = {k: v for k, v in worst.items() if v > TOL}
    assert not bad, bad


@needs_table
@pytest.mark.parametrize("name", ["erf", "tanh", "silu"])
def test_grouped_interpolants_at_many_depths_match_the_reference(name):
    """Two variance groups of 66 rows each (x0's and x1's norms): the generic pair lies in a block of
    4356 entries, interpolated, at all stored depths from one pass of the node points."""
    data = _table()
    entry = dict(data["activations"][name]["eoc"], name=name)
    names, x = _stored(data)
    rng = np.random.default_rng(5)
    blocks = [x]
    for row in (x[names.index("x0")], x[names.index("x1")]):
        extra = rng.normal(size=(65, 3))
        extra *= (np.linalg.norm(row) / np.linalg.norm(extra, axis=1))[:, None]
        blocks.append(extra)
    x = np.vstack(blocks)
    depths = [int(d) for d in data["depths"]]
    worst = _errors(data, entry, names, x, depths)
    bad = {k: v for k, v in worst.items() if v > TOL}
    assert not bad, bad


@pytest.mark.parametrize("name", ["erf"])
def test_tail_map_matches_the_layer_by_layer_quadrature(name):
    """Gaussian rows of distinct norms at sigma_b = 1 (the variances settle by layer ~20): the tail map
    against ``method="quadrature"`` (the plain layer-by-layer recursion of ``Sigma`` and ``Theta``, erf's
    closed form), near-duplicate and near-opposite pairs included. (tanh's 2-D quadrature costs minutes
    here; the stored table checks tanh.)"""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 4))
    x[1] = x[0] + 1e-7 * rng.normal(size=4)
    x[2] = -1.1 * x[0] + 1e-7 * rng.normal(size=4)
    model = Model(1, activation=name, sigma_b=1.0)
    q1 = model.sigma_w2 * np.sum(x * x, axis=1) / x.shape[1] + 1.0
    qs, tail, _, _ = converging_trajectory(spec_of(model), q1, 60)
    assert tail and len(qs) < 40
    depths = [5, 40, 60]
    fast = dict(smooth_kernels_by_depth(x, None, model, depths, ("ntk", "nngp")))
    slow = dict(smooth_kernels_by_depth(x, None, model, depths, ("ntk", "nngp"), method="quadrature"))
    for depth in depths:
        for kind in ("ntk", "nngp"):
            np.testing.assert_allclose(fast[depth][kind], slow[depth][kind], rtol=1e-11, atol=0)

