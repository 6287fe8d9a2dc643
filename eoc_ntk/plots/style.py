"""The house style of every figure: size and resolution, palette, tick labels, legends, file formats.

- PNG at print resolution: ``7.5 x 4.2`` inches at 300 dpi (2250 x 1260 px) by default;
- one tick formatter (:func:`tick_labels`): plain numbers (``0.02``, ``500``, ``2000``) when every
  tick of an axis lies in ``[1e-3, 1e4)``, otherwise powers of ten with superscripts (``10⁻³``,
  ``2×10⁴``) for all of them, never both on one axis; integer ticks on index and depth axes;
- one style per activation (:func:`activation_style`), the same in every figure (API, CLI,
  report, web page): a colour of a colour-blind-safe palette (Okabe & Ito's, with Tol's wine),
  a line style and a marker, so that curves stay apart in greyscale too. ``relu``, ``abs``,
  ``linear``, ``leaky_relu`` (any slope), ``erf``, ``tanh``, ``gelu`` and ``silu`` have their
  own; any other activation gets one of :data:`FALLBACK_STYLES`, picked by a CRC-32 of its key
  (the same in every run and process);
- legends at 8 pt, axis labels at 9 pt, titles at 10 pt;
- saving by extension: ``.png``, ``.pdf``, ``.svg`` (text kept as ``<text>`` elements,
  ``svg.fonttype = "none"``) and ``.eps``.

Figures are :class:`matplotlib.figure.Figure` objects with an Agg canvas (never ``pyplot``);
matplotlib (the ``[plots]`` extra) is imported when a figure is made, not with this module.
"""
from __future__ import annotations

import io
import math
import os
import re
import threading
import zlib
from typing import Any

import numpy as np

from eoc_ntk.core.activations import activation_label, canonical_activation_name, parse_activation
from eoc_ntk.core.errors import InvalidParameterError

__all__ = ["FORMATS", "DEFAULT_WIDTH", "DEFAULT_HEIGHT", "DEFAULT_DPI", "MIN_INCHES", "MAX_INCHES", "MIN_DPI",
           "MAX_DPI", "MAX_PIXELS",
           "PALETTE", "ACTIVATION_STYLES", "FALLBACK_STYLES", "NEUTRAL", "LEGEND_PT", "check_size", "new_figure",
           "activation_key", "activation_style", "activation_styles", "series_style", "tick_formatter", "tick_labels",
           "plain_number",
           "log_ticks", "log_axis", "integer_axis", "finish_axes", "legend", "render", "save"]

#: Output format -> media type.
FORMATS = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "eps": "application/postscript"}

#: Default figure size (inches) and resolution (dots per inch): 2250 x 1260 px.
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_DPI = 7.5, 4.2, 300
#: Accepted width/height (inches; a smaller figure has no room for its axes) and dpi.
MIN_INCHES, MAX_INCHES, MIN_DPI, MAX_DPI = 0.5, 50.0, 20, 600
#: Most pixels of a figure (width x height x dpi^2): 16 Mpx, e.g. 13.3 x 7.5 in at 300 dpi.
MAX_PIXELS = 16_000_000

#: Okabe & Ito's colour-blind-safe palette without its yellow (too light for a line on white)
#: (blue, vermillion, bluish green, reddish purple, orange, sky blue, black), and Paul Tol's wine:
#: every pair at least 16 CIELAB units apart under simulated protan-, deutan- and tritanopia.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255")
#: The style of each named activation: the same in every figure. ``leaky_relu`` stands for every slope.
ACTIVATION_STYLES: dict[str, dict[str, Any]] = {
    "relu": {"color": PALETTE[0], "ls": "-", "marker": "o"},
    "abs": {"color": PALETTE[1], "ls": "--", "marker": "s"},
    "linear": {"color": PALETTE[6], "ls": ":", "marker": "^"},
    "leaky_relu": {"color": PALETTE[2], "ls": "-.", "marker": "D"},
    "erf": {"color": PALETTE[3], "ls": (0, (5, 1)), "marker": "v"},
    "tanh": {"color": PALETTE[4], "ls": (0, (3, 1, 1, 1, 1, 1)), "marker": "P"},
    "gelu": {"color": PALETTE[5], "ls": (0, (8, 2)), "marker": "X"},
    "silu": {"color": PALETTE[7], "ls": (0, (1, 1)), "marker": "*"},
}
#: Styles of other activations (``"a=0.3,b=0.7"``), in colours no named activation has (Tol's indigo, olive).
FALLBACK_STYLES: tuple[dict[str, Any], ...] = (
    {"color": "#332288", "ls": "-", "marker": "h"}, {"color": "#999933", "ls": "--", "marker": "p"},
    {"color": "#332288", "ls": ":", "marker": "<"}, {"color": "#999933", "ls": "-.", "marker": ">"},
    {"color": "#332288", "ls": (0, (5, 1)), "marker": "d"}, {"color": "#999933", "ls": (0, (1, 1)), "marker": "H"})
