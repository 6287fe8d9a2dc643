"""The activation grammar: every spelling of ``phi(s) = a*s + b*|s|`` -> ``(a, b)``, and back to a label.

The one home of activation names for the library, the CLI, the client, the plots, the
service's schemas and the web page (docs/math.md §1: ``Delta = b^2 / (a^2 + b^2)``).

Accepted spellings (names are case-insensitive, ``-`` reads as ``_``):

- a name of :data:`ACTIVATION_NAMES`: ``relu`` ``(1/2, 1/2)``, ``abs`` ``(0, 1)``, ``linear``
  ``(1, 0)``, ``leaky_relu`` with slope ``c`` ``((1+c)/2, (1-c)/2)`` (``c`` defaults to 0.01);
- strings ``"ReLU"``, ``"leaky_relu:0.1"`` and ``"0.3,0.7"`` (two coefficients ``A,B``);
- dicts ``{"name": "leaky_relu", "slope": 0.1}`` and ``{"a": 0.3, "b": 0.7}``;
- a pair ``(a, b)`` or an :class:`Activation`.

Beyond the family, the smooth activations of :data:`SMOOTH_NAMES` (``erf``, ``tanh``, ``gelu``,
``silu``, alias ``swish``; case-insensitive, as a string or ``{"name": ...}``) and any function
given as ``Activation.custom(phi, dphi, name=...)`` parse to a :class:`SmoothActivation`. It is an
:class:`Activation` so that it travels wherever one does, but it has no ``(a, b)``: reading
``.a``, ``.b`` or :func:`resolve_coefficients` of it raises :class:`InvalidParameterError`
(``param="activation"``) naming the activation, so family-only code fails loudly instead of
computing the family's kernel.

:func:`activation_label` is the reverse map, ``(a, b)`` -> ``"ReLU (Δ=0.5)"``, used for every
display (plots, CLI tables, the web page through the API's ``label``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from eoc_ntk.core._numerics.smooth_moments import BUILTIN
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.validation import check_real

__all__ = ["ACTIVATION_NAMES", "SMOOTH_NAMES", "DEFAULT_LEAKY_SLOPE", "Activation", "SmoothActivation",
           "activation_coefficients", "check_activation_source", "is_smooth",
           "parse_activation", "parse_activations", "activation_label", "canonical_activation_name",
           "resolve_coefficients"]

#: The named members of the family, as the API's schema lists them.
ACTIVATION_NAMES = ("relu", "abs", "linear", "leaky_relu")
#: Slope of ``leaky_relu`` when none is given.
DEFAULT_LEAKY_SLOPE = 0.01
#: The smooth activations beyond the family, by canonical name (``swish`` reads as ``silu``).
SMOOTH_NAMES = ("erf", "tanh", "gelu", "silu")
_ALIASES = {"absolute": "abs", "absolute_value": "abs", "identity": "linear", "swish": "silu"}
#: Display names of the named members, by ``(a, b)`` normalised to ``a^2 + b^2 = 1``.
_DISPLAY = {"relu": "ReLU", "abs": "abs", "linear": "linear"}


class Activation(tuple[float, float]):
    """``(a, b)`` of ``phi(s) = a*s + b*|s|`` with the user's label (``"relu"``, ``"a=0.3,b=0.7"``)."""

    label: str

    def __new__(cls, a: float, b: float, label: str) -> "Activation":
        obj = super().__new__(cls, (float(a), float(b)))
        obj.label = label
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        # A tuple subclass pickles through tuple.__getnewargs__, which lacks the label.
        return (Activation, (self.a, self.b, self.label))

    @property
    def a(self) -> float:
        return self[0]

    @property
    def b(self) -> float:
        return self[1]

    def api(self) -> dict[str, Any]:
        """The REST API's activation object ``{"a": .., "b": ..}``."""
        return {"a": self.a, "b": self.b}

    @classmethod
    def custom(cls, phi: Callable[[np.ndarray], np.ndarray], dphi: Callable[[np.ndarray], np.ndarray],
               name: str = "custom") -> "SmoothActivation":
        """Any activation given as a vectorised NumPy function ``phi`` and its derivative ``dphi``.

        Its kernels come from trapezoidal quadrature (:mod:`eoc_ntk.core._numerics.smooth_moments`);
        ``phi`` and ``dphi`` must map a float64 array to one of the same shape, finite for finite
        input, and ``phi`` should grow at most polynomially (the Gaussian moments must exist).
        A custom activation is core-only: it has no canonical form, so it is never cached
        (``Model.canonical()`` refuses it; ``Model.cacheable`` is False).
        """
        if not callable(phi) or not callable(dphi):
            raise InvalidParameterError("Activation.custom(phi, dphi) needs two callables, got "
                                        f"{type(phi).__name__} and {type(dphi).__name__}", param="activation")
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameterError(f"name must be a non-empty string, got {name!r}", param="name")
        probe = np.linspace(-3.0, 3.0, 7)
        for fn, what in ((phi, "phi"), (dphi, "dphi")):
            try:
                out = np.asarray(fn(probe.copy()), dtype=np.float64)
            except Exception as exc:
                raise InvalidParameterError(f"custom activation {name!r}: {what} failed on a float64 array "
                                            f"({exc}); give a vectorised NumPy function", param="activation") from exc
            if out.shape != probe.shape or not np.all(np.isfinite(out)):
                raise InvalidParameterError(f"custom activation {name!r}: {what}(x) must return finite values of "
                                            f"x's shape, got shape {out.shape}", param="activation")
        return SmoothActivation(name.strip(), phi, dphi, None)


