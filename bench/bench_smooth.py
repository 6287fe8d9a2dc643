"""Kernel cost of smooth activations at depth 10 and depth 1000 (ratio measured in the same run).

Target (smooth activations): time(depth 1000) / time(depth 10) <= 2 at n = 2000. The core today
runs the exact recursion layer by layer for smooth activations (no depth-independent interpolant
yet), so the ratio is about 100; this bench records it.

    python bench/bench_smooth.py                          # n = 2000 (minutes with tanh)
    python bench/bench_smooth.py --n 300 --activation erf # smoke
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import eoc_ntk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--m0", type=int, default=20)
    parser.add_argument("--activation", default="erf")
    parser.add_argument("--sigma-b", type=float, default=0.1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.m0))
    x *= np.sqrt(args.m0) / np.linalg.norm(x, axis=1, keepdims=True)
    times = {}
    for depth in (10, 1000):
        start = time.perf_counter()
        eoc_ntk.kernel(x, depth=depth, activation=args.activation, sigma_b=args.sigma_b)
        times[depth] = time.perf_counter() - start
    print(f"activation={args.activation} n={args.n} m0={args.m0} sigma_b={args.sigma_b}: "
          f"depth 10 {times[10]:.3f} s, depth 1000 {times[1000]:.3f} s, ratio {times[1000] / times[10]:.1f}")


if __name__ == "__main__":
    main()
