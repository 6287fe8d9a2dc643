"""Arrays of numbers in a JSON text, read into NumPy arrays without a Python float per number.

:func:`find_number_arrays` finds the values of the given keys that are arrays of numbers (1-D,
or 2-D with rows of one length) and reads each into an array of the narrowest dtype that holds
every value exactly (int8, int16, int32, else float64: :mod:`eoc_ntk.core.compact`; its float64
conversion is the float64 array, bit for bit); a parser of the rest of
the text (a few small fields) then sees a short placeholder in their stead. Only what the JSON
grammar accepts is read here, and only what has one meaning: any array this module does not
read completely (a string, ``NaN``, a number out of the float64 range, a ragged or empty row,
deeper nesting, a syntax error) is left in the text, for the general parser to accept or
refuse with its own message. So the values are the ones a JSON parser gives;
:func:`read_number_arrays` also says why each array of a key was not read, and where when the
place is known (:class:`Unread`), for a caller that refuses a long one before a general parser
builds an object per value.

Rules:

- a key is found by its bytes ``"key"`` followed by ``:`` and ``[``, outside strings (an even
  number of quotes before it; a text holding an escaped backslash ``\\\\`` is not scanned);
- the array is ``[n, n, ...]`` or ``[[n, ...], [n, ...], ...]``, white space only next to
  brackets and commas, each ``n`` a JSON number (``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``);
- numbers are read in chunks of :data:`CHUNK_BYTES`: short decimals by
  :func:`eoc_ntk.core.decimal_text.parse_decimals`, others by NumPy's C ``fromstring`` (correctly
  rounded, as JSON parsers and ``float`` are); a non-finite result (``1e400``) leaves the array;
- the array starts as int8 and is widened (int16, int32, float64) at the first chunk holding a
  value its dtype cannot hold exactly (a fraction, ``-0``, a larger magnitude).

Memory while reading an array of ``b`` bytes: its text without white space (at most ``b``), the
result (1, 2, 4 or 8 bytes a number; while it is widened, the old and the new array) and the
temporaries of one chunk. The densest text (``0,1,0,...``: 2 bytes a number) gives half a byte
of int8 per byte of text, where float64 was four.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from eoc_ntk.core.compact import COMPACT_DTYPES, exact_dtype, wider
from eoc_ntk.core.decimal_text import parse_decimals

__all__ = ["CHUNK_BYTES", "NumberArray", "Unread", "find_number_arrays", "read_number_arrays"]

#: Bytes of numbers read by one pass of NumPy operations (the interpreter lock is free between passes).
CHUNK_BYTES = 64 * 1024
_WS = b" \t\r\n"
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
#: The bytes an array of numbers may hold.
_SPAN_BYTES = _NUMBER_BYTES.copy()
_SPAN_BYTES[np.frombuffer(b",[] \t\r\n", dtype=np.uint8)] = True
_WS_BYTES = np.zeros(256, dtype=bool)
_WS_BYTES[np.frombuffer(_WS, dtype=np.uint8)] = True


class NumberArray(NamedTuple):
    """An array of numbers read from ``text[start:stop]`` (the brackets included)."""

    key: str
    start: int
    stop: int
    values: np.ndarray


class Unread(NamedTuple):
    """An array at ``text[start]`` (``"["``) that is not read, and why.

    ``size``: its text in bytes where its end was found, else the rest of the text from ``start``
    (a general parser reads on from there); ``reason``: what is wrong and the fix, without the key,
    its first clause (up to ``;``) the one that ``at`` places; ``at``: the index in the text where,
    or -1; ``syntax``: the text is not JSON there."""

    key: str
    start: int
    size: int
    reason: str
    at: int
    syntax: bool


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
        Each with ``values`` of shape (n,) or (n, m), finite, of dtype int8, int16, int32 or
        float64 (:func:`eoc_ntk.core.compact.exact_dtype` of all its values).
    """
    return read_number_arrays(text, keys, max_arrays)[0]


def read_number_arrays(text: bytes | bytearray, keys: tuple[str, ...],
                       max_arrays: int = 16) -> tuple[list[NumberArray], list[Unread]]:
    """:func:`find_number_arrays`, and the arrays of ``keys`` it does not read (:class:`Unread`:
    why, found by the same reader; at most ``max_arrays`` of each), in text order."""
    if b"\\\\" in text:
        return [], []  # an escaped backslash: quotes can no longer be told from escaped ones by counting
    pattern = re.compile(rb'"(' + b"|".join(re.escape(k.encode()) for k in keys) + rb')"\s*:\s*(?=\[)')
    found: list[NumberArray] = []
    unread: list[Unread] = []
    pos = 0
    while len(found) < max_arrays and len(unread) < max_arrays:
        m = pattern.search(text, pos)
        if m is None:
            break
        pos = m.end()
        if (text.count(b'"', 0, m.start()) - text.count(b'\\"', 0, m.start())) % 2:
            continue  # inside a string
        got = _read_array(text, m.end())
        if isinstance(got, Unread):
            unread.append(got._replace(key=m.group(1).decode(), start=m.end()))
        else:
            stop, values = got
            found.append(NumberArray(m.group(1).decode(), m.end(), stop, values))
            pos = stop
    return found, unread


