"""Figures of spectra, depth sweeps, training-loss predictions and learning curves (matplotlib, imported lazily).

The ``plot_*`` functions follow matplotlib's convention: they take a result (the core's object,
e.g. ``eoc_ntk.depth_sweep(...)``, or its dict from ``to_dict()``, the client or the REST API),
draw into ``ax`` when given (else into a new figure of the house style), save the figure when
``path`` is given (format by extension: ``.png``, ``.pdf``, ``.svg``, ``.eps``) and return the Axes::

    import eoc_ntk
    from eoc_ntk import plots

    ax = plots.plot_sweep(eoc_ntk.depth_sweep(x, depths=range(1, 51), activation="relu"), "sweep.pdf")

The ``*_figure`` functions return a whole figure; :func:`render` gives its bytes and :func:`save`
writes it. The house style (size, 300 dpi, palette, tick labels, legends) is
:mod:`eoc_ntk.plots.style`. Figures are built without ``pyplot``, so rendering is safe in a
server's threads.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Callable

from eoc_ntk.core.activations import parse_activation
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.plots.learning import (
    ERROR_BAR_LABEL,
    draw_dynamics,
    draw_learning_curve,
    dynamics_figure,
    learning_curve_figure,
    training_figure,
)
from eoc_ntk.plots.spectra import (
    activation_label,
    draw_eigenvalues,
    draw_icd_error,
    draw_spectrum,
    draw_sweep,
    eigenvalue_figure,
    icd_error_figure,
    spectrum_figure,
    sweep_figure,
    weyl_figure,
)
from eoc_ntk.plots.style import (
    DEFAULT_DPI,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    FORMATS,
    MAX_DPI,
    MAX_INCHES,
    MAX_PIXELS,
    MIN_DPI,
    MIN_INCHES,
    activation_key,
    activation_style,
    activation_styles,
    check_size,
    legend,
    log_ticks,
    new_figure,
    plain_number,
    render,
    save,
    tick_labels,
)

__all__ = ["FORMATS", "DEFAULT_WIDTH", "DEFAULT_HEIGHT", "DEFAULT_DPI", "MIN_INCHES", "MAX_INCHES", "MIN_DPI",
           "MAX_DPI", "MAX_PIXELS", "render_result", "activation_key", "activation_style", "activation_styles",
           "with_activation",
           "ERROR_BAR_LABEL", "activation_label", "check_size", "new_figure", "plain_number", "tick_labels",
           "log_ticks", "render", "save", "as_result",
           "spectrum_figure", "sweep_figure", "icd_error_figure", "eigenvalue_figure", "dynamics_figure",
           "training_figure", "learning_curve_figure", "weyl_figure",
           "plot_spectrum", "plot_sweep", "plot_icd_error", "plot_eigenvalues", "plot_dynamics", "plot_learning_curve"]


def as_result(result: Any) -> dict[str, Any]:
    """The dict of a result: ``result.to_dict()`` for the core's objects, a dict as it is.

    A single-activation :class:`eoc_ntk.DepthSweep` (``{"depths", "condition_number", "delta", ...}``)
    becomes the multi-activation form ``{"depths", "results": [{"activation", ...}]}`` with the
    activation of its ``Delta`` (``a = sqrt(1 - Delta)``, ``b = sqrt(Delta)``: the same kernel).
    """
    out = result.to_dict() if hasattr(result, "to_dict") else result
    if not isinstance(out, dict):
        raise TypeError(f"expected a result object or its dict, got {type(result).__name__}")
    if "results" not in out and "condition_number" in out and "depths" in out:
        delta = float(out["delta"])
        act = {"a": math.sqrt(1.0 - delta), "b": math.sqrt(delta)}
        out = {"depths": out["depths"], "results": [{**out, "activation": out.get("activation") or act}]}
    return dict(out)


def with_activation(result: dict[str, Any], activation: Any) -> dict[str, Any]:
    """``result`` with ``model = {"a", "b"}`` of ``activation`` (any spelling of
    :func:`eoc_ntk.core.activations.parse_activation`) when it has no model: the core's result
    objects do not keep their activation, and a figure takes its colour and label from it."""
    if activation is None or result.get("model"):
        return result
    act = parse_activation(activation)
    return {**result, "model": {"a": act.a, "b": act.b}}


def _plot(draw: Callable[..., Any], result: Any, path: str | os.PathLike[str] | None, ax: Any, title: str | None,
          size: dict[str, Any], **kw: Any) -> Any:
    own = ax is None
    if own:
        ax = new_figure(size.get("width"), size.get("height"), size.get("dpi")).add_subplot()
    draw(ax, result, title, **kw)
    if not own and ax.get_legend() is not None:
        legend(ax)  # in the caller's (possibly small) panel the legend goes inside, at the best place
    if path is not None:
        save(ax.figure, path, size.get("dpi"))
    return ax


def plot_spectrum(result: Any, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
                  title: str | None = None, width: float | None = None, height: float | None = None,
                  dpi: int | None = None, activation: Any = None) -> Any:
    """Sorted eigenvalues of ``K/n`` of a :class:`eoc_ntk.Spectrum` (or :func:`eoc_ntk.analyze`'s dict).

    Returns the Axes drawn into (``ax`` or a new figure's); writes the figure to ``path`` if given.
    ``activation``: the result's activation (``"relu"``), for its colour and label, when the result
    does not carry its model (a :class:`eoc_ntk.Spectrum` does not).
    """
    return _plot(draw_spectrum, with_activation(as_result(result), activation), path, ax, title,
                 {"width": width, "height": height, "dpi": dpi})


def plot_sweep(result: Any, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
               title: str | None = None, width: float | None = None, height: float | None = None,
               dpi: int | None = None) -> Any:
    """Condition number vs depth of a :class:`eoc_ntk.DepthSweep` or of several activations' sweep dict."""
    return _plot(draw_sweep, as_result(result), path, ax, title, {"width": width, "height": height, "dpi": dpi})


def plot_icd_error(result: dict[str, Any], path: str | os.PathLike[str] | None = None, *, ax: Any = None,
                   title: str | None = None, width: float | None = None, height: float | None = None,
                   dpi: int | None = None) -> Any:
    """ICD relative error vs depth (see :func:`eoc_ntk.plots.spectra.draw_icd_error` for the dict)."""
    return _plot(draw_icd_error, as_result(result), path, ax, title, {"width": width, "height": height, "dpi": dpi})


def plot_eigenvalues(results: Any, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
                     title: str | None = None, width: float | None = None, height: float | None = None,
                     dpi: int | None = None) -> Any:
    """Sorted eigenvalues of several spectra (:class:`eoc_ntk.Spectrum` objects or dicts) on one Axes."""
    items = [as_result(r) for r in results]
    return _plot(draw_eigenvalues, items, path, ax, title, {"width": width, "height": height, "dpi": dpi})


def plot_dynamics(result: Any, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
                  title: str | None = None, width: float | None = None, height: float | None = None,
                  dpi: int | None = None, activation: Any = None) -> Any:
    """Training loss vs step of a :class:`eoc_ntk.Dynamics` (or its dict), dense between the steps asked
    (``activation``: as for :func:`plot_spectrum`)."""
    return _plot(draw_dynamics, with_activation(as_result(result), activation), path, ax, title,
                 {"width": width, "height": height, "dpi": dpi})


def plot_learning_curve(result: Any, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
                        title: str | None = None, width: float | None = None, height: float | None = None,
                        dpi: int | None = None, activation: Any = None) -> Any:
    """Test MSE vs training-set size of a :class:`eoc_ntk.LearningCurve` (or its dict), with error bars
    (``activation``: as for :func:`plot_spectrum`)."""
    return _plot(draw_learning_curve, with_activation(as_result(result), activation), path, ax, title,
                 {"width": width, "height": height, "dpi": dpi})


#: What :func:`render_result` draws: the kind of result -> its figure.
_FIGURES: dict[str, Callable[..., Any]] = {
    "spectra": spectrum_figure, "sweeps": sweep_figure, "dynamics": dynamics_figure,
    "learning_curves": learning_curve_figure, "eigenvalues": eigenvalue_figure}


def render_result(kind: str, doc: bytes, fmt: str = "png", width: float | None = None, height: float | None = None,
                  dpi: int | None = None) -> bytes:
    """The figure of a result given as JSON bytes, rendered to PNG, SVG, PDF or EPS bytes.

    ``kind``: ``"spectra"``, ``"sweeps"``, ``"dynamics"``, ``"learning_curves"`` (``doc`` one
    result, as for :func:`plot_spectrum` and the others) or ``"eigenvalues"`` (``doc`` a list of
    spectra, as for :func:`eigenvalue_figure`). Plain data in, bytes out: the service calls it in
    a child process (:func:`jobs.local.call_in_child`).
    """
    if kind not in _FIGURES:
        raise InvalidParameterError(f"kind must be one of {', '.join(_FIGURES)}, got {kind!r}", param="kind")
    fig = _FIGURES[kind](json.loads(doc), width=width, height=height, dpi=dpi)
    return render(fig, fmt)
