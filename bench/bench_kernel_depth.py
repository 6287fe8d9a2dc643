"""Kernel cost against depth (interpolated path) and interpolated-vs-exact agreement.

Target (issue 4): n=4000, m0=784: time(depth 1000) / time(depth 2) <= 1.5, cold (interpolant
cache cleared before each call, so the build is included) and warm (interpolants cached);
interpolated agrees with the exact recursion within 1e-12 relative.

    python bench/bench_kernel_depth.py                       # full size (a minute or two)
    python bench/bench_kernel_depth.py --n 200 --m0 20 --acc-n 50 --repeat 1   # smoke
"""
from __future__ import annotations

import argparse
from functools import partial

from _common import best_of, command_line, emit, make_data

import numpy as np

from eoc_ntk import Model, check_data
from eoc_ntk.core._numerics import interp as _interp
from eoc_ntk.core.kernels import compute_kernels


def time_kernels(x, depths, a, b, repeat):
    """Best-of-``repeat`` seconds per (mode, depth), the runs interleaved (cold shallow, cold
    deep, warm shallow, warm deep, then again) so that a burst of load on the shared machine
    hits every configuration alike."""
    runs = {depth: partial(compute_kernels, x, None, Model(depth, a, b), ("ntk",), method="interpolated")
            for depth in depths}
    best = {}
    for _ in range(repeat):
        for mode in ("cold", "warm"):
            for depth, run in runs.items():
                if mode == "cold":
                    _interp.eoc_interpolant.cache_clear()
                else:
                    run()  # make sure this depth's interpolants are cached
                t, _ = best_of(run, 1)
                best[mode, depth] = min(best.get((mode, depth), float("inf")), t)
    return best


def max_rel_error(x, depth, a, b):
    """``(scaled, entrywise)``: the largest |K_interp - K_exact| / sqrt(K_ii K_jj) (relative
    to the entry's natural scale; the kernel crosses zero for obtuse angles at small depth,
    where an entrywise ratio is meaningless) and the largest entrywise
    |K_interp - K_exact| / |K_exact| over all entries."""
    model = Model(depth, a, b)
    ki = compute_kernels(x, None, model, ("ntk",), method="interpolated")["ntk"]
    ke = compute_kernels(x, None, model, ("ntk",), method="exact")["ntk"]
    diff = np.abs(ki - ke)
    d = np.sqrt(np.diag(ke))
    return float(np.max(diff / np.outer(d, d))), float(np.max(diff / np.abs(ke)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--m0", type=int, default=784)
    p.add_argument("--data", default="uniform")
    p.add_argument("--depths", type=int, nargs=2, default=(2, 1000), metavar=("SHALLOW", "DEEP"))
    p.add_argument("--a", type=float, default=0.5)
    p.add_argument("--b", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--acc-n", type=int, default=300, help="n for the accuracy check (exact path is O(depth))")
    p.add_argument("--acc-depths", type=int, nargs="+", default=(2, 10, 100, 1000))
    p.add_argument("--acc-data", nargs="+", default=("uniform", "gaussian"))
    args = p.parse_args(argv)
    cmd = command_line()

    x = check_data(make_data(args.data, args.n, args.m0))
    shallow, deep = args.depths
    best = time_kernels(x, (shallow, deep), args.a, args.b, args.repeat)
    for mode in ("cold", "warm"):
        t_s, t_d = best[mode, shallow], best[mode, deep]
        emit(f"kernel n={args.n} m0={args.m0} {args.data}, {mode}: t(depth {deep}) / t(depth {shallow})",
             "<= 1.5", f"{t_d / t_s:.2f} ({t_d:.2f} s / {t_s:.2f} s, best of {args.repeat}, interleaved)", cmd)

    worst = []
    for kind in args.acc_data:
        xa = check_data(make_data(kind, args.acc_n, args.m0, seed=1))
        for d in args.acc_depths:
            worst.append((*max_rel_error(xa, d, args.a, args.b), kind, d))
    scaled = max(worst)
    entry = max(worst, key=lambda w: w[1])
    detail = ", ".join(f"{k} l={dd}: {e:.1e}" for e, _, k, dd in worst)
    emit(f"kernel interpolated vs exact, n={args.acc_n} m0={args.m0}, max abs(dK) / sqrt(K_ii K_jj)",
         "<= 1e-12", f"{scaled[0]:.1e} (worst {scaled[2]} depth {scaled[3]}; {detail})", cmd)
    emit(f"kernel interpolated vs exact, n={args.acc_n} m0={args.m0}, max entrywise abs(dK) / abs(K)",
         "<= 1e-12", f"{entry[1]:.1e} ({entry[2]} depth {entry[3]}; large only where K crosses zero)", cmd)


if __name__ == "__main__":
    main()
