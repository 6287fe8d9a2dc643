"""The NTK for scikit-learn: a kernel (callable, precomputed or Gaussian-process) and a regressor.

::

    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.svm import SVC
    from eoc_ntk.sklearn_kernel import NTKKernel, NTKRegressor

    ntk = NTKKernel(depth=3, activation="relu")
    clf = SVC(kernel=ntk).fit(x_train, y_train)          # sklearn calls ntk(X, Y) with whole matrices
    gp = GaussianProcessRegressor(kernel=ntk, alpha=1e-6).fit(x_train, y_train)   # a GP kernel too
    # or, for any estimator taking kernel="precomputed" (KernelRidge, SVC, SpectralClustering):
    KernelRidge(kernel="precomputed", alpha=1e-3).fit(ntk(x_train), y_train).predict(ntk(x_test, x_train))
    NTKRegressor(depth=3, activation="relu", ridge=1e-3).fit(x_train, y_train).predict(x_test)

:class:`NTKKernel` is a :class:`sklearn.gaussian_process.kernels.Kernel` without hyperparameters
(depth and activation are discrete: choose them with a grid search over ``kernel__depth``), so a
``GaussianProcessRegressor`` uses it as it is, and ``NTKKernel(...) + WhiteKernel()`` lets it fit
the noise level. :class:`NTKRegressor` is :func:`eoc_ntk.predict` as an estimator.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils.validation import check_is_fitted, validate_data

from eoc_ntk.core.activations import parse_activation
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.kernels import kernel
from eoc_ntk.learning.regression import predict

__all__ = ["NTKKernel", "NTKRegressor"]

#: Rows per block when :meth:`NTKKernel.diag` forms ``K(x_i, x_i)``.
_DIAG_BLOCK = 256


class NTKKernel(Kernel):  # type: ignore[misc]  # sklearn ships no type information
    """Infinite-width kernel ``K(X, Y)`` of an MLP, unnormalised (no ``1/n``).

    Parameters
    ----------
    depth : int
        Number of weight layers ``l >= 1``.
    activation : str or (a, b)
        ``"relu"``, ``"abs"``, ``"linear"``, ``"leaky_relu:0.1"``, ``"A,B"`` or ``(a, b)``; or a smooth
        activation, ``"erf"``, ``"tanh"``, ``"gelu"``, ``"silu"`` (``"swish"``).
    kind : {"ntk", "nngp"}
        The NTK (default) or the NNGP kernel.
    sigma_w, sigma_b : float
        Initialisation; default ``sigma_w``: the edge of chaos (``1/sqrt(a^2+b^2)`` for the family,
        solved for this ``sigma_b`` for a smooth activation, which needs ``sigma_b > 0``).
    """

    def __init__(self, depth: int = 3, activation: Any = "relu", kind: str = "ntk", sigma_w: float | None = None,
                 sigma_b: float = 0.0):
        self.depth = depth
        self.activation = activation
        self.kind = kind
        self.sigma_w = sigma_w
        self.sigma_b = sigma_b

    _PARAMS = ("depth", "activation", "kind", "sigma_w", "sigma_b")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> "NTKKernel":
        for name, value in params.items():
            if name not in self._PARAMS:
                raise InvalidParameterError(f"NTKKernel has no parameter {name!r}; it has "
                                            f"{', '.join(self._PARAMS)}", param=name)
            setattr(self, name, value)
        return self

    def __call__(self, X: Any, Y: Any = None, eval_gradient: bool = False) -> Any:
        """Kernel matrix of shape (len(X), len(Y)) (``Y`` defaults to ``X``).

        With ``eval_gradient=True`` (``Y`` must be None) also the gradient with respect to the
        hyperparameters, of shape (len(X), len(X), 0): the kernel has none to optimise.
        """
        act = parse_activation(self.activation)
        k = kernel(X, Y, depth=self.depth, activation=act, sigma_w=self.sigma_w, sigma_b=self.sigma_b,
                   kind=self.kind)
        if not eval_gradient:
            return k
        if Y is not None:
            raise ValueError("the gradient is only defined when Y is None")
        return k, np.empty((k.shape[0], k.shape[0], 0))

    def diag(self, X: Any) -> np.ndarray:
        """``K(x_i, x_i)``, shape (len(X),), formed in blocks of rows (never the whole matrix)."""
        x = np.asarray(X, dtype=float)
        parts = [np.diag(self(x[i:i + _DIAG_BLOCK])) for i in range(0, x.shape[0], _DIAG_BLOCK)]
        return np.concatenate(parts) if parts else np.empty(0)

    def is_stationary(self) -> bool:
        """False: the NTK depends on the input norms and the angle, not on ``x - y``."""
        return False

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"NTKKernel({args})"


class NTKRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]  # sklearn ships no type information
    """Kernel regression with the NTK, :func:`eoc_ntk.predict` as an estimator.

    ``predict(X_test) = K(X_test, X) (K + n ridge I)^-1 y``: the infinite-width network trained
    by gradient flow to convergence (``ridge = 0``: the minimum-norm interpolant), the same as
    ``KernelRidge(alpha=n * ridge, kernel="precomputed")`` on :class:`NTKKernel`'s matrices.

    Parameters
    ----------
    depth : int
        Number of weight layers ``l >= 1``.
    activation : str, dict, (a, b) or Activation
        Any spelling of :func:`eoc_ntk.core.activations.parse_activation` (smooth ones included).
    ridge : float >= 0
        Ridge per training point.
    sigma_w, sigma_b : float
        Initialisation, as for :class:`NTKKernel` (a smooth activation's EOC needs ``sigma_b > 0``).
    """

    def __init__(self, depth: int = 3, activation: Any = "relu", ridge: float = 0.0, sigma_w: float | None = None,
                 sigma_b: float = 0.0):
        self.depth = depth
        self.activation = activation
        self.ridge = ridge
        self.sigma_w = sigma_w
        self.sigma_b = sigma_b

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # targets of shape (n, k) give predictions of shape (n_test, k)
        return tags

    def fit(self, X: Any, y: Any) -> "NTKRegressor":
        """Store the training set (shape (n, m0)) and its targets (shape (n,) or (n, k))."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        parse_activation(self.activation)
        self.X_fit_, self.y_fit_ = X, y
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of shape (len(X),) or (len(X), k), shaped like the training targets."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return predict(self.X_fit_, self.y_fit_, X, depth=self.depth, activation=self.activation, ridge=self.ridge,
                       sigma_w=self.sigma_w, sigma_b=self.sigma_b)