class SmoothActivation(Activation):
    """An activation beyond the family: a built-in of :data:`SMOOTH_NAMES` or a custom function.

    Attributes
    ----------
    label : str
        Its name (``"tanh"``, or the custom function's name).
    phi, dphi : callable
        Vectorised ``phi`` and ``phi'`` on float64 arrays.
    key : str or None
        The built-in's canonical name, None for a custom function.
    """

    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    key: str | None

    def __new__(cls, label: str, phi: Callable[[np.ndarray], np.ndarray],
                dphi: Callable[[np.ndarray], np.ndarray], key: str | None) -> "SmoothActivation":
        obj = tuple.__new__(cls, (math.nan, math.nan))
        obj.label, obj.phi, obj.dphi, obj.key = label, phi, dphi, key
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        """A built-in pickles as its name; a custom one as its functions (by reference, or by value
        under cloudpickle for lambdas and ``__main__`` functions, as Dask sends them)."""
        if self.key is not None:
            return (parse_activation, (self.key,))
        return (SmoothActivation, (self.label, self.phi, self.dphi, None))

    def _not_family(self) -> InvalidParameterError:
        return InvalidParameterError(
            f"activation {self.label!r} is not of the family phi(s) = a*s + b*|s|: it has no coefficients "
            "(a, b); this function supports the family only (relu, abs, linear, leaky_relu, A,B)", param="activation")

    @property
    def a(self) -> float:
        raise self._not_family()

    @property
    def b(self) -> float:
        raise self._not_family()

    @property
    def cacheable(self) -> bool:
        """True for built-ins (their name is their canonical form), False for custom functions."""
        return self.key is not None

    def api(self) -> dict[str, Any]:
        """The REST API's activation object ``{"name": "tanh"}`` (a custom function has none)."""
        if self.key is None:
            raise InvalidParameterError(f"custom activation {self.label!r} has no API form: custom functions "
                                        "are core-only", param="activation")
        return {"name": self.key}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SmoothActivation):
            return False
        if self.key is None or other.key is None:
            return self is other
        return self.key == other.key

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(("smooth", self.key)) if self.key is not None else id(self)

    def __repr__(self) -> str:
        return f"SmoothActivation({self.label!r})" if self.key else f"Activation.custom(name={self.label!r})"


def is_smooth(activation: Any) -> bool:
    """True for a :class:`SmoothActivation` (not of the family ``a*s + b*|s|``)."""
    return isinstance(activation, SmoothActivation)


def _smooth(key: str) -> SmoothActivation:
    phi, dphi = BUILTIN[key]
    return SmoothActivation(key, phi, dphi, key)


def _canonical_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


def canonical_activation_name(name: Any) -> Any:
    """``"ReLU"`` -> ``"relu"``, ``"Leaky-ReLU"`` -> ``"leaky_relu"``, ``"identity"`` -> ``"linear"``.

    The case-insensitive reading of a name, for every interface that takes one (the API's
    schema included); anything that is not a string is returned unchanged for the caller's check.
    """
    return _canonical_name(name) if isinstance(name, str) else name


