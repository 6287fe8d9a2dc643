"""The cost model (eoc_ntk.core.cost.predict_seconds) against measured runs of the core.

Runs with one BLAS thread (the model predicts seconds on one core). Target (issue 10): for every
case, predicted / measured seconds in [0.5, 2], including ``sigma_b != 0`` (the general recursion,
linear in depth), large depth and sweeps. Each measurement is the least CPU time (this process,
all threads: seconds on one core, which the machine's load does not inflate as it does wall
time) of ``--repeat`` runs after a warm-up; the table prints predicted, measured, ratio.

    python bench/bench_cost.py                 # the 14 cases (about a minute)
    python bench/bench_cost.py --scale 0.3 --repeat 1   # smoke (smaller n)
"""
from __future__ import annotations

import argparse
import gc
import os
import time

# Seconds "on one core": one BLAS thread (set before NumPy loads). On the shared machine,
# OpenBLAS threads oversubscribed by other processes made dense solves 5-20x slower and erratic.
if __name__ == "__main__":  # as a script only: imported (the smoke test), it leaves the env alone
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

from _common import command_line, machine_note, make_data, row

import eoc_ntk
from eoc_ntk.core.cost import predict_seconds
from eoc_ntk.core.sweep import activation_sweep

M0 = 16
#: (op, n, depth (or largest depth of a sweep), sigma_b, eigenvalues / sweep depths / kinds)
CASES = [
    ("kernels", 600, 3, 0.0, 1),
    ("kernels", 600, 1000, 0.0, 1),
    ("kernels", 400, 20, 0.1, 1),
    ("kernels", 200, 500, 0.1, 1),
    ("kernels", 600, 10, 0.0, 3),
    ("spectra", 200, 3, 0.0, "all"),
    ("spectra", 600, 10, 0.0, "all"),
    ("spectra", 1000, 5, 0.0, "all"),
    ("spectra", 300, 50, 0.1, "all"),
    ("spectra", 100, 2000, 0.1, "all"),
    ("spectra", 600, 10, 0.0, "extremes"),
    ("sweeps", 300, 30, 0.0, 30),
    ("sweeps", 300, 30, 0.1, 30),
    ("sweeps", 200, 200, 0.1, 2),
]


def run_case(op, n, depth, sigma_b, extra, repeat):
    """(predicted, measured) seconds of one case."""
    x = make_data("gaussian", n, M0, seed=n + depth)
    if op == "kernels":
        kinds = ("ntk", "nngp", "angle")[:extra]
        model = eoc_ntk.Model(depth, 0.5, 0.5, sigma_b=sigma_b)
        from eoc_ntk.core.kernels import compute_kernels
        fn = lambda: compute_kernels(x, None, model, kinds)  # noqa: E731
        predicted = predict_seconds(op, n=n, m0=M0, depths=(depth,), sigma_b=sigma_b, kinds=extra)
    elif op == "spectra":
        model = eoc_ntk.Model(depth, 0.5, 0.5, sigma_b=sigma_b)
        fn = lambda: eoc_ntk.analyze(x, model, eigenvalues=extra)  # noqa: E731
        predicted = predict_seconds(op, n=n, m0=M0, depths=(depth,), sigma_b=sigma_b, eigenvalues=extra)
    else:
        depths = sorted({max(1, round(depth * (i + 1) / extra)) for i in range(extra)})
        fn = lambda: activation_sweep(x, depths, [(0.5, 0.5)], sigma_b=sigma_b)  # noqa: E731
        predicted = predict_seconds(op, n=n, m0=M0, depths=depths, sigma_b=sigma_b, eigenvalues="extremes")
    fn()  # warm (interpolant caches, first-call imports)
    measured = min(_cpu_seconds(fn) for _ in range(repeat))
    return predicted, measured


def _cpu_seconds(fn) -> float:
    """CPU seconds of this process (all its threads) during ``fn()``: seconds on one core,
    whatever the load of the shared machine (wall time there is inflated by the other processes)."""
    gc.collect()
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="runs per case, best taken (default 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every n (smoke runs: < 1)")
    args = parser.parse_args(argv)
    print(f"`{command_line()}` ({machine_note()})\n")
    print(row("op", "n", "depth", "sigma_b", "eigenvalues / kinds / sweep "
              "depths", "predicted s", "measured s", "ratio"))
    print(row(*["---"] * 8))
    worst = []
    for op, n, depth, sigma_b, extra in CASES:
        n = max(4, round(n * args.scale))
        predicted, measured = run_case(op, n, depth, sigma_b, extra, args.repeat)
        ratio = predicted / measured
        worst.append(ratio)
        print(row(op, n, depth, sigma_b, extra, f"{predicted:.3f}", f"{measured:.3f}", f"{ratio:.2f}"), flush=True)
    inside = sum(0.5 <= r <= 2.0 for r in worst)
    print(f"\n{inside} of {len(worst)} ratios in [0.5, 2]; min {min(worst):.2f}, max {max(worst):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
