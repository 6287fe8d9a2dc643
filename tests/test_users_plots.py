"""What the figures draw: the eigenvalues sorted on a log axis, each condition-number curve and its limit."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from eoc_ntk import plots  # noqa: E402


def test_spectrum_figure_draws_the_sorted_positive_eigenvalues_on_a_log_axis():
    eig = [0.0, 0.5, 3.0, 0.01]
    fig = plots.spectrum_figure({"eigenvalues": eig, "condition_number": None,
                                 "model": {"depth": 4, "a": 0.5, "b": 0.5}})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), [3.0, 0.5, 0.01])
    assert "singular" in ax.get_title() and "ReLU" in ax.get_title()
    assert len(ax.get_lines()) == 2  # the zero eigenvalue is marked


def test_sweep_figure_draws_each_curve_and_its_limit():
    result = {"depths": [1, 2, 5], "results": [
        {"activation": {"a": 0.5, "b": 0.5}, "condition_number": [None, 40.0, 30.0], "limit_condition_number": 20.0},
        {"activation": {"a": 1.0, "b": 0.0}, "condition_number": [7.0, 7.0, 7.0], "limit_condition_number": None},
        {"activation": {"a": 0.55, "b": 0.45}, "condition_number": [math.inf, 50.0, 35.0], "limit_condition_number": 20.0},
    ]}
    ax = plots.sweep_figure(result).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    relu = lines["ReLU (Δ=0.5)"]
    np.testing.assert_array_equal(relu.get_xdata(), [2, 5])  # the singular depth is left out
    np.testing.assert_array_equal(relu.get_ydata(), [40.0, 30.0])
    assert list(lines["linear (Δ=0)"].get_ydata()) == [7.0, 7.0, 7.0]
    assert "leaky ReLU 0.1 (Δ=0.401)" in lines
    limits = [ln for ln in ax.get_lines() if ln.get_label().startswith("limit")]
    assert len(limits) == 2 and all(ln.get_ydata()[0] == 20.0 for ln in limits)


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_render_and_save(tmp_path, fmt, magic):
    fig = plots.spectrum_figure({"eigenvalues": [1.0, 2.0]})
    assert plots.render(fig, fmt).startswith(magic)
    path = plots.save(fig, tmp_path / f"f.{fmt}")
    assert open(path, "rb").read().startswith(magic)
    with pytest.raises(ValueError, match="not supported"):
        plots.render(fig, "gif")
