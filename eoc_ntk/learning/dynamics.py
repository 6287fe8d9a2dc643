"""Gradient descent on the infinite-width network, exactly, from one eigen-decomposition
(docs/learning.md §3).

Conventions (the contract of :func:`dynamics`): the training loss is
``L(f) = (1/2n) sum_i |f(x_i) - y_i|^2``; full-batch gradient descent with learning rate
``eta`` on the infinite-width network moves the residual ``r = f(X) - Y`` on the training
points as ``r_{t+1} = (I - eta K/n) r_t`` (``K`` unnormalised, as :func:`eoc_ntk.kernel`
returns it), from ``r_0 = -Y`` (zero initial outputs). With ``K/n = V diag(lambda) V^T`` and
``e_i = |V_i^T Y|^2`` (summed over outputs)::

    L_t = (1/2n) sum_i (1 - eta lambda_i)^(2t) e_i

so every direction shrinks iff ``eta < 2 / lambda_max``: ``max_learning_rate``, the largest rate
at which the linearised, infinite-width model converges (finite networks may converge above it,
through a catapult; docs/learning.md §7).
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
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import model_of
from eoc_ntk.core.validation import check_data
from eoc_ntk.learning._kernel_eigen import KernelEigen, kernel_eigen
from eoc_ntk.learning._scale import is_normal, relative_kernels, times_two_to

__all__ = ["dynamics", "Dynamics", "DEFAULT_STEPS", "INIT_MODES"]

DEFAULT_STEPS = (0, 1, 10, 100, 1000, 10000)
INIT_MODES = ("zero", "nngp")
#: Loss reduction factors reported by :meth:`Dynamics.to_dict` under ``steps_to``.
REPORTED_FACTORS = (10, 100, 1000)
_MAX_STEPS = 2.0 ** 62
#: Largest step count: 2^53, the integers a float64 holds exactly (the loss is computed in float64).
MAX_STEPS = 2 ** 53


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
        ``2 / lambda_max(K/n)``: the largest rate at which the linearised, infinite-width model
        converges (finite networks trained above it may still converge, through a catapult:
        docs/learning.md §7). A property; refused (``InvalidParameterError``, ``param=
        "max_learning_rate"``) where it leaves float64 (see :attr:`scale_exponent`).
    learning_rate : float
        The rate ``eta`` used (default ``1 / lambda_max``); a property, refused as above.
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
        lambda_max``) are 0. A property, refused (``param="eigenvalues"``) where they leave
        float64's normal range.
    scale_exponent : int
        0 whenever the eigenvalues and rates are normal float64 numbers (then the ``*_scaled``
        attributes are the values themselves). Otherwise (inputs near 1e-155 or 1e150,
        ``chi^(l-1)`` far from 1) the power of two ``p`` the kernel's scale carries: the
        eigenvalues are ``eigenvalues_scaled * 2^p`` and the rates ``*_scaled * 2^-p``.
    eigenvalues_scaled : ndarray of shape (n,)
    learning_rate_scaled : float
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
    learning_rate_scaled: float
    steps: np.ndarray
    train_loss: np.ndarray
    eigenvalues_scaled: np.ndarray
    target_share: np.ndarray
    fit_steps: np.ndarray
    unreachable_fraction: float
    initial_loss: float
    expected_train_loss: np.ndarray | None = None
    init: str = "zero"
    scale_exponent: int = 0
    given_learning_rate: float | None = None

    @property
    def max_learning_rate_scaled(self) -> float:
        """``2 / eigenvalues_scaled[0]``: :attr:`max_learning_rate` times ``2^scale_exponent``."""
        return 2.0 / float(self.eigenvalues_scaled[0])

    @property
    def max_learning_rate(self) -> float:
        """``2 / lambda_max(K/n)``; refused (``param="max_learning_rate"``) outside float64."""
        return self._rate("max_learning_rate", self.max_learning_rate_scaled)

    @property
    def learning_rate(self) -> float:
        """The rate used; refused (``param="learning_rate"``) outside float64."""
        if self.given_learning_rate is not None:
            return self.given_learning_rate
        return self._rate("learning_rate", self.learning_rate_scaled)

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of ``K/n``; refused (``param="eigenvalues"``) outside float64's normal range."""
        if self.scale_exponent:
            top = math.log2(float(self.eigenvalues_scaled[0])) + self.scale_exponent
            raise InvalidParameterError(
                f"the eigenvalues of K/n reach about 2^{top:.0f} (10^{top * math.log10(2):.0f}), outside float64's "
                f"normal range: they are eigenvalues_scaled * 2^scale_exponent (scale_exponent = "
                f"{self.scale_exponent})", param="eigenvalues")
        return self.eigenvalues_scaled

    def _rate(self, name: str, scaled: float) -> float:
        if not self.scale_exponent:
            return scaled
        log2 = math.log2(scaled) - self.scale_exponent if scaled > 0.0 else -math.inf
        raise InvalidParameterError(
            f"{name} is about 2^{log2:.0f} (10^{log2 * math.log10(2):.0f}), outside float64: it is {name}_scaled * "
            f"2^-scale_exponent = {scaled:.17g} * 2^{-self.scale_exponent}. The train loss at a fraction of it is "
            "scale-free: omit learning_rate for half of it", param=name)

    def loss_at(self, t: float) -> float:
        """``L_t`` for any real step count ``t >= 0`` (the formula of the module docstring)."""
        return float(self._loss(np.asarray([float(t)]))[0])

    def _loss(self, t: np.ndarray) -> np.ndarray:
        return self.initial_loss * _decay(self.learning_rate_scaled, self.eigenvalues_scaled, self.target_share, t)

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
        gain = _gain(self.learning_rate_scaled, self.eigenvalues_scaled)
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
        of None an overflow above ``max_learning_rate``. ``max_learning_rate``,
        ``learning_rate`` and ``eigenvalues`` are None where they leave float64; ``scaled`` then
        holds them with the power of two: ``{"exponent": p, "eigenvalues": [...] (times 2^p),
        "max_learning_rate", "learning_rate" (times 2^-p)}`` (None when ``p = 0``)."""
        p = self.scale_exponent
        given = self.given_learning_rate
        return {
            "n": self.n,
            "outputs": self.outputs,
            "init": self.init,
            "max_learning_rate": None if p else json_float(self.max_learning_rate_scaled),
            "learning_rate": json_float(given) if given is not None else None if p
            else json_float(self.learning_rate_scaled),
            "steps": [int(s) for s in self.steps],
            "train_loss": [json_float(v) for v in self.train_loss],
            "expected_train_loss": None if self.expected_train_loss is None
            else [json_float(v) for v in self.expected_train_loss],
            "initial_loss": json_float(self.initial_loss),
            "eigenvalues": [None if p else json_float(v) for v in self.eigenvalues_scaled],
            "scaled": None if not p else {
                "exponent": p,
                "eigenvalues": [json_float(v) for v in self.eigenvalues_scaled],
                "max_learning_rate": json_float(self.max_learning_rate_scaled),
                "learning_rate": json_float(self.learning_rate_scaled)},
            "target_share": [json_float(v) for v in self.target_share],
            "fit_steps": [json_float(v) for v in self.fit_steps],
            "unreachable_fraction": json_float(self.unreachable_fraction),
            "steps_to": {str(f): json_float(self.steps_to(f)) for f in REPORTED_FACTORS},
        }


def dynamics(x: ArrayLike, y: ArrayLike, *, depth: int, a: float | None = None, b: float | None = None,
             activation: Any = None, sigma_w: float | None = None,
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
    depth, a, b, sigma_w, sigma_b, activation : see :func:`eoc_ntk.kernel`.
    learning_rate : float, optional
        ``eta > 0``; default ``1 / lambda_max(K/n)`` (half of ``max_learning_rate``).
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
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, where="dynamics")
    x = check_data(x)
    labels = check_labels(y, x.shape[0])
    step_arr = _check_steps(steps)
    if init not in INIT_MODES:
        raise InvalidParameterError(f"init must be one of {INIT_MODES}, got {init!r}", param="init")
    kinds = ("ntk", "nngp") if init == "nngp" else ("ntk",)
    kernels, shift = relative_kernels(x, None, model, kinds)  # K = kernels["ntk"] 2^shift
    eig = kernel_eigen(kernels["ntk"], labels.values)
    if not eig.lambda_max > 0.0:
        raise InvalidParameterError(
            f"the NTK of x (shape {x.shape}) is zero: every input row is 0; no gradient step moves the outputs",
            param="x")
    given = None if learning_rate is None else _check_rate(learning_rate)
    eta = 1.0 / eig.lambda_max if given is None else times_two_to(given, shift)  # eta lambda is scale-free
    nngp = None if "nngp" not in kernels else kernels["nngp"]
    return _dynamics(eig, labels.values, eta, step_arr, nngp, init, shift, given)


def _check_steps(steps: Any) -> np.ndarray:
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise InvalidParameterError(f"steps must be a list of integers >= 0, got {steps!r}", param="steps")
    out = []
    for i, s in enumerate(steps):
        count = _step_count(s)
        if count is None:
            raise InvalidParameterError(f"steps[{i}] must be an integer >= 0, got {s!r}", param="steps")
        if count > MAX_STEPS:
            raise InvalidParameterError(f"steps[{i}] is over the largest step count 2^53 = {MAX_STEPS} "
                                        "(the integers a float64 holds exactly)", param="steps")
        out.append(count)
    if not out:
        raise InvalidParameterError("steps is empty; give at least one step count (e.g. [0, 10, 100])", param="steps")
    return np.array(out, dtype=np.int64)


def _step_count(value: Any) -> int | None:
    """``value`` as a step count (an integer >= 0; integral floats count), None when it is not one.
    An integer beyond float range is taken as it is (``float()`` would overflow)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        count = int(value)
    elif float(value).is_integer():
        count = int(float(value))
    else:
        return None
    return count if count >= 0 else None


