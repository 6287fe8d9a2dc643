"""Gradient descent on the infinite-width network, exactly, from one eigen-decomposition
(docs/learning.md §3).

Conventions (the contract of :func:`dynamics`): the training loss is
``L(f) = (1/2n) sum_i |f(x_i) - y_i|^2``; full-batch gradient descent with learning rate
``eta`` on the infinite-width network moves the residual ``r = f(X) - Y`` on the training
points as ``r_{t+1} = (I - eta K/n) r_t`` (``K`` unnormalised, as :func:`eoc_ntk.kernel`
returns it), from ``r_0 = -Y`` (zero initial outputs). With ``K/n = V diag(lambda) V^T`` and
``e_i = |V_i^T Y|^2`` (summed over outputs)::

    L_t = (1/2n) sum_i (1 - eta lambda_i)^(2t) e_i

so every direction is stable iff ``eta < 2 / lambda_max``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eoc_ntk.core.arrays import ArrayLike
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.jsonsafe import json_float
from eoc_ntk.core.kernels import compute_kernels
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import Model
from eoc_ntk.core.validation import check_data
from eoc_ntk.learning._kernel_eigen import KernelEigen, kernel_eigen

__all__ = ["dynamics", "Dynamics", "DEFAULT_STEPS", "INIT_MODES"]

DEFAULT_STEPS = (0, 1, 10, 100, 1000, 10000)
INIT_MODES = ("zero", "nngp")
#: Loss reduction factors reported by :meth:`Dynamics.to_dict` under ``steps_to``.
REPORTED_FACTORS = (10, 100, 1000)
_MAX_STEPS = 2.0 ** 62


@dataclass(frozen=True, eq=False)
class Dynamics:
    """Training loss of the infinite-width network under full-batch gradient descent.

    Attributes
    ----------
    n : int
        Number of training points.
    outputs : int
        Number of label columns ``k``.
    max_learning_rate : float
        ``2 / lambda_max(K/n)``: the largest stable rate.
    learning_rate : float
        The rate ``eta`` used (default ``1 / lambda_max``).
    steps : ndarray of int, shape (s,)
        Step counts, as given.
    train_loss : ndarray of shape (s,)
        ``L_t`` at each step, exact from the eigen-decomposition (module docstring); ``inf``
        where a rate above ``max_learning_rate`` makes it overflow.
    expected_train_loss : ndarray of shape (s,) or None
        With ``init="nngp"``: the expected loss when the initial outputs are the random
        network's, ``f_0 ~ N(0, Sigma)`` (``Sigma`` the NNGP kernel, independent per output):
        ``(1/2n) sum_i (1 - eta lambda_i)^(2t) (e_i + k V_i^T Sigma V_i)``.
    eigenvalues : ndarray of shape (n,)
        Descending eigenvalues of ``K/n``; the null space's (``<= singular_tolerance(n) *
        lambda_max``) are 0.
    target_share : ndarray of shape (n,)
        Share ``e_i / |Y|^2`` of the labels' energy in each eigen-direction (sums to 1).
    fit_steps : ndarray of shape (n,)
        Per direction ``1 / (eta lambda_i)``, the e-folding time of its residual for small
        ``eta lambda_i``; ``inf`` in the null space.
    unreachable_fraction : float
        Share of ``|Y|^2`` in the null space: the loss never falls below this fraction of
        ``L_0``.
    initial_loss : float
        ``L_0 = |Y|^2 / 2n``.
    init : {"zero", "nngp"}
    """

    n: int
    outputs: int
    max_learning_rate: float
    learning_rate: float
    steps: np.ndarray
    train_loss: np.ndarray
    eigenvalues: np.ndarray
    target_share: np.ndarray
    fit_steps: np.ndarray
    unreachable_fraction: float
    initial_loss: float
    expected_train_loss: np.ndarray | None = None
    init: str = "zero"

    def loss_at(self, t: float) -> float:
        """``L_t`` for any real step count ``t >= 0`` (the formula of the module docstring)."""
        return float(self._loss(np.asarray([float(t)]))[0])

    def _loss(self, t: np.ndarray) -> np.ndarray:
        return self.initial_loss * _decay(self.learning_rate, self.eigenvalues, self.target_share, t)

    def steps_to(self, factor: float) -> float:
        """Smallest step count ``t`` with ``L_t <= L_0 / factor``; ``inf`` when never.

        ``inf`` whenever ``1 / factor`` is at or below :attr:`unreachable_fraction` (the null
        space keeps its share) and, above ``max_learning_rate``, when the growing directions
        take over before the loss gets there. ``L_t`` is a sum of geometric sequences with
        non-negative ratios, hence convex in ``t``: the first crossing is found by bisection
        before the minimum.

        Parameters
        ----------
        factor : float >= 1
        """
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not float(factor) >= 1.0 \
                or not math.isfinite(factor):
            raise InvalidParameterError(f"factor must be a finite real number >= 1, got {factor!r}", param="factor")
        if self.initial_loss == 0.0 or factor == 1.0:
            return 0
        target = self.initial_loss / float(factor)
        gain = (1.0 - self.learning_rate * self.eigenvalues) ** 2
        active = self.target_share > 0.0
        if np.any(gain[active] > 1.0):
            hi = self._argmin_convex()
        else:
            if self.initial_loss * float(np.sum(self.target_share[active & (gain >= 1.0)])) >= target:
                return math.inf
            hi = 1.0
            while self.loss_at(hi) > target:
                hi *= 2.0
                if hi > _MAX_STEPS:
                    return math.inf
        if self.loss_at(hi) > target:
            return math.inf
        lo = 0.0  # L(lo) > target >= L(hi), both integers
        while hi - lo > 1.0:
            mid = math.floor((lo + hi) / 2.0)
            if self.loss_at(mid) > target:
                lo = mid
            else:
                hi = mid
        return int(hi)

    def _argmin_convex(self) -> float:
        """Integer minimiser of the convex sequence ``L_t`` (some direction grows)."""
        def rising(t: float) -> bool:
            return self.loss_at(t + 1.0) >= self.loss_at(t)
        hi = 1.0
        while not rising(hi):
            hi *= 2.0
        lo = 0.0
        if rising(lo):
            return 0.0
        while hi - lo > 1.0:
            mid = math.floor((lo + hi) / 2.0)
            if rising(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict. ``inf`` and ``nan`` become None (as in ``Spectrum.to_dict``): a
        ``fit_steps`` or ``steps_to`` of None means never (the null space), a ``train_loss``
        of None an overflow above ``max_learning_rate``."""
        return {
            "n": self.n,
            "outputs": self.outputs,
            "init": self.init,
            "max_learning_rate": json_float(self.max_learning_rate),
            "learning_rate": json_float(self.learning_rate),
            "steps": [int(s) for s in self.steps],
            "train_loss": [json_float(v) for v in self.train_loss],
            "expected_train_loss": None if self.expected_train_loss is None
            else [json_float(v) for v in self.expected_train_loss],
            "initial_loss": json_float(self.initial_loss),
            "eigenvalues": [json_float(v) for v in self.eigenvalues],
            "target_share": [json_float(v) for v in self.target_share],
            "fit_steps": [json_float(v) for v in self.fit_steps],
            "unreachable_fraction": json_float(self.unreachable_fraction),
            "steps_to": {str(f): json_float(self.steps_to(f)) for f in REPORTED_FACTORS},
        }