#: Greys of series that are no activation (measured widths), darkest first; limits and marks use 0.15-0.35.
NEUTRAL = ("0.3", "0.55", "0.7")
_LINES = ("-", "--", "-.", ":")
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_COEFFICIENTS = re.compile(rf"^a={_NUMBER},\s*b={_NUMBER}(?:\s*\(Δ=.*\))?$")
_DELTA = re.compile(rf"^Δ={_NUMBER}$")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Font sizes in points: legend, axis labels and tick labels, title.
LEGEND_PT, LABEL_PT, TICK_PT, TITLE_PT = 8.0, 9.0, 8.0, 10.0
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
# svg.fonttype is read from the global rcParams while an SVG is written: one SVG at a time.
_SVG_LOCK = threading.Lock()


def check_size(width: Any = None, height: Any = None, dpi: Any = None) -> tuple[float, float, int]:
    """``(width, height, dpi)`` with defaults filled in, checked.

    Raises
    ------
    InvalidParameterError
        ``param="width"``, ``"height"`` or ``"dpi"`` for a value that is not a finite number in
        ``[0.5, 50]`` inches (``dpi``: an integer in ``[20, 600]``), or a figure of more than
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
                                        f"got {value!r}", param=name)
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


def new_figure(width: float | None = None, height: float | None = None, dpi: int | None = None) -> Any:
    """An empty matplotlib ``Figure`` with an Agg canvas (no ``pyplot`` state), ``width x height`` inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is the [plots] extra
    from matplotlib.figure import Figure

    width, height, dpi = check_size(width, height, dpi)
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def series_style(i: int, marker: bool = True) -> dict[str, Any]:
    """Grey, line style and (optionally) marker of the ``i``-th series that is no activation (e.g. a
    width of measured networks): apart from each other in line style and marker, and from the
    activations' colours."""
    style: dict[str, Any] = {"color": NEUTRAL[i % len(NEUTRAL)], "ls": _LINES[(i + 1) % len(_LINES)]}
    if marker:
        style["marker"] = _MARKERS[(i + 5) % len(_MARKERS)]
    return style


def _key_of_coefficients(a: float, b: float) -> str:
    name = activation_label(a, b).split(" (Δ")[0]
    if name in ("ReLU", "abs", "linear"):
        return name.lower()
    scale = math.hypot(a, b) or 1.0
    an, bn = abs(a) / scale, abs(b) / scale
    if name.startswith("leaky ReLU"):
        return f"leaky_relu:{(an - bn) / (an + bn):.6g}"
    return f"a={an:.6g},b={bn:.6g}"


def activation_key(act: Any) -> str:
    """The canonical key of an activation in any form a figure meets, the one key of its style.

    ``act``: an :class:`eoc_ntk.core.activations.Activation`, ``(a, b)``, a dict ``{"a", "b", ..}``
    (the API's), ``{"name": ..}`` or ``{"label": ..}``, or text: a name (``"ReLU"``, ``"erf"``),
    a spelling of the grammar (``"leaky_relu:0.1"``, ``"0.3,0.7"``), a display label
    (``"ReLU (Δ=0.5)"``) or ``"Δ=0.25"`` (``a = sqrt(1 - Δ)``, ``b = sqrt(Δ)``). Coefficients
    are keyed by the kernel they give, which depends on ``a^2 : b^2`` only: ``(1, 1)`` and
    ``(0.5, 0.5)`` are both ``"relu"``; slopes of leaky ReLU are ``"leaky_relu:C"``; other
    coefficients ``"a=A,b=B"`` with ``A^2 + B^2 = 1``. Unknown text is its lower-cased self.
    """
    if isinstance(act, dict):
        if "a" in act and "b" in act and act["a"] is not None and act["b"] is not None:
            return _key_of_coefficients(float(act["a"]), float(act["b"]))
        named = act.get("activation") if isinstance(act.get("activation"), str) else None  # a smooth model's
        act = act.get("label") or act.get("name") or named or act.get("display_label") or ""
    if isinstance(act, (tuple, list)) and len(act) == 2:
        return _key_of_coefficients(float(act[0]), float(act[1]))
    text = str(act).strip()
    name = str(canonical_activation_name(text.split(" (Δ")[0]))
    if name in ACTIVATION_STYLES and name != "leaky_relu":  # "relu", "ReLU (Δ=0.5)", "erf"
        return name
    coefficients, delta = _COEFFICIENTS.match(text), _DELTA.match(text)
    if coefficients is not None:  # "a=0.3, b=0.7 (Δ=0.845)"
        return _key_of_coefficients(float(coefficients[1]), float(coefficients[2]))
    if delta is not None and 0.0 <= float(delta[1]) <= 1.0:  # "Δ=0.25"
        return _key_of_coefficients(math.sqrt(1.0 - float(delta[1])), math.sqrt(float(delta[1])))
    try:
        parsed = parse_activation(text)
        return _key_of_coefficients(float(parsed[0]), float(parsed[1]))
    except (InvalidParameterError, TypeError, ValueError, IndexError):
        pass
    if name.startswith("leaky relu "):  # the display label "leaky ReLU 0.1"
        return "leaky_relu:" + name.split(" ")[-1]
    return name


