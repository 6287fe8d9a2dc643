"""Kernel cost of smooth activations at depth 10 and depth 1000 (ratio measured in the same run).

Target (smooth activations): time(depth 1000) / time(depth 10) <= 2 at n = 2000. ``--data sphere``:
inputs of equal norm (one variance group: composed-map interpolants); ``--data gaussian``: every row
its own norm (pairs one by one until every variance settles at layer L0, then one composed tail map;
:mod:`eoc_ntk.core._numerics.smooth_onepass`). L0 is printed.
Each depth is timed best of ``--repeat``, the runs interleaved (10, 1000, 10, 1000, ...) so that a
burst of load on the shared machine hits both alike; a small call first warms the caches of the
EOC solve and the Hermite coefficients, which are per activation and not part of the depth cost.

    python bench/bench_smooth.py --activation tanh        # n = 2000 (about a minute)
    python bench/bench_smooth.py --n 300 --repeat 1       # smoke
    python bench/bench_smooth.py --activation tanh --data gaussian --n 200
"""
from __future__ import annotations

import argparse
import time

from _common import command_line, emit

import numpy as np

import eoc_ntk
from eoc_ntk.core._numerics.smooth_recursion import converging_trajectory
from eoc_ntk.core.model import Model
from eoc_ntk.core.smooth_kernels import spec_of


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--m0", type=int, default=20)
    parser.add_argument("--activation", default="erf")
    parser.add_argument("--sigma-b", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data", choices=("sphere", "gaussian"), default="sphere",
                        help="sphere: equal norms; gaussian: distinct norms")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.m0))
    if args.data == "sphere":
        x *= np.sqrt(args.m0) / np.linalg.norm(x, axis=1, keepdims=True)
    model = Model(1000, activation=args.activation, sigma_b=args.sigma_b)
    q1 = model.sigma_w2 * np.sum(x * x, axis=1) / args.m0 + model.sigma_b ** 2
    settled = len(converging_trajectory(spec_of(model), q1, 1000)[0])
    for depth in (10, 1000):
        eoc_ntk.kernel(x[:8], depth=depth, activation=args.activation, sigma_b=args.sigma_b)
    times = {10: float("inf"), 1000: float("inf")}
    for _ in range(args.repeat):
        for depth in (10, 1000):
            start = time.perf_counter()
            eoc_ntk.kernel(x, depth=depth, activation=args.activation, sigma_b=args.sigma_b)
            times[depth] = min(times[depth], time.perf_counter() - start)
    emit(f"{args.activation} kernel (sigma_b={args.sigma_b}, EOC), {args.data} data, n={args.n}, m0={args.m0}, "
         f"variances settle at L0={settled if settled < 1000 else 'never (by 1000)'}: "
         "time(depth 1000) / time(depth 10)", "<= 2",
         f"{times[1000] / times[10]:.2f} ({times[10]:.2f} s vs {times[1000]:.2f} s)", command_line())


if __name__ == "__main__":
    main()
