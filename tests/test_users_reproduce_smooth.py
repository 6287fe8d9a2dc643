"""The report's section on activations beyond the family (``eoc_ntk.reproduce_smooth``)."""
from __future__ import annotations

import math

import numpy as np

from eoc_ntk.reproduce_smooth import smooth_experiment, smooth_lines, within_depth


def test_within_depth_is_the_first_depth_that_stays_within():
    depths = [1, 2, 3, 5, 10]
    assert within_depth(depths, [50.0, 12.0, 10.5, 10.9, 10.2], 10.0) == 3
    assert within_depth(depths, [50.0, 10.5, 12.0, 10.9, 10.2], 10.0) == 5  # leaves at depth 3, back at 5
    assert within_depth(depths, [50.0, 30.0, 20.0, 15.0, 12.0], 10.0) is None
    assert within_depth(depths, [1.0] * 5, math.inf) is None and within_depth(depths, [1.0] * 5, None) is None
    assert within_depth(depths, [None, 10.0, 10.0, 10.0, 10.0], 10.0) == 2


def test_section_has_every_activation_at_its_edge_of_chaos(tmp_path):
    # Two orthogonal inputs of one norm: the family's K/n at depth 1 is a multiple of I (cond 1 at sigma_b = 0).
    x = np.array([[0.3, 0.0, 0.0], [0.0, 0.3, 0.0]])
    res = smooth_experiment(x, depths=(1, 2, 3))
    names = [r["activation"] for r in res["rows"]]
    assert names == ["relu", "abs", "erf", "tanh", "gelu", "silu"]
    by_name = {r["activation"]: r for r in res["rows"]}
    assert by_name["relu"]["sigma_b"] == 0.0 and by_name["tanh"]["sigma_b"] == 0.1
    assert math.isclose(by_name["relu"]["sigma_w"], math.sqrt(2.0), rel_tol=1e-15)
    # tanh's EOC for sigma_b = 0.1 (tests/_reference/mp_smooth.py, 60 digits): sigma_w = 1.19340072502...
    assert math.isclose(by_name["tanh"]["sigma_w"], 1.1934007250243296846, rel_tol=1e-12)
    assert math.isclose(res["sweep"]["results"][0]["condition_number"][0], 1.0, rel_tol=1e-12)
    # the variance map's slope at q* (docs/math.md §9 table): q* attracts for tanh, repels for gelu
    assert by_name["relu"]["variance_slope"] is None and by_name["tanh"]["variance_slope"] < 1
    assert by_name["gelu"]["variance_slope"] > 1 and by_name["gelu"]["limit"] is None
    assert "repels" in by_name["gelu"]["note"] and by_name["tanh"]["note"] is None
    text = "\n".join(smooth_lines(res, str(tmp_path)))
    assert "| tanh | 1.193 | 0.1 | 0.6782 | 2 |" in text and "- gelu: no depth limit" in text
    assert "## Activations beyond the family" in text and "| gelu |" in text
    assert (tmp_path / "smooth.png").stat().st_size > 1000
