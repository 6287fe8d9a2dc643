"""What finite networks do above the linearised model's largest rate (``bench_training.py --regimes``).

``max_learning_rate = 2 / lambda_max(K/n)`` is the largest rate at which the linearised,
infinite-width model converges. Centred networks (``eoc_ntk.learning.finite_width``) are trained by
full-batch gradient descent at ``factor x max_learning_rate`` for each width and factor, and each
run is classed by its loss curve ``L_t`` (``L_0 = |y|^2 / 2n``) over ``steps`` steps:

* ``converge`` (con): ``L_t <= L_0`` at every step and ``L_T < L_0 / 10``;
* ``catapult`` (cat): the loss rises above ``L_0`` at some step, then ``L_T < L_0 / 10``;
* ``diverge`` (div): the loss passes ``1e6 L_0`` or overflows (the run stops there), or it has
  been above ``L_0`` and ends above ``L_0 / 10``;
* ``slow`` (slo): below ``L_0`` throughout but ``L_T >= L_0 / 10``.
"""
from __future__ import annotations

import time

import numpy as np

from eoc_ntk import dynamics
from eoc_ntk.learning.finite_width import backward, forward, initial_params

A = B = 0.5
SIGMA_W = 2.0 ** 0.5


def loss_curve(x, y, *, width: int, depth: int, rate: float, steps: int, seed: int) -> np.ndarray:
    """``L_t / L_0`` of the centred network, ``t = 0..T`` (shorter when it passes 1e6 or overflows)."""
    n = x.shape[0]
    params = initial_params(x.shape[1], width=width, depth=depth, seed=seed)
    xd = x.astype(np.float32)
    l0 = float(y @ y) / (2 * n)
    f0, out = None, []
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            hs, zs = forward(params, xd, A, B, SIGMA_W, 0.0)
            f = hs[-1][:, 0].astype(np.float64)
            f0 = f if f0 is None else f0
            r = f - f0 - y
            out.append(float(r @ r) / (2 * n) / l0)
            if not np.isfinite(out[-1]) or out[-1] > 1e6 or t == steps:
                break
            grads = backward(params, hs, zs, (r / n).astype(np.float32), A, B, SIGMA_W, 0.0)
            params = [(w - np.float32(rate) * gw, beta) for (w, beta), (gw, _) in zip(params, grads, strict=True)]
    return np.array(out)


def regime(curve: np.ndarray, steps: int) -> str:
    """The class of one loss curve ``L_t / L_0`` (module docstring)."""
    if len(curve) < steps + 1 or not np.isfinite(curve[-1]) or curve[-1] >= 0.1:
        return "diverge" if len(curve) < steps + 1 or not np.all(curve[1:] < 1.0) else "slow"
    return "catapult" if np.max(curve) > 1.0 else "converge"


def regimes_table(x, y, *, depth: int, widths, factors, seeds: int, steps: int) -> None:
    """Print one markdown row per width: the class of each seed at each factor and the peak
    ``max_t L_t / L_0`` (median over seeds)."""
    max_rate = dynamics(x, y, depth=depth, a=A, b=B, steps=[0]).max_learning_rate
    print(f"n = {x.shape[0]}, depth {depth}, ReLU at the EOC, max_learning_rate = {max_rate:.6g}, "
          f"{steps} steps, {seeds} seeds; cells: class per seed (peak max_t L_t/L_0, median)")
    print("| width | " + " | ".join(f"{f:g}x" for f in factors) + " |")
    print("|---|" + "---|" * len(factors))
    t0 = time.perf_counter()
    for width in widths:
        cells = []
        for factor in factors:
            curves = [loss_curve(x, y, width=width, depth=depth, rate=factor * max_rate, steps=steps,
                                 seed=1000 * width + s) for s in range(seeds)]
            kinds = [regime(c, steps) for c in curves]
            peak = float(np.median([np.max(c) if np.all(np.isfinite(c)) else np.inf for c in curves]))
            cells.append(" ".join(k[:3] for k in kinds) + f" ({peak:.3g})")
        print(f"| {width} | " + " | ".join(cells) + " |", flush=True)
    print(f"{time.perf_counter() - t0:.0f} s in all")