def dynamics(x: ArrayLike, y: ArrayLike, *, depth: int, a: float, b: float, sigma_w: float | None = None,
             sigma_b: float = 0.0, learning_rate: float | None = None, steps: Iterable[int] = DEFAULT_STEPS,
             init: str = "zero") -> Dynamics:
    """Exact training loss of the infinite-width network under full-batch gradient descent.

    ``L_t = (1/2n) sum_i (1 - eta lambda_i)^(2t) |V_i^T y|^2`` with ``K/n = V diag(lambda) V^T``
    (docs/learning.md §3): the residual evolves as ``r <- (I - eta K/n) r`` from ``r_0 = -y``.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    y : array-like of shape (n,) or (n, k)
        Targets (regression values, one-hot classes, ...).
    depth, a, b, sigma_w, sigma_b : see :func:`eoc_ntk.kernel`.
    learning_rate : float, optional
        ``eta > 0``; default ``1 / lambda_max(K/n)`` (half the largest stable rate).
    steps : iterable of int >= 0
        Step counts at which to report the loss.
    init : {"zero", "nngp"}
        ``"nngp"`` also reports :attr:`Dynamics.expected_train_loss`, the loss expected from
        random initial outputs (NNGP covariance) instead of zero ones.

    Returns
    -------
    Dynamics

    Raises
    ------
    InvalidParameterError
        On refused arguments (``param`` names the argument).
    """
    model = Model(depth, a, b, sigma_w, sigma_b)
    x = check_data(x)
    labels = check_labels(y, x.shape[0])
    step_arr = _check_steps(steps)
    if init not in INIT_MODES:
        raise InvalidParameterError(f"init must be one of {INIT_MODES}, got {init!r}", param="init")
    kinds = ("ntk", "nngp") if init == "nngp" else ("ntk",)
    kernels = compute_kernels(x, None, model, kinds)
    eig = kernel_eigen(kernels["ntk"], labels.values)
    if not eig.lambda_max > 0.0:
        raise InvalidParameterError(
            f"the NTK of x (shape {x.shape}) is zero: every input row is 0; no gradient step moves the outputs",
            param="x")
    eta = 1.0 / eig.lambda_max if learning_rate is None else _check_rate(learning_rate)
    return _dynamics(eig, labels.values, eta, step_arr, kernels.get("nngp"), init)


