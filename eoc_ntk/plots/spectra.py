"""Figures of spectra and depth sweeps: sorted eigenvalues, condition number vs depth, ICD error.

Each ``draw_*`` function draws into a given matplotlib ``Axes``; each ``*_figure`` makes a
figure of the house style (:mod:`eoc_ntk.plots.style`) and draws into it. Inputs are the
JSON-shaped dicts of :func:`eoc_ntk.analyze`, ``to_dict()`` and the REST API (``None`` standing
for infinity).
"""
from __future__ import annotations

import math
import re
import textwrap
from typing import Any, Iterable

import numpy as np

from eoc_ntk.core.activations import activation_label as label_of
from eoc_ntk.plots.style import (
    NEUTRAL,
    activation_style,
    activation_styles,
    finish_axes,
    integer_axis,
    legend,
    log_axis,
    new_figure,
    tick_formatter,
)

__all__ = ["activation_label", "has_activation", "floats", "draw_spectrum", "draw_sweep", "draw_icd_error",
           "draw_eigenvalues",
           "draw_weyl_bounds", "spectrum_figure", "sweep_figure", "icd_error_figure", "eigenvalue_figure",
           "weyl_figure"]

_SINGULAR_EDGE = "0.15"
#: Markers on a long curve: one every 8 % of the axes' diagonal (even on a log axis).
_SPARSE_MARKERS = 0.08


def has_activation(model: dict[str, Any]) -> bool:
    """True when ``model`` names its activation: the family's ``a, b`` or a smooth ``activation``."""
    return ("a" in model and "b" in model) or isinstance(model.get("activation"), str)


def activation_label(act: dict[str, Any]) -> str:
    """The display label of an activation object: ``{"a": .., "b": ..}`` (see
    :func:`eoc_ntk.core.activations.activation_label`), or a smooth activation's summary
    ``{"activation": "gelu", ...}`` / ``{"name": "gelu"}`` (its name, as the API's ``display_label``)."""
    if "a" in act and "b" in act:
        return label_of(float(act["a"]), float(act["b"]))
    name = act.get("activation", act.get("name"))
    if isinstance(name, str):
        return name
    return str(act.get("label", "activation"))


def floats(values: Iterable[Any]) -> np.ndarray:
    """Floats with ``None`` read as infinity."""
    return np.array([math.inf if v is None else float(v) for v in values], dtype=float)


def _short(label: str) -> str:
    return label.split(" (Δ")[0]


def _log_y(ax: Any, values: list[np.ndarray]) -> None:
    ax.set_yscale("log")
    ys = np.concatenate(values) if values else np.empty(0)
    if ys.size:
        log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    else:
        ax.yaxis.set_major_formatter(tick_formatter())


def draw_spectrum(ax: Any, result: dict[str, Any], title: str | None = None) -> Any:
    """Sorted eigenvalues of ``K/n`` on a log scale (zeros drawn below the smallest, marked)."""
    eig = np.sort(floats(result["eigenvalues"]))[::-1]
    positive = eig > 0
    idx = np.arange(1, eig.size + 1)
    model = result.get("model") or {}
    style = activation_style(model) if has_activation(model) else {"color": NEUTRAL[0], "ls": "-", "marker": "o"}
    ax.plot(idx[positive], eig[positive], ms=3, lw=1, markevery=_SPARSE_MARKERS if eig.size > 30 else None,
            label="eigenvalues of K/n", **style)
    if (~positive).any() and positive.any():
        ax.plot(idx[~positive], np.full((~positive).sum(), eig[positive].min() / 10), "x", color=_SINGULAR_EDGE,
                label="0 (singular)")
    _log_y(ax, [eig[positive]])
    integer_axis(ax.xaxis)
    cond = result.get("condition_number")
    if title is None:
        parts = [activation_label(model)] if has_activation(model) else []
        parts += [f"depth {model['depth']}"] if model.get("depth") is not None else []
        parts.append(f"n={eig.size}")
        value = math.inf if cond is None else float(cond)
        parts.append(f"cond = {value:.4g}" if math.isfinite(value) else "cond = ∞ (singular)")
        title = ", ".join(parts)
    finish_axes(ax, "index (descending)", "eigenvalue", title)
    legend(ax)
    return ax


