"""Extreme eigenvalues (certified fast path) against the full dense ``eigvalsh`` on the same matrix.

Target (issue 4): n=4000: extremes >= 2x faster than the dense solver, lambda_min and
lambda_max within 1e-8 relative of the dense values. Both solvers get the same K/n (the
kernel is computed once, untimed); each timing is the best of ``--repeat``, interleaved.

    python bench/bench_extremes.py                       # n=4000, four data/depth cases
    python bench/bench_extremes.py --n 900 --cases uniform:784:10 --repeat 1   # smoke
"""
from __future__ import annotations

import argparse

from _common import command_line, emit, make_data, timed

from eoc_ntk import Model, check_data
from eoc_ntk.core.eigen import all_eigenvalues, extreme_eigenvalues
from eoc_ntk.core.kernels import compute_kernels

DEFAULT_CASES = ("uniform:784:10", "mnistlike:784:10", "gaussian:10:10", "uniform:784:2", "uniform:784:200")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="DATA:M0:DEPTH (ReLU)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    cmd = command_line()
    for case in args.cases:
        kind, m0, depth = case.split(":")
        x = check_data(make_data(kind, args.n, int(m0)))
        k = compute_kernels(x, None, Model(int(depth), 0.5, 0.5), ("ntk",))["ntk"]
        k /= args.n
        t_dense, t_fast = [], []
        for _ in range(args.repeat):
            t, eig = timed(lambda k=k: all_eigenvalues(k))
            t_dense.append(t)
            t, (lmin, lmax, method, _) = timed(lambda k=k: extreme_eigenvalues(k))
            t_fast.append(t)
        td, tf = min(t_dense), min(t_fast)
        err = max(abs(lmin - eig[0]) / abs(eig[0]), abs(lmax - eig[-1]) / abs(eig[-1]))
        emit(f"extremes vs eigvalsh, n={args.n} {kind} m0={m0} depth {depth} (cond {eig[-1] / eig[0]:.3g})",
             ">= 2x, rel. err <= 1e-8",
             f"{td / tf:.2f}x ({td:.2f} s / {tf:.2f} s, best of {args.repeat}, method {method}); "
             f"rel. err {err:.1e}", cmd)


if __name__ == "__main__":
    main()
