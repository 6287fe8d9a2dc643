"""The learning-curve estimate against the measured held-out error on sklearn digits (docs/learning.md §7).

N = 1797 digits (pixels / 16), depth 3, ReLU at the EOC; labels 10-class one-hot or even/odd as
+-1; ridge 0 and 1e-3; training sets of m drawn without replacement, tested on the other N - m
(``eoc_ntk.learning_curve``). Prints one markdown row per (labels, ridge, m): the estimate, the
measured mean and standard deviation over the splits, and predicted/measured.

    python bench/bench_learning_curve.py                      # 6 sizes up to m/N = 0.6, 5 splits
    python bench/bench_learning_curve.py --sizes 50 --splits 2   # smoke
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import command_line  # noqa: F401  (puts the repository on sys.path)

import eoc_ntk


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500, 800, 1078])
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--depth", type=int, default=3)
    args = p.parse_args(argv)
    from sklearn.datasets import load_digits  # the [sklearn] extra

    digits = load_digits()
    x = digits.data / 16.0
    labels = {"one-hot": np.eye(10)[digits.target], "even/odd": np.where(digits.target % 2 == 0, 1.0, -1.0)}
    t0 = time.perf_counter()
    print("| labels | ridge | m | m/N | predicted | measured (std) | predicted/measured |")
    print("|---|---|---|---|---|---|---|")
    for name, y in labels.items():
        for ridge in (0.0, 1e-3):
            c = eoc_ntk.learning_curve(x, y, depth=args.depth, a=0.5, b=0.5, sizes=args.sizes, ridge=ridge,
                                       splits=args.splits)
            for m, pr, me, sd in zip(c.sizes, c.predicted_test_mse, c.measured_test_mse, c.measured_std, strict=True):
                print(f"| {name} | {ridge:g} | {m} | {m / c.n:.2f} | {pr:.4f} | {me:.4f} ({sd:.4f}) | {pr / me:.3f} |",
                      flush=True)
    print(f"{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
