"""What the figures draw: the eigenvalues sorted on a log axis, each condition-number curve and its limit."""
from __future__ import annotations

import math
import re
import struct
from itertools import pairwise

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from eoc_ntk import plots
from eoc_ntk.core.errors import InvalidParameterError


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
        {"activation": {"a": 0.55, "b": 0.45}, "condition_number": [math.inf, 50.0, 35.0],
         "limit_condition_number": 20.0},
    ]}
    ax = plots.sweep_figure(result).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    relu = lines["ReLU (Δ=0.5)"]
    np.testing.assert_array_equal(relu.get_xdata(), [2, 5])  # the singular depth is no point of the curve
    np.testing.assert_array_equal(relu.get_ydata(), [40.0, 30.0])
    assert list(lines["linear (Δ=0)"].get_ydata()) == [7.0, 7.0, 7.0]
    assert "leaky ReLU 0.1 (Δ=0.401)" in lines
    # ReLU and leaky ReLU share the limit 20: one dashed line, labelled once, naming both
    limits = [ln for ln in ax.get_lines() if ln.get_label().startswith("depth limit")]
    assert len(limits) == 1 and limits[0].get_ydata()[0] == 20.0 and limits[0].get_linestyle() == "--"
    assert limits[0].get_label() == "depth limit 20 (ReLU, leaky ReLU 0.1)"


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_render_and_save(tmp_path, fmt, magic):
    fig = plots.spectrum_figure({"eigenvalues": [1.0, 2.0]})
    assert plots.render(fig, fmt).startswith(magic)
    path = plots.save(fig, tmp_path / f"f.{fmt}")
    assert open(path, "rb").read().startswith(magic)
    with pytest.raises(ValueError, match="not supported"):
        plots.render(fig, "gif")


def _sweep(depths, singular_first=False):
    """A synthetic sweep: ReLU and abs share the limit 42.21, a linear network singular at every depth."""
    d = np.asarray(depths, float)
    relu = list(42.21 + 300.0 / d)
    if singular_first:
        relu[0] = None
    return {"depths": list(depths), "results": [
        {"activation": {"a": 0.5, "b": 0.5}, "condition_number": relu, "limit_condition_number": 42.21},
        {"activation": {"a": 0.0, "b": 1.0}, "condition_number": list(42.21 + 250.0 / d),
         "limit_condition_number": 42.21},
        {"activation": {"a": 1.0, "b": 0.0}, "condition_number": [None] * len(depths), "limit_condition_number": None},
    ]}


_PLAIN = re.compile(r"^\d+(\.\d+)?$")
_POWER = re.compile(r"^(\d(\.\d+)?×)?10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+$")


@pytest.mark.parametrize("depths, x_labels", [
    (list(range(1, 11)), {"2", "4", "6", "8", "10"}), (list(range(1, 101)), {"1", "10", "50", "100"}),
    (list(range(1, 1001, 3)) + [1000], {"1", "10", "100", "1000"}), ([1, 2, 5, 10, 50], {"1", "2", "5", "10", "50"}),
    ([1, 3, 200], {"1", "10", "100"}), ([2, 7], {"3", "4", "5", "6", "7"})])
def test_tick_labels_are_plain_numbers_that_do_not_overlap(depths, x_labels):
    fig = plots.sweep_figure(_sweep(depths))
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = sorted(axis.get_view_interval())
        shown = [t for t,
                 v in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True) if lo <= v <= hi and t.get_text()]
        texts = [t.get_text() for t in shown]
        assert len(texts) >= 2, (depths, texts)
        # one notation per axis: all plain, or all powers of ten (no mathtext such as 5.4x10^1)
        assert all(_PLAIN.match(s) for s in texts) or all(_POWER.match(s) or s == "0" for s in texts), texts
        assert all(not t.get_text() for t in axis.get_minorticklabels())
        boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: (b.x0, b.y0))
        for a, b in pairwise(boxes):
            assert not a.overlaps(b), (depths, texts)
    if max(depths) / min(depths) >= 20:
        assert ax.get_xscale() == "log"
    lo, hi = sorted(ax.get_xlim())
    shown = {t.get_text() for t, v in zip(ax.xaxis.get_ticklabels(), ax.get_xticks(), strict=True) if lo <= v <= hi}
    assert x_labels <= shown, (depths, shown)


def test_singular_depths_marked_all_singular_named_and_legend_outside():
    fig = plots.sweep_figure(_sweep([1, 2, 5, 10, 50], singular_first=True))
    fig.canvas.draw()
    ax = fig.axes[0]
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "v" and len(ln.get_xdata())]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [1.0]
    assert marks[0].get_markerfacecolor() == ax.get_lines()[0].get_color()  # in its activation's colour
    entry = [ln for ln in ax.get_lines() if ln.get_label().startswith("singular")]
    assert len(entry) == 1 and entry[0].get_markerfacecolor() == "none"  # the legend's mark: hollow, any colour
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert not any(lbl.startswith("linear") for lbl in labels)  # no empty legend entry for linear
    notes = [t.get_text() for t in ax.texts]
    assert any("linear" in t and "every depth" in t for t in notes)
    assert sum(lbl.startswith("depth limit") for lbl in labels) == 1
    legend = ax.get_legend()
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1 - 1


def test_size_and_dpi():
    png = plots.render(plots.plot_sweep(_sweep([1, 2, 3]), width=5, height=3, dpi=80).figure)
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (400, 240)
    for kw, param in (({"width": 0}, "width"), ({"height": 80}, "height"), ({"dpi": 5000}, "dpi"),
                      ({"dpi": 99.5}, "dpi"), ({"width": "5"}, "width")):
        with pytest.raises(InvalidParameterError) as err:
            plots.plot_sweep(_sweep([1, 2]), **kw)
        assert err.value.param == param


def test_icd_error_figure_draws_median_and_max_per_activation():
    result = {"depths": [2, 5, 10, 50, 200], "results": [
        {"activation": {"a": 0.5, "b": 0.5}, "median": [0.3, 0.1, 0.05, 0.01, 0.002],
         "max": [0.9, 0.4, 0.2, 0.05, 0.01]},
        {"activation": "Δ=1", "median": [0.2, 0.05, 0.02, 0.004, 0.001]}]}
    fig = plots.icd_error_figure(result)
    fig.canvas.draw()
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"ReLU (Δ=0.5) median", "ReLU (Δ=0.5) max", "Δ=1 median"}
    np.testing.assert_array_equal(lines["Δ=1 median"].get_ydata(), [0.2, 0.05, 0.02, 0.004, 0.001])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert all(_PLAIN.match(t.get_text()) for t in ax.xaxis.get_ticklabels() if t.get_text())


def test_eigenvalue_figure_draws_each_sorted_spectrum():
    from _users_support import eoc_angle_ntk, small_data
    from eoc_ntk import Model, analyze

    x = small_data(seed=7)
    results = [analyze(x, Model(5, a, b)) for a, b in ((0.5, 0.5), (0.0, 1.0))]
    ax = plots.eigenvalue_figure(results).axes[0]
    assert "depth 5" in ax.get_title()
    for line, (a, b) in zip(ax.get_lines(), ((0.5, 0.5), (0.0, 1.0)), strict=True):
        ref = np.linalg.eigvalsh(eoc_angle_ntk(x, 5, a, b)[0] / len(x))[::-1]
        np.testing.assert_allclose(line.get_ydata(), ref, rtol=1e-8)
