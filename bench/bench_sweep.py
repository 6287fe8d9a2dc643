"""Condition number over depths 1..100 by one ``depth_sweep`` against separate ``spectrum`` calls.

Target (issue 4): n=2000: the sweep >= 5x faster than 100 separate spectrum calls. The
separate calls are timed at a subset of depths (``--sample``) and extrapolated to all
depths by the mean time per call (the kernel cost does not depend on depth, so the mean
over a spread of depths is representative). Interpolant caches are cleared before every
timed call, as each depth needs its own interpolant anyway. Both ``eigenvalues="extremes"``
(the fair comparison: the same solver) and the default ``"all"`` are reported.

    python bench/bench_sweep.py                                # n=2000, depths 1..100
    python bench/bench_sweep.py --n 900 --max-depth 5 --sample 1 5 --modes extremes   # smoke
"""
from __future__ import annotations

import argparse

from _common import command_line, emit, make_data, timed

import numpy as np

import eoc_ntk
from eoc_ntk.core._numerics import interp as _interp


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--m0", type=int, default=784)
    p.add_argument("--data", default="uniform")
    p.add_argument("--max-depth", type=int, default=100)
    p.add_argument("--sample", type=int, nargs="+", default=(1, 2, 10, 25, 50, 75, 100))
    p.add_argument("--modes", nargs="+", default=("extremes", "all"))
    args = p.parse_args(argv)
    cmd = command_line()
    x = make_data(args.data, args.n, args.m0)
    depths = list(range(1, args.max_depth + 1))
    relu = dict(a=0.5, b=0.5)

    t_sweep, sweep = timed(setup=_interp.eoc_interpolant.cache_clear,
                           fn=lambda: eoc_ntk.depth_sweep(x, depths=depths, **relu))
    for mode in args.modes:
        times, worst = [], 0.0
        for d in args.sample:
            t, s = timed(setup=_interp.eoc_interpolant.cache_clear,
                         fn=lambda d=d, mode=mode: eoc_ntk.spectrum(x, depth=d, eigenvalues=mode, **relu))
            times.append(t)
            c_sweep = sweep.condition_number[depths.index(d)]
            if np.isfinite(c_sweep) or np.isfinite(s.condition_number):
                worst = max(worst, abs(c_sweep - s.condition_number) / s.condition_number)
        t_separate = float(np.mean(times)) * len(depths)
        emit(f"sweep depths 1..{args.max_depth}, n={args.n} m0={args.m0} {args.data}, "
             f"vs {len(depths)} spectrum(eigenvalues={mode!r}) calls",
             ">= 5x",
             f"{t_separate / t_sweep:.1f}x (sweep {t_sweep:.1f} s; separate {t_separate:.0f} s extrapolated "
             f"from {len(times)} depths {list(args.sample)}, mean {np.mean(times):.2f} s/call); "
             f"cond. number agreement {worst:.1e}", cmd)


if __name__ == "__main__":
    main()