def _distinct_limits(results: list[dict[str, Any]]) -> list[tuple[float, list[int]]]:
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


def _sweep_curves(ax: Any, depths: np.ndarray, results: list[dict[str, Any]]) -> tuple[list[np.ndarray], list[str]]:
    """One curve per activation; singular depths as triangles at the top in its colour (black edge)."""
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    finite_values, all_singular, singular_drawn = [], [], 0
    styles = activation_styles([res["activation"] for res in results])
    for res, style in zip(results, styles, strict=True):
        cond = floats(res["condition_number"])
        finite = np.isfinite(cond)
        label = activation_label(res["activation"])
        sigma_b = res["activation"].get("sigma_b")
        label += f", σ_b={float(sigma_b):g}" if sigma_b else ""
        if not finite.any():
            all_singular.append(label)
            continue
        finite_values.append(cond[finite])
        ax.plot(depths[finite], cond[finite], ms=3.5, lw=1.3, label=label,
                markevery=_SPARSE_MARKERS if depths.size > 30 else None, **style)
        if (~finite).any():
            # one row of marks per activation, stacked down from the top: none hides another
            ax.plot(depths[~finite], np.full((~finite).sum(), 0.97 - 0.045 * singular_drawn), "v", ms=6,
                    color=style["color"], mec=_SINGULAR_EDGE, transform=top, clip_on=False, label="_nolegend_")
            singular_drawn += 1
    if singular_drawn:  # one legend entry, hollow: each mark is filled with its activation's colour
        ax.plot([], [], "v", ms=6, color=_SINGULAR_EDGE, mfc="none", label="singular (cond = ∞), activation's colour")
        ax.margins(y=0.08 + 0.045 * singular_drawn)  # head room for the singular marks at the top
    return finite_values, all_singular


def draw_sweep(ax: Any, result: dict[str, Any], title: str | None = None) -> Any:
    """Condition number of ``K/n`` vs depth per activation, with the depth limits (docs/math.md §5).

    - one dashed line per distinct limit, labelled once (in the activation's colour when it is
      the only one with that limit, grey when several share it);
    - depths where an activation's matrix is singular (condition number ``inf``/``None``) are
      marked by a triangle at the top of the axes in its colour;
    - an activation singular at every depth has no curve; a note beside the axes names it.

    ``result``: ``{"depths": (D,), "results": [{"activation": {"a", "b"}, "condition_number": (D,),
    "limit_condition_number"?}, ...]}`` as returned by the core, the client or the API.
    """
    depths = np.asarray(result["depths"], dtype=float)
    results = list(result["results"])
    finite_values, all_singular = _sweep_curves(ax, depths, results)
    colours = [s["color"] for s in activation_styles([res["activation"] for res in results])]
    for value, members in _distinct_limits(results):
        finite_values.append(np.array([value]))
        shared = len(members) > 1
        who = "all" if shared and len(members) == len(results) - len(all_singular) else ", ".join(
            _short(activation_label(results[i]["activation"])) for i in members)
        ax.axhline(value, ls=(0, (5, 3)), lw=1, color="0.35" if shared else colours[members[0]],
                   label=f"depth limit {value:.4g} ({who})")
    _log_y(ax, finite_values)
    if depths.size and depths.max() / max(depths.min(), 1) >= 20:
        ax.set_xscale("log")
        log_axis(ax.xaxis, float(depths.min()), float(depths.max()))
    else:
        integer_axis(ax.xaxis)
    finish_axes(ax, "depth l", "condition number of K/n", title or "condition number vs depth")
    notes = [f"{_short(activation_label(res['activation']))}: {_short_note(res['limit_note'])}"
             for res in results if res.get("limit_note")]
    text = ["singular at every depth\n(cond = ∞), no curve:\n" + "\n".join(all_singular)] if all_singular else []
    text += ["no depth limit:\n" + "\n".join(notes)] if notes else []
    if text:
        ax.text(1.02, 0.0, "\n\n".join(text), transform=ax.transAxes, fontsize=8, color=_SINGULAR_EDGE,
                va="bottom", ha="left")
    legend(ax, outside=True)
    return ax