def activation_coefficients(name: str, slope: float | None = None) -> tuple[float, float]:
    """Return ``(a, b)`` of a named activation.

    ``relu`` is ``(1/2, 1/2)``, ``abs`` is ``(0, 1)``, ``linear`` is ``(1, 0)`` and
    ``leaky_relu`` with slope ``c`` is ``((1+c)/2, (1-c)/2)`` (``c`` defaults to 0.01).

    Raises
    ------
    InvalidParameterError
        ``param="name"`` for an unknown name, ``param="slope"`` for a slope that is not a
        finite number or is given to another activation than ``leaky_relu``.
    """
    if not isinstance(name, str):
        raise InvalidParameterError(f"activation name must be a string, got {name!r}", param="name")
    key = _canonical_name(name)
    if key not in ACTIVATION_NAMES:
        raise InvalidParameterError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATION_NAMES)} or give (a, b)", param="name")
    if key != "leaky_relu" and slope is not None:
        raise InvalidParameterError(f"slope only applies to leaky_relu, not to {name!r}", param="slope")
    if key == "relu":
        return 0.5, 0.5
    if key == "abs":
        return 0.0, 1.0
    if key == "linear":
        return 1.0, 0.0
    c = DEFAULT_LEAKY_SLOPE if slope is None else check_real(slope, "slope")
    return (1.0 + c) / 2.0, (1.0 - c) / 2.0


def _from_coefficients(a: Any, b: Any) -> Activation:
    a, b = check_real(a, "a"), check_real(b, "b")
    return Activation(a, b, f"a={a:g},b={b:g}")


def _from_string(text: str) -> Activation:
    s = text.strip()
    if "," in s:
        parts = s.split(",")
        if len(parts) != 2:
            raise InvalidParameterError(
                f"activation {text!r}: give two coefficients 'A,B' for phi(s) = A*s + B*|s|", param="activation")
        try:
            a, b = float(parts[0]), float(parts[1])
        except ValueError as exc:
            raise InvalidParameterError(f"activation {text!r}: 'A,B' must be two numbers",
                                        param="activation") from exc
        return _from_coefficients(a, b)
    name, _, slope_text = s.partition(":")
    key = _canonical_name(name)
    if key in SMOOTH_NAMES and not slope_text:
        return _smooth(key)
    if key not in ACTIVATION_NAMES:
        raise InvalidParameterError(f"unknown activation {text!r}; use one of "
                                    f"{', '.join(ACTIVATION_NAMES + SMOOTH_NAMES)}, leaky_relu:SLOPE or A,B",
                                    param="activation")
    if slope_text and key != "leaky_relu":
        raise InvalidParameterError(f"activation {text!r}: only leaky_relu takes a slope", param="activation")
    try:
        slope = float(slope_text) if slope_text else None
    except ValueError as exc:
        raise InvalidParameterError(f"activation {text!r}: the slope must be a number", param="activation") from exc
    return _named(key, slope)


def _named(key: str, slope: float | None) -> Activation:
    a, b = activation_coefficients(key, slope)
    label = key if key != "leaky_relu" else f"leaky_relu:{DEFAULT_LEAKY_SLOPE if slope is None else slope:g}"
    return Activation(a, b, label)


def parse_activation(value: Any) -> Activation:
    """``(a, b)`` with a label from any accepted spelling (see the module docstring).

    Raises
    ------
    InvalidParameterError
        ``param="activation"`` (or ``"a"``, ``"b"``, ``"slope"``, ``"name"`` for the part refused).
    """
    if isinstance(value, Activation):
        return value
    if isinstance(value, str):
        return _from_string(value)
    if isinstance(value, dict):
        if "name" in value:
            extra = set(value) - {"name", "slope"}
            if extra:
                raise InvalidParameterError(f"activation {value!r}: unexpected keys {sorted(extra)}; "
                                            "a named activation has 'name' and 'slope'", param="activation")
            if not isinstance(value["name"], str):
                raise InvalidParameterError(f"activation name must be a string, got {value['name']!r}", param="name")
            key = _canonical_name(value["name"])
            if key in SMOOTH_NAMES and value.get("slope") is None:
                return _smooth(key)
            return _named(key, value.get("slope"))
        if set(value) == {"a", "b"}:
            return _from_coefficients(value["a"], value["b"])
        raise InvalidParameterError(f"activation {value!r}: give {{'name': ..., 'slope': ...}} or "
                                    "{'a': ..., 'b': ...}", param="activation")
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return _from_coefficients(*value)
    raise InvalidParameterError(f"activation must be a string such as 'relu' or 'A,B', a dict or (a, b), "
                                f"got {type(value).__name__}", param="activation")