def _check_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or not float(rate) > 0:
        raise InvalidParameterError(
            f"learning_rate must be a finite number > 0, got {rate!r}; omit it for 1/lambda_max", param="learning_rate")
    return float(rate)


def _decay(eta: float, eigenvalues: np.ndarray, weights: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``sum_i (1 - eta lambda_i)^(2t) w_i`` for each step count in ``t`` (shape (s,))."""
    gain = _gain(eta, eigenvalues)
    with np.errstate(over="ignore", invalid="ignore"):
        decay: np.ndarray = np.power(gain[None, :], np.asarray(t, dtype=np.float64)[:, None]) @ weights
    return decay


def _gain(eta: float, eigenvalues: np.ndarray) -> np.ndarray:
    """``(1 - eta lambda_i)^2``; 1 in the null space even for an infinite ``eta`` (a rate beyond float64
    in the kernel's units), ``inf`` where it overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(eigenvalues > 0.0, (1.0 - eta * eigenvalues) ** 2, 1.0)


def _dynamics(eig: KernelEigen, y: np.ndarray, eta: float, steps: np.ndarray, nngp: np.ndarray | None, init: str,
              shift: int, given: float | None) -> Dynamics:
    """The dynamics from the eigen-decomposition of ``k/n`` with ``K = k 2^shift`` and ``eta`` in units of
    ``2^-shift`` (``nngp``: the NNGP kernel in the same units)."""
    n, k = y.shape
    total = float(eig.energy.sum())
    share = eig.energy / total if total > 0.0 else np.zeros_like(eig.energy)
    initial = total / (2.0 * n)
    with np.errstate(divide="ignore", over="ignore"):
        fit = np.where(eig.null, math.inf, 1.0 / (eta * np.where(eig.null, 1.0, eig.eigenvalues)))
    expected = None
    if nngp is not None:
        variance = np.sum(eig.vectors * (nngp @ eig.vectors), axis=0)  # V_i^T Sigma V_i, in units of 2^shift
        variance = np.ldexp(np.maximum(variance, 0.0), shift)  # finite: the core refuses kernels beyond float64
        expected = _decay(eta, eig.eigenvalues, eig.energy + k * variance, steps) / (2.0 * n)
    p = _scale_exponent(eig.eigenvalues, shift)
    return Dynamics(
        n=n, outputs=k, learning_rate_scaled=times_two_to(eta, p - shift), steps=steps,
        train_loss=initial * _decay(eta, eig.eigenvalues, share, steps),
        eigenvalues_scaled=np.ldexp(eig.eigenvalues, shift - p), target_share=share, fit_steps=fit,
        unreachable_fraction=float(share[eig.null].sum()), initial_loss=initial, expected_train_loss=expected,
        init=init, scale_exponent=p, given_learning_rate=given,
    )


def _scale_exponent(eigenvalues: np.ndarray, shift: int) -> int:
    """0 when every positive eigenvalue ``lambda 2^shift`` and ``2 / lambda_max`` are normal float64
    numbers, else ``shift``."""
    positive = eigenvalues[eigenvalues > 0.0]
    top, bottom = float(positive[0]), float(positive[-1])
    fits = is_normal(times_two_to(top, shift)) and is_normal(times_two_to(bottom, shift)) \
        and is_normal(times_two_to(2.0 / top, -shift))
    return 0 if fits else shift
