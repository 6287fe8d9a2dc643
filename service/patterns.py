"""The text grammars of the API as regular expressions, for the OpenAPI document and the checks.

Each pattern is the subset of what :mod:`eoc_ntk.core.activations` and
:func:`eoc_ntk.core.validation.parse_depths` read that the API takes, written so that a value the
pattern accepts is one the parser accepts: numbers have at most 15 digits before and after the
point and a two-digit exponent (so that ``a^2 + b^2`` is finite), an ``A,B`` pair has a nonzero
coefficient, depths have at most 6 digits and no zero. The patterns are enforced where they are
declared (pydantic, FastAPI), so that the document and the service refuse the same texts. They
use the syntax common to ECMA-262 (OpenAPI) and Rust's regex (pydantic-core): no look-around.
"""
from __future__ import annotations

__all__ = ["ACTIVATION_PATTERN", "ACTIVATIONS_PATTERN", "DEPTHS_PATTERN", "NUMBER", "depths_pattern"]


def _any_case(word: str) -> str:
    """``relu`` -> ``[rR][eE][lL][uU]``; ``_`` matches ``_`` or ``-``."""
    return "".join("[-_]" if c == "_" else f"[{c}{c.upper()}]" for c in word)


_EXPONENT = "(?:[eE][+-]?[0-9]{1,2})?"
#: A decimal number of at most 15 + 15 digits and a two-digit exponent.
NUMBER = rf"[+-]?(?:[0-9]{{1,15}}(?:\.[0-9]{{0,15}})?|\.[0-9]{{1,15}}){_EXPONENT}"
#: The same with a nonzero digit (an ``A,B`` pair needs one nonzero coefficient).
_NONZERO = (rf"[+-]?(?:0{{0,14}}[1-9][0-9]{{0,14}}(?:\.[0-9]{{0,15}})?|[0-9]{{0,15}}\.0{{0,14}}[1-9][0-9]{{0,14}})"
            rf"{_EXPONENT}")
_NAMES = "|".join(_any_case(n) for n in ("relu", "abs", "absolute_value", "absolute", "identity", "linear",
                                          "erf", "tanh", "gelu", "silu", "swish"))
_LEAKY = rf"{_any_case('leaky_relu')}(?::{NUMBER})?"
_NAMED = rf"(?:{_LEAKY}|{_NAMES})"
_PAIR = rf"(?:{_NONZERO},{NUMBER}|{NUMBER},{_NONZERO})"

#: One activation: a name (any case, ``-`` for ``_``; the family's or a smooth one), ``leaky_relu:SLOPE``, or ``A,B``.
ACTIVATION_PATTERN = rf"^(?:{_NAMED}|{_PAIR})$"
#: Several activations: groups separated by ``;`` or spaces, each ``A,B`` or names separated by commas.
_GROUP = rf"(?:{_PAIR}|{_NAMED}(?:,{_NAMED})*)"
ACTIVATIONS_PATTERN = rf"^{_GROUP}(?:[; ]{_GROUP})*$"

_DEPTH = "[1-9][0-9]{0,5}"


def depths_pattern(depth: str = _DEPTH, step: str = _DEPTH) -> str:
    """Depths: ``10``, ``1,2,5``, ``1:100`` (both ends included), ``1:200:10`` (a step), joined by
    commas; ``depth`` is the pattern of a depth (a range's ends are depths computed), ``step`` of a
    range's step (which need not be one)."""
    part = rf"{depth}(?::{depth}(?::{step})?)?"
    return rf"^{part}(?:,{part})*$"


#: Depths of at most 6 digits (the grammar the service reads; the document bounds them by EOC_NTK_MAX_DEPTH).
DEPTHS_PATTERN = depths_pattern()
