"""One house style for every figure: print resolution, one tick notation, legible legends, text in SVG,
matplotlib's convention (``ax=``, the Axes returned, result objects), and every file format."""
from __future__ import annotations

import io
import re
import struct

import numpy as np
import pytest

import eoc_ntk
from eoc_ntk import plots
from eoc_ntk.core.sweep import activation_sweep

pytest.importorskip("matplotlib")

_PLAIN = re.compile(r"^−?\d+(\.\d+)?$")
_POWER = re.compile(r"^−?(\d(\.\d+)?×)?10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+$")


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    return x, np.sin(x[:, 0]) + 0.5 * x[:, 1]


@pytest.fixture(scope="module")
def figures():
    """Every figure the project draws, from real results."""
    x, y = _data()
    spec = eoc_ntk.analyze(x, eoc_ntk.Model(4, 0.5, 0.5))
    icd = {"depths": [2, 5, 10, 50], "results": [{"activation": "Δ=0.5", "median": [0.1, 0.04, 0.02, 0.004],
                                                  "max": [0.3, 0.1, 0.05, 0.01]}]}
    weyl = {"depths": [2, 5, 10], "results": [{"activation": "relu", "lambda_min": [0.1, 0.2, 0.3],
                                               "lambda_min_bounds": [[0.0, 1.0], [0.05, 0.9], [0.1, 0.8]],
                                               "lambda_max": [2.0, 5.0, 9.0],
                                               "lambda_max_bounds": [[1.0, 3.0], [4.0, 7.0], [8.0, 12.0]]}]}
    training = {"steps": list(range(6)), "predicted_loss": [0.5, 0.3, 0.2, 0.12, 0.08, 0.05], "learning_rate": 0.5,
                "max_learning_rate": 1.0, "depth": 3, "a": 0.5, "b": 0.5, "widths": [64],
                "measured_loss": [[[0.5, 0.31, 0.2, 0.13, 0.08, 0.05]]]}
    return {
        "spectrum": plots.spectrum_figure(spec),
        "sweep": plots.sweep_figure(activation_sweep(x, [1, 2, 3, 5, 10, 30, 100], ["relu", "abs"])),
        "icd_error": plots.icd_error_figure(icd),
        "eigenvalues": plots.eigenvalue_figure([spec, eoc_ntk.analyze(x, eoc_ntk.Model(4, 0.0, 1.0))]),
        "dynamics": plots.dynamics_figure(eoc_ntk.dynamics(x, y, depth=3, activation="relu").to_dict()),
        "training": plots.training_figure(training),
        "learning_curve": plots.learning_curve_figure(
            eoc_ntk.learning_curve(x, y, depth=3, activation="relu", sizes=[4, 8, 16], splits=3).to_dict()),
        "weyl": plots.weyl_figure(weyl),
    }


@pytest.mark.parametrize("name", ["spectrum", "sweep", "icd_error", "eigenvalues", "dynamics", "training",
                                  "learning_curve", "weyl"])
def test_every_figure_keeps_the_house_style(figures, name):
    fig = figures[name]
    png = plots.render(fig, "png")
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 1200 and fig.dpi == 300, (width, fig.dpi)
    from PIL import Image

    assert Image.open(io.BytesIO(png)).info["dpi"][0] == pytest.approx(300, abs=1)
    svg = plots.render(fig, "svg").decode()
    assert "<text" in svg  # text kept as text, editable
    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend is not None, name
        assert all(t.get_fontsize() >= 8 for t in legend.get_texts())
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            texts = [t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True)
                     if lo <= v <= hi and t.get_text()]
            assert texts, (name, axis)
            plain = all(_PLAIN.match(t) for t in texts)
            power = all(_POWER.match(t) or t == "0" for t in texts)
            assert plain or power, (name, texts)  # one notation per axis, never mixed
            assert "$" not in "".join(texts) and "e+" not in "".join(texts) and "e-" not in "".join(texts)
        colours = {ln.get_color() for ln in ax.get_lines()} - {"0.15", "0.2", "0.35"}  # greys: limits, marks
        assert colours <= set(plots.style.PALETTE), (name, colours)


@pytest.mark.parametrize("name", ["spectrum", "eigenvalues", "training"])
def test_index_and_step_axes_have_integer_ticks(figures, name):
    fig = figures[name]
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = sorted(ax.get_xlim())
    ticks = [v for v in ax.get_xticks() if lo <= v <= hi]
    assert len(ticks) >= 2 and all(float(v).is_integer() for v in ticks), ticks