def _short_note(note: str) -> str:
    """A few words of a sweep's ``limit_note`` (its full text is in the result), wrapped for the margin."""
    slope = re.search(r"q\* = ([^ ]+) repels \(slope of the variance map there ([^ ]+)", note)
    if slope:
        found = re.search(r"use e\.g\. sigma_b = ([^ ]+)", note)
        short = f"q* = {slope[1]} repels\n(variance-map slope {slope[2]} > 1)"
        return short + (f";\nuse sigma_b = {found[1]} or more" if found else "")
    if "family's edge of chaos is at sigma_b = 0" in note:
        return "the limit is defined at sigma_b = 0 only"
    return "\n".join(textwrap.wrap(note.split(";")[0], 32))


def draw_icd_error(ax: Any, result: dict[str, Any], title: str | None = None) -> Any:
    """Relative error of the ICD approximation (docs/math.md §5) vs depth, one colour per activation.

    ``result``: ``{"depths": (D,), "results": [{"activation": {"a", "b"} | label, "median": (D,),
    "max": (D,)}, ...]}`` (``median`` or ``max`` may be missing); the median solid with filled
    markers, the maximum dashed with hollow ones.
    """
    depths = np.asarray(result["depths"], dtype=float)
    values = []
    styles = activation_styles([res["activation"] for res in result["results"]])
    for res, style in zip(result["results"], styles, strict=True):
        act = res["activation"]
        label = act if isinstance(act, str) else activation_label(act)
        for key, ls, face in (("median", "-", style["color"]), ("max", "--", "none")):
            if key in res:
                v = floats(res[key])
                ok = np.isfinite(v) & (v > 0)
                values.append(v[ok])
                ax.plot(depths[ok], v[ok], ls=ls, marker=style["marker"], ms=4, lw=1.3, color=style["color"],
                        mfc=face, label=f"{label} {key}")
    ax.set_xscale("log")
    if depths.size:
        log_axis(ax.xaxis, float(depths.min()), float(depths.max()))
    _log_y(ax, values)
    finish_axes(ax, "depth l", "relative error |K - A| / |K| (off-diagonal)",
                title or "ICD approximation error vs depth")
    legend(ax, outside=True)
    return ax


def draw_eigenvalues(ax: Any, results: list[dict[str, Any]], title: str | None = None) -> Any:
    """Sorted eigenvalues of ``K/n`` (descending, log scale) of several spectra, e.g. every activation
    asked at one depth; zeros of singular matrices marked at the bottom in the spectrum's colour.

    ``results``: spectrum results (``{"eigenvalues": (n,), "model": {"a", "b", "depth"}}``).
    """
    depths, positives = set(), []
    styles = activation_styles([res.get("model") or f"spectrum {i + 1}" for i, res in enumerate(results)])
    for i, (res, style) in enumerate(zip(results, styles, strict=True)):
        eig = np.sort(floats(res["eigenvalues"]))[::-1]
        model = res.get("model") or {}
        depths.add(model.get("depth"))
        label = activation_label(model) if has_activation(model) else f"spectrum {i + 1}"
        pos = eig > 0
        positives.append(eig[pos])
        idx = np.arange(1, eig.size + 1)
        ax.plot(idx[pos], eig[pos], lw=1.4, ms=4, label=label, markevery=_SPARSE_MARKERS, **style)
        if (~pos).any():
            ax.plot(idx[~pos], np.full((~pos).sum(), 0.03), "x", color=style["color"],
                    transform=ax.get_xaxis_transform(), label=f"{_short(label)}: {(~pos).sum()} zero eigenvalue(s)")
    _log_y(ax, positives)
    integer_axis(ax.xaxis)
    depth_text = f" at depth {depths.pop()}" if len(depths) == 1 and None not in depths else ""
    finish_axes(ax, "index (descending)", "eigenvalue of K/n", title or f"eigenvalues of K/n{depth_text}")
    legend(ax, outside=True)
    return ax


