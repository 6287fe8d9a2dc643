"""JSON text to Python values: orjson first, and for large bodies orjson alone.

:func:`loads` is ``json.loads``, faster: orjson (about 6x faster than the standard library),
falling back to pydantic's parser and then the standard library for anything orjson refuses
(``NaN``, numbers that overflow, other encodings), so such bodies get exactly the answer they
got before. The one difference: integers beyond 64 bits become floats (a depth of 10^30 is
then refused as "not a valid integer" instead of as over the depth limit; a 4xx either way).

Bodies over :data:`OFF_LOOP_BYTES` are parsed by orjson alone (:func:`loads_large`): no
fallback to a slower parser (a 21 MB body with a ``NaN`` took 28 s, and 17x the body in
memory). orjson stops at the first character it refuses, so a refusal costs at most one
orjson pass. What it refuses that the standard library accepts is answered from its error
alone: ``NaN``/``Infinity`` (every number of every request must be finite, so the body would
be refused anyway) is a 422 naming the key, the row and column (for ``x``) and the line and
column of the body; a number beyond float64 or a lone surrogate is malformed JSON.

No FastAPI here: :mod:`service.jsonchild` runs this in a child process.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .errors import BodyRefused

try:
    import orjson
except ImportError:  # optional speed-up: the standard library is always correct
    orjson = None  # type: ignore[assignment]
try:
    from pydantic_core import from_json
except ImportError:  # pydantic < 2.5
    from_json = None  # type: ignore[assignment]

__all__ = ["loads", "loads_large", "request_loads", "media_type", "is_json_media", "OFF_LOOP_BYTES"]

#: Bodies longer than this are parsed by orjson alone (:func:`loads_large`), in a child process
#: (:mod:`service.jsonchild`), never on the event loop.
OFF_LOOP_BYTES = 1 << 20
#: The literals the standard library reads as non-finite floats (and orjson refuses).
_NON_FINITE = (b"NaN", b"-Infinity", b"Infinity")
#: A JSON key just before a colon, read backwards from a refused literal (bounded window).
_KEY_BEFORE = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]{0,63})"\s*:\s*$')


def media_type(content_type: str | None, default: str = "") -> str:
    """The media type of a ``Content-Type`` header, lower case, without its parameters."""
    return (content_type or default).split(";")[0].strip().lower()


def is_json_media(media: str) -> bool:
    """``application/json`` or any ``+json`` type."""
    return media == "application/json" or media.endswith("+json")


def loads(body: bytes) -> Any:
    """``json.loads(body)``, the same result, faster for large documents."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN, 1e400, UTF-16 ...: pydantic's parser (2.5x faster), else the standard library
    if from_json is not None and isinstance(body, (bytes, bytearray)):
        try:
            return from_json(body, allow_inf_nan=True)
        except ValueError:
            pass  # let the standard library decide, with its messages
    return json.loads(body)


def loads_large(body: bytes) -> Any:
    """orjson's parse of a large body, without a fallback: what orjson refuses is refused.

    Raises
    ------
    BodyRefused
        A ``NaN``, ``Infinity`` or ``-Infinity`` literal (422, naming the key and position).
    json.JSONDecodeError
        Anything else orjson refuses (FastAPI answers it as malformed JSON), with its message
        and position.
    """
    if orjson is None:  # no fast parser installed: the standard library, correct but slower
        return json.loads(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        literal = _non_finite_at(body, exc.pos)
        if literal is not None:
            raise _not_finite(body, exc.pos, literal, exc.lineno, exc.colno) from None
        raise json.JSONDecodeError(_NESTING if "depth limit" in exc.msg else
                                   _NOT_UTF8 if "UTF-8" in exc.msg else exc.msg, "", exc.pos) from None


def _non_finite_at(body: bytes, pos: int) -> str | None:
    """The non-finite literal orjson stopped at (it stops after the sign of ``-Infinity``)."""
    for literal in _NON_FINITE:
        if body.startswith(literal, pos) or (literal == b"-Infinity" and pos > 0
                                             and body.startswith(literal, pos - 1)):
            return literal.decode()
    return None


def _not_finite(body: bytes, pos: int, literal: str, line: int, col: int) -> BodyRefused:
    """The 422 of a non-finite literal at ``pos``: the key it belongs to (the nearest one before
    it, read in a window of 256 bytes before the array or value holding it) and, for an array,
    its index. Each step is a bounded slice or one C-level count over the body."""
    start = body.rfind(b":", 0, pos)  # keys precede values; numbers hold no colon
    key = None
    if start >= 0:
        m = _KEY_BEFORE.search(body, max(0, start - 256), start + 1)
        key = m.group(1).decode() if m else None
    field = ".".join(_enclosing_keys(body, m.start()) + [key]) if key and m else "body"
    where = f"line {line}, column {col} of the body"
    if key is not None:
        opening = body.find(b"[", start, pos)
        if opening >= 0 and body.startswith(b"[", opening + 1):  # a matrix: row and column
            row_start = body.rfind(b"[", opening + 1, pos)
            row = body.count(b"[", opening + 1, pos) - 1
            column = body.count(b",", row_start, pos)
            where = f"row {row}, column {column} ({where})"
        elif opening >= 0:  # a vector
            where = f"index {body.count(b',', opening, pos)} ({where})"
    return BodyRefused(f"{field} must be finite, found {literal} at {where}: JSON has no NaN or Infinity; "
                         "drop or impute missing values (every number must be finite)", field=field)


_NESTING = ("the body nests arrays or objects too deeply; x must be a 2-D array "
            "(a list of points, each a list of numbers)")
_NOT_UTF8 = "the body is not UTF-8 text; send JSON encoded as UTF-8"


def _enclosing_keys(body: bytes, pos: int, levels: int = 3, window: int = 4096) -> list[str]:
    """Keys of the objects around ``pos`` (``["model"]`` for ``sigma_w``), outermost first,
    looked for within ``window`` bytes before ``pos`` (the small objects of a request)."""
    keys: list[str] = []
    lo = max(0, pos - window)
    while len(keys) < levels:
        depth, i = 0, pos - 1
        while i >= lo:  # back to the unmatched "{" of the object holding pos
            c = body[i]
            if c in b"}]":
                depth += 1
            elif c in b"{[":
                if depth == 0:
                    break
                depth -= 1
            i -= 1
        if i < lo or body[i] != ord("{"):
            break
        m = _KEY_BEFORE.search(body, max(lo, i - 256), i)
        if m is None:
            break
        keys.insert(0, m.group(1).decode())
        pos = m.start()
    return keys


def request_loads(body: bytes) -> Any:
    """:func:`loads`, where bodies that are not JSON text at all (bad UTF-8, nesting deeper than
    the parser's recursion limit) raise :class:`json.JSONDecodeError` too, with a message that
    says so: FastAPI then answers them as malformed JSON naming the body (not a bare 400)."""
    try:
        return loads_large(body) if len(body) > OFF_LOOP_BYTES else loads(body)
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                   "send JSON encoded as UTF-8", "", 0) from exc
    except RecursionError as exc:
        raise json.JSONDecodeError(_NESTING, "", 0) from exc