def check_activation_source(a: float | None, b: float | None, activation: Any, where: str) -> None:
    """Exactly one of ``activation=`` or both ``a=``, ``b=`` in a core function ``where``.

    Raises
    ------
    InvalidParameterError
        ``param="activation"`` when ``activation`` and ``a`` or ``b`` are both given.
    TypeError
        When neither is given (as for a missing keyword argument).
    """
    if activation is not None:
        if a is not None or b is not None:
            given = " and ".join(name for name, v in (("a", a), ("b", b)) if v is not None)
            raise InvalidParameterError(f"{where}() got both activation={activation!r} and {given}: give either "
                                        "activation= or a= and b=", param="activation")
        return
    if a is None or b is None:
        missing = " and ".join(repr(name) for name, v in (("a", a), ("b", b)) if v is None)
        raise TypeError(f"{where}() missing required keyword argument {missing} (or give activation=, e.g. 'relu')")


def resolve_coefficients(a: float | None, b: float | None, activation: Any, where: str) -> tuple[float, float]:
    """``(a, b)`` of a core function's ``a=``, ``b=`` or ``activation=`` (any spelling of :func:`parse_activation`).

    Raises
    ------
    InvalidParameterError
        ``param="activation"`` when ``activation`` and ``a`` or ``b`` are both given, or for a
        refused spelling.
    TypeError
        When neither is given (as for a missing keyword argument).
    """
    check_activation_source(a, b, activation, where)
    if activation is not None:
        act = parse_activation(activation)
        if isinstance(act, SmoothActivation):
            raise InvalidParameterError(f"{where}() supports the family phi(s) = a*s + b*|s| only, not activation "
                                        f"{act.label!r}", param="activation")
        return act.a, act.b
    assert a is not None and b is not None  # check_activation_source refused a missing one
    return a, b


def parse_activations(value: Any) -> list[Activation]:
    """Several activations separated by ``;`` or spaces, or by commas between names.

    ``"relu,abs"`` is two activations; ``"0.3,0.7"`` (two numbers) is one, and ``"relu;0.3,0.7"``
    mixes both forms. A list is parsed item by item.
    """
    if isinstance(value, (list, tuple)) and not (len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
        return [parse_activation(v) for v in value]
    if not isinstance(value, str):
        return [parse_activation(value)]
    out = []
    for group in value.replace(" ", ";").split(";"):
        if not group:
            continue
        items = group.split(",")
        if len(items) == 2 and all(_is_number(v) for v in items):
            out.append(parse_activation(group))
        else:
            out.extend(parse_activation(item) for item in items if item)
    if not out:
        raise InvalidParameterError("no activation given", param="activations")
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def activation_label(a: float, b: float) -> str:
    """The one display label of ``(a, b)``: ``"ReLU (Δ=0.5)"``, ``"abs (Δ=1)"``, ``"linear (Δ=0)"``,
    ``"leaky ReLU 0.1 (Δ=0.202)"`` or ``"a=0.3, b=0.7 (Δ=0.845)"``.

    The kernel depends on ``a^2, b^2`` up to scale only, so ``(1, 1)`` is also ReLU.
    """
    a, b = float(a), float(b)
    scale = math.hypot(a, b) or 1.0
    an, bn = abs(a) / scale, abs(b) / scale
    delta = b * b / (a * a + b * b) if (a or b) else float("nan")
    for key, shown in _DISPLAY.items():
        a0, b0 = activation_coefficients(key)
        s = math.hypot(a0, b0)
        if abs(an - a0 / s) < 1e-12 and abs(bn - b0 / s) < 1e-12:
            return f"{shown} (Δ={delta:.3g})"
    if a > 0 and abs(a) > abs(b) and b >= 0:
        return f"leaky ReLU {(a - b) / (a + b):.3g} (Δ={delta:.3g})"
    return f"a={a:.3g}, b={b:.3g} (Δ={delta:.3g})"