def spectrum_figure(result: dict[str, Any], title: str | None = None, *, width: float | None = None,
                    height: float | None = None, dpi: int | None = None) -> Any:
    """A figure of :func:`draw_spectrum`."""
    fig = new_figure(width, height, dpi)
    draw_spectrum(fig.add_subplot(), result, title)
    return fig


def sweep_figure(result: dict[str, Any], title: str | None = None, *, width: float | None = None,
                 height: float | None = None, dpi: int | None = None) -> Any:
    """A figure of :func:`draw_sweep`."""
    fig = new_figure(width, height, dpi)
    draw_sweep(fig.add_subplot(), result, title)
    return fig


def icd_error_figure(result: dict[str, Any], title: str | None = None, *, width: float | None = None,
                     height: float | None = None, dpi: int | None = None) -> Any:
    """A figure of :func:`draw_icd_error`."""
    fig = new_figure(width, height, dpi)
    draw_icd_error(fig.add_subplot(), result, title)
    return fig


def eigenvalue_figure(results: list[dict[str, Any]], title: str | None = None, *, width: float | None = None,
                      height: float | None = None, dpi: int | None = None) -> Any:
    """A figure of :func:`draw_eigenvalues`."""
    fig = new_figure(width, height, dpi)
    draw_eigenvalues(fig.add_subplot(), results, title)
    return fig


def draw_weyl_bounds(ax: Any, weyl: dict[str, Any], key: str) -> Any:
    """``lambda_min`` or ``lambda_max`` (``key``) of ``K/n`` vs depth with its Weyl bounds per activation.

    ``weyl``: ``{"depths": (D,), "results": [{"activation": label, key: (D,), key + "_bounds": (D, 2)}]}``.
    The true value is a solid line with markers, the upper bound dashed and the lower bound dotted
    in the same colour; a lower bound of 0 says nothing and is not drawn. The y range is the true
    values' widened by 4x each way, so a loose bound leaves the panel instead of filling it.
    """
    depths = np.asarray(weyl["depths"], dtype=float)
    true_values = []
    for r, style in zip(weyl["results"], activation_styles([r["activation"] for r in weyl["results"]]), strict=True):
        value = floats(r[key])
        bounds = np.array([[math.nan if b is None else float(b) for b in pair] for pair in r[key + "_bounds"]])
        ax.plot(depths, value, ms=4, lw=1.5, color=style["color"], marker=style["marker"], label=f"{r['activation']}")
        for col, ls, name in ((1, "--", "upper"), (0, ":", "lower")):
            ok = np.isfinite(bounds[:, col]) & (bounds[:, col] > 0)
            if ok.any():
                ax.plot(depths[ok], bounds[ok, col], ls=ls, lw=1.2, color=style["color"],
                        label=f"{r['activation']} Weyl {name} bound")
        true_values.append(value[np.isfinite(value) & (value > 0)])
    ax.set_xscale("log")
    if depths.size:
        log_axis(ax.xaxis, float(depths.min()), float(depths.max()))
    ys = np.concatenate(true_values) if true_values else np.empty(0)
    ax.set_yscale("log")
    if ys.size:
        ax.set_ylim(float(ys.min()) / 4.0, float(ys.max()) * 4.0)
        log_axis(ax.yaxis, float(ys.min()) / 4.0, float(ys.max()) * 4.0)
    finish_axes(ax, "depth l", f"{key} of K/n", f"{key} of K/n and its Weyl bounds")
    legend(ax, loc="best")
    return ax


def weyl_figure(weyl: dict[str, Any], *, width: float | None = 9.6, height: float | None = None,
                dpi: int | None = None) -> Any:
    """``lambda_min`` and ``lambda_max`` with their Weyl bounds, side by side (:func:`draw_weyl_bounds`)."""
    fig = new_figure(width, height, dpi)
    for col, key in enumerate(("lambda_min", "lambda_max")):
        draw_weyl_bounds(fig.add_subplot(1, 2, col + 1), weyl, key)
    return fig
