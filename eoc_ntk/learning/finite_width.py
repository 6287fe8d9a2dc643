"""Finite-width MLPs trained by full-batch gradient descent in NumPy, to check the infinite-width
prediction of :func:`eoc_ntk.dynamics` against real training (docs/learning.md §3, §7).

The network is the one of docs/math.md §1 in NTK parameterisation, every weight and bias
i.i.d. N(0, 1)::

    h_1 = sigma_w W_1 x / sqrt(m0) + sigma_b beta_1
    h_{k+1} = sigma_w W_{k+1} phi(h_k) / sqrt(m) + sigma_b beta_{k+1},   f(x) = h_l (one output)

with ``phi(s) = a s + b |s|`` and hidden width ``m``. Its empirical NTK tends to
:func:`eoc_ntk.kernel` as ``m`` grows (Jacot et al. 2018), with fluctuations and drift during
training of relative size ``O(1/sqrt(m))``.

Training minimises ``L = (1/2n) sum_i (f(x_i) - y_i)^2``; the gradient ``(1/n) J^T r`` is
back-propagated without forming the Jacobian (O(n m^2) per step). The network trained is the
*centred* one, ``f(x; theta) - f(x; theta_0)``: the same parameters, gradients and NTK, but zero
initial outputs, so that ``r_0 = -y`` as in the infinite-width convention (the random initial
outputs add a width-independent term that ``init="nngp"`` predicts on average).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.kernels import kernel
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.progress import ProgressFn
from eoc_ntk.core.validation import check_data
from eoc_ntk.learning.dynamics import dynamics

__all__ = ["initial_params", "forward", "backward", "train_centred", "compare_training"]


#: ``[(W_1, beta_1), ..., (W_l, beta_l)]``: weights and biases per layer.
Params = list[tuple[np.ndarray, np.ndarray]]


def initial_params(m0: int, *, width: int, depth: int, seed: int, dtype: type[np.floating[Any]] = np.float32) -> Params:
    """``[(W_1, beta_1), ..., (W_l, beta_l)]`` drawn in float64 from ``default_rng(seed)`` (layer by
    layer: the weights, then the biases), cast to ``dtype``; hidden widths ``width``, one output."""
    rng = np.random.default_rng(seed)
    widths = [m0] + [width] * (depth - 1) + [1]
    return [(rng.standard_normal((widths[k + 1], widths[k])).astype(dtype),
             rng.standard_normal(widths[k + 1]).astype(dtype)) for k in range(depth)]


def forward(params: Params, x: ArrayLike, a: float, b: float, sigma_w: float,
            sigma_b: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations ``[h_1..h_l]`` and layer inputs ``[z_0..z_{l-1}]``, each of shape (n, width)."""
    hs, zs = [], [np.asarray(x, dtype=params[0][0].dtype)]
    for k, (w, beta) in enumerate(params):
        h = sigma_w * zs[-1] @ w.T / np.sqrt(w.shape[1]) + sigma_b * beta
        hs.append(h)
        if k < len(params) - 1:
            zs.append(a * h + b * np.abs(h))
    return hs, zs


def backward(params: Params, hs: list[np.ndarray], zs: list[np.ndarray], v: ArrayLike, a: float, b: float,
             sigma_w: float, sigma_b: float) -> Params:
    """``J^T v`` as per-layer gradients ``[(dW_k, dbeta_k)]`` of a :func:`forward` pass.

    ``dW_k = (sigma_w / sqrt(m_{k-1})) Delta_k^T z_{k-1}``, ``dbeta_k = sigma_b Delta_k^T 1`` with
    ``Delta_l = v[:, None]`` and ``Delta_{k-1} = phi'(h_{k-1}) * ((sigma_w / sqrt(m_{k-1})) Delta_k W_k)``,
    ``phi'(s) = a + b sign(s)``.
    """
    delta = np.asarray(v, dtype=zs[0].dtype)[:, None]
    grads = []
    for k in range(len(params) - 1, -1, -1):
        w, _ = params[k]
        scale = sigma_w / np.sqrt(w.shape[1])
        grads.append((scale * delta.T @ zs[k], sigma_b * delta.sum(axis=0)))
        if k > 0:
            delta = (a + b * np.sign(hs[k - 1])) * (scale * delta @ w)
    return grads[::-1]


