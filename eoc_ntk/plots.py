"""Figures of spectra, depth sweeps, training-loss predictions and learning curves (matplotlib, Agg
backend, imported lazily).

Figures are built with :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so
rendering holds no global state and is safe in a server's threads.

Inputs are the JSON-shaped dicts that :func:`eoc_ntk.analyze`, :meth:`DepthSweep.to_dict`
and the REST API return (``None`` standing for infinity), so the same code draws a local
result, a client's result and a stored service result.
"""
from __future__ import annotations

import io
import json
import math
import os
from typing import Iterable

import numpy as np

from eoc_ntk.core.activations import activation_label as label_of
from eoc_ntk.core.errors import InvalidParameterError

__all__ = ["FORMATS", "activation_label", "check_size", "new_figure", "plain_number", "log_ticks",
           "spectrum_figure", "sweep_figure", "icd_error_figure", "eigenvalue_figure", "render", "save",
           "dynamics_figure", "training_figure", "learning_curve_figure", "plot_spectrum", "plot_sweep",
           "plot_dynamics", "plot_learning_curve", "render_result", "MAX_PIXELS"]

#: Output format -> media type.
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}

#: Default figure size (inches) and resolution (dots per inch).
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_DPI = 7.5, 4.2, 100
#: Accepted width/height (inches) and dpi: from 1 x 1 in at 20 dpi (smaller figures overflow
#: matplotlib's layout) to 50 x 50 in at 600 dpi.
MIN_INCHES, MAX_INCHES, MIN_DPI, MAX_DPI = 1.0, 50.0, 20, 600
#: Most pixels of a figure (width x height x dpi^2): 16 Mpx, e.g. 40 x 40 in at 100 dpi or 13.3 x 7.5 in at 300 dpi.
MAX_PIXELS = 16_000_000


def check_size(width=None, height=None, dpi=None) -> tuple[float, float, int]:
    """``(width, height, dpi)`` with defaults filled in, checked.

    Raises
    ------
    InvalidParameterError
        ``param="width"``, ``"height"`` or ``"dpi"`` for a value that is not a finite number in
        ``[1, 50]`` inches (``dpi``: an integer in ``[20, 600]``), or a figure of more than
        :data:`MAX_PIXELS` pixels (``param="dpi"``, or ``"width"`` when the dpi is the default).
    """
    out = []
    for name, value, default in (("width", width, DEFAULT_WIDTH), ("height", height, DEFAULT_HEIGHT)):
        if value is None:
            out.append(default)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not (MIN_INCHES <= float(value) <= MAX_INCHES):
            raise InvalidParameterError(f"{name} must be a number of inches in [{MIN_INCHES:g}, {MAX_INCHES:g}], "
                                        f"got {value!r}",
                                        param=name)
        out.append(float(value))
    if dpi is None:
        dpi = DEFAULT_DPI
    elif isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)) or not (MIN_DPI <= int(dpi) <= MAX_DPI):
        raise InvalidParameterError(f"dpi must be an integer in [{MIN_DPI}, {MAX_DPI}], got {dpi!r}", param="dpi")
    pixels = round(out[0] * dpi) * round(out[1] * dpi)
    if pixels > MAX_PIXELS:
        raise InvalidParameterError(
            f"a figure of {out[0]:g} x {out[1]:g} inches at {int(dpi)} dpi has {pixels} pixels, over the limit "
            f"{MAX_PIXELS}; lower dpi, width or height", param="dpi" if dpi != DEFAULT_DPI else "width")
    return out[0], out[1], int(dpi)