def test_tick_labels_use_one_notation():
    assert plots.tick_labels([0.01, 0.1, 1, 10, 500, 2000]) == ["0.01", "0.1", "1", "10", "500", "2000"]
    assert plots.tick_labels([1e-4, 1e-2, 1, 1e4]) == ["10⁻⁴", "10⁻²", "10⁰", "10⁴"]
    assert plots.tick_labels([0, 2e4, 5e4]) == ["0", "2×10⁴", "5×10⁴"]


def test_series_stay_apart_in_greyscale():
    styles = [plots.style.series_style(i) for i in range(4)]
    assert len({s["ls"] for s in styles}) == 4 and len({s["marker"] for s in styles}) == 4
    assert len({s["color"] for s in styles}) == 4


def test_dynamics_draws_a_dense_curve_through_the_steps_asked():
    x, y = _data()
    d = eoc_ntk.dynamics(x, y, depth=3, activation="relu", steps=[0, 1, 10, 100, 1000])
    ax = plots.plot_dynamics(d)
    dense = max(ax.get_lines(), key=lambda ln: len(ln.get_xdata()))
    assert len(dense.get_xdata()) >= 100
    steps = np.asarray(dense.get_xdata())
    # independent reference: L_t = (1/2n) |(I - eta K/n)^t y|^2 by explicit iteration
    k = eoc_ntk.kernel(x, depth=3, activation="relu") / len(x)
    eta, r, losses = d.learning_rate, y.copy(), {}
    for t in range(1001):
        losses[t] = 0.5 * float(r @ r) / len(x)
        r = r - eta * (k @ r)
    picks = [i for i, t in enumerate(steps) if t in (3, 37, 250, 777)]
    assert picks
    for i in picks:
        assert dense.get_ydata()[i] == pytest.approx(losses[int(steps[i])], rel=1e-6)


def test_learning_curve_error_bars_are_labelled():
    x, y = _data()
    ax = plots.plot_learning_curve(eoc_ntk.learning_curve(x, y, depth=2, activation="abs", sizes=[4, 8], splits=2))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert plots.ERROR_BAR_LABEL in labels and "standard deviation over splits" in plots.ERROR_BAR_LABEL


def test_plot_functions_take_result_objects_draw_into_ax_and_return_it(tmp_path):
    from matplotlib.figure import Figure

    x, y = _data()
    fig = Figure()
    axes = fig.subplots(2, 3)
    sweep = eoc_ntk.depth_sweep(x, depths=[1, 2, 5, 10], activation="relu")
    drawn = [
        plots.plot_sweep(sweep, ax=axes[0, 0]),
        plots.plot_spectrum(eoc_ntk.spectrum(x, depth=3, activation="relu"), ax=axes[0, 1]),
        plots.plot_eigenvalues([eoc_ntk.spectrum(x, depth=3, activation="abs")], ax=axes[0, 2]),
        plots.plot_dynamics(eoc_ntk.dynamics(x, y, depth=3, activation="relu"), ax=axes[1, 0]),
        plots.plot_learning_curve(eoc_ntk.learning_curve(x, y, depth=3, activation="relu", sizes=[4, 8], splits=2),
                                  ax=axes[1, 1]),
        plots.plot_icd_error({"depths": [2, 5], "results": [{"activation": "x", "median": [0.1, 0.05]}]},
                             ax=axes[1, 2]),
    ]
    assert drawn == list(axes.flat) and all(ax.get_lines() for ax in drawn)
    np.testing.assert_allclose(axes[0, 0].get_lines()[0].get_ydata(), sweep.condition_number[1:])  # depth 1: singular
    ax = plots.plot_sweep(sweep.to_dict())  # the dict as well, into a new figure
    assert ax.figure is not fig


@pytest.mark.parametrize("ext, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml"), ("eps", b"%!PS")])
def test_saving_by_extension(tmp_path, ext, magic):
    x, _ = _data()
    path = tmp_path / f"sweep.{ext}"
    plots.plot_sweep(eoc_ntk.depth_sweep(x, depths=[2, 3], activation="relu"), path, dpi=40)
    assert path.read_bytes().startswith(magic)
    if ext == "svg":
        assert "<text" in path.read_text() and "condition number vs depth" in path.read_text()
    with pytest.raises(ValueError, match="extension"):
        plots.plot_sweep(eoc_ntk.depth_sweep(x, depths=[2, 3], activation="relu"), tmp_path / "s.gif")