def train_centred(x: ArrayLike, y: ArrayLike, *, width: int, depth: int, a: float, b: float, learning_rate: float,
                  steps: int, seed: int, sigma_w: float | None = None, sigma_b: float = 0.0,
                  dtype: type[np.floating[Any]] = np.float32) -> FloatArray:
    """Residuals ``r_t = f_t(x) - f_0(x) - y`` of the centred network for ``t = 0..steps``.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    y : array-like of shape (n,)
        One output.
    width, depth : int
        Hidden width ``m`` and number of weight layers ``l >= 1``.
    a, b, sigma_w, sigma_b : float
        The activation ``a s + b |s|`` and the initialisation (``sigma_w`` default: the edge of
        chaos ``1 / sqrt(a^2 + b^2)``); biases are trained when ``sigma_b != 0``.
    learning_rate : float
        ``eta`` of ``theta <- theta - eta (1/n) J^T r``.
    steps, seed : int
    dtype : numpy float type
        float32 (default) halves the time; its rounding (1e-7 relative) is far below the
        finite-width effects (``1/sqrt(m)``).

    Returns
    -------
    ndarray of shape (steps + 1, n), float64
    """
    x = check_data(x)
    n = x.shape[0]
    labels = check_labels(y, n)
    if labels.values.shape[1] != 1:
        raise InvalidParameterError(f"y must have one output (shape ({n},)), got shape {labels.values.shape}",
                                    param="y")
    for name, value, low in (("width", width, 1), ("depth", depth, 1), ("steps", steps, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidParameterError(f"{name} must be an integer >= {low}, got {value!r}", param=name)
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
        raise InvalidParameterError(f"learning_rate must be a finite number > 0, got {learning_rate!r}",
                                    param="learning_rate")
    y = labels.values[:, 0]
    sigma_w = 1.0 / math.hypot(a, b) if sigma_w is None else float(sigma_w)
    params = initial_params(x.shape[1], width=width, depth=depth, seed=seed, dtype=dtype)
    xd = x.astype(dtype)
    eta = dtype(learning_rate)
    f0, residuals = None, []
    for t in range(steps + 1):
        hs, zs = forward(params, xd, a, b, sigma_w, sigma_b)
        f = hs[-1][:, 0].astype(np.float64)
        f0 = f if f0 is None else f0
        r = f - f0 - y
        residuals.append(r)
        if t < steps:
            grads = backward(params, hs, zs, (r / n).astype(dtype), a, b, sigma_w, sigma_b)
            params = [(w - eta * gw, beta - eta * gb if sigma_b != 0.0 else beta)
                      for (w, beta), (gw, gb) in zip(params, grads, strict=True)]
    return np.array(residuals)


def compare_training(x: ArrayLike, y: ArrayLike, *, depth: int, a: float, b: float, widths: Iterable[int], seeds: int,
                     steps: int, rate_factor: float = 0.9, seed: int = 0,
                     progress: ProgressFn | None = None) -> dict[str, Any]:
    """Predicted vs measured training of the centred network, at ``rate_factor * max_learning_rate``.

    The prediction is the infinite-width residual ``r_{t+1} = (I - eta K/n) r_t`` from ``r_0 = -y``
    (iterated densely here; its loss is :func:`eoc_ntk.dynamics`' ``train_loss``). For each width,
    ``seeds`` networks (seeds ``seed + 1000 * width + s``) are trained; the gaps are relative:
    ``residual_gap = max_t |r_hat_t - r_t| / |y|`` and ``loss_gap = max_t |L_hat_t - L_t| / L_0``.

    Returns a JSON-shaped dict: ``steps``, ``learning_rate``, ``max_learning_rate``,
    ``predicted_loss`` (T + 1,), and per width (in ``widths`` order) ``measured_loss`` (seeds, T + 1),
    ``residual_gap`` and ``loss_gap`` (seeds,).
    """
    x = check_data(x)
    n = x.shape[0]
    y = check_labels(y, n).values[:, 0]
    max_rate = dynamics(x, y, depth=depth, a=a, b=b, steps=[0]).max_learning_rate
    eta = rate_factor * max_rate
    step = np.eye(n) - eta * kernel(x, depth=depth, a=a, b=b) / n
    iterates = [-y]
    for _ in range(steps):
        iterates.append(step @ iterates[-1])
    predicted = np.array(iterates)

    def loss(r: np.ndarray) -> np.ndarray:
        value: np.ndarray = np.sum(r * r, axis=-1) / (2 * n)
        return value

    out: dict[str, Any] = {
           "n": n, "depth": depth, "a": a, "b": b, "steps": list(range(steps + 1)), "rate_factor": rate_factor,
           "learning_rate": eta, "max_learning_rate": max_rate, "predicted_loss": loss(predicted).tolist(),
           "widths": [int(w) for w in widths], "measured_loss": [], "residual_gap": [], "loss_gap": []}
    total, done = len(out["widths"]) * seeds, 0
    for width in out["widths"]:
        measured, r_gap, l_gap = [], [], []
        for s in range(seeds):
            res = train_centred(x, y, width=width, depth=depth, a=a, b=b, learning_rate=eta, steps=steps,
                                seed=seed + 1000 * width + s)
            measured.append(loss(res).tolist())
            r_gap.append(float(np.max(np.linalg.norm(res - predicted, axis=1)) / np.linalg.norm(y)))
            l_gap.append(float(np.max(np.abs(loss(res) - loss(predicted))) / loss(predicted)[0]))
            done += 1
            if progress is not None:
                progress(done / total)
        out["measured_loss"].append(measured)
        out["residual_gap"].append(r_gap)
        out["loss_gap"].append(l_gap)
    return out
