"""What the trained infinite-width network predicts, and how its test error falls with the
number of training points (docs/learning.md §4-§5).

Gradient descent to convergence on the infinite-width network (the loss and residual
conventions of :mod:`eoc_ntk.learning.dynamics`) ends at kernel regression with the NTK:
``f(x_test) = K(x_test, X) K^-1 Y``; :func:`predict` adds the ridge of kernel ridge
regression, ``(K + n ridge I)^-1``. :func:`learning_curve` compares the eigenlearning
estimate of the test error with kernel regression measured on random subsets.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.jsonsafe import json_float
from eoc_ntk.core.kernels import compute_kernels
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import Model
from eoc_ntk.core.validation import check_data, check_pair, check_real
from eoc_ntk.learning._kernel_eigen import kernel_eigen, regression_coefficients

__all__ = ["predict", "learning_curve", "LearningCurve", "eigenlearning_test_mse"]


def predict(x: ArrayLike, y: ArrayLike, x_test: ArrayLike, *, depth: int, a: float, b: float,
            sigma_w: float | None = None, sigma_b: float = 0.0, ridge: float = 0.0) -> FloatArray:
    """Outputs of the trained infinite-width network: ``K(x_test, X) (K + n ridge I)^-1 Y``.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Training inputs.
    y : array-like of shape (n,) or (n, k)
        Training targets.
    x_test : array-like of shape (n_test, m0)
    depth, a, b, sigma_w, sigma_b : see :func:`eoc_ntk.kernel`.
    ridge : float >= 0
        Ridge per training point: ``K + n ridge I``, i.e. scikit-learn's ``KernelRidge(alpha=n
        ridge, kernel="precomputed")``. With ``ridge = 0`` (gradient flow run to convergence
        from zero outputs) the minimum-norm interpolant: the pseudo-inverse of ``K`` drops the
        eigen-directions with ``lambda_i(K/n) <= singular_tolerance(n) * lambda_max``
        (``singular_tolerance(n) = 8 n eps``), the ones that gradient descent never moves.

    Returns
    -------
    ndarray of shape (n_test,) or (n_test, k)
        Shaped like ``y``'s columns.
    """
    model = Model(depth, a, b, sigma_w, sigma_b)
    points, test_points = check_pair(x, x_test, "x", "x_test")
    assert test_points is not None  # x_test is given
    labels = check_labels(y, points.shape[0])
    ridge = _check_ridge(ridge)
    k = compute_kernels(points, None, model, ("ntk",))["ntk"]
    k_test = compute_kernels(test_points, points, model, ("ntk",))["ntk"]
    return labels.shaped(k_test @ regression_coefficients(k, labels.values, ridge))


def _check_ridge(ridge: Any) -> float:
    try:
        value = check_real(ridge, "ridge")
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{exc}; ridge is a number >= 0", param="ridge") from exc
    if value < 0.0:
        raise InvalidParameterError(f"ridge must be >= 0, got {value}", param="ridge")
    return value


@dataclass(frozen=True, eq=False)
class LearningCurve:
    """Test error of kernel regression with the NTK against the number of training points.

    The test error of a predictor ``f`` on points ``T`` is ``mean_{i in T} |f(x_i) - y_i|^2``
    (summed over the k outputs).

    Attributes
    ----------
    sizes : ndarray of int, shape (s,)
        Training-set sizes, ascending.
    predicted_test_mse : ndarray of shape (s,)
        The eigenlearning estimate (:func:`eigenlearning_test_mse`) from the spectrum of
        ``K/N`` on all N points; ``inf`` where it diverges (``ridge = 0`` and a size equal
        to the rank of ``K``).
    measured_test_mse, measured_std : ndarray of shape (s,)
        Mean and standard deviation (``ddof=1``; 0 for one split) over ``splits`` random
        subsets of each size, trained on the subset and tested on every other point.
    effective_ridge : ndarray of shape (s,)
        The eigenlearning ``kappa`` per size.
    ridge : float
    splits : int
    seed : int
    """

    sizes: np.ndarray
    predicted_test_mse: np.ndarray
    measured_test_mse: np.ndarray
    measured_std: np.ndarray
    effective_ridge: np.ndarray
    ridge: float
    splits: int
    seed: int
    n: int

    @property
    def relative_gap(self) -> np.ndarray:
        """``(predicted - measured) / measured`` per size."""
        gap: np.ndarray = (self.predicted_test_mse - self.measured_test_mse) / self.measured_test_mse
        return gap

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``inf`` (a diverging estimate) becomes None."""
        return {
            "n": self.n,
            "sizes": [int(s) for s in self.sizes],
            "predicted_test_mse": [json_float(v) for v in self.predicted_test_mse],
            "measured_test_mse": [json_float(v) for v in self.measured_test_mse],
            "measured_std": [json_float(v) for v in self.measured_std],
            "relative_gap": [json_float(v) for v in self.relative_gap],
            "effective_ridge": [json_float(v) for v in self.effective_ridge],
            "ridge": self.ridge,
            "splits": self.splits,
            "seed": self.seed,
        }


