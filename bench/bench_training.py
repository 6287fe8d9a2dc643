"""Predicted training loss (infinite width) against real finite-width training, larger than the tests.

Issue 16: digits of classes 0 and 1 as +-1, depth 3, ReLU at the EOC, full-batch gradient descent
at ``--rate-factor`` x ``max_learning_rate = 2 / lambda_max(K/n)``, the largest rate at
which the linearised, infinite-width model converges, on centred
networks of each width (``eoc_ntk.learning.finite_width``; several seeds). Prints, per width, the mean
relative gaps (residual ``max_t |r_hat_t - r_t| / |y|``, loss ``max_t |L_hat_t - L_t| / L_0``) and
``sqrt(width) x gap`` (constant if the gap scales as ``1/sqrt(width)``), and writes the curves as
a figure.

    python bench/bench_training.py                                   # n=300, widths 1024..4096 (~2 min)
    python bench/bench_training.py --n 40 --widths 64 256 --seeds 1 --steps 3 --figure /tmp/t.png   # smoke

With ``--regimes F1 F2 ...`` it classes instead what each width does at ``F x max_learning_rate``
(converge, catapult, diverge; ``_rate_regimes.py``), the table of docs/learning.md §7:

    python bench/bench_training.py --regimes 1 2 3 4 5 6 8 --n 100 --widths 256 512 1024 2048 4096 --steps 50
"""
from __future__ import annotations

import argparse
import math
import os
import time

from _common import ROOT, command_line, emit

import numpy as np

from _rate_regimes import regimes_table
from eoc_ntk import plots
from eoc_ntk.learning.finite_width import compare_training
from eoc_ntk.reproduce import binary_digits


def figure(res: dict, path: str) -> str:
    """The predicted curve and each width's mean measured curve (log loss, linear steps)."""
    fig = plots.training_figure(res, f"n = {res['n']} digits (0 vs 1), depth {res['depth']}, ReLU: predicted vs "
                                     f"trained, η = {res['rate_factor']:g} × max", width=7.0, height=3.8)
    return plots.save(fig, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300, help="digits of classes 0 and 1 (at most 360)")
    p.add_argument("--widths", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--seeds", type=int, default=2, help="networks per width")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--rate-factor", type=float, default=0.9, help="learning rate / predicted max_learning_rate")
    p.add_argument("--figure", default=os.path.join(ROOT, "bench", "training_loss.png"))
    p.add_argument("--regimes", type=float, nargs="+", default=None, metavar="FACTOR",
                   help="class each width's training at these multiples of max_learning_rate instead")
    args = p.parse_args(argv)
    x, y = binary_digits(args.n)
    if args.regimes:
        regimes_table(x, y, depth=args.depth, widths=args.widths, factors=args.regimes, seeds=args.seeds,
                      steps=args.steps)
        return
    t0 = time.perf_counter()
    res = compare_training(x, y, depth=args.depth, a=0.5, b=0.5, widths=args.widths, seeds=args.seeds,
                           steps=args.steps, rate_factor=args.rate_factor)
    seconds = time.perf_counter() - t0
    path = figure(res, args.figure)
    l0 = res["predicted_loss"][0]
    cmd = command_line()
    for w, rg, lg, runs in zip(res["widths"], res["residual_gap"], res["loss_gap"], res["measured_loss"], strict=True):
        final = np.mean(np.array(runs)[:, -1]) / l0
        emit(f"n={res['n']} depth {res['depth']} ReLU, η = {args.rate_factor:g} × max, width {w}: "
             f"mean residual gap / loss gap over {len(rg)} seeds, {args.steps} steps",
             "falls with width (~1/sqrt(width))",
             f"**{np.mean(rg):.4f}** (sqrt(w) × = {np.mean(rg) * math.sqrt(w):.2f}) / **{np.mean(lg):.4f}** "
             f"(sqrt(w) × = {np.mean(lg) * math.sqrt(w):.2f}); L_T/L_0 measured {final:.4f}, predicted "
             f"{res['predicted_loss'][-1] / l0:.4f}; {seconds:.0f} s in all", cmd)
    print(f"figure written to {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
