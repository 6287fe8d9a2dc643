"""The MLP description: depth, activation and initialisation.

For the paper's family ``phi(s) = a*s + b*|s|`` (docs/math.md §1: ``Delta = b^2 / (a^2 + b^2)``)
the edge of chaos (EOC) is ``sigma_w^2 = 1 / (a^2 + b^2)``, ``sigma_b = 0``. For a smooth
activation (erf, tanh, gelu, silu or ``Activation.custom``, given as ``activation=``) the EOC is
a curve: for the given ``sigma_b``, ``sigma_w=None`` solves ``q* = sigma_w^2 E[phi(sqrt(q*) z)^2]
+ sigma_b^2`` jointly with ``chi = sigma_w^2 E[phi'(sqrt(q*) z)^2] = 1``
(:mod:`eoc_ntk.core._numerics.smooth_eoc`; docs/math.md "Activations beyond the family").
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, cast

from eoc_ntk.core._numerics.smooth_eoc import eoc_point, moments_at, variance_fixed_point, variance_slope
from eoc_ntk.core.activations import (
    ACTIVATION_NAMES,
    Activation,
    SmoothActivation,
    activation_coefficients,
    check_activation_source,
    parse_activation,
)
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.validation import check_depth, check_integer, check_real

__all__ = ["Model", "Activation", "activation_coefficients", "ACTIVATION_NAMES", "model_of"]

#: Default of ``a`` and ``b``: "not given" (a NaN of its own, told apart by identity from a user's NaN).
_UNSET: float = float("nan")


@dataclass(frozen=True)
class Model:
    """An ``depth``-layer MLP with activation ``phi(s) = a*s + b*|s|`` in NTK parameterisation.

    Parameters
    ----------
    depth : int
        Number of weight layers ``1 <= l <= MAX_DEPTH`` (100,000; ``l - 1`` activations).
    a, b : float
        Activation coefficients, not both zero; or give ``activation`` instead.
    sigma_w : float or None
        Weight standard deviation; ``None`` means the EOC value: ``1/sqrt(a^2+b^2)`` for the
        family, the solution of the EOC conditions for this ``sigma_b`` for a smooth activation.
    sigma_b : float
        Bias standard deviation (0 at the family's EOC).
    output_dim : int
        Output dimension ``ml``; every eigenvalue of the full NTK has this multiplicity.
        Integers and NumPy integers are accepted (a str or float is refused as a TypeError).
    activation : str, dict, Activation, optional
        Any spelling of :func:`eoc_ntk.core.activations.parse_activation` instead of ``a, b``
        (``"relu"``, ``"tanh"``, ``Activation.custom(phi, dphi)``). A family member sets ``a, b``
        and leaves ``activation`` None; a smooth one is kept here, with ``a, b`` NaN (family-only
        code refuses it through :attr:`delta`).

    Attributes
    ----------
    q_star : float
        Smooth activations: the fixed point of the variance map (``inf`` when it diverges,
        0 when it collapses); for the family NaN.
    variance_slope : float
        Smooth activations: ``sigma_w^2 d/dq E[phi(sqrt(q) z)^2]`` at ``q*``, the slope of the variance
        map there: ``q*`` attracts every layer's variance below 1 and repels it above (GELU and SiLU at
        small ``sigma_b``; docs/math.md §9); NaN for the family or where ``q*`` is 0 or infinite.
    """

    depth: int
    a: float = _UNSET
    b: float = _UNSET
    sigma_w: float | None = None
    sigma_b: float = 0.0
    output_dim: int = 1
    activation: Any = None
    q_star: float = field(default=math.nan, init=False, compare=False)
    variance_slope: float = field(default=math.nan, init=False, compare=False)
    _chi: float = field(default=math.nan, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", check_depth(self.depth))
        if self.activation is not None:
            act = self._parse_activation(self.activation)
            if isinstance(act, SmoothActivation):
                self._init_smooth(act)
                return
            object.__setattr__(self, "a", act.a)
            object.__setattr__(self, "b", act.b)
            object.__setattr__(self, "activation", None)
        self._init_family()

    def _parse_activation(self, value: Any) -> Activation:
        if self.a is not _UNSET or self.b is not _UNSET:
            raise InvalidParameterError(f"Model got both activation={value!r} and a, b: give either",
                                        param="activation")
        return parse_activation(value)

    def _init_smooth(self, act: SmoothActivation) -> None:
        """Resolve ``sigma_w`` (the EOC for ``sigma_b`` when None), ``q*`` and ``chi`` of a smooth activation."""
        object.__setattr__(self, "activation", act)
        sigma_b = self._checked_sigma_b()
        if self.sigma_w is None:
            point = eoc_point(act.key, act.phi, act.dphi, sigma_b)
            if point is None:
                why = ("at sigma_b = 0 the variance fixed point of an odd saturating activation is q* = 0, so the "
                       "EOC degenerates" if sigma_b == 0.0 else
                       f"the EOC conditions have no solution with q* in [1e-8, 1e3] for sigma_b={sigma_b}")
                raise InvalidParameterError(
                    f"activation {act.label!r} has no edge of chaos here: {why}. Give sigma_b > 0 (e.g. "
                    "sigma_b=0.1), or an explicit sigma_w (off the EOC)", param="sigma_b")
            sw2, q_star = point
            object.__setattr__(self, "sigma_w", math.sqrt(sw2))
            object.__setattr__(self, "q_star", q_star)
            object.__setattr__(self, "_chi", 1.0)
        else:
            sigma_w = self._checked_sigma_w()
            object.__setattr__(self, "sigma_w", sigma_w)
            q_star = variance_fixed_point(act.key, act.phi, act.dphi, sigma_w * sigma_w, sigma_b * sigma_b)
            object.__setattr__(self, "q_star", q_star)
            if math.isfinite(q_star):
                d = moments_at(act.key, act.phi, act.dphi, q_star)[1]
                object.__setattr__(self, "_chi", sigma_w * sigma_w * d)
        object.__setattr__(self, "variance_slope", variance_slope(act.key, act.phi, act.dphi, self.sigma_w2,
                                                                  self.q_star))
        object.__setattr__(self, "output_dim", check_integer(self.output_dim, "output_dim"))

    def _checked_sigma_w(self) -> float:
        sigma_w = check_real(self.sigma_w, "sigma_w")
        if not 1e-150 <= sigma_w <= 1e150:
            raise InvalidParameterError("sigma_w must be in [1e-150, 1e150] (a positive standard deviation whose "
                                        f"square is a normal float), got {sigma_w}", param="sigma_w")
        return sigma_w

    def _checked_sigma_b(self) -> float:
        sigma_b = check_real(self.sigma_b, "sigma_b")
        if sigma_b < 0.0 or sigma_b > 1e150 or 0.0 < sigma_b < 1e-150:
            raise InvalidParameterError("sigma_b must be 0 or in [1e-150, 1e150] (a standard deviation), got "
                                        f"{sigma_b}", param="sigma_b")
        object.__setattr__(self, "sigma_b", sigma_b)
        return sigma_b

    def _init_family(self) -> None:
        if self.a is _UNSET or self.b is _UNSET:
            raise InvalidParameterError("Model needs the activation: give a and b (phi(s) = a*s + b*|s|) or "
                                        "activation= (e.g. 'relu' or 'tanh')", param="activation")
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
        sigma_w = 1.0 / math.sqrt(a * a + b * b) if self.sigma_w is None else self._checked_sigma_w()
        if not 1e-290 <= sigma_w * sigma_w * (a * a + b * b) <= 1e290:
            raise InvalidParameterError(
                f"chi = sigma_w^2 (a^2 + b^2) = {sigma_w:.3g}^2 x {a * a + b * b:.3g} is out of range [1e-290, "
                "1e290]: the kernel scales as chi^(depth-1); move sigma_w toward the edge of chaos "
                f"1/sqrt(a^2+b^2) = {1.0 / math.sqrt(a * a + b * b):.3g}", param="sigma_w")
        object.__setattr__(self, "sigma_w", sigma_w)
        self._checked_sigma_b()
        object.__setattr__(self, "output_dim", check_integer(self.output_dim, "output_dim"))

    @classmethod
    def from_activation(cls, depth: int, name: Any, slope: float | None = None, **kwargs: Any) -> "Model":
        """Build a model from a named activation: the family's (:func:`activation_coefficients`) or a
        smooth one (``"tanh"``, ``Activation.custom(...)``, with ``sigma_b=`` for its EOC)."""
        act = parse_activation(name) if slope is None or not isinstance(name, str) else None
        if isinstance(act, SmoothActivation):
            return cls(depth, activation=act, **kwargs)
        a, b = activation_coefficients(name, slope)
        return cls(depth, a, b, **kwargs)

    def at_depth(self, depth: int) -> "Model":
        """This model with another depth (nothing re-solved: the EOC point is kept exactly)."""
        other = copy.copy(self)
        object.__setattr__(other, "depth", check_depth(depth))
        return other

    @property
    def is_smooth(self) -> bool:
        """True for an activation beyond the family (erf, tanh, gelu, silu, custom)."""
        return self.activation is not None

    @property
    def cacheable(self) -> bool:
        """False for a custom activation: it has no canonical form and is never cached."""
        return self.activation is None or self.activation.cacheable

    def require_family(self, what: str) -> None:
        """Raise :class:`InvalidParameterError` (``param="activation"``) naming ``what`` for a smooth activation."""
        if self.activation is not None:
            raise InvalidParameterError(
                f"{what} is specific to the paper's family phi(s) = a*s + b*|s| and is not defined for activation "
                f"{self.activation.label!r}; use relu, abs, linear, leaky_relu or A,B", param="activation")

    @property
    def delta(self) -> float:
        """``Delta = b^2 / (a^2 + b^2)`` in [0, 1] (family only: refused for a smooth activation)."""
        self.require_family("Delta = b^2/(a^2+b^2)")
        return self.b * self.b / (self.a * self.a + self.b * self.b)

    @property
    def chi(self) -> float:
        """``chi = sigma_w^2 (a^2 + b^2)``; exactly 1 when sigma_w is the EOC value to rounding.

        Snapping matters: ``chi^(l-1)`` multiplies the kernel, and ``(1 + 2e-16)^1000``
        would already cost 2e-13 of relative accuracy.
        """
        if self.activation is not None:
            return self._chi
        sigma_w = cast(float, self.sigma_w)  # never None once __post_init__ has run
        chi = sigma_w * sigma_w * (self.a * self.a + self.b * self.b)
        return 1.0 if abs(chi - 1.0) <= 8.9e-16 else chi

    @property
    def sigma_w2(self) -> float:
        """``sigma_w^2``, consistent with :attr:`chi` (``1/(a^2+b^2)`` at the family's EOC)."""
        if self.activation is not None:
            return cast(float, self.sigma_w) ** 2
        return self.chi / (self.a * self.a + self.b * self.b)

    @property
    def is_eoc(self) -> bool:
        """True at the edge of chaos (family: ``chi == 1`` and ``sigma_b == 0``; smooth: ``sigma_w`` solved)."""
        if self.activation is not None:
            return self._chi == 1.0
        return self.sigma_b == 0.0 and self.chi == 1.0

    def canonical(self) -> dict[str, Any]:
        """Hyperparameters with defaults resolved and signs dropped (the kernel depends on a^2, b^2).

        Two models with equal ``canonical()`` have identical kernels; used for cache keys. A
        smooth built-in gives ``{"depth", "activation": "tanh", "sigma_w", "sigma_b"}``; a custom
        function has no canonical form and is never cached: :class:`InvalidParameterError`
        (``param="activation"``; check :attr:`cacheable` first).
        """
        if self.activation is not None:
            if self.activation.key is None:
                raise InvalidParameterError(
                    f"custom activation {self.activation.label!r} has no canonical form: custom functions are "
                    "core-only and never cached", param="activation")
            return {"depth": self.depth, "activation": self.activation.key, "sigma_w": self.sigma_w,
                    "sigma_b": self.sigma_b}
        return {
            "depth": self.depth,
            "a": abs(self.a),
            "b": abs(self.b),
            "sigma_w": math.sqrt(self.sigma_w2),  # the EOC value whenever chi rounds to 1
            "sigma_b": self.sigma_b,
        }

    def summary(self) -> dict[str, Any]:
        """Resolved hyperparameters for display, for every model (custom ones included).

        The family: ``canonical()`` plus ``"delta"``; a smooth activation: ``"activation"`` (the
        name, ``"custom:NAME"`` for a custom one), ``"sigma_w"``, ``"sigma_b"``, ``"q_star"``, ``"chi"``,
        ``"variance_slope"``.
        """
        if self.activation is None:
            return {**self.canonical(), "delta": self.delta}
        act = self.activation
        return {"depth": self.depth, "activation": act.key or f"custom:{act.label}", "sigma_w": self.sigma_w,
                "sigma_b": self.sigma_b, "q_star": self.q_star, "chi": self.chi,
                "variance_slope": self.variance_slope}


def model_of(depth: int, a: float | None, b: float | None, activation: Any, sigma_w: float | None,
             sigma_b: float, output_dim: int = 1, where: str = "Model") -> Model:
    """The :class:`Model` of a core function's ``a=``, ``b=`` or ``activation=`` (any spelling, smooth ones included).

    Raises
    ------
    InvalidParameterError
        ``param="activation"`` when ``activation`` and ``a`` or ``b`` are both given.
    TypeError
        When neither is given (as for a missing keyword argument).
    """
    check_activation_source(a, b, activation, where)
    if activation is not None:
        return Model(depth, sigma_w=sigma_w, sigma_b=sigma_b, output_dim=output_dim, activation=activation)
    assert a is not None and b is not None  # check_activation_source refused a missing one
    return Model(depth, a, b, sigma_w, sigma_b, output_dim)
