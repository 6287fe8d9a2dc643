"""Condition number at n = 20,000 (eigenvalues="extremes"): wall time and peak RSS.

Target (issue 4): within 10 minutes, peak RSS <= 8 GiB. The computation runs in a child
process so that its peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``) is its own.

    python bench/bench_large.py                          # n=20000, m0=50 Gaussian (minutes)
    python bench/bench_large.py --data uniform --m0 784  # MNIST-like width
    python bench/bench_large.py --n 300 --m0 10          # smoke
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import command_line, emit, make_data


def child(args) -> None:
    import eoc_ntk

    x = make_data(args.data, args.n, args.m0)
    t0 = time.perf_counter()
    s = eoc_ntk.spectrum(x, depth=args.depth, a=args.a, b=args.b, eigenvalues="extremes")
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "cond": s.condition_number, "method": s.method,
                      "lambda_min": s.lambda_min, "lambda_max": s.lambda_max}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--m0", type=int, default=50)
    p.add_argument("--data", default="gaussian")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--a", type=float, default=0.5)
    p.add_argument("--b", type=float, default=0.5)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    cmd = command_line()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *(argv if argv is not None else sys.argv[1:])],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 2**30  # KiB on Linux
    emit(f"spectrum extremes n={args.n} m0={args.m0} {args.data} depth {args.depth}: time",
         "<= 600 s", f"{res['seconds']:.0f} s in spectrum() ({wall:.0f} s with start-up and data); "
         f"cond {res['cond']:.4g}, method {res['method']}", cmd)
    emit(f"spectrum extremes n={args.n} m0={args.m0} {args.data} depth {args.depth}: peak RSS",
         "<= 8 GiB", f"{rss_gib:.2f} GiB (n x n float64 = {args.n**2 * 8 / 2**30:.2f} GiB)", cmd)


if __name__ == "__main__":
    main()
