"""The NTK as a kernel for scikit-learn: a callable for ``SVC(kernel=...)`` or a precomputed Gram matrix.

::

    from sklearn.svm import SVC
    from eoc_ntk.sklearn_kernel import NTKKernel

    ntk = NTKKernel(depth=3, activation="relu")
    clf = SVC(kernel=ntk).fit(x_train, y_train)          # sklearn calls ntk(X, Y) with whole matrices
    # or, for any estimator taking kernel="precomputed" (KernelRidge, SVC, SpectralClustering):
    KernelRidge(kernel="precomputed", alpha=1e-3).fit(ntk(x_train), y_train).predict(ntk(x_test, x_train))

No scikit-learn import happens here: the object only follows its conventions (``get_params``,
``set_params``, ``__call__(X, Y=None)``), so that ``clone`` and grid searches over
``kernel__depth`` work.
"""
from __future__ import annotations

import numpy as np

from eoc_ntk.core.activations import parse_activation
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.kernels import kernel

__all__ = ["NTKKernel"]


class NTKKernel:
    """Infinite-width kernel ``K(X, Y)`` of an MLP, unnormalised (no ``1/n``).

    Parameters
    ----------
    depth : int
        Number of weight layers ``l >= 1``.
    activation : str or (a, b)
        ``"relu"``, ``"abs"``, ``"linear"``, ``"leaky_relu:0.1"``, ``"A,B"`` or ``(a, b)``.
    kind : {"ntk", "nngp"}
        The NTK (default) or the NNGP kernel.
    sigma_w, sigma_b : float
        Initialisation; default the edge of chaos (``sigma_w = 1/sqrt(a^2+b^2)``, ``sigma_b = 0``).
    """

    def __init__(self, depth: int = 3, activation="relu", kind: str = "ntk", sigma_w: float | None = None,
                 sigma_b: float = 0.0):
        self.depth = depth
        self.activation = activation
        self.kind = kind
        self.sigma_w = sigma_w
        self.sigma_b = sigma_b

    _PARAMS = ("depth", "activation", "kind", "sigma_w", "sigma_b")

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params) -> "NTKKernel":
        for name, value in params.items():
            if name not in self._PARAMS:
                raise InvalidParameterError(f"NTKKernel has no parameter {name!r}; it has "
                                            f"{', '.join(self._PARAMS)}", param=name)
            setattr(self, name, value)
        return self

    def __call__(self, X, Y=None) -> np.ndarray:
        """Kernel matrix of shape (len(X), len(Y)) (``Y`` defaults to ``X``)."""
        act = parse_activation(self.activation)
        return kernel(X, Y, depth=self.depth, a=act.a, b=act.b, sigma_w=self.sigma_w, sigma_b=self.sigma_b,
                      kind=self.kind)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"NTKKernel({args})"
