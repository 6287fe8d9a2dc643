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

from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.jsonsafe import json_float
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import model_of
from eoc_ntk.core.validation import check_data, check_pair, check_real
from eoc_ntk.learning._kernel_eigen import kernel_eigen, regression_coefficients
from eoc_ntk.learning._scale import is_normal, relative_kernels, times_two_to
from eoc_ntk.learning.estimates import eigenlearning_test_mse, held_out_test_mse

__all__ = ["predict", "learning_curve", "LearningCurve", "eigenlearning_test_mse", "held_out_test_mse"]

#: Largest ridge per training point: n * ridge and the effective ridge stay normal floats far from overflow.
MAX_RIDGE = 1e150


def predict(x: ArrayLike, y: ArrayLike, x_test: ArrayLike, *, depth: int, a: float | None = None,
            b: float | None = None, activation: Any = None,
            sigma_w: float | None = None, sigma_b: float = 0.0, ridge: float = 0.0) -> FloatArray:
    """Outputs of the trained infinite-width network: ``K(x_test, X) (K + n ridge I)^-1 Y``.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Training inputs.
    y : array-like of shape (n,) or (n, k)
        Training targets.
    x_test : array-like of shape (n_test, m0)
    depth, a, b, sigma_w, sigma_b, activation : see :func:`eoc_ntk.kernel`.
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
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, where="predict")
    points, test_points = check_pair(x, x_test, "x", "x_test")
    assert test_points is not None  # x_test is given
    labels = check_labels(y, points.shape[0])
    ridge = _check_ridge(ridge)
    k, shift = relative_kernels(points, None, model, ("ntk",))
    k_test, shift_test = relative_kernels(test_points, points, model, ("ntk",))
    # K = k 2^shift: (K/n + ridge)^-1 = 2^-shift (k/n + ridge 2^-shift)^-1.
    scaled_ridge = times_two_to(ridge, -shift)
    if math.isinf(scaled_ridge):  # the ridge dwarfs K: (K + n ridge I)^-1 = I / (n ridge) to float64
        mantissa, exponent = k_test["ntk"] @ (labels.values / (points.shape[0] * ridge)), shift_test
    else:
        coef = regression_coefficients(k["ntk"], labels.values, scaled_ridge)
        mantissa, exponent = k_test["ntk"] @ coef, shift_test - shift
    return labels.shaped(_unscaled_predictions(mantissa, exponent, ridge))


def _unscaled_predictions(mantissa: FloatArray, exponent: int, ridge: float) -> FloatArray:
    """``mantissa * 2^exponent``, refused (by name) where that leaves float64's normal range."""
    top = float(np.max(np.abs(mantissa))) if mantissa.size else 0.0
    if top == 0.0 or exponent == 0:
        return mantissa
    log2_top = math.log2(top) + exponent
    if log2_top > 1023.0:
        raise InvalidParameterError(
            f"the predictions reach about 2^{log2_top:.0f}, beyond float64: x_test lies that far outside the scale "
            "of x (the NTK is homogeneous of degree 1 in each input's norm); rescale x_test", param="x_test")
    if log2_top < -1022.0:
        raise InvalidParameterError(
            f"the predictions at ridge {ridge:g} are about 2^{log2_top:.0f}, below float64: the ridge dwarfs the "
            "kernel at this input scale. ridge = 0 is scale-free; or rescale x so that K is of order 1", param="ridge")
    unscaled: FloatArray = np.ldexp(mantissa, exponent)
    return unscaled


