"""Figures with labels: the training loss of gradient descent and the learning curve (docs/learning.md).

``draw_*`` functions draw into a given ``Axes``; ``*_figure`` functions make a figure of the
house style (:mod:`eoc_ntk.plots.style`). Inputs are the dicts of ``to_dict()`` and the REST API.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from eoc_ntk.plots.spectra import activation_label, floats, has_activation
from eoc_ntk.plots.style import (
    NEUTRAL,
    activation_style,
    finish_axes,
    integer_axis,
    legend,
    log_axis,
    new_figure,
    series_style,
    tick_formatter,
)

__all__ = ["dense_loss", "model_style", "draw_dynamics", "draw_learning_curve", "dynamics_figure", "training_figure",
           "learning_curve_figure", "ERROR_BAR_LABEL"]

#: What the learning curve's error bars are.
ERROR_BAR_LABEL = "measured (held-out points), mean ± 1 standard deviation over splits"
#: Steps of the dense loss curve between 1 and the last step asked.
_DENSE_STEPS = 400


def dense_loss(result: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(steps, L_t)`` on about 400 log-spaced integer steps from 0 to the last step asked.

    ``L_t = L_0 sum_i s_i (1 - eta lambda_i)^(2t)`` from the eigenvalues ``lambda_i`` of ``K/n``
    and the target shares ``s_i`` (docs/learning.md §3). None when the result lacks them or
    the formula does not reproduce its own ``train_loss`` (to 1e-6 relative).
    """
    keys = ("eigenvalues", "target_share", "learning_rate", "initial_loss", "steps", "train_loss")
    if any(result.get(k) is None for k in keys):
        return None
    lam, share = floats(result["eigenvalues"]), floats(result["target_share"])
    eta, l0 = float(result["learning_rate"]), float(result["initial_loss"])
    given = np.asarray(result["steps"], dtype=float)
    if lam.shape != share.shape or not given.size or not np.all(np.isfinite(lam)):
        return None
    factor = (1.0 - eta * lam) ** 2

    def loss(t: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            out: np.ndarray = l0 * (share[None, :] * factor[None, :] ** t[:, None]).sum(axis=1)
        return out

    expected = floats(result["train_loss"])
    ok = np.isfinite(expected) & (expected > 1e-250)
    if not np.allclose(loss(given)[ok], expected[ok], rtol=1e-6, atol=0.0):
        return None
    last = max(float(given.max()), 1.0)
    steps = np.unique(np.concatenate([[0.0], np.round(np.geomspace(1.0, last, _DENSE_STEPS)), given]))
    return steps, loss(steps)


def model_style(model: dict[str, Any] | None) -> dict[str, Any]:
    """The style of a result's model: its activation's colour and marker (a dark grey without one)."""
    if model and any(k in model for k in ("a", "label", "name")):
        return activation_style(model)
    return {"color": NEUTRAL[0], "ls": "-", "marker": "o"}


def _draw_losses(ax: Any, result: dict[str, Any], measured: dict[str, Any] | None) -> list[np.ndarray]:
    """The predicted loss in the activation's colour (a solid line, filled markers at the steps asked),
    the expected loss dashed with hollow markers in the same colour, measured widths in greys."""
    steps = np.asarray(result["steps"], dtype=float)
    values = []
    dense = dense_loss(result)
    style = model_style(result.get("model"))
    colour, mark = style["color"], style["marker"]
    if dense is not None:
        ok = np.isfinite(dense[1]) & (dense[1] > 0)
        ax.plot(dense[0][ok], dense[1][ok], "-", lw=1.6, color=colour, label="predicted (infinite width)")
        values.append(dense[1][ok])
    for key, label, look in (
            ("train_loss", "predicted at the steps asked" if dense else "predicted (infinite width)",
             {"ls": "none" if dense is not None else "-"}),
            ("expected_train_loss", "expected, random initial outputs", {"ls": "--", "mfc": "white"})):
        if result.get(key) is None:
            continue
        loss = floats(result[key])
        ok = np.isfinite(loss) & (loss > 0)
        values.append(loss[ok])
        ax.plot(steps[ok], loss[ok], ms=4, lw=1.4, label=label, color=colour, marker=mark, **look)
    for i, (label, (m_steps, m_loss)) in enumerate((measured or {}).items()):
        m_loss = np.asarray(m_loss, dtype=float)
        ok = np.isfinite(m_loss) & (m_loss > 0)
        values.append(m_loss[ok])
        ax.plot(np.asarray(m_steps, dtype=float)[ok], m_loss[ok], ms=4, lw=1.0, label=label, **series_style(i))
    floor, initial = result.get("unreachable_fraction"), result.get("initial_loss")
    if floor and initial:
        ax.axhline(float(floor) * float(initial), ls=":", lw=1.2, color="0.2", label="unreachable (null space)")
    return values


def draw_dynamics(ax: Any, result: dict[str, Any], title: str | None = None, measured: dict[str, Any] | None = None,
                  linear_steps: bool = False) -> Any:
    """Predicted training loss ``L_t`` of the infinite-width network vs step (docs/learning.md §3).

    ``result``: ``{"steps", "train_loss", "learning_rate", "max_learning_rate", "expected_train_loss"?,
    "unreachable_fraction"?, "eigenvalues"?, "target_share"?, "initial_loss"?, "model"?}`` as
    :meth:`Dynamics.to_dict`, the client or ``POST /v1/dynamics`` return it. With the eigenvalues
    the loss is drawn as a dense curve (:func:`dense_loss`), the steps asked as markers. The step
    axis is linear up to 1 and logarithmic beyond (``linear_steps``: linear, integer ticks); the loss
    axis is logarithmic. ``measured``: optional ``{label: (steps, losses)}`` of finite networks.
    """
    values = _draw_losses(ax, result, measured)
    if linear_steps:
        integer_axis(ax.xaxis)
    else:
        from matplotlib.ticker import NullFormatter, SymmetricalLogLocator

        ax.set_xscale("symlog", linthresh=1.0)
        ax.xaxis.set_major_locator(SymmetricalLogLocator(base=10, linthresh=1.0))
        ax.xaxis.set_major_formatter(tick_formatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yscale("log")
    ys = np.concatenate(values) if values else np.empty(0)
    if ys.size:
        log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    if title is None:
        eta, top = result.get("learning_rate"), result.get("max_learning_rate")
        rate = "" if eta is None else f"η = {float(eta):.4g}"
        if eta is not None and top:
            rate += f" ({float(eta) / float(top):.2g} × max {float(top):.4g})"
        scaled = result.get("scaled") or {}
        if top is None and scaled.get("learning_rate") and scaled.get("max_learning_rate"):  # rates outside float64
            rate = (f"η = {scaled['learning_rate'] / scaled['max_learning_rate']:.2g} × max "
                    f"(max = {scaled['max_learning_rate']:.4g} × 2^{-scaled['exponent']})")
        title = f"{_model_text(result.get('model'))}training loss, {rate}".rstrip(", ")
    finish_axes(ax, "gradient-descent step t", "training loss (1/2n) Σ |f(x_i) - y_i|²", title)
    legend(ax)
    return ax


def _model_text(model: dict[str, Any] | None) -> str:
    if not model or not has_activation(model):
        return ""
    return f"{activation_label(model)}, " + (f"depth {model['depth']}, " if model.get("depth") is not None else "")


def draw_learning_curve(ax: Any, result: dict[str, Any], title: str | None = None) -> Any:
    """Test MSE of NTK regression vs training-set size: the finite-pool estimate of the held-out error
    (line) and the measured mean over splits (markers, error bars ± one standard deviation over the
    splits), log-log (docs/learning.md §5).

    ``result``: ``{"sizes", "predicted_test_mse", "measured_test_mse", "measured_std", "model"?}`` as
    :meth:`LearningCurve.to_dict`, the client or ``POST /v1/learning-curves`` return it.
    """
    sizes = np.asarray(result["sizes"], dtype=float)
    predicted = floats(result["predicted_test_mse"])
    measured = floats(result["measured_test_mse"])
    std = np.nan_to_num(floats(result.get("measured_std") or [0.0] * sizes.size), posinf=0.0)
    ok = np.isfinite(predicted) & (predicted > 0)
    style = model_style(result.get("model"))  # the activation's colour; line: predicted, markers: measured
    ax.plot(sizes[ok], predicted[ok], lw=1.6, color=style["color"], ls="-",
            label="predicted (eigenlearning, finite pool)")
    okm = np.isfinite(measured) & (measured > 0)
    ax.errorbar(sizes[okm], measured[okm], yerr=std[okm], fmt=style["marker"], ms=5, mfc="white", capsize=3,
                color=style["color"], ls="none", label=ERROR_BAR_LABEL)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ys = np.concatenate([predicted[ok], measured[okm]])
    if ys.size:
        log_axis(ax.yaxis, float(ys.min()), float(ys.max()))
    if sizes.size:
        log_axis(ax.xaxis, float(sizes.min()), float(sizes.max()))
        if sizes.size <= 8:  # few sizes: each one is a tick
            from matplotlib.ticker import FixedLocator

            ax.xaxis.set_major_locator(FixedLocator(sizes.tolist()))
    ridge = result.get("ridge")
    finish_axes(ax, "training-set size m", "test MSE", title or f"{_model_text(result.get('model'))}learning curve"
                + (f", ridge {float(ridge):.3g}" if ridge else ""))
    legend(ax)
    return ax


def dynamics_figure(result: dict[str, Any], title: str | None = None, *, width: float | None = None,
                    height: float | None = None, dpi: int | None = None, measured: dict[str, Any] | None = None) -> Any:
    """A figure of :func:`draw_dynamics`."""
    fig = new_figure(width, height, dpi)
    draw_dynamics(fig.add_subplot(), result, title, measured)
    return fig


def training_figure(result: dict[str, Any], title: str | None = None, *, width: float | None = None,
                    height: float | None = None, dpi: int | None = None) -> Any:
    """Predicted training loss against each width's mean measured loss, on a linear step axis.

    ``result``: :func:`eoc_ntk.learning.finite_width.compare_training`'s dict (``steps``,
    ``predicted_loss``, ``learning_rate``, ``max_learning_rate``, ``depth``, ``a``, ``b``,
    ``widths`` and ``measured_loss`` of shape (seeds, steps) per width), each width drawn as
    ``"width W (mean of S)"``.
    """
    steps = result["steps"]
    measured = {f"width {w} (mean of {len(runs)})": (steps, np.mean(np.array(runs, dtype=float), axis=0))
                for w, runs in zip(result["widths"], result["measured_loss"], strict=True)}
    predicted = {"steps": steps, "train_loss": result["predicted_loss"], "learning_rate": result["learning_rate"],
                 "max_learning_rate": result["max_learning_rate"],
                 "model": {"depth": result["depth"], "a": result["a"], "b": result["b"]}}
    fig = new_figure(width, height, dpi)
    ax = fig.add_subplot()
    draw_dynamics(ax, predicted, title, measured, linear_steps=True)
    ax.set_xlim(-0.3, steps[-1] + 0.3)
    return fig


def learning_curve_figure(result: dict[str, Any], title: str | None = None, *, width: float | None = None,
                          height: float | None = None, dpi: int | None = None) -> Any:
    """A figure of :func:`draw_learning_curve`."""
    fig = new_figure(width, height, dpi)
    draw_learning_curve(fig.add_subplot(), result, title)
    return fig
