"""The rules of the request schemas that plain field types cannot state: the depth text grammar,
"exactly one of" and "not both" between fields, the examples, written into each request model's
JSON schema so that the OpenAPI document says what the service checks; the schema of numeric data
and JSON Schema's integers (``3.0`` is one).
"""
from __future__ import annotations

import re

from pydantic import BeforeValidator, ValidationInfo

from eoc_ntk import MAX_DEPTH
from eoc_ntk.core.validation import MAX_ABS_VALUE, parse_depths

from .examples import EXAMPLES
from .patterns import DEPTHS_PATTERN

__all__ = ["depths_from_text", "depths_before_validation", "DEPTHS_SCHEMA", "one_of", "not_both", "RULES",
           "request_schema", "INTEGRAL", "DATA_NUMBER", "ROWS_SCHEMA"]

DEPTH_NUMBER = re.compile(r"\d+")


def _integral(value):
    """A JSON number without a fractional part (``3.0``) as the integer it is (JSON Schema's
    ``integer``); anything else as it is, for the strict check (no text, no ``true``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: After an integer's ``Field(strict=True, ...)``: JSON ``3`` or ``3.0``, never ``3.5``, ``"3"`` or
#: ``true`` (placed after the constraints, so that the schema keeps them).
INTEGRAL = BeforeValidator(_integral)

#: An entry of data or labels: |value| <= MAX_ABS_VALUE, so that squared norms stay finite.
DATA_NUMBER = {"type": "number", "minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE}
#: Numbers in rows, each row at least one (the schema says so; the service's own checks refuse an
#: empty matrix or row with a message that names the fix). The configured limits (rows, numbers per
#: row) are written into the served document (service.document).
ROWS_SCHEMA = {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": DATA_NUMBER}}


def depths_from_text(text: str, max_count: int | None = None) -> list[int]:
    """``"1:100"``, ``"1:200:10"``, ``"1,2,5"`` -> sorted depths (``eoc_ntk.core.validation.parse_depths``).

    Numbers above ``eoc_ntk.MAX_DEPTH`` are refused before any range is expanded, so a text
    such as ``"1:10000000000"`` costs nothing; more than ``max_count``
    (``EOC_NTK_MAX_SWEEP_DEPTHS``) depths are refused as they are counted, before they are expanded.
    """
    too_large = [int(v) for v in DEPTH_NUMBER.findall(text) if len(v) > 6 or int(v) > MAX_DEPTH]
    if too_large:
        raise ValueError(f"depths {text[:80]!r}: {too_large[0]} is over the largest depth {MAX_DEPTH}")
    try:
        return parse_depths(text, max_count)
    except ValueError as exc:
        if max_count is not None and "the most one sweep takes" in str(exc):
            raise ValueError(f"{exc} (EOC_NTK_MAX_SWEEP_DEPTHS)") from None
        raise


def depths_before_validation(value, info: ValidationInfo):
    """Text depths through the one grammar before the list is validated (its errors keep ``depths.<i>``);
    the validation context's ``max_sweep_depths`` bounds them while they are counted."""
    if isinstance(value, str):
        if not 1 <= len(value) <= 1000:
            raise ValueError(f"depths as text must have 1 to 1000 characters, got {len(value)}")
        if not re.match(DEPTHS_PATTERN, value):
            raise ValueError(f"depths {value[:80]!r}: give depths >= 1 such as \"1:100\", \"1:200:10\" or \"1,2,5\" "
                             "(no spaces, no leading zeros)")
        return depths_from_text(value, (info.context or {}).get("max_sweep_depths"))
    if isinstance(value, list) and not value:
        raise ValueError("give at least one depth")
    return value


#: The schema of ``depths``: a list of depths or the text form.
DEPTHS_SCHEMA = {"anyOf": [
    {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
    {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": DEPTHS_PATTERN,
     "examples": ["1:100", "1:200:10", "1,2,5"]}]}


def one_of(*fields: tuple[str, str]) -> dict:
    """Exactly one of ``fields`` (name, JSON type) is given (not null)."""
    return {"oneOf": [{"required": [name], "properties": {name: {"type": kind}}} for name, kind in fields]}


def not_both(*fields: tuple[str, str]) -> dict:
    """Not all of ``fields`` (name, JSON type) are given (not null)."""
    return {"not": {"required": [name for name, _ in fields],
                    "properties": {name: {"type": kind} for name, kind in fields}}}


#: The rules between fields that each request model checks (its model validators), by model name.
RULES = {
    "_Data": one_of(("x", "array"), ("dataset_id", "string")),
    "_LabelledData": one_of(("y", "array"), ("labels_id", "string")),
    "KernelsIn": not_both(("x2", "array"), ("x2_dataset_id", "string")),
    "SweepsIn": not_both(("y", "array"), ("labels_id", "string")),
}


def request_schema(schema: dict, cls) -> None:
    """The rules of the model and its bases (``allOf``) and its example, in its JSON schema."""
    rules = [RULES[k.__name__] for k in reversed(cls.__mro__) if k.__name__ in RULES]
    if rules:
        schema["allOf"] = rules
    if cls.__name__ in EXAMPLES:
        schema["examples"] = [EXAMPLES[cls.__name__]]
