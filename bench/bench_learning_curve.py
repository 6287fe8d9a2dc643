"""The learning-curve estimate against the measured held-out error on sklearn digits (docs/learning.md §7).

N = 1797 digits (pixels / 16), depth 3, ReLU at the EOC; labels 10-class one-hot or even/odd as
+-1; ridge 0 and 1e-3; training sets of m drawn without replacement, tested on the other N - m
(``eoc_ntk.learning_curve``). Prints one markdown row per (labels, ridge, m): the estimate, the
measured mean and standard deviation over the splits, and predicted/measured.

    python bench/bench_learning_curve.py                      # 6 sizes up to m/N = 0.6, 5 splits
    python bench/bench_learning_curve.py --sizes 50 --splits 2   # smoke

``--rotated-pool N`` checks the estimate's one modelling step instead (docs/learning.md §5: the
training selection is free of the kernel's eigenvectors): on the first N digits (one-hot, ridge
0) it compares predicted/measured on the digits' kernel with the same on a kernel of the same
spectrum and label energies whose eigenvectors are rotated by a random orthogonal matrix.

    python bench/bench_learning_curve.py --rotated-pool 600 --sizes 60 180 360 --splits 8
"""
from __future__ import annotations

import argparse
import time

from _common import command_line  # noqa: F401  (puts the repository on sys.path)

import numpy as np

import eoc_ntk
from eoc_ntk.learning.estimates import held_out_test_mse


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500, 800, 1078])
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--rotated-pool", type=int, default=None, metavar="N")
    args = p.parse_args(argv)
    from sklearn.datasets import load_digits  # the [sklearn] extra

    digits = load_digits()
    if args.rotated_pool:
        rotated_pool(digits, args.rotated_pool, args.sizes, args.splits, args.depth)
        return
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


def rotated_pool(digits, n: int, sizes, splits: int, depth: int) -> None:
    """predicted/measured on the first ``n`` digits' kernel and on its randomly rotated twin."""
    x, y = digits.data[:n] / 16.0, np.eye(10)[digits.target[:n]]
    k = eoc_ntk.kernel(x, depth=depth, a=0.5, b=0.5)
    lam, vec = np.linalg.eigh(k / n)
    lam = np.clip(lam, 0.0, None)
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    rotated = n * (q * lam) @ q.T
    pools = {"digits": (k, y), "rotated": ((rotated + rotated.T) / 2, q @ (vec.T @ y))}
    power = np.sum((vec.T @ y) ** 2, axis=1) / n
    print("| kernel | m | m/N | predicted/measured | std of the ratio |")
    print("|---|---|---|---|---|")
    for name, (kk, yy) in pools.items():
        for m in sizes:
            predicted = held_out_test_mse(lam, power, m, 0.0)[0]
            errors = []
            for _ in range(splits):
                order = rng.permutation(n)
                train, test = order[:m], order[m:]
                coef = np.linalg.lstsq(kk[np.ix_(train, train)], yy[train], rcond=None)[0]
                errors.append(np.mean(np.sum((kk[np.ix_(test, train)] @ coef - yy[test]) ** 2, axis=1)))
            ratio = predicted / np.mean(errors)
            spread = ratio * np.std(errors) / np.mean(errors) / np.sqrt(splits)
            print(f"| {name} | {m} | {m / n:.2f} | {ratio:.3f} | {spread:.3f} |", flush=True)


if __name__ == "__main__":
    main()