def _check_steps(steps: Any) -> np.ndarray:
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise InvalidParameterError(f"steps must be a list of integers >= 0, got {steps!r}", param="steps")
    out = []
    for i, s in enumerate(steps):
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or not float(s).is_integer() or float(s) < 0:
            raise InvalidParameterError(f"steps[{i}] must be an integer >= 0, got {s!r}", param="steps")
        out.append(int(s) if isinstance(s, numbers.Integral) else int(float(s)))
    if not out:
        raise InvalidParameterError("steps is empty; give at least one step count (e.g. [0, 10, 100])", param="steps")
    return np.array(out, dtype=np.int64)


def _check_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or not float(rate) > 0:
        raise InvalidParameterError(
            f"learning_rate must be a finite number > 0, got {rate!r}; omit it for 1/lambda_max", param="learning_rate")
    return float(rate)


def _decay(eta: float, eigenvalues: np.ndarray, weights: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``sum_i (1 - eta lambda_i)^(2t) w_i`` for each step count in ``t`` (shape (s,))."""
    gain = (1.0 - eta * eigenvalues) ** 2
    with np.errstate(over="ignore", invalid="ignore"):
        decay: np.ndarray = np.power(gain[None, :], np.asarray(t, dtype=np.float64)[:, None]) @ weights
    return decay


def _dynamics(eig: KernelEigen, y: np.ndarray, eta: float, steps: np.ndarray, nngp: np.ndarray | None,
              init: str) -> Dynamics:
    n, k = y.shape
    total = float(eig.energy.sum())
    share = eig.energy / total if total > 0.0 else np.zeros_like(eig.energy)
    initial = total / (2.0 * n)
    with np.errstate(divide="ignore"):
        fit = np.where(eig.null, math.inf, 1.0 / (eta * np.where(eig.null, 1.0, eig.eigenvalues)))
    expected = None
    if nngp is not None:
        variance = np.sum(eig.vectors * (nngp @ eig.vectors), axis=0)  # V_i^T Sigma V_i
        expected = _decay(eta, eig.eigenvalues, eig.energy + k * np.maximum(variance, 0.0), steps) / (2.0 * n)
    return Dynamics(
        n=n, outputs=k, max_learning_rate=2.0 / eig.lambda_max, learning_rate=eta, steps=steps,
        train_loss=initial * _decay(eta, eig.eigenvalues, share, steps), eigenvalues=eig.eigenvalues,
        target_share=share, fit_steps=fit, unreachable_fraction=float(share[eig.null].sum()),
        initial_loss=initial, expected_train_loss=expected, init=init,
    )
