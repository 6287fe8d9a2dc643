"""The numeric arrays of a JSON body (``x``, ``x2``, ``y``) read as NumPy arrays, not Python floats.

:func:`cut_arrays` reads those arrays with :func:`eoc_ntk.core.json_arrays.find_number_arrays`
and puts a placeholder string in each one's place: pydantic then parses a body of a few small
fields, and the fields typed :data:`service.schemas.Matrix` or ``LabelsJSON`` take their array
from the validation context (:func:`array_or_list`). An array that is not read (a syntax or type
error, ``NaN``, a ragged row) stays in the body: pydantic refuses it as before, with its message,
when its text is at most :data:`REFUSE_UNREAD_BYTES`; a longer one is refused before pydantic
parses it (:func:`unread_refusals`), with the reader's reason and place.

Each array is held in the narrowest dtype that represents every value exactly (int8, int16,
int32, else float64: :mod:`eoc_ntk.core.compact`), and stays so in the API process (checks,
content hash, store); the computations convert it to float64 where they run.

Memory of a body of ``B`` bytes while it is parsed: the arrays (1 to 8 bytes a number: at
most ``B / 2`` for one-digit integers, about ``0.4 B`` for float64 text) plus at most about
``2 B`` of text copies and chunk temporaries, where pydantic alone held about 110 bytes a number
(5x the body for float64 text, 40x for one-digit numbers).

A syntax error of the shortened body is reported at its place in the body as sent (line and
column), so messages do not depend on the shortening.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationInfo, ValidatorFunctionWrapHandler

from eoc_ntk.core.json_arrays import Unread, read_number_arrays

__all__ = ["ARRAY_FIELDS", "CONTEXT_KEY", "REFUSE_UNREAD_BYTES", "Cut", "cut_arrays", "unread_refusals",
           "array_or_list", "body_position"]

#: The request fields whose arrays are read as NumPy arrays (every field typed Matrix or LabelsJSON).
ARRAY_FIELDS = ("x", "x2", "y")
#: The validation-context key of the arrays, by placeholder.
CONTEXT_KEY = "eoc_ntk_arrays"
#: An array of :data:`ARRAY_FIELDS` that the reader cannot read is refused (400 when the text is
#: not JSON there, else 422 naming the field) when its text (or, its end unknown, the rest of the
#: body) is over this many bytes: pydantic would build a Python object per value, 40x the text.
#: At most this many bytes are left to pydantic, whose messages then stand as they are.
REFUSE_UNREAD_BYTES = 64 * 1024
_POSITION = re.compile(r"at line (\d+) column (\d+)$")


@dataclass
class Cut:
    """A body with its arrays replaced by placeholders, and where they were."""

    body: bytes | bytearray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: ``(start in body, stop in body, start of the placeholder in the shortened body, its length)``
    spans: list[tuple[int, int, int, int]] = field(default_factory=list)
    #: The arrays of :data:`ARRAY_FIELDS` left in the body, and why.
    unread: list[Unread] = field(default_factory=list)


def cut_arrays(body: bytes | bytearray) -> Cut:
    """``body`` with each numeric array of :data:`ARRAY_FIELDS` replaced by a placeholder string."""
    found, unread = read_number_arrays(body, ARRAY_FIELDS)
    if not found:
        return Cut(body, unread=unread)
    nonce = secrets.token_hex(8)
    parts, pos, length = [], 0, 0
    cut = Cut(b"", unread=unread)
    for i, arr in enumerate(found):
        name = f"@eoc-ntk-array:{nonce}:{i}"
        placeholder = b'"' + name.encode() + b'"'
        parts.append(body[pos:arr.start])
        length += arr.start - pos
        cut.spans.append((arr.start, arr.stop, length, len(placeholder)))
        parts.append(placeholder)
        length += len(placeholder)
        cut.arrays[name] = arr.values
        pos = arr.stop
    parts.append(body[pos:])
    cut.body = b"".join(parts)
    return cut


def unread_refusals(cut: Cut, body: bytes | bytearray) -> list[dict]:
    """Pydantic-style errors (``loc`` under ``body``) for the arrays of ``cut`` left in ``body``
    whose text is over :data:`REFUSE_UNREAD_BYTES`: ``json_invalid`` (400) where the text is not
    JSON, else ``value_error`` (422) naming the field; the reason and, where known, the place."""
    errors = []
    for un in cut.unread:
        if un.size <= REFUSE_UNREAD_BYTES:
            continue
        reason = un.reason
        if un.at >= 0:
            line, column = _line_column(body, un.at)
            head, sep, tail = reason.partition(";")
            reason = f"{head} at line {line} column {column}{sep}{tail}"
        if un.syntax:
            error = f"{un.key}: {reason}"
            errors.append({"type": "json_invalid", "loc": ("body",), "msg": f"Invalid JSON: {error}", "input": {},
                           "ctx": {"error": error}})
        else:
            errors.append({"type": "value_error", "loc": ("body", un.key), "msg": reason,
                           "input": {}})
    return errors


def _line_column(text: bytes | bytearray, pos: int) -> tuple[int, int]:
    """Line and column (from 1) of ``text[pos]``."""
    return text.count(b"\n", 0, pos) + 1, pos - (text.rfind(b"\n", 0, pos) + 1) + 1


def array_or_list(ndims: tuple[int, ...]):
    """A pydantic wrap validator: the array of a placeholder (when its dimension is one of
    ``ndims``), else the field's own validation of the value (or of the array as a list)."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        arrays = (info.context or {}).get(CONTEXT_KEY)
        if isinstance(value, str) and arrays and value in arrays:
            arr = arrays[value]
            return arr if arr.ndim in ndims else handler(arr.tolist())
        return handler(value)

    return validate


def body_position(cut: Cut, original: bytes | bytearray, error: str) -> str:
    """A JSON syntax error of ``cut.body`` (``... at line L column C``) placed in ``original``."""
    m = _POSITION.search(error)
    if m is None or not cut.spans:
        return error
    line, column = int(m.group(1)), int(m.group(2))
    at = _line_start(cut.body, line) + column - 1
    shift = 0
    for start, stop, short_at, short_len in cut.spans:
        if at < short_at:
            break
        if at < short_at + short_len:  # inside a placeholder (the body ends there): its array's place
            shift = start - short_at + min(at - short_at, stop - start - 1) - (at - short_at)
            break
        shift = stop - (short_at + short_len)
    pos = at + shift
    line, column = _line_column(original, pos)
    return error[:m.start()] + f"at line {line} column {column}"


def _line_start(text: bytes | bytearray, line: int) -> int:
    pos = 0
    for _ in range(line - 1):
        pos = text.find(b"\n", pos) + 1
    return pos
