"""The MLP description: depth, activation ``phi(s) = a*s + b*|s|`` and initialisation.

See docs/math.md §1: ``Delta = b^2 / (a^2 + b^2)``; the edge of chaos (EOC) is
``sigma_w^2 = 1 / (a^2 + b^2)``, ``sigma_b = 0``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from eoc_ntk.core.activations import ACTIVATION_NAMES, activation_coefficients
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.validation import check_depth, check_integer, check_real

__all__ = ["Model", "activation_coefficients", "ACTIVATION_NAMES"]

@dataclass(frozen=True)
class Model:
    """An ``depth``-layer MLP with activation ``phi(s) = a*s + b*|s|`` in NTK parameterisation.

    Parameters
    ----------
    depth : int
        Number of weight layers ``1 <= l <= MAX_DEPTH`` (100,000; ``l - 1`` activations).
    a, b : float
        Activation coefficients, not both zero.
    sigma_w : float or None
        Weight standard deviation; ``None`` means the EOC value ``1/sqrt(a^2+b^2)``.
    sigma_b : float
        Bias standard deviation (0 at the EOC).
    output_dim : int
        Output dimension ``ml``; every eigenvalue of the full NTK has this multiplicity.
        Integers and NumPy integers are accepted (a str or float is refused as a TypeError).
    """

    depth: int
    a: float
    b: float
    sigma_w: float | None = None
    sigma_b: float = 0.0
    output_dim: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", check_depth(self.depth))
        a = check_real(self.a, "a")
        b = check_real(self.b, "b")
        if a == 0.0 and b == 0.0:
            raise InvalidParameterError("a and b are both 0: phi(s) = a*s + b*|s| would be identically zero; "
                                        "give a != 0 or b != 0", param="a")
        if not 1e-290 <= a * a + b * b <= 1e290:
            raise InvalidParameterError(
                f"a^2 + b^2 = {a * a + b * b:.3g} is out of range [1e-290, 1e290] (a={a!r}, b={b!r}): "
                "rescale the activation (the kernel only depends on a/b and scales as 1/(a^2+b^2))", param="a")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        if self.sigma_w is None:
            sigma_w = 1.0 / math.sqrt(a * a + b * b)
        else:
            sigma_w = check_real(self.sigma_w, "sigma_w")
            if not 1e-150 <= sigma_w <= 1e150:
                raise InvalidParameterError("sigma_w must be in [1e-150, 1e150] (a positive standard deviation whose "
                                            f"square is a normal float), got {sigma_w}", param="sigma_w")
        object.__setattr__(self, "sigma_w", sigma_w)
        sigma_b = check_real(self.sigma_b, "sigma_b")
        if sigma_b < 0.0 or sigma_b > 1e150 or 0.0 < sigma_b < 1e-150:
            raise InvalidParameterError("sigma_b must be 0 or in [1e-150, 1e150] (a standard deviation), got "
                                        f"{sigma_b}", param="sigma_b")
        object.__setattr__(self, "sigma_b", sigma_b)
        object.__setattr__(self, "output_dim", check_integer(self.output_dim, "output_dim"))

    @classmethod
    def from_activation(cls, depth: int, name: str, slope: float | None = None, **kwargs: Any) -> "Model":
        """Build a model from a named activation (see :func:`activation_coefficients`)."""
        a, b = activation_coefficients(name, slope)
        return cls(depth, a, b, **kwargs)

    @property
    def delta(self) -> float:
        """``Delta = b^2 / (a^2 + b^2)`` in [0, 1]."""
        return self.b * self.b / (self.a * self.a + self.b * self.b)

    @property
    def chi(self) -> float:
        """``chi = sigma_w^2 (a^2 + b^2)``; exactly 1 when sigma_w is the EOC value to rounding.

        Snapping matters: ``chi^(l-1)`` multiplies the kernel, and ``(1 + 2e-16)^1000``
        would already cost 2e-13 of relative accuracy.
        """
        sigma_w = cast(float, self.sigma_w)  # never None once __post_init__ has run
        chi = sigma_w * sigma_w * (self.a * self.a + self.b * self.b)
        return 1.0 if abs(chi - 1.0) <= 8.9e-16 else chi

    @property
    def sigma_w2(self) -> float:
        """``sigma_w^2``, consistent with :attr:`chi` (``1/(a^2+b^2)`` at the EOC)."""
        return self.chi / (self.a * self.a + self.b * self.b)

    @property
    def is_eoc(self) -> bool:
        """True at the edge of chaos (``chi == 1`` and ``sigma_b == 0``)."""
        return self.sigma_b == 0.0 and self.chi == 1.0

    def canonical(self) -> dict[str, Any]:
        """Hyperparameters with defaults resolved and signs dropped (the kernel depends on a^2, b^2).

        Two models with equal ``canonical()`` have identical kernels; used for cache keys.
        """
        return {
            "depth": self.depth,
            "a": abs(self.a),
            "b": abs(self.b),
            "sigma_w": math.sqrt(self.sigma_w2),  # the EOC value whenever chi rounds to 1
            "sigma_b": self.sigma_b,
        }