def new_figure(width: float | None = None, height: float | None = None, dpi: int | None = None):
    """An empty matplotlib ``Figure`` with an Agg canvas (no ``pyplot`` state), ``width x height`` inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is the [plots] extra
    from matplotlib.figure import Figure

    width, height, dpi = check_size(width, height, dpi)
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plain_number(value: float) -> str:
    """A tick label without mathtext: ``"5"``, ``"50"``, ``"0.02"``, ``"1e3"``, ``"2.5e4"``, ``"1e-4"``."""
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    if 1e-3 <= abs(v) < 1e3:
        return f"{v:.3g}"
    exp = math.floor(math.log10(abs(v)))
    mant = v / 10 ** exp
    if abs(mant - round(mant)) < 1e-9 or abs(mant) >= 9.9995:
        if abs(mant) >= 9.9995:
            mant, exp = mant / 10, exp + 1
        return f"{round(mant):d}e{exp}"
    return f"{mant:.2g}e{exp}"


def log_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Tick positions for a log axis over ``[lo, hi]``: 1-2-5 steps (``1 2 5 10 20 50 100``) when
    they give 3 to ``most`` ticks, else decades (``1 10 100 1e3``), else 1..9 steps for a narrow axis."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    first, last = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1

    def within(steps):
        ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in steps]
        return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]

    one_two_five, decades, all_steps = within((1, 2, 5)), within((1,)), within(range(1, 10))
    for ticks in (one_two_five, decades):
        if 3 <= len(ticks) <= most:
            return ticks
    if len(decades) > most:  # many decades: every other one
        return decades[::max(1, math.ceil(len(decades) / most))]
    return all_steps if len(all_steps) <= most + 2 else one_two_five


def _plain_log_axis(axis, lo: float, hi: float) -> None:
    """Plain numeric labels on a log axis: chosen ticks, no minor labels (no ``5.4x10^1``)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = log_ticks(lo, hi)
    if ticks:
        axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, pos: plain_number(v)))
    axis.set_minor_formatter(NullFormatter())


def activation_label(act: dict) -> str:
    """The display label of an activation object ``{"a": .., "b": ..}`` (see
    :func:`eoc_ntk.core.activations.activation_label`)."""
    return label_of(float(act["a"]), float(act["b"]))


def _floats(values: Iterable) -> np.ndarray:
    return np.array([math.inf if v is None else float(v) for v in values], dtype=float)


def spectrum_figure(result: dict, title: str | None = None, *, width: float | None = None,
                    height: float | None = None, dpi: int | None = None):
    """Sorted eigenvalues of ``K/n`` on a log scale (zeros drawn at the bottom edge, marked)."""
    eig = np.sort(_floats(result["eigenvalues"]))[::-1]
    fig = new_figure(width, height, dpi)
    ax = fig.add_subplot()
    positive = eig > 0
    idx = np.arange(1, eig.size + 1)
    ax.semilogy(idx[positive], eig[positive], "o-", ms=3, lw=1, label="eigenvalues of K/n")
    if (~positive).any() and positive.any():
        ax.plot(idx[~positive], np.full((~positive).sum(), eig[positive].min() / 10), "x", color="C3",
                label="0 (singular)")
    cond = result.get("condition_number")
    ax.set_xlabel("index (descending)")
    ax.set_ylabel("eigenvalue")
    model = result.get("model") or {}
    if title is None:
        parts = []
        if model:
            parts.append(f"{activation_label(model)}, depth {model.get('depth')}")
        parts.append(f"n={eig.size}")
        if cond is None or not math.isfinite(float(cond)):
            parts.append("cond = ∞ (singular)")
        else:
            parts.append(f"cond = {float(cond):.4g}")
        title = ", ".join(parts)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _distinct_limits(results: list[dict]) -> list[tuple[float, list[int]]]:
    """Finite depth limits, equal ones (to 1e-9 relative) merged: ``[(limit, [activation indices])]``."""
    groups: list[tuple[float, list[int]]] = []
    for i, res in enumerate(results):
        limit = res.get("limit_condition_number")
        if limit is None or not math.isfinite(float(limit)):
            continue
        for value, members in groups:
            if abs(float(limit) - value) <= 1e-9 * abs(value):
                members.append(i)
                break
        else:
            groups.append((float(limit), [i]))
    return groups


def _short(label: str) -> str:
    return label.split(" (Δ")[0]