def activation_style(act: Any, marker: bool = True) -> dict[str, Any]:
    """Colour, line style and (optionally) marker of an activation (any form of :func:`activation_key`).

    A named activation has its own style (:data:`ACTIVATION_STYLES`, ``leaky_relu`` for every
    slope); any other one the :data:`FALLBACK_STYLES` entry at the CRC-32 of its key.
    """
    key = activation_key(act)
    family = key.split(":")[0]
    base = ACTIVATION_STYLES.get(family) or FALLBACK_STYLES[zlib.crc32(key.encode()) % len(FALLBACK_STYLES)]
    return _with_marker(base, marker)


def _with_marker(base: dict[str, Any], marker: bool) -> dict[str, Any]:
    style = {"color": base["color"], "ls": base["ls"]}
    if marker:
        style["marker"] = base["marker"]
    return style


def activation_styles(acts: list[Any], marker: bool = True) -> list[dict[str, Any]]:
    """The styles of the activations of one figure: :func:`activation_style` of each, except that two
    different activations never share one (two slopes of leaky ReLU, fallbacks that meet): of those
    the one with the smaller key keeps it, the other takes the next free fallback style."""
    keys = [activation_key(a) for a in acts]
    styles = [activation_style(k) for k in keys]
    owner: dict[tuple[str, str], str] = {}
    for key, style in sorted(zip(keys, styles, strict=True), key=lambda ks: ks[0]):
        owner.setdefault((style["color"], str(style["ls"])), key)
    taken = {(s["color"], str(s["ls"])) for s in styles}
    for i, (key, style) in enumerate(zip(keys, styles, strict=True)):
        if owner[(style["color"], str(style["ls"]))] == key:
            continue
        start = zlib.crc32(key.encode())
        for j in range(len(FALLBACK_STYLES)):
            free = FALLBACK_STYLES[(start + j) % len(FALLBACK_STYLES)]
            if (free["color"], str(free["ls"])) not in taken:
                styles[i] = dict(free)
                taken.add((free["color"], str(free["ls"])))
                break
    return [_with_marker(s, marker) for s in styles]


def _power_label(v: float) -> str:
    exp = math.floor(math.log10(abs(v)))
    mant = round(v / 10.0 ** exp, 2)
    if abs(mant) >= 10.0:
        mant, exp = mant / 10.0, exp + 1
    power = "10" + str(exp).translate(_SUPERSCRIPT)
    if abs(abs(mant) - 1.0) < 1e-9:
        return ("−" if mant < 0 else "") + power
    return f"{mant:g}×{power}".replace("-", "−")


def tick_labels(values: Any) -> list[str]:
    """The labels of one axis' ticks, in one notation: plain when every non-zero tick is in
    ``[1e-3, 1e4)`` (``"0.02"``, ``"500"``, ``"2000"``), else powers of ten for all
    (``"10⁻³"``, ``"2×10⁴"``, ``"0"``)."""
    vals = [float(v) for v in values]
    powers = any(v != 0.0 and math.isfinite(v) and not (1e-3 <= abs(v) < 1e4) for v in vals)
    out = []
    for v in vals:
        if v == 0.0 or not math.isfinite(v):
            out.append("0" if v == 0.0 else f"{v:g}")
        elif powers:
            out.append(_power_label(v))
        else:
            out.append(f"{v:.4g}".replace("-", "−"))
    return out


def plain_number(value: float) -> str:
    """One number in the house notation (plain in ``[1e-3, 1e4)``, else a power of ten)."""
    return tick_labels([value])[0]


def tick_formatter() -> Any:
    """The house tick formatter: :func:`tick_labels` over all the axis' ticks at once."""
    from matplotlib.ticker import Formatter

    class HouseFormatter(Formatter):  # type: ignore[misc]
        ticks: list[float] = []

        def set_locs(self, locs: Any) -> None:
            self.ticks = [float(v) for v in locs]

        def __call__(self, x: float, pos: int | None = None) -> str:
            return tick_labels([*self.ticks, x])[-1]

    return HouseFormatter()


