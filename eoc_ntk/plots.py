"""Figures of spectra and depth sweeps (matplotlib, Agg backend, imported lazily).

Figures are built with :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so
rendering holds no global state and is safe in a server's threads.

Inputs are the JSON-shaped dicts that :func:`eoc_ntk.analyze`, :meth:`DepthSweep.to_dict`
and the REST API return (``None`` standing for infinity), so the same code draws a local
result, a client's result and a stored service result.
"""
from __future__ import annotations

import io
import math
import os
from typing import Iterable

import numpy as np

from .activations import activation_label as label_of
from .errors import InvalidParameterError

__all__ = ["FORMATS", "activation_label", "new_figure", "spectrum_figure", "sweep_figure", "render", "save",
           "plot_spectrum", "plot_sweep"]

#: Output format -> media type.
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}

def new_figure(width: float = 6.4, height: float = 4.2):
    """An empty matplotlib ``Figure`` with an Agg canvas (no ``pyplot`` state), ``width x height`` inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is the [plots] extra
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def activation_label(act: dict) -> str:
    """The display label of an activation object ``{"a": .., "b": ..}`` (see
    :func:`eoc_ntk.activations.activation_label`)."""
    return label_of(float(act["a"]), float(act["b"]))


def _floats(values: Iterable) -> np.ndarray:
    return np.array([math.inf if v is None else float(v) for v in values], dtype=float)


def spectrum_figure(result: dict, title: str | None = None):
    """Sorted eigenvalues of ``K/n`` on a log scale (zeros drawn at the bottom edge, marked)."""
    eig = np.sort(_floats(result["eigenvalues"]))[::-1]
    fig = new_figure()
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
        parts.append("cond = ∞ (singular)" if cond is None or not math.isfinite(float(cond)) else f"cond = {float(cond):.4g}")
        title = ", ".join(parts)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def sweep_figure(result: dict, title: str | None = None):
    """Condition number of ``K/n`` vs depth per activation, each with its depth limit dashed."""
    depths = np.asarray(result["depths"], dtype=float)
    fig = new_figure()
    ax = fig.add_subplot()
    for i, res in enumerate(result["results"]):
        color = f"C{i % 10}"
        cond = _floats(res["condition_number"])
        finite = np.isfinite(cond)
        label = activation_label(res["activation"])
        ax.plot(depths[finite], cond[finite], "o-" if depths.size <= 30 else "-", ms=3, lw=1.2,
                color=color, label=label)
        limit = res.get("limit_condition_number")
        if limit is not None and math.isfinite(float(limit)):
            ax.axhline(float(limit), ls="--", lw=1, color=color, alpha=0.8,
                       label=f"limit {float(limit):.4g}")
    ax.set_xlabel("depth l")
    ax.set_ylabel("condition number of K/n")
    ax.set_yscale("log")
    if depths.size and depths.max() / max(depths.min(), 1) >= 20:
        ax.set_xscale("log")
    ax.set_title(title or "condition number vs depth (dashed: depth limit)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
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


def plot_spectrum(result: dict, path: str | os.PathLike | None = None, fmt: str = "png"):
    """Render :func:`spectrum_figure` to ``path`` (returns the path) or to bytes (returns them)."""
    fig = spectrum_figure(result)
    return save(fig, path) if path is not None else render(fig, fmt)


def plot_sweep(result: dict, path: str | os.PathLike | None = None, fmt: str = "png"):
    """Render :func:`sweep_figure` to ``path`` (returns the path) or to bytes (returns them)."""
    fig = sweep_figure(result)
    return save(fig, path) if path is not None else render(fig, fmt)
