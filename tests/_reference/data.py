"""Activations, hyperparameters and datasets shared by the core's tests.

Everything is deterministic (fixed seeds) and small: the 50-digit reference costs about
0.1 ms per pair and layer, so datasets have at most 5 rows and the full depth range
(up to 200) is run on a chosen subset of (activation, hyperparameter, dataset) cases.
"""
from __future__ import annotations

import math

import numpy as np

#: name -> (a, b) of phi(s) = a*s + b*|s|, covering Delta = 0, 0.1, 0.5, 0.9, 1
#: and sign-flipped / scaled versions.
ACTIVATIONS: dict[str, tuple[float, float]] = {
    "linear": (1.0, 0.0),                 # Delta = 0
    "delta_0.1": (3.0, 1.0),              # Delta = 1/10
    "relu": (0.5, 0.5),                   # Delta = 1/2
    "abs": (0.0, 1.0),                    # Delta = 1
    "relu_flipped_x3.5": (-1.75, 1.75),   # relu(-s) scaled by 3.5: Delta = 1/2
    "flipped_scaled_0.9": (-1.5, -4.5),   # both signs flipped: Delta = 0.9
}

#: name -> function (a, b) -> (sigma_w, sigma_b); None means the core's default (EOC).
HYPERS: dict[str, object] = {
    "eoc": lambda a, b: (None, 0.0),
    "off_eoc": lambda a, b: (1.05 / math.hypot(a, b), 0.0),        # chi = 1.1025
    "bias": lambda a, b: (None, 0.3),
    "off_eoc_bias": lambda a, b: (0.9 / math.hypot(a, b), 1.0),    # chi = 0.81
}

DEPTHS = (1, 2, 3, 10, 50, 200)

M0 = 5


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _make_datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20250113)
    x0 = _unit(rng.standard_normal(M0))
    d = [_unit(rng.standard_normal(M0)) for _ in range(4)]
    other = rng.standard_normal((2, M0))
    q, _ = np.linalg.qr(rng.standard_normal((M0, M0)))
    sets = {
        # Gaussian rows: generic angles and norms.
        "random": rng.standard_normal((5, M0)),
        # Pairwise orthogonal rows of different norms.
        "orthogonal": q[:4] * np.array([1.0, 2.0, 0.5, 3.0])[:, None],
        # Nearly parallel: perturbations of size 1e-3 and 1e-6 of one direction.
        "near_parallel_1e-3": np.stack([x0, x0 + 1e-3 * d[0], 1.5 * (x0 - 1e-3 * d[1]), other[0]]),
        "near_parallel_1e-6": np.stack([x0, x0 + 1e-6 * d[0], 0.7 * (x0 - 1e-6 * d[1]), other[0]]),
        # Nearly opposite: -x0 perturbed by 1e-6 and 1e-3, at other norms.
        "near_opposite": np.stack([x0, -x0 + 1e-6 * d[2], -2.0 * x0 + 1e-3 * d[3], other[1]]),
        # Norms spanning six orders of magnitude.
        "norms": np.stack([_unit(rng.standard_normal(M0)) * s for s in (1e-3, 1.0, 37.0, 1e3)]),
        # Exact structure: a duplicate, a positive multiple (exact: power of 2), the exact
        # opposite direction, a zero row.
        "structured": np.stack([x0, x0, 2.0 * x0, -x0, np.zeros(M0), other[1]]),
    }
    for arr in sets.values():
        arr.setflags(write=False)
    return sets


DATASETS: dict[str, np.ndarray] = _make_datasets()


def dataset(name: str) -> np.ndarray:
    """A writable copy of a named dataset."""
    return np.array(DATASETS[name])


def delta_of(a: float, b: float) -> float:
    return b * b / (a * a + b * b)


def unit_pair(angle: float, m0: int = 2) -> np.ndarray:
    """Two unit vectors in R^m0 at the given angle (rows)."""
    x = np.zeros((2, m0))
    x[0, 0] = 1.0
    x[1, 0] = math.cos(angle)
    x[1, 1] = math.sin(angle)
    return x


def random_unit_rows(n: int, m0: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, m0))
    return x / np.linalg.norm(x, axis=1, keepdims=True)