def learning_curve(x: ArrayLike, y: ArrayLike, *, depth: int, a: float, b: float, sizes: Iterable[int],
                   sigma_w: float | None = None, sigma_b: float = 0.0, ridge: float = 0.0, splits: int = 5,
                   seed: int = 0) -> LearningCurve:
    """Eigenlearning estimate vs measured test error of NTK regression, per training-set size.

    The estimate (:func:`eigenlearning_test_mse`) treats the N given points as the data
    distribution: the eigenvalues of ``K/N`` are the kernel operator's and ``v_i = V_i^T Y /
    sqrt(N)`` the target's coefficients. The measurement trains
    ``(K_S + m ridge I)^-1 Y_S`` (pseudo-inverse for ``ridge = 0``, as :func:`predict`) on
    ``splits`` random subsets ``S`` of each size ``m`` and tests on the other ``N - m``
    points. One kernel and one eigen-decomposition of ``K/N`` serve every size.

    Parameters
    ----------
    x : array-like of shape (N, m0)
    y : array-like of shape (N,) or (N, k)
    depth, a, b, sigma_w, sigma_b : see :func:`eoc_ntk.kernel`.
    sizes : iterable of int in [1, N - 1]
    ridge : float >= 0
        Ridge per training point (``K_S + m ridge I``).
    splits : int >= 1
    seed : int
        Seed of the subsets (``numpy.random.default_rng``).

    Returns
    -------
    LearningCurve
    """
    model = Model(depth, a, b, sigma_w, sigma_b)
    x = check_data(x)
    n = x.shape[0]
    labels = check_labels(y, n)
    size_arr = _check_sizes(sizes, n)
    ridge = _check_ridge(ridge)
    splits = _check_count(splits, "splits", 1)
    seed = _check_count(seed, "seed", 0)
    k = compute_kernels(x, None, model, ("ntk",))["ntk"]
    eig = kernel_eigen(k, labels.values)
    predicted, kappas = [], []
    for m in size_arr:
        mse, kappa = eigenlearning_test_mse(eig.eigenvalues, eig.energy / n, int(m), ridge * m)
        predicted.append(mse)
        kappas.append(kappa)
    means, stds = _measure(k, labels.values, size_arr, ridge, splits, seed)
    return LearningCurve(size_arr, np.array(predicted), means, stds, np.array(kappas), ridge, splits, seed, n)


