"""Shared helpers of the benchmark scripts: data sets, timing, markdown rows.

Every figure is a ratio of timings taken in one run, each timing the best of ``repeat``
runs (the machine is shared and noisy, so the minimum is the most stable estimate).
"""
from __future__ import annotations

import datetime
import gc
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATASETS = ("uniform", "gaussian", "mnistlike")


def make_data(kind: str, n: int, m0: int, seed: int = 0) -> np.ndarray:
    """``uniform``: i.i.d. U[0,1]^m0 (like raw MNIST pixels, all in one orthant);
    ``gaussian``: i.i.d. N(0, I_m0); ``mnistlike``: sparse non-negative rows (about 20 %
    non-zeros in [0.5, 1], the rest 0), closer to real digit images."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.random((n, m0))
    if kind == "gaussian":
        return rng.standard_normal((n, m0))
    if kind == "mnistlike":
        x = rng.uniform(0.5, 1.0, (n, m0))
        x[rng.random((n, m0)) > 0.2] = 0.0
        x[:, 0] += 1e-3  # no zero rows
        return x
    raise ValueError(f"unknown data kind {kind!r}; expected one of {DATASETS}")


def timed(fn, setup=None) -> tuple[float, object]:
    """Wall time of one call of ``fn()`` (after ``setup()`` and a garbage collection, untimed), and its result."""
    if setup is not None:
        setup()
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_of(fn, repeat: int = 3, setup=None) -> tuple[float, object]:
    """Best wall time over ``repeat`` calls of ``fn()`` (``setup()`` untimed before each), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        if setup is not None:
            setup()
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def machine_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, load {load:.1f}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}")


def row(*cells) -> str:
    """One markdown table row."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def emit(figure: str, target: str, measured: str, command: str) -> None:
    print(row(figure, target, f"{measured} ({machine_note()})", f"`{command}`"), flush=True)


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