def log_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Tick positions for a log axis over ``[lo, hi]``: 1-2-5 steps (``1 2 5 10 20 50 100``) when
    they give 3 to ``most`` ticks, else 1-2-3-5-7 steps, else decades (``1 10 100 1000``), else
    1..9 steps for a narrow axis."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    first, last = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1

    def within(steps: Any) -> list[float]:
        ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in steps]
        return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]

    one_two_five, decades, all_steps = within((1, 2, 5)), within((1,)), within(range(1, 10))
    for ticks in (one_two_five, within((1, 2, 3, 5, 7)), decades):
        if 3 <= len(ticks) <= most:
            return ticks
    if len(decades) > most:  # many decades: every k-th, at exponents divisible by k (10⁰, 10⁻⁵, 10⁻¹⁰)
        step = next((k for k in (2, 3, 4, 5, 10, 20, 25, 50, 100) if len(decades) / k <= most), 200)
        return [t for t in decades if round(math.log10(t)) % step == 0]
    return all_steps if len(all_steps) <= most + 2 else one_two_five


def log_axis(axis: Any, lo: float, hi: float) -> None:
    """A log axis with :func:`log_ticks` and the house labels, no minor labels.

    The ticks cover ``[lo, hi]`` widened to the axis' autoscaled view (its margins, error bars),
    so that no end of the axis is left without a label.
    """
    from matplotlib.ticker import FixedLocator, NullFormatter

    axes = axis.axes
    if axes is not None and axis.get_scale() == "log":
        axes.autoscale_view(scalex=axis is axes.xaxis, scaley=axis is axes.yaxis)
        view_lo, view_hi = sorted(axis.get_view_interval())
        if 0 < view_lo < lo and math.isfinite(view_lo):
            lo = view_lo
        if hi < view_hi < math.inf:
            hi = view_hi
    ticks = log_ticks(lo, hi)
    if ticks:
        axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(tick_formatter())
    axis.set_minor_formatter(NullFormatter())


def integer_axis(axis: Any) -> None:
    """A linear axis of indices, depths or steps: integer ticks only."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 5, 10], integer=True, min_n_ticks=2))
    axis.set_major_formatter(tick_formatter())


def finish_axes(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    """Labels, title, grid and tick fonts of the house style; linear axes get the house formatter."""
    ax.set_xlabel(xlabel, fontsize=LABEL_PT)
    ax.set_ylabel(ylabel, fontsize=LABEL_PT)
    ax.set_title(title, fontsize=TITLE_PT)
    ax.tick_params(labelsize=TICK_PT)
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "linear" and type(axis.get_major_formatter()).__name__ == "ScalarFormatter":
            axis.set_major_formatter(tick_formatter())
    ax.grid(True, which="major", color="0.88", lw=0.6)  # opaque: EPS has no transparency


def legend(ax: Any, outside: bool = False, **kw: Any) -> None:
    """The legend at :data:`LEGEND_PT`, inside (best place) or outside on the right; none if nothing is labelled."""
    if not ax.get_legend_handles_labels()[0]:
        return
    if outside:
        kw = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "frameon": False, **kw}
    ax.legend(fontsize=LEGEND_PT, **kw)


def _format_of(fmt: str) -> str:
    key = str(fmt).lower().lstrip(".")
    if key not in FORMATS:
        raise InvalidParameterError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}", param="fmt")
    return key


def render(fig: Any, fmt: str = "png", dpi: int | None = None) -> bytes:
    """The figure as PNG, PDF, SVG or EPS bytes (``dpi``: default the figure's own)."""
    from matplotlib import rc_context

    key = _format_of(fmt)
    buf = io.BytesIO()
    metadata = {"Date": None} if key == "svg" else {"CreationDate": None} if key == "pdf" else None
    if key == "svg":
        with _SVG_LOCK, rc_context({"svg.fonttype": "none"}):
            fig.savefig(buf, format=key, metadata=metadata, dpi=dpi or fig.dpi)
    else:
        fig.savefig(buf, format=key, metadata=metadata, dpi=dpi or fig.dpi)
    return buf.getvalue()


def save(fig: Any, path: str | os.PathLike[str], dpi: int | None = None) -> str:
    """Write the figure to ``path``; the format from its extension (.png, .pdf, .svg or .eps)."""
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    if ext not in FORMATS:
        raise InvalidParameterError(f"cannot save a figure as {os.fspath(path)!r}: the extension must be one of "
                                    f"{', '.join('.' + f for f in FORMATS)}", param="path")
    data = render(fig, ext, dpi)
    with open(path, "wb") as fh:
        fh.write(data)
    return os.fspath(path)
