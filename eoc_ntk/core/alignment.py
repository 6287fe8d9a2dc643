"""How well the kernel's geometry fits the labels (docs/learning.md §6).

Kernel-target alignment (Cristianini, Shawe-Taylor, Elisseeff, Kandola 2001, "On
kernel-target alignment"): ``A = <K, Y Y^T>_F / (|K|_F |Y Y^T|_F)``, in [0, 1] for a positive
semi-definite ``K``. With ``<K, Y Y^T>_F = trace(Y^T K Y)`` and ``|Y Y^T|_F = |Y^T Y|_F``
nothing of size n x n but ``K`` is formed. Both are invariant under ``K -> c K``: they are
computed on the kernel with its scale taken out (:func:`eoc_ntk.core.kernels.compute_scaled_kernels`).

The top-k fraction is the share of ``|Y|^2`` in the k leading eigen-directions of ``K``: the
directions gradient descent fits first (docs/learning.md §3).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.linalg as sla

from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.kernels import compute_scaled_kernels
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import Model, model_of
from eoc_ntk.core.validation import check_data

__all__ = ["alignment", "TOP_K", "label_fit_by_depth"]

#: Numbers of leading eigen-directions reported by ``depth_sweep(..., y=...)``.
TOP_K = (1, 10, 100)


def alignment(x: ArrayLike, y: ArrayLike, *, depth: int, a: float | None = None, b: float | None = None,
              activation: Any = None, sigma_w: float | None = None,
              sigma_b: float = 0.0) -> float:
    """Kernel-target alignment ``<K, y y^T>_F / (|K|_F |y y^T|_F)`` of the NTK with the labels.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    y : array-like of shape (n,) or (n, k)
        For (n, k) labels ``y y^T`` is the (n, n) matrix ``Y Y^T``.
    depth, a, b, sigma_w, sigma_b, activation : see :func:`eoc_ntk.kernel`.

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    InvalidParameterError
        ``param="y"`` when ``y`` is all zeros (the alignment is 0/0), ``param="x"`` when
        every row of ``x`` is zero.
    """
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, where="alignment")
    x = check_data(x)
    labels = check_labels(y, x.shape[0])
    _check_nonzero_labels(labels.values)
    return _alignment(_relative_ntk(x, model), labels.values)


def _relative_ntk(x: np.ndarray, model: Model) -> np.ndarray:
    """The NTK times a power of two that brings its largest entries to order ``depth``: the
    alignment and the eigenvectors are scale-free, the kernel's scale (inputs near 1e-160 or
    1e80, ``chi^(l-1)`` far from 1) is not."""
    return compute_scaled_kernels(x, None, model, ("ntk",))[0]["ntk"]


def _check_nonzero_labels(y: np.ndarray) -> None:
    if not np.any(y):
        raise InvalidParameterError(
            f"y is all zeros (shape {y.shape}): its alignment with any kernel is 0/0; give non-zero labels",
            param="y")


def _alignment(k: np.ndarray, y: np.ndarray) -> float:
    k_norm = float(np.linalg.norm(k))
    if k_norm == 0.0:
        raise InvalidParameterError("the NTK of x is zero (every input row is 0): the alignment is 0/0", param="x")
    return float(np.sum(y * (k @ y)) / (k_norm * np.linalg.norm(y.T @ y)))


def label_fit_by_depth(x: FloatArray, y: FloatArray, depths: Iterable[int],
                       model: Model) -> tuple[FloatArray, dict[int, FloatArray]]:
    """Alignment and top-k fractions per depth for checked ``x`` (n, m0) and labels ``y`` (n, k).

    Returns ``(alignment, top_k_fraction)``: an array with one alignment per depth and a dict
    ``{k: array of one fraction per depth}`` for ``k`` in :data:`TOP_K` (``k`` above n counts
    every direction: fraction 1). Cost per depth: one kernel and the leading
    ``min(100, n)`` eigenvectors (LAPACK ``syevr``).
    """
    _check_nonzero_labels(y)
    n = x.shape[0]
    energy = float(np.sum(y * y))
    lead = min(max(TOP_K), n)
    aligned: list[float] = []
    fractions: dict[int, list[float]] = {k: [] for k in TOP_K}
    for depth in depths:
        m = model.at_depth(int(depth))
        k = _relative_ntk(x, m)
        aligned.append(_alignment(k, y))
        _, vec = sla.eigh(k, subset_by_index=[n - lead, n - 1], check_finite=False)
        captured = np.cumsum(np.sum((vec[:, ::-1].T @ y) ** 2, axis=1)) / energy
        for top in TOP_K:
            fractions[top].append(float(captured[min(top, lead) - 1]))
    return np.array(aligned), {top: np.array(v) for top, v in fractions.items()}
