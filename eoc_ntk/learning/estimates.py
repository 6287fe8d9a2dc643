"""Spectral estimates of the test error of kernel ridge regression (docs/learning.md §5).

:func:`eigenlearning_test_mse` is the cited estimate for i.i.d. samples of a continuous
population; :func:`held_out_test_mse` the one derived for what :func:`eoc_ntk.learning_curve`
measures: a training set drawn without replacement from a finite pool, tested on the rest.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from eoc_ntk.core.arrays import ArrayLike

__all__ = ["eigenlearning_test_mse", "held_out_test_mse"]


def eigenlearning_test_mse(eigenvalues: ArrayLike, target_power: ArrayLike, m: int,
                           ridge: float) -> tuple[float, float]:
    """Eigenlearning estimate of the population test MSE of kernel ridge regression on ``m`` samples.

    Simon, Dickens, Karkada, DeWeese (2021), "The eigenlearning framework: a conservation law
    perspective on kernel regression and wide neural networks" (eqs. for ``kappa``, ``L_i``,
    ``E_0``); the same estimate as Bordelon, Canatar, Pehlevan (2020) "Spectrum dependent
    learning curves in kernel regression" and Jacot, Simsek, Spadaro, Hongler, Gabriel (2020)
    "Kernel alignment risk estimator". It models i.i.d. samples from a continuous population;
    :func:`held_out_test_mse` is the estimate for a finite pool (what :func:`learning_curve`
    measures).

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
            return m - float(np.sum(lam / (lam + kappa))) - ridge / kappa
        kappa = _solve_log(excess, (float(lam.sum()) + ridge) / m)
    learn = np.where(positive, lam / (lam + kappa), 0.0) if kappa > 0.0 else positive.astype(np.float64)
    denominator = m - float(np.sum(learn * learn))
    residual = float(np.sum((1.0 - learn) ** 2 * power))
    if denominator <= 0.0:
        return (math.inf if residual > 0.0 else 0.0), kappa
    return m / denominator * residual, kappa


def held_out_test_mse(eigenvalues: ArrayLike, target_power: ArrayLike, m: int,
                      ridge: float) -> tuple[float, float]:
    """Estimate of the held-out test MSE of kernel ridge regression trained on ``m`` of ``N`` points.

    The population is a finite pool of ``N`` points, the training set ``m`` of them drawn
    without replacement, the test set the other ``N - m`` (derived in docs/learning.md §5: the
    training kernel is the pool's compressed by a uniformly random projection of rank ``m``,
    taken free of the kernel's eigenbasis):

    * ``kappa > 0`` solves ``kappa (m - d) = delta (1 - d / N)``, ``d = sum_i L_i``,
      ``L_i = lambda_i / (lambda_i + kappa)``;
    * ``Q = (m - d)(N - d) + (N - m) sum_i L_i (1 - L_i)``;
    * held-out test MSE ``= N m / Q * sum_i (1 - L_i)^2 v_i^2``.

    For ``N -> inf`` it is :func:`eigenlearning_test_mse`; at ``delta = 0`` it is that estimate
    times ``N / (N - m)`` (the training points, fitted exactly, are out of the test set).

    Parameters
    ----------
    eigenvalues : ndarray of shape (N,)
        Eigenvalues ``lambda_i >= 0`` of ``K/N`` over the pool.
    target_power : ndarray of shape (N,)
        ``v_i^2 = |V_i^T Y|^2 / N`` (summed over outputs).
    m : int in [1, N - 1]
    ridge : float
        ``delta >= 0`` (``inf`` allowed: nothing is learnt), added to the unnormalised training
        kernel: ``K_S + delta I``.

    Returns
    -------
    (test_mse, kappa) : tuple of float
        ``kappa = 0`` when ``ridge = 0`` and ``m >= rank`` (every non-null direction learnt;
        the estimate is ``inf`` at ``m = rank`` unless the null space holds no target power).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    power = np.asarray(target_power, dtype=np.float64)
    n = int(lam.shape[0])
    positive = lam > 0.0
    rank = int(positive.sum())
    if math.isinf(ridge):
        return float(power.sum()), math.inf
    if ridge == 0.0 and m >= rank:
        kappa = 0.0
    else:
        def excess(log_kappa: float) -> float:
            kappa = math.exp(log_kappa)
            d = float(np.sum(lam / (lam + kappa)))
            return (m - d) - ridge / kappa * (1.0 - d / n)
        kappa = _solve_log(excess, 2.0 * (float(lam.sum()) + ridge) / m)
    learn = np.where(positive, lam / (lam + kappa), 0.0) if kappa > 0.0 else positive.astype(np.float64)
    d = float(learn.sum())
    q = (m - d) * (n - d) + (n - m) * float(np.sum(learn * (1.0 - learn)))
    residual = float(np.sum((1.0 - learn) ** 2 * power))
    if q <= 0.0:
        return (math.inf if residual > 0.0 else 0.0), kappa
    return n * m / q * residual, kappa


def _solve_log(excess: Callable[[float], float], kappa_hi: float) -> float:
    """The root ``kappa`` of ``excess(log kappa)`` (negative below it, positive at ``kappa_hi``);
    0 when it lies below the smallest positive float (a ridge below float64's resolution of K)."""
    hi = math.log(kappa_hi) + 1e-9
    while excess(hi) < 0.0:
        hi += 10.0
    lo = hi - 1.0
    while excess(lo) >= 0.0:
        lo -= 10.0
        if lo < -740.0:
            return 0.0
    return math.exp(brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))