def eigenlearning_test_mse(eigenvalues: ArrayLike, target_power: ArrayLike, m: int,
                           ridge: float) -> tuple[float, float]:
    """Eigenlearning estimate of the test MSE of kernel ridge regression on ``m`` samples.

    Simon, Dickens, Karkada, DeWeese (2021), "The eigenlearning framework: a conservation law
    perspective on kernel regression and wide neural networks" (eqs. for ``kappa``, ``L_i``,
    ``E_0``); the same estimate as Bordelon, Canatar, Pehlevan (2020) "Spectrum dependent
    learning curves in kernel regression" and Jacot, Simsek, Spadaro, Hongler, Gabriel (2020)
    "Kernel alignment risk estimator":

    * ``kappa > 0`` solves ``sum_i lambda_i / (lambda_i + kappa) + delta / kappa = m``;
    * learnabilities ``L_i = lambda_i / (lambda_i + kappa)``;
    * ``E_0 = m / (m - sum_i L_i^2)``;
    * test MSE ``= E_0 sum_i (1 - L_i)^2 v_i^2`` (noise-free targets).

    Parameters
    ----------
    eigenvalues : ndarray of shape (N,)
        Eigenvalues ``lambda_i >= 0`` of the kernel integral operator (here of ``K/N``).
    target_power : ndarray of shape (N,)
        ``v_i^2``, the target's squared coefficient on each eigenfunction (summed over outputs).
    m : int
        Number of training samples.
    ridge : float
        ``delta``, the ridge added to the unnormalised training kernel: ``K_S + delta I``.

    Returns
    -------
    (test_mse, kappa) : tuple of float
        ``kappa = 0`` when ``ridge = 0`` and ``m >= rank``: every non-null direction is then
        learnt (``L_i = 1``) and ``E_0 = m / (m - rank)`` (``inf`` for ``m = rank``).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    power = np.asarray(target_power, dtype=np.float64)
    positive = lam > 0.0
    rank = int(positive.sum())
    if ridge == 0.0 and m >= rank:
        kappa = 0.0
    else:
        def excess(log_kappa: float) -> float:
            kappa = math.exp(log_kappa)
            return float(np.sum(lam / (lam + kappa))) + ridge / kappa - m
        hi = math.log((float(lam.sum()) + ridge) / m) + 1e-9  # excess(hi) < 0
        lo = hi - 1.0
        while excess(lo) <= 0.0:
            lo -= 10.0
        kappa = math.exp(brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))
    learn = np.where(positive, lam / (lam + kappa), 0.0) if kappa > 0.0 else positive.astype(np.float64)
    denominator = m - float(np.sum(learn * learn))
    residual = float(np.sum((1.0 - learn) ** 2 * power))
    if denominator <= 0.0:
        return (math.inf if residual > 0.0 else 0.0), kappa
    return m / denominator * residual, kappa


def _measure(k: np.ndarray, y: np.ndarray, sizes: np.ndarray, ridge: float, splits: int,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = k.shape[0]
    rng = np.random.default_rng(seed)
    means: list[float] = []
    stds: list[float] = []
    for m in sizes:
        errors = []
        for _ in range(splits):
            order = rng.permutation(n)
            train, test = order[:m], order[m:]
            coef = regression_coefficients(k[np.ix_(train, train)], y[train], ridge)
            residual = k[np.ix_(test, train)] @ coef - y[test]
            errors.append(float(np.mean(np.sum(residual * residual, axis=1))))
        means.append(float(np.mean(errors)))
        stds.append(float(np.std(errors, ddof=1)) if splits > 1 else 0.0)
    return np.array(means), np.array(stds)


def _check_sizes(sizes: Any, n: int) -> np.ndarray:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise InvalidParameterError(f"sizes must be a list of integers in [1, {n - 1}], got {sizes!r}", param="sizes")
    out = []
    for i, s in enumerate(sizes):
        if (isinstance(s, bool) or not isinstance(s, numbers.Real) or not float(s).is_integer()
                or not 1 <= float(s) <= n - 1):
            raise InvalidParameterError(
                f"sizes[{i}] must be an integer in [1, {n - 1}] (x has {n} rows; the rest is the test set), got {s!r}",
                param="sizes")
        out.append(int(s) if isinstance(s, numbers.Integral) else int(float(s)))
    if not out:
        raise InvalidParameterError("sizes is empty; give at least one training-set size", param="sizes")
    return np.unique(np.array(out, dtype=np.int64))


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}", param=name)
    return int(value)
