"""Kernel cost of smooth activations at depth 10 and depth 1000 (ratio measured in the same run).

Target (smooth activations): time(depth 1000) / time(depth 10) <= 2 at n = 2000, inputs of equal
norm (one variance group: composed-map interpolants, :mod:`eoc_ntk.core._numerics.smooth_interp`).
Each depth is timed best of ``--repeat``, the runs interleaved (10, 1000, 10, 1000, ...) so that a
burst of load on the shared machine hits both alike; a small call first warms the caches of the
EOC solve and the Hermite coefficients, which are per activation and not part of the depth cost.

    python bench/bench_smooth.py --activation tanh        # n = 2000 (about a minute)
    python bench/bench_smooth.py --n 300 --repeat 1       # smoke
"""
from __future__ import annotations

import argparse
import time

from _common import command_line, emit

import numpy as np

import eoc_ntk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--m0", type=int, default=20)
    parser.add_argument("--activation", default="erf")
    parser.add_argument("--sigma-b", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.m0))
    x *= np.sqrt(args.m0) / np.linalg.norm(x, axis=1, keepdims=True)
    for depth in (10, 1000):
        eoc_ntk.kernel(x[:8], depth=depth, activation=args.activation, sigma_b=args.sigma_b)
    times = {10: float("inf"), 1000: float("inf")}
    for _ in range(args.repeat):
        for depth in (10, 1000):
            start = time.perf_counter()
            eoc_ntk.kernel(x, depth=depth, activation=args.activation, sigma_b=args.sigma_b)
            times[depth] = min(times[depth], time.perf_counter() - start)
    emit(f"{args.activation} kernel (sigma_b={args.sigma_b}, EOC), n={args.n}, m0={args.m0}: "
         "time(depth 1000) / time(depth 10)", "<= 2",
         f"{times[1000] / times[10]:.2f} ({times[10]:.2f} s vs {times[1000]:.2f} s)", command_line())


if __name__ == "__main__":
    main()