def _unread(reason: str, size: int, at: int = -1, syntax: bool = False) -> Unread:
    return Unread("", 0, size, reason, at, syntax)


def _read_array(text: bytes | bytearray, start: int) -> tuple[int, np.ndarray] | Unread:
    """``(stop, values)`` of the array of numbers at ``text[start] == "["``, or why not."""
    run = _run_end(text, start)
    rest = len(text) - start
    span = np.frombuffer(memoryview(text)[start:run], dtype=np.uint8)  # a view: no copy
    spaced = _white_space(span)
    if spaced is None:
        return _unread("two numbers are separated by white space only; separate them with a comma", rest, syntax=True)
    # The array without white space: the text itself where it has none (no copy).
    compact, base = (_solid(span), 0) if spaced else (text, start)
    two_d = compact.startswith(b"[[", base)
    end = compact.find(b"]]", base, base + span.size) + 2 if two_d else compact.find(b"]", base, base + span.size) + 1
    if end < base + 2 or (two_d and end < base + 4):
        return _open_end(text, start, run)  # not closed within the numbers
    stop = end if not spaced else _after_nth_bracket(text, start, compact.count(b"]", base, end))
    lo, hi = (base + 2, end - 2) if two_d else (base + 1, end - 1)
    breaks = compact.count(b"],[", lo, hi)
    if hi <= lo:
        return _unread("the array is empty; give at least one value", stop - start)
    if not compact.count(b"[", lo, hi) == compact.count(b"]", lo, hi) == breaks or (breaks and not two_d):
        return _unread(_NESTED, rest)  # its end is not known: the first "]]" may close a deeper array
    return _read_cells(compact, lo, hi, breaks + 1, two_d, stop, stop - start)


#: Why an array with brackets that do not enclose rows of numbers is not read.
_NESTED = ("arrays nested deeper than rows of numbers, or rows mixed with numbers; give a list of rows, each a "
           "list of numbers (3-D data? flatten each point into one row)")
#: The bytes that begin a JSON value other than a number or an array.
_OTHER_VALUE = frozenset(b'"{tfnNIi')


def _open_end(text: bytes | bytearray, start: int, run: int) -> Unread:
    """Why the array at ``start`` is not closed within its run of number bytes (ending at ``run``)."""
    rest = len(text) - start
    if run == len(text):
        return _unread("the text ends inside the array; close it with ]", rest, run, syntax=True)
    if text.count(b"[", start, run) <= text.count(b"]", start, run):
        return _unread(_NESTED, rest)  # closed, the last value of an array of rows a number
    if text[run] in _OTHER_VALUE:
        return _unread("a value is not a finite JSON number; NaN, Infinity, true, false, null, strings and objects "
                       "are not numbers: send numbers only, with missing values imputed or their rows dropped",
                       rest, run)
    return _unread(f"{chr(text[run])!r} is not JSON here; an array of numbers holds numbers, commas and brackets",
                   rest, run, syntax=True)


def _run_end(text: bytes | bytearray, start: int) -> int:
    """The end of the run of bytes an array of numbers may hold from ``start``, chunk by chunk."""
    view = np.frombuffer(text, dtype=np.uint8)
    for pos in range(start, view.size, CHUNK_BYTES):
        other = np.flatnonzero(~_SPAN_BYTES[view[pos:pos + CHUNK_BYTES]])
        if other.size:
            return pos + int(other[0])
    return view.size