def sweep_figure(result: dict, title: str | None = None, *, width: float | None = None,
                 height: float | None = None, dpi: int | None = None):
    """Condition number of ``K/n`` vs depth per activation, with the depth limits (docs/math.md §5).

    - one dashed line per distinct limit, labelled once (in the activation's colour when it is
      the only one with that limit, grey when several share it);
    - depths where an activation's matrix is singular (condition number ``inf``/``None``) are
      marked by a triangle at the top of the axes in its colour (legend entry "singular");
    - an activation singular at every depth has no curve; a note under the axes names it;
    - log axes carry plain numeric labels (``1 2 5 10 20 50``, ``1e3``), the legend sits
      outside the axes, on the right.

    ``result``: ``{"depths": (D,), "results": [{"activation": {"a", "b"}, "condition_number": (D,),
    "limit_condition_number"?}, ...]}`` as returned by the core, the client or the API.
    """
    depths = np.asarray(result["depths"], dtype=float)
    results = list(result["results"])
    fig = new_figure(width, height, dpi)
    ax = fig.add_subplot()
    all_singular, singular_drawn = [], False
    finite_values = []
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for i, res in enumerate(results):
        color = f"C{i % 10}"
        cond = _floats(res["condition_number"])
        finite = np.isfinite(cond)
        label = activation_label(res["activation"])
        if not finite.any():
            all_singular.append(label)
            continue
        finite_values.append(cond[finite])
        ax.plot(depths[finite], cond[finite], "o-" if depths.size <= 30 else "-", ms=3, lw=1.2,
                color=color, label=label)
        if (~finite).any():
            ax.plot(depths[~finite], np.full((~finite).sum(), 0.97), "v", ms=6, color=color, transform=top,
                    clip_on=False, label="_nolegend_" if singular_drawn else "singular (cond = ∞)")
            singular_drawn = True
    for value, members in _distinct_limits(results):
        finite_values.append(np.array([value]))
        shared = len(members) > 1
        who = "all" if shared and len(members) == len(results) else ", ".join(
            _short(activation_label(results[i]["activation"])) for i in members)
        ax.axhline(value, ls="--", lw=1, color="0.4" if shared else f"C{members[0] % 10}", alpha=0.9,
                   label=f"depth limit {value:.4g} ({who})")
    ax.set_xlabel("depth l")
    ax.set_ylabel("condition number of K/n")
    ax.set_yscale("log")
    if finite_values:
        ys = np.concatenate(finite_values)
        _plain_log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    if depths.size and depths.max() / max(depths.min(), 1) >= 20:
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis, float(depths.min()), float(depths.max()))
    if singular_drawn:
        ax.margins(y=0.12)  # head room for the singular marks at the top
    ax.set_title(title or "condition number vs depth", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if all_singular:
        names = ", ".join(all_singular)
        # Under the legend, outside the axes: it covers no curve and no limit line.
        ax.text(1.02, 0.0, "singular at every depth\n(cond = ∞), no curve:\n" + names.replace(", ", "\n"),
                transform=ax.transAxes, fontsize=7, color="C3", va="bottom", ha="left")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return fig


def icd_error_figure(result: dict, title: str | None = None, *, width: float | None = None,
                     height: float | None = None, dpi: int | None = None):
    """Relative error of the ICD approximation (docs/math.md §5) vs depth, one colour per activation.

    ``result``: ``{"depths": (D,), "results": [{"activation": {"a", "b"} | label, "median": (D,),
    "max": (D,)}, ...]}`` (``median`` or ``max`` may be missing); the median solid, the maximum
    dashed, both axes log with plain numeric labels.
    """
    depths = np.asarray(result["depths"], dtype=float)
    fig = new_figure(width, height, dpi)
    ax = fig.add_subplot()
    values = []
    for i, res in enumerate(result["results"]):
        act = res["activation"]
        label = act if isinstance(act, str) else activation_label(act)
        for key, style in (("median", "o-"), ("max", "s--")):
            if key in res:
                v = _floats(res[key])
                ok = np.isfinite(v) & (v > 0)
                values.append(v[ok])
                ax.plot(depths[ok], v[ok], style, ms=3, lw=1.2, color=f"C{i % 10}",
                        alpha=1.0 if key == "median" else 0.6,
                        label=f"{label} {key}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if depths.size:
        _plain_log_axis(ax.xaxis, float(depths.min()), float(depths.max()))
    if values and np.concatenate(values).size:
        ys = np.concatenate(values)
        _plain_log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    ax.set_xlabel("depth l")
    ax.set_ylabel("relative error |K - A| / |K| (off-diagonal)")
    ax.set_title(title or "ICD approximation error vs depth", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return fig


def eigenvalue_figure(results: list[dict], title: str | None = None, *, width: float | None = None,
                      height: float | None = None, dpi: int | None = None):
    """Sorted eigenvalues of ``K/n`` (descending, log scale) of several spectra, e.g. every activation
    asked at one depth; zeros of singular matrices marked at the bottom.

    ``results``: spectrum results (``{"eigenvalues": (n,), "model": {"a", "b", "depth"}}``) as
    returned by :func:`eoc_ntk.analyze`, the client or ``POST /v1/spectra``.
    """
    fig = new_figure(width, height, dpi)
    ax = fig.add_subplot()
    depths, positives = set(), []
    for i, res in enumerate(results):
        eig = np.sort(_floats(res["eigenvalues"]))[::-1]
        model = res.get("model") or {}
        depths.add(model.get("depth"))
        label = activation_label(model) if "a" in model else f"spectrum {i + 1}"
        pos = eig > 0
        positives.append(eig[pos])
        idx = np.arange(1, eig.size + 1)
        ax.plot(idx[pos], eig[pos], "-", lw=1.2, color=f"C{i % 10}", label=label)
        if (~pos).any():
            ax.plot(idx[~pos], np.full((~pos).sum(), 0.03), "x", color=f"C{i % 10}", transform=ax.get_xaxis_transform(),
                    label=f"{_short(label)}: {(~pos).sum()} zero eigenvalue(s)")
    ax.set_yscale("log")
    if positives and np.concatenate(positives).size:
        ys = np.concatenate(positives)
        _plain_log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    ax.set_xlabel("index (descending)")
    ax.set_ylabel("eigenvalue of K/n")
    depth_text = f" at depth {depths.pop()}" if len(depths) == 1 and None not in depths else ""
    ax.set_title(title or f"eigenvalues of K/n{depth_text}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return fig


def _model_text(model: dict | None) -> str:
    return f"{activation_label(model)}, depth {model.get('depth')}, " if model and "a" in model else ""


def dynamics_figure(result: dict, title: str | None = None, *, width: float | None = None,
                    height: float | None = None, dpi: int | None = None, measured: dict | None = None):
    """Predicted training loss ``L_t`` of the infinite-width network vs step (docs/learning.md §3).

    ``result``: ``{"steps", "train_loss", "learning_rate", "max_learning_rate", "expected_train_loss"?,
    "unreachable_fraction"?, "model"?}`` as :meth:`Dynamics.to_dict`, the client or ``POST
    /v1/dynamics`` return it. The step axis is linear up to 1 and logarithmic beyond (step 0
    included); the loss axis is logarithmic (a loss of 0 or ``None``, an overflow, is not drawn).
    With ``init="nngp"`` the expected loss from random initial outputs is drawn dashed; a floor
    ``unreachable_fraction * L_0`` (the null space, never fitted) is drawn dotted.
    ``measured``: optional ``{label: (steps, losses)}`` of finite networks drawn as markers.
    """
    steps = np.asarray(result["steps"], dtype=float)
    fig = new_figure(width, height, dpi)
    ax = fig.add_subplot()
    values = []
    for key, style, label in (("train_loss", "o-", "predicted (infinite width)"),
                              ("expected_train_loss", "s--", "expected, random initial outputs")):
        if result.get(key) is None:
            continue
        loss = _floats(result[key])
        ok = np.isfinite(loss) & (loss > 0)
        values.append(loss[ok])
        ax.plot(steps[ok], loss[ok], style, ms=3, lw=1.4, color="C0" if key == "train_loss" else "C1", label=label)
    for i, (label, (m_steps, m_loss)) in enumerate((measured or {}).items()):
        m_loss = np.asarray(m_loss, dtype=float)
        ok = np.isfinite(m_loss) & (m_loss > 0)
        values.append(m_loss[ok])
        ax.plot(np.asarray(m_steps, dtype=float)[ok], m_loss[ok], "x:", ms=4, lw=0.8, color=f"C{(i + 2) % 10}",
                label=label)
    floor = result.get("unreachable_fraction")
    initial = result.get("initial_loss")
    if floor and initial:
        ax.axhline(float(floor) * float(initial), ls=":", lw=1, color="C3", label="unreachable (null space)")
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("symlog", linthresh=1.0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, pos: plain_number(v)))
    ax.set_yscale("log")
    if values and np.concatenate(values).size:
        ys = np.concatenate(values)
        _plain_log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    ax.set_xlabel("gradient-descent step t")
    ax.set_ylabel("training loss (1/2n) Σ |f(x_i) - y_i|²")
    if title is None:
        eta, top = result.get("learning_rate"), result.get("max_learning_rate")
        rate = "" if eta is None else f"η = {float(eta):.4g}"
        if eta is not None and top:
            rate += f" ({float(eta) / float(top):.2g} × max {float(top):.4g})"
        title = f"{_model_text(result.get('model'))}training loss, {rate}".rstrip(", ")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return fig


def training_figure(result: dict, title: str | None = None, *, width: float | None = None,
                    height: float | None = None, dpi: int | None = None):
    """Predicted training loss against each width's mean measured loss, on a linear step axis.

    ``result``: :func:`eoc_ntk.learning.finite_width.compare_training`'s dict (``steps``,
    ``predicted_loss``, ``learning_rate``, ``max_learning_rate``, ``depth``, ``a``, ``b``,
    ``widths`` and ``measured_loss`` of shape (seeds, steps) per width). Drawn by
    :func:`dynamics_figure`, each width as ``"width W (mean of S)"``; the steps of such a run
    are few, so the step axis is linear.
    """
    steps = result["steps"]
    measured = {f"width {w} (mean of {len(runs)})": (steps, np.mean(np.array(runs, dtype=float), axis=0))
                for w, runs in zip(result["widths"], result["measured_loss"], strict=True)}
    predicted = {"steps": steps, "train_loss": result["predicted_loss"], "learning_rate": result["learning_rate"],
                 "max_learning_rate": result["max_learning_rate"],
                 "model": {"depth": result["depth"], "a": result["a"], "b": result["b"]}}
    fig = dynamics_figure(predicted, title, width=width, height=height, dpi=dpi, measured=measured)
    fig.axes[0].set_xscale("linear")
    fig.axes[0].set_xlim(-0.3, steps[-1] + 0.3)
    return fig


def learning_curve_figure(result: dict, title: str | None = None, *, width: float | None = None,
                          height: float | None = None, dpi: int | None = None):
    """Test MSE of NTK regression vs training-set size: the eigenlearning estimate (line) and the
    measured mean over splits (markers, ± one standard deviation), log-log (docs/learning.md §5).

    ``result``: ``{"sizes", "predicted_test_mse", "measured_test_mse", "measured_std", "model"?}`` as
    :meth:`LearningCurve.to_dict`, the client or ``POST /v1/learning-curves`` return it.
    """
    sizes = np.asarray(result["sizes"], dtype=float)
    fig = new_figure(width, height, dpi)
    ax = fig.add_subplot()
    predicted = _floats(result["predicted_test_mse"])
    measured = _floats(result["measured_test_mse"])
    std = np.nan_to_num(_floats(result.get("measured_std") or [0.0] * sizes.size), posinf=0.0)
    ok = np.isfinite(predicted) & (predicted > 0)
    ax.plot(sizes[ok], predicted[ok], "-", lw=1.4, color="C0", label="predicted (eigenlearning)")
    okm = np.isfinite(measured) & (measured > 0)
    ax.errorbar(sizes[okm], measured[okm], yerr=std[okm], fmt="o", ms=4, capsize=3, color="C1",
                label="measured (held-out points)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ys = np.concatenate([predicted[ok], measured[okm]])
    if ys.size:
        _plain_log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    if sizes.size:
        _plain_log_axis(ax.xaxis, float(sizes.min()), float(sizes.max()))
    ax.set_xlabel("training-set size m")
    ax.set_ylabel("test MSE")
    ridge = result.get("ridge")
    ax.set_title(title or f"{_model_text(result.get('model'))}learning curve"
                 + (f", ridge {float(ridge):.3g}" if ridge else ""), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def render(fig, fmt: str = "png") -> bytes:
    """The figure as PNG or SVG bytes."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise InvalidParameterError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}", param="fmt")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def save(fig, path: str | os.PathLike) -> str:
    """Write the figure to ``path`` (format from its extension: .png or .svg)."""
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    data = render(fig, ext)
    with open(path, "wb") as fh:
        fh.write(data)
    return os.fspath(path)


#: What :func:`render_result` draws: the kind of result -> its figure.
_FIGURES = {"spectra": lambda doc, size: spectrum_figure(doc, **size),
            "sweeps": lambda doc, size: sweep_figure(doc, **size),
            "dynamics": lambda doc, size: dynamics_figure(doc, **size),
            "learning_curves": lambda doc, size: learning_curve_figure(doc, **size),
            "eigenvalues": lambda doc, size: eigenvalue_figure(doc, **size)}


def render_result(kind: str, doc: bytes, fmt: str = "png", width: float | None = None, height: float | None = None,
                  dpi: int | None = None) -> bytes:
    """The figure of a result given as JSON bytes, rendered to PNG or SVG bytes.

    ``kind``: ``"spectra"``, ``"sweeps"``, ``"dynamics"``, ``"learning_curves"`` (``doc`` one
    result, as for :func:`plot_spectrum` and the others) or ``"eigenvalues"`` (``doc`` a list of
    spectra, as for :func:`eigenvalue_figure`). Plain data in, bytes out: the service calls it in
    a child process (:func:`jobs.local.call_in_child`).
    """
    if kind not in _FIGURES:
        raise InvalidParameterError(f"kind must be one of {', '.join(_FIGURES)}, got {kind!r}", param="kind")
    fig = _FIGURES[kind](json.loads(doc), {"width": width, "height": height, "dpi": dpi})
    return render(fig, fmt)


def plot_spectrum(result: dict, path: str | os.PathLike | None = None, fmt: str = "png", *,
                  width: float | None = None, height: float | None = None, dpi: int | None = None):
    """Render :func:`spectrum_figure` to ``path`` (returns the path) or to bytes (returns them)."""
    fig = spectrum_figure(result, width=width, height=height, dpi=dpi)
    return save(fig, path) if path is not None else render(fig, fmt)


def plot_sweep(result: dict, path: str | os.PathLike | None = None, fmt: str = "png", *,
               width: float | None = None, height: float | None = None, dpi: int | None = None):
    """Render :func:`sweep_figure` to ``path`` (returns the path) or to bytes (returns them)."""
    fig = sweep_figure(result, width=width, height=height, dpi=dpi)
    return save(fig, path) if path is not None else render(fig, fmt)


def plot_dynamics(result: dict, path: str | os.PathLike | None = None, fmt: str = "png", *,
                  width: float | None = None, height: float | None = None, dpi: int | None = None):
    """Render :func:`dynamics_figure` to ``path`` (returns the path) or to bytes (returns them)."""
    fig = dynamics_figure(result, width=width, height=height, dpi=dpi)
    return save(fig, path) if path is not None else render(fig, fmt)


def plot_learning_curve(result: dict, path: str | os.PathLike | None = None, fmt: str = "png", *,
                        width: float | None = None, height: float | None = None, dpi: int | None = None):
    """Render :func:`learning_curve_figure` to ``path`` (returns the path) or to bytes (returns them)."""
    fig = learning_curve_figure(result, width=width, height=height, dpi=dpi)
    return save(fig, path) if path is not None else render(fig, fmt)
