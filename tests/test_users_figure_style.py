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
        allowed = {*plots.style.PALETTE, *plots.style.NEUTRAL, *(s["color"] for s in plots.style.FALLBACK_STYLES)}
        assert colours <= allowed, (name, colours)


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
    styles = [plots.style.series_style(i) for i in range(3)]  # series that are no activation: greys
    assert len({s["ls"] for s in styles}) == 3 and len({s["marker"] for s in styles}) == 3
    assert len({s["color"] for s in styles}) == 3


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


# One style per activation, the same in every figure. The colour-vision-deficiency check simulates
# protan-, deutan- and tritanopia with the matrices of Machado, Oliveira & Fernandes (2009,
# severity 1.0) in linear sRGB, then compares the colours in CIELAB (D65).
_MACHADO = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
    "normal vision": np.eye(3).tolist(),
}
_NAMED = ("relu", "abs", "linear", "leaky_relu:0.1", "erf", "tanh", "gelu", "silu")


def _lab(hex_colour: str, matrix) -> np.ndarray:
    srgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    linear = np.clip(np.asarray(matrix) @ linear, 0.0, 1.0)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 216 / 24389, np.cbrt(t), (24389 / 27 * t + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_each_named_activation_has_its_own_colour_line_style_and_marker():
    styles = [plots.activation_style(name) for name in _NAMED]
    for key in ("color", "marker"):
        assert len({s[key] for s in styles}) == len(_NAMED), key
    assert len({str(s["ls"]) for s in styles}) == len(_NAMED)  # apart in greyscale too
    for vision, matrix in _MACHADO.items():  # colour-blind safe: every pair >= 15 CIELAB units apart
        labs = [_lab(s["color"], matrix) for s in styles]
        worst = min(np.linalg.norm(p - q) for i, p in enumerate(labs) for q in labs[i + 1:])
        assert worst >= 15, (vision, worst)
    for s in styles:  # dark enough for a thin line on white: CIELAB lightness <= 75
        assert _lab(s["color"], np.eye(3))[0] <= 75, s


@pytest.mark.parametrize("spellings", [
    ["relu", "ReLU", "ReLU (Δ=0.5)", "Δ=0.5", (1.0, 1.0), {"a": 0.5, "b": 0.5, "label": "x"}, {"name": "relu"}],
    ["abs", "abs (Δ=1)", "Δ=1", "0,1", {"a": 0.0, "b": 2.0}],
    ["leaky_relu:0.1", "leaky ReLU 0.1 (Δ=0.202)", {"a": 0.55, "b": 0.45}],
    ["0.3,0.7", "a=0.3, b=0.7 (Δ=0.845)", {"a": 0.6, "b": 1.4}],
    ["erf", "ERF", {"name": "erf"}, {"label": "erf"}],
    ["gelu", {"label": "GELU"}],
])
def test_every_spelling_of_an_activation_has_one_style(spellings):
    keys = {plots.activation_key(s) for s in spellings}
    assert len(keys) == 1, keys
    assert len({repr(plots.activation_style(s)) for s in spellings}) == 1


def test_other_activations_get_the_same_fallback_style_in_every_process():
    import os
    import subprocess
    import sys

    names = ["0.3,0.7", "0.2,0.9", "my_activation"]
    here = repr([plots.activation_style(n) for n in names])
    code = "import sys; from eoc_ntk import plots; print(repr([plots.activation_style(n) for n in sys.argv[1:]]))"
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # str hashes differ from this run's
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": seed}).stdout
    assert out.strip() == here
    here = [plots.activation_style(n) for n in names]
    fallback = {s["color"] for s in plots.style.FALLBACK_STYLES}
    assert all(s["color"] in fallback for s in here)
    assert not fallback & {plots.activation_style(n)["color"] for n in _NAMED}  # never a named one's colour


def test_activations_of_one_figure_never_share_a_style_whatever_their_order():
    acts = ["leaky_relu:0.1", "leaky_relu:0.2", "relu", "0.3,0.7"]
    styles = plots.activation_styles(acts)
    assert len({(s["color"], str(s["ls"])) for s in styles}) == 4
    assert styles[0] == plots.activation_style("leaky_relu:0.1")  # the smaller key keeps the named style
    backwards = plots.activation_styles(acts[::-1])[::-1]
    assert backwards == styles


def _colour_of(ax, label_part):
    found = {ln.get_color() for ln in ax.get_lines() if label_part in ln.get_label()}
    assert len(found) == 1, (label_part, [ln.get_label() for ln in ax.get_lines()])
    return found.pop()


def test_an_activation_has_one_colour_in_every_figure():
    """abs and ReLU, in a different order or alone, through every figure that draws an activation."""
    x, y = _data()
    abs_colour, relu_colour = plots.activation_style("abs")["color"], plots.activation_style("relu")["color"]
    sweep = plots.sweep_figure(activation_sweep(x, [1, 2, 5], ["relu", "abs"])).axes[0]
    alone = plots.sweep_figure(activation_sweep(x, [1, 2, 5], ["abs"])).axes[0]
    eig = plots.eigenvalue_figure([eoc_ntk.analyze(x, eoc_ntk.Model(3, 0.0, 1.0)),
                                   eoc_ntk.analyze(x, eoc_ntk.Model(3, 0.5, 0.5))]).axes[0]
    icd = plots.icd_error_figure({"depths": [2, 5], "results": [
        {"activation": "Δ=1", "median": [0.1, 0.05]}, {"activation": "Δ=0.5", "median": [0.2, 0.1]}]}).axes[0]
    weyl = plots.weyl_figure({"depths": [2, 5], "results": [
        {"activation": name, "lambda_min": [0.1, 0.2], "lambda_min_bounds": [[0.05, 1.0], [0.1, 0.9]],
         "lambda_max": [2.0, 5.0], "lambda_max_bounds": [[1.0, 3.0], [4.0, 7.0]]} for name in ("abs", "relu")]})
    for ax, abs_label, relu_label in ((sweep, "abs (Δ=1)", "ReLU (Δ=0.5)"), (alone, "abs (Δ=1)", None),
                                      (eig, "abs (Δ=1)", "ReLU (Δ=0.5)"), (icd, "Δ=1 median", "Δ=0.5 median"),
                                      (weyl.axes[0], "abs Weyl upper", "relu Weyl upper")):
        assert _colour_of(ax, abs_label) == abs_colour
        if relu_label:
            assert _colour_of(ax, relu_label) == relu_colour
    spectrum = plots.plot_spectrum(eoc_ntk.spectrum(x, depth=3, activation="abs"), activation="abs")
    dyn = plots.plot_dynamics(eoc_ntk.dynamics(x, y, depth=3, activation="abs"), activation="abs")
    curve = plots.plot_learning_curve(eoc_ntk.learning_curve(x, y, depth=3, activation="abs", sizes=[4, 8],
                                                             splits=2), activation="abs")
    assert _colour_of(spectrum, "eigenvalues of K/n") == abs_colour and "abs (Δ=1)" in spectrum.get_title()
    assert _colour_of(dyn, "predicted (infinite width)") == abs_colour and dyn.get_title().startswith("abs (Δ=1)")
    assert _colour_of(curve, "predicted (eigenlearning") == abs_colour
