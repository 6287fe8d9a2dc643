"""Arrays of numbers in a JSON text, read into float64 NumPy arrays without a Python float per number.

:func:`find_number_arrays` finds the values of the given keys that are arrays of numbers (1-D,
or 2-D with rows of one length) and reads each into a float64 array; a parser of the rest of
the text (a few small fields) then sees a short placeholder in their stead. Only what the JSON
grammar accepts is read here, and only what has one meaning: any array this module does not
read completely (a string, ``NaN``, a number out of the float64 range, a ragged or empty row,
deeper nesting, a syntax error) is left in the text, for the general parser to accept or
refuse with its own message. So the values are the ones a JSON parser gives, and every error
is the general parser's.

Rules:

- a key is found by its bytes ``"key"`` followed by ``:`` and ``[``, outside strings (an even
  number of quotes before it; a text holding an escaped backslash ``\\\\`` is not scanned);
- the array is ``[n, n, ...]`` or ``[[n, ...], [n, ...], ...]``, white space only next to
  brackets and commas, each ``n`` a JSON number (``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``);
- numbers are read in chunks of :data:`CHUNK_BYTES`: short decimals by
  :func:`eoc_ntk.core.decimal_text.parse_decimals`, others by NumPy's C ``fromstring`` (correctly
  rounded, as JSON parsers and ``float`` are); a non-finite result (``1e400``) leaves the array.

Memory while reading an array of ``b`` bytes: its text without white space (at most ``b``), the
float64 result (8 bytes a number) and the temporaries of one chunk.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from eoc_ntk.core.decimal_text import parse_decimals

__all__ = ["CHUNK_BYTES", "NumberArray", "find_number_arrays"]

#: Bytes of numbers read by one pass of NumPy operations (the interpreter lock is free between passes).
CHUNK_BYTES = 64 * 1024
_WS = b" \t\r\n"
#: The bytes an array of numbers may hold.
_SPAN = re.compile(rb"[-+0-9.eE,\[\]\s]*")
# Byte classes of the number grammar: digit, minus, plus, point, exponent, separator ("," between
# cells, ";" between rows), other.
_D, _M, _P, _O, _E, _S, _X = range(7)
_CLASS = np.full(256, _X, dtype=np.uint8)
_CLASS[np.frombuffer(b"0123456789", dtype=np.uint8)] = _D
for _byte, _cls in ((b"-", _M), (b"+", _P), (b".", _O), (b"e", _E), (b"E", _E), (b",", _S), (b";", _S)):
    _CLASS[_byte[0]] = _cls
#: The byte pairs a run of JSON numbers may hold (``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``).
_PAIRS = np.zeros(64, dtype=bool)
for _a, _b in ((_S, _M), (_S, _D), (_M, _D), (_D, _D), (_D, _O), (_D, _E), (_D, _S), (_O, _D), (_E, _D), (_E, _M),
               (_E, _P), (_P, _D)):
    _PAIRS[_a * 8 + _b] = True
_NUMBER_BYTES = np.zeros(256, dtype=bool)
_NUMBER_BYTES[np.frombuffer(b"-+0123456789.eE", dtype=np.uint8)] = True
_WS_BYTES = np.zeros(256, dtype=bool)
_WS_BYTES[np.frombuffer(_WS, dtype=np.uint8)] = True


class NumberArray(NamedTuple):
    """An array of numbers read from ``text[start:stop]`` (the brackets included)."""

    key: str
    start: int
    stop: int
    values: np.ndarray


def find_number_arrays(text: bytes | bytearray, keys: tuple[str, ...], max_arrays: int = 16) -> list[NumberArray]:
    """The arrays of numbers that are values of ``keys`` in the JSON ``text``, in text order.

    Parameters
    ----------
    text : bytes
        A JSON text (not checked here: a syntax error elsewhere is the general parser's to find).
    keys : tuple of str
        Object keys (plain ASCII names) whose array values are read.
    max_arrays : int
        At most this many arrays are read; the rest stay in the text.

    Returns
    -------
    list of NumberArray
        Each with ``values`` of shape (n,) or (n, m), float64, finite.
    """
    if b"\\\\" in text:
        return []  # an escaped backslash: quotes can no longer be told from escaped ones by counting
    pattern = re.compile(rb'"(' + b"|".join(re.escape(k.encode()) for k in keys) + rb')"\s*:\s*(?=\[)')
    found: list[NumberArray] = []
    pos = 0
    while len(found) < max_arrays:
        m = pattern.search(text, pos)
        if m is None:
            break
        pos = m.end()
        if (text.count(b'"', 0, m.start()) - text.count(b'\\"', 0, m.start())) % 2:
            continue  # inside a string
        got = _read_array(text, m.end())
        if got is not None:
            stop, values = got
            found.append(NumberArray(m.group(1).decode(), m.end(), stop, values))
            pos = stop
    return found


def _read_array(text: bytes | bytearray, start: int) -> tuple[int, np.ndarray] | None:
    """``(stop, values)`` of the array of numbers at ``text[start] == "["``, or None."""
    run_end = _SPAN.match(text, start).end()  # type: ignore[union-attr]  # matches the empty string
    span = bytes(text[start:run_end])
    compact = span.translate(None, _WS)
    two_d = compact.startswith(b"[[")
    end = compact.find(b"]]") + 2 if two_d else compact.find(b"]") + 1
    if end < 2 or (two_d and end < 4):
        return None  # not closed within the numbers
    closing = compact.count(b"]", 0, end)
    stop = start + _nth(span, b"]", closing) + 1
    if _split_number(span[:stop - start]):
        return None
    del span
    inner = compact[2:end - 2].replace(b"],[", b";") if two_d else compact[1:end - 1]
    del compact
    if not inner or b"[" in inner or b"]" in inner or (not two_d and b";" in inner):
        return None
    values = _read_cells(inner, two_d)
    if values is None or not np.isfinite(values).all():
        return None
    return stop, values


def _nth(data: bytes, byte: bytes, n: int) -> int:
    """Index of the ``n``-th (from 1) occurrence of ``byte`` in ``data``."""
    return int(np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == byte[0])[n - 1])


def _read_cells(inner: bytes, two_d: bool) -> np.ndarray | None:
    """The numbers of ``inner`` (cells separated by ``,``, rows by ``;``) as (n,) or (n, m), or None
    when a cell is not a JSON number or the rows differ in length."""
    rows = inner.count(b";") + 1
    first = inner.find(b";")
    cols = (inner.count(b",", 0, first) if first >= 0 else inner.count(b",")) + 1
    cells = inner.count(b",") + rows
    if cells != rows * cols:
        return None  # ragged (rows of equal length are checked chunk by chunk below)
    out = np.empty(cells)
    pos, k = 0, 0
    while pos < len(inner):
        end = _cut(inner, pos + CHUNK_BYTES)
        chunk = inner[pos:end] if end < len(inner) else inner[pos:] + b";"
        buf = np.frombuffer(chunk, dtype=np.uint8)
        row_end = buf == 59
        sep = row_end | (buf == 44)
        if not _json_numbers(buf, sep):
            return None
        values = parse_decimals(buf, sep)
        if values is None:
            values = np.fromstring(chunk[:-1].replace(b";", b","), dtype=np.float64, sep=",")
        if values.size != np.count_nonzero(sep) or k + values.size > cells:
            return None
        ends = np.flatnonzero(row_end[sep]) + k + 1
        if ends.size and np.any(ends % cols):
            return None  # a row of another length
        out[k:k + values.size] = values
        pos, k = end, k + values.size
    if k != cells:
        return None
    return out.reshape(rows, cols) if two_d else out


def _cut(inner: bytes, at: int) -> int:
    """The end of a chunk: just after the first separator at or after ``at`` (or the end)."""
    if at >= len(inner):
        return len(inner)
    comma, semi = inner.find(b",", at), inner.find(b";", at)
    ends = [i for i in (comma, semi) if i >= 0]
    return min(ends) + 1 if ends else len(inner)


def _split_number(span: bytes) -> bool:
    """True when white space separates two number bytes (``[1 2]``: not JSON), chunk by chunk."""
    pos = 0
    while pos < len(span):
        end = min(len(span), pos + CHUNK_BYTES)
        while end < len(span) and span[end] in _WS:  # a run of white space is never cut
            end += 1
        cls = np.frombuffer(span, dtype=np.uint8, count=end - pos, offset=pos)
        solid = np.flatnonzero(~_WS_BYTES[cls])
        gap = np.flatnonzero(np.diff(solid) > 1)
        if gap.size and np.any(_NUMBER_BYTES[cls[solid[gap]]] & _NUMBER_BYTES[cls[solid[gap + 1]]]):
            return True
        pos = end
    return False


def _json_numbers(buf: np.ndarray, sep: np.ndarray) -> bool:
    """Every cell of ``buf`` (each ended by a separator) is a JSON number."""
    cls = _CLASS[buf]
    if cls[0] not in (_M, _D) or cls[-1] != _S or not _PAIRS[cls[:-1] * 8 + cls[1:]].all():
        return False
    # A leading zero is the whole integer part: "0", "-0", "0.5", never "01".
    lead = np.flatnonzero(np.concatenate(([True], sep[:-1])))  # the first byte of each cell
    lead += cls[lead] == _M
    zero = lead[buf[lead] == 48]
    if zero.size and np.any(cls[zero + 1] == _D):
        return False
    # At most one point and one exponent a cell, the point before the exponent.
    cell = np.cumsum(sep)
    points, exps = np.flatnonzero(cls == _O), np.flatnonzero(cls == _E)
    for at in (points, exps):
        if at.size > 1 and not np.all(np.diff(cell[at])):
            return False
    if points.size and exps.size:
        exp_at = np.full(int(cell[-1]) + 1, buf.size)
        exp_at[cell[exps]] = exps
        if np.any(points > exp_at[cell[points]]):
            return False
    return True