def _check_ridge(ridge: Any) -> float:
    try:
        value = check_real(ridge, "ridge")
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{exc}; ridge is a number >= 0", param="ridge") from exc
    if value < 0.0:
        raise InvalidParameterError(f"ridge must be >= 0, got {value}", param="ridge")
    if value > MAX_RIDGE:
        raise InvalidParameterError(f"ridge = {value:g} is over {MAX_RIDGE:g}: n * ridge and the effective ridge "
                                    "must stay normal floats; rescale the labels instead", param="ridge")
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
        The estimate of the measured quantity (:func:`held_out_test_mse`): the error on the
        ``N - m`` held-out points of a training set of ``m`` drawn without replacement from the
        N points, from the spectrum of ``K/N``; ``inf`` where it diverges (``ridge = 0`` and a
        size equal to the rank of ``K``).
    measured_test_mse, measured_std : ndarray of shape (s,)
        Mean and standard deviation (``ddof=1``; 0 for one split) over ``splits`` random
        subsets of each size, trained on the subset and tested on every other point.
    effective_ridge_scaled : ndarray of shape (s,)
        The estimate's ``kappa`` per size, in units of ``2^scale_exponent`` (``inf``: the
        ridge dwarfs the kernel, nothing is learnt).
    scale_exponent : int
        0 whenever every ``kappa`` is 0, ``inf`` or a normal float64 number; otherwise the
        power of two the kernel's scale carries (inputs near 1e-160, ``chi^(l-1)`` far from 1).
    ridge : float
    splits : int
    seed : int
    n : int
        N, the number of points.
    """

    sizes: np.ndarray
    predicted_test_mse: np.ndarray
    measured_test_mse: np.ndarray
    measured_std: np.ndarray
    effective_ridge_scaled: np.ndarray
    ridge: float
    splits: int
    seed: int
    n: int
    scale_exponent: int = 0

    @property
    def effective_ridge(self) -> np.ndarray:
        """``kappa`` per size (in the unit of ``K``); refused when it leaves float64 (see
        :attr:`scale_exponent`: ``effective_ridge_scaled * 2^scale_exponent`` is the value)."""
        if self.scale_exponent:
            raise InvalidParameterError(
                f"effective_ridge is about 2^{_log2_top(self.effective_ridge_scaled) + self.scale_exponent:.0f}, "
                f"outside float64: it is effective_ridge_scaled * 2^scale_exponent (scale_exponent = "
                f"{self.scale_exponent})", param="effective_ridge")
        return self.effective_ridge_scaled

    @property
    def relative_gap(self) -> np.ndarray:
        """``(predicted - measured) / measured`` per size."""
        with np.errstate(divide="ignore", invalid="ignore"):
            gap: np.ndarray = (self.predicted_test_mse - self.measured_test_mse) / self.measured_test_mse
        return gap

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``inf`` (a diverging estimate, an infinite ``kappa``) becomes None, as
        does every ``effective_ridge`` outside float64 (then ``scaled`` holds it with its power of two)."""
        kappa = None if self.scale_exponent else self.effective_ridge_scaled
        return {
            "n": self.n,
            "sizes": [int(s) for s in self.sizes],
            "estimate": ESTIMATE,
            "predicted_test_mse": [json_float(v) for v in self.predicted_test_mse],
            "measured_test_mse": [json_float(v) for v in self.measured_test_mse],
            "measured_std": [json_float(v) for v in self.measured_std],
            "error_bars": ERROR_BARS,
            "relative_gap": [json_float(v) for v in self.relative_gap],
            "effective_ridge": [None if kappa is None else json_float(v) for v in self.effective_ridge_scaled],
            "scaled": None if not self.scale_exponent else {
                "exponent": self.scale_exponent,
                "effective_ridge": [json_float(v) for v in self.effective_ridge_scaled]},
            "ridge": self.ridge,
            "splits": self.splits,
            "seed": self.seed,
        }


#: What ``predicted_test_mse`` estimates (``LearningCurve.to_dict()["estimate"]``).
ESTIMATE = ("test MSE on the N - m held-out points of m training points drawn without replacement from the N "
            "given (docs/learning.md §5)")
#: What ``measured_std`` is (``LearningCurve.to_dict()["error_bars"]``).
ERROR_BARS = "measured_std: standard deviation (ddof=1) of the test MSE over the splits"


def _log2_top(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values) & (values != 0.0)])
    return float(np.log2(finite.max())) if finite.size else 0.0


def learning_curve(x: ArrayLike, y: ArrayLike, *, depth: int, a: float | None = None, b: float | None = None,
                   activation: Any = None, sizes: Iterable[int],
                   sigma_w: float | None = None, sigma_b: float = 0.0, ridge: float = 0.0, splits: int = 5,
                   seed: int = 0) -> LearningCurve:
    """Estimated vs measured held-out test error of NTK regression, per training-set size.

    The estimate (:func:`held_out_test_mse`) treats the N given points as a finite pool: the
    eigenvalues of ``K/N`` and ``v_i^2 = |V_i^T Y|^2 / N`` enter, and it predicts the error on
    the ``N - m`` points left out of a training set of ``m`` drawn without replacement. The
    measurement trains ``(K_S + m ridge I)^-1 Y_S`` (pseudo-inverse for ``ridge = 0``, as
    :func:`predict`) on ``splits`` random subsets ``S`` of each size ``m`` (without
    replacement) and tests on the other ``N - m`` points. One kernel and one
    eigen-decomposition of ``K/N`` serve every size. Both are scale-free: the kernel's scale
    is carried as a power of two (only ``effective_ridge`` carries the kernel's unit).

    Parameters
    ----------
    x : array-like of shape (N, m0)
    y : array-like of shape (N,) or (N, k)
    depth, a, b, sigma_w, sigma_b, activation : see :func:`eoc_ntk.kernel`.
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
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, where="learning_curve")
    points = check_data(x)
    n = points.shape[0]
    labels = check_labels(y, n)
    size_arr = _check_sizes(sizes, n)
    ridge = _check_ridge(ridge)
    splits = _check_count(splits, "splits", 1)
    seed = _check_count(seed, "seed", 0)
    kernels, shift = relative_kernels(points, None, model, ("ntk",))
    k = kernels["ntk"]
    eig = kernel_eigen(k, labels.values)
    scaled_ridge = times_two_to(ridge, -shift)  # K = k 2^shift, so K + m ridge I = 2^shift (k + m ridge 2^-shift I)
    predicted: list[float] = []
    kappa_list: list[float] = []
    for m in size_arr:
        mse, kappa = held_out_test_mse(eig.eigenvalues, eig.energy / n, int(m), scaled_ridge * m)
        predicted.append(mse)
        kappa_list.append(kappa)
    means, stds = _measure(k, labels.values, size_arr, scaled_ridge, splits, seed)
    kappas = np.array(kappa_list)
    exponent = 0 if all(v in (0.0, math.inf) or is_normal(times_two_to(v, shift)) for v in kappas) else shift
    return LearningCurve(size_arr, np.array(predicted), means, stds, np.ldexp(kappas, shift - exponent), ridge,
                         splits, seed, n, exponent)


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