def _chunk(size: int) -> int:
    """Bytes of one chunk of ``size`` bytes of text: at most :data:`CHUNK_BYTES` and about 1/64 of
    the text (the temporaries of a chunk, about 30 bytes a byte, stay a fraction of the text)."""
    return min(CHUNK_BYTES, max(4096, size // 64))


def _after_nth_bracket(text: bytes | bytearray, start: int, n: int) -> int:
    """The index after the ``n``-th ``]`` from ``start`` (there are at least ``n``), chunk by chunk."""
    pos = start
    while True:
        k = text.count(b"]", pos, pos + CHUNK_BYTES)
        if k >= n:
            part = np.frombuffer(memoryview(text)[pos:pos + CHUNK_BYTES], dtype=np.uint8)
            return pos + int(np.flatnonzero(part == 93)[n - 1]) + 1
        n, pos = n - k, pos + CHUNK_BYTES


def _white_space(span: np.ndarray) -> bool | None:
    """Whether ``span`` holds white space; None when white space separates two number bytes
    (``[1 2]``: not JSON). Chunk by chunk."""
    pos, spaced, size = 0, False, _chunk(span.size)
    while pos < span.size:
        end = min(span.size, pos + size)
        while end < span.size and _WS_BYTES[span[end]]:  # a run of white space is never cut
            end += 1
        part = span[pos:end]
        ws = _WS_BYTES[part]
        if ws.any():
            spaced = True
            num = _NUMBER_BYTES[part]
            before = num[:-1][~ws[:-1] & ws[1:]]  # the byte before each run of white space: a number's?
            after = num[1:][ws[:-1] & ~ws[1:]]  # and the byte after it
            m = min(before.size, after.size)
            if np.any(before[:m] & after[:m]):
                return None
        pos = end
    return spaced


def _solid(span: np.ndarray) -> bytearray:
    """The bytes of ``span`` without white space, in one buffer (filled chunk by chunk)."""
    out = bytearray(span.size)
    n, size = 0, _chunk(span.size)
    for pos in range(0, span.size, size):
        part = span[pos:pos + size]
        kept = part[~_WS_BYTES[part]]
        out[n:n + kept.size] = kept.tobytes()
        n += kept.size
    del out[n:]
    return out


def _read_cells(compact: bytes | bytearray, lo: int, hi: int, rows: int, two_d: bool,
                stop: int, size: int) -> tuple[int, np.ndarray] | Unread:
    """The numbers of ``compact[lo:hi]`` (cells separated by ``,``, rows by ``],[``) as (n,) or
    (n, m) (with ``stop``), or why not (``size``: the array's text in bytes): a cell is not a JSON
    number or not finite, or the rows differ in length."""
    first = compact.find(b"],[", lo, hi)
    cols = compact.count(b",", lo, first if first >= 0 else hi) + 1
    cells = compact.count(b",", lo, hi) + 1
    if cells != rows * cols:
        return _ragged(compact, lo, hi, cols, size)  # (rows of equal length are checked chunk by chunk below)
    out = np.empty(cells, dtype=COMPACT_DTYPES[0])
    chunk_bytes = _chunk(hi - lo)
    pos, k = lo, 0
    while pos < hi:
        end = _cut(compact, pos + chunk_bytes, hi)
        chunk = bytes(compact[pos:end]).replace(b"],[", b";") + (b";" if end == hi else b"")
        buf = np.frombuffer(chunk, dtype=np.uint8)
        row_end = buf == 59
        sep = row_end | (buf == 44)
        if not _json_numbers(buf, sep):
            return _unread(_MALFORMED, size, syntax=True)
        values = parse_decimals(buf, sep)
        if values is None:
            values = np.fromstring(chunk[:-1].replace(b";", b","), dtype=np.float64, sep=",")
        if values.size != np.count_nonzero(sep) or k + values.size > cells:
            return _unread(_MALFORMED, size, syntax=True)
        if not np.isfinite(values).all():
            return _unread("a value is out of the float64 range (magnitude over 1.8e308)", size)
        ends = np.flatnonzero(row_end[sep]) + k + 1
        if ends.size and np.any(ends % cols):
            return _ragged(compact, lo, hi, cols, size)
        dtype = wider(out.dtype, exact_dtype(values))
        if dtype != out.dtype:  # a value the array's dtype cannot hold: widen what is read so far
            out = _widened(out, k, dtype)
        out[k:k + values.size] = values  # exact: every value fits ``dtype``
        pos, k = end, k + values.size
    if k != cells:
        return _unread(_MALFORMED, size, syntax=True)
    return stop, out.reshape(rows, cols) if two_d else out


_MALFORMED = "a number is malformed; JSON numbers are -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?"


def _ragged(compact: bytes | bytearray, lo: int, hi: int, cols: int, size: int) -> Unread:
    """The first row (from 1) of ``compact[lo:hi]`` whose length is not ``cols``, chunk by chunk."""
    chunk_bytes = _chunk(hi - lo)
    pos, k, row, last = lo, 0, 0, 0  # k: cells so far; last: cells through the last row end
    while pos < hi:
        end = _cut(compact, pos + chunk_bytes, hi)
        buf = np.frombuffer(bytes(compact[pos:end]).replace(b"],[", b";") + (b";" if end == hi else b""),
                            dtype=np.uint8)
        sep = (buf == 59) | (buf == 44)
        ends = np.flatnonzero((buf == 59)[sep]) + k + 1
        lengths = np.diff(ends, prepend=last)
        bad = np.flatnonzero(lengths != cols)
        if bad.size:
            return _unread(f"the rows are ragged: row {row + int(bad[0]) + 1} has {int(lengths[bad[0]])} values, row 1 "
                           f"has {cols}; every row holds the same number of values", size)
        if ends.size:
            last, row = int(ends[-1]), row + ends.size
        pos, k = end, k + int(np.count_nonzero(sep))
    return _unread(f"the rows are ragged (row 1 has {cols} values); every row holds the same number of values", size)


def _widened(out: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray:
    """``out`` (its first ``k`` values set) as an array of the wider ``dtype``."""
    new = np.empty(out.size, dtype=dtype)
    new[:k] = out[:k]
    return new


def _cut(compact: bytes | bytearray, at: int, hi: int) -> int:
    """The end of a chunk: just after the first separator (``,`` or ``],[``) at or after ``at``, or ``hi``."""
    if at >= hi:
        return hi
    comma = compact.find(b",", at, hi)
    if comma < 0:
        return hi
    return comma + 2 if compact[comma - 1] == 93 else comma + 1  # "],[": cut after the "["


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
