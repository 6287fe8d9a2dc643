"""Points from CSV text: NumPy for plain files, a line-by-line reader for the messages.

The rules (:mod:`eoc_ntk.core.point_files`): UTF-8 (a byte-order mark is skipped), one point per
line, cells separated by commas (or by white space on a line without commas), every cell a plain
decimal number of at most :data:`MAX_CELL_CHARS` characters (no ``nan``, ``inf`` or header line),
``#`` starts a comment line, blank lines only at the end.

:func:`read_csv` first checks the bytes with C-level operations only (``bytes.translate``,
substring search, counts): ASCII digits, signs, points, exponents, commas and white space, no
blank line before the last point, no cell longer than the limit, at most ``max_n`` lines; such a
file is parsed in chunks of :data:`_CHUNK_BYTES` (the parsers hold the interpreter lock while
they parse: other threads, such as a server's event loop, run between chunks): lines of short
decimals (at most 15 digits, no exponent) by :func:`~eoc_ntk.core.decimal_text.parse_decimals`
(whole-array NumPy operations, exact, about 4x ``loadtxt`` on one-digit cells), any other
chunk, and every chunk after it, by ``numpy.loadtxt`` (a C parser since NumPy 1.23). Anything else,
and anything ``loadtxt`` refuses, is read by :func:`_read_lines`, which applies the rules one
cell at a time and says which row and column breaks which rule; it starts at the line of the
first byte no plain file holds, the lines before it read by the C parser, so that an error late
in a large file costs one C pass and one line of Python. Both readers give the same numbers
(``float`` and ``loadtxt`` round decimal text the same, correctly).
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np

from eoc_ntk.core.decimal_text import parse_decimals
from eoc_ntk.core.errors import InvalidParameterError

__all__ = ["MAX_CELL_CHARS", "read_csv"]

#: Longest CSV cell (a float64 needs at most 24 significant characters; 64 leaves room for zeros).
MAX_CELL_CHARS = 64
# No nested or overlapping quantifiers: the match is linear in the cell.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: The bytes of a plain file: what :func:`_read_plain` hands to the C parser.
_PLAIN = b"0123456789.eE+-, \t\r\n"
#: Cell bytes -> "a", separators -> " " (for the longest-cell search).
_CELLS = bytes(32 if chr(c) in ", \t\r\n" else 97 for c in range(256))
_TOO_LONG = b"a" * (MAX_CELL_CHARS + 1)
_BOM = b"\xef\xbb\xbf"
#: Bytes of CSV parsed by one call of the C parser (about 20 ms on one core).
_CHUNK_BYTES = 256 * 1024
#: One line and its end, as ``str.splitlines`` splits them.
_LINE = re.compile(r"([^\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*)(\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]?)")


class UnreadableCSV(InvalidParameterError):
    """The bytes are not UTF-8 text."""


def read_csv(data: bytes, max_n: int | None = None, name: str = "x") -> np.ndarray | list[list[float]]:
    """The points of CSV bytes (a byte-order mark skipped): a float64 array of shape (n, m0), or, from
    the line reader, the rows as lists of floats.

    ``max_n``: a plain file of more lines is refused before it is parsed (``param=name``).

    Raises
    ------
    UnreadableCSV
        Not UTF-8.
    InvalidParameterError
        A rule is broken (``param="data"``), or more than ``max_n`` points (``param=name``).
    """
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    body = data.rstrip()
    if not body:
        raise InvalidParameterError("the CSV data hold no data points", param="data")
    other = body.translate(None, _PLAIN)
    if not other:
        plain = _read_plain(body, max_n, name)
        return plain if plain is not None else _read_lines(data)
    first = min(body.find(bytes([c])) for c in set(other))
    start = body.rfind(b"\n", 0, first) + 1  # the line of the first byte a plain file does not hold
    head = _read_plain(body[:start - 1], max_n, name) if start else None
    if start and head is None:
        return _read_lines(data)
    _read_lines(body[start:], first_row=body.count(b"\n", 0, start) + 1, seen_rows=head is not None)
    return _read_lines(data)  # the line reader accepted the rest (e.g. comments): read it all by its rules


def _read_plain(body: bytes, max_n: int | None, name: str) -> np.ndarray | None:
    """The points of ``body`` (plain bytes, no trailing white space) by the C parser, or None when a
    rule may be broken (the line reader then decides)."""
    if body.count(b"\r") != body.count(b"\r\n"):
        return None  # a lone carriage return ends a line for the line reader, not for loadtxt
    squeezed = body.translate(None, b" \t\r")
    if not squeezed or b"\n\n" in squeezed or squeezed.startswith(b"\n") or squeezed.endswith(b"\n"):
        return None  # a blank line before the last point
    del squeezed
    if _TOO_LONG in body.translate(_CELLS):
        return None  # a cell over the limit
    rows = body.count(b"\n") + 1
    if max_n is not None and rows > max_n:
        raise InvalidParameterError(f"{name} has n = {rows} points, over the limit {max_n} (EOC_NTK_MAX_N)",
                                    param=name)
    delimiter = "," if b"," in body else None
    first = body[:body.find(b"\n")] if rows > 1 else body
    out = np.empty((rows, first.count(b",") + 1 if delimiter else len(first.split())))
    row, pos, fast = 0, 0, True
    while pos < len(body):  # in chunks: the C parser holds the interpreter lock for one chunk at a time
        end = body.find(b"\n", pos + _CHUNK_BYTES)
        end = len(body) if end < 0 else end + 1
        part = _read_decimals(body[pos:end], out.shape[1]) if fast else None
        fast = part is not None  # after a chunk of long numbers, the rest goes to loadtxt directly
        part = _loadtxt(body[pos:end], delimiter) if part is None else part
        if part is None:
            return None
        if part.shape[1] != out.shape[1] or row + part.shape[0] > rows:
            return None  # ragged
        out[row:row + part.shape[0]] = part
        row, pos = row + part.shape[0], end
    return out if row == rows else None


def _loadtxt(chunk: bytes, delimiter: str | None) -> np.ndarray | None:
    """The points of whole lines of plain CSV by NumPy's C parser, or None when it refuses them."""
    try:
        return np.loadtxt(io.BytesIO(chunk), dtype=np.float64, delimiter=delimiter, comments=None, ndmin=2,
                          encoding="latin-1")
    except ValueError:  # a cell that is no number, an empty cell, mixed separators, ragged rows
        return None


def _read_decimals(chunk: bytes, columns: int) -> np.ndarray | None:
    """Whole lines of ``columns`` comma-separated short decimals by :func:`parse_decimals` (a few
    NumPy passes over the bytes), or None (also for white space: ``loadtxt`` splits those)."""
    buf = np.frombuffer(chunk if chunk.endswith(b"\n") else chunk + b"\n", dtype=np.uint8)
    newline = buf == 10
    sep = newline | (buf == 44)
    values = parse_decimals(buf, sep)
    if values is None or values.size % columns:
        return None
    row_ends = np.flatnonzero(newline[sep])  # the cells that end a line
    if not np.array_equal(row_ends, np.arange(columns - 1, values.size, columns)):
        return None  # ragged
    return values.reshape(-1, columns)


def _lines(text: str, first_row: int = 1) -> Iterator[tuple[int, str]]:
    """``(row number, line)`` as ``text.splitlines()`` gives them, one at a time."""
    pos, row = 0, first_row
    while pos < len(text):
        m = _LINE.match(text, pos)
        assert m is not None  # the pattern matches the empty string
        yield row, m.group(1)
        pos, row = m.end(), row + 1


def _read_lines(data: bytes, first_row: int = 1, seen_rows: bool = False) -> list[list[float]]:
    """The rows of CSV bytes by the rules, one cell at a time, refusing the first rule broken.

    ``first_row``: the number of the first line (for the messages); ``seen_rows``: points came
    before it (a non-number in the first point suggests a header line)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableCSV(f"the CSV data are not UTF-8 ({exc})", param="data") from exc
    rows: list[list[float]] = []
    blank = None
    for i, line in _lines(text, first_row):
        if not line.strip():  # blank lines are allowed at the end only: refused once any line follows
            blank = i if blank is None else blank
            continue
        if blank is not None:
            raise InvalidParameterError(f"CSV row {blank} is blank; give one data point per line, no blank lines",
                                        param="data")
        if line.lstrip().startswith("#"):
            continue
        rows.append(_cells(i, line, seen_rows or bool(rows)))
    if not rows and not seen_rows:
        raise InvalidParameterError("the CSV data hold no data points", param="data")
    return rows


def _cells(i: int, line: str, seen_rows: bool) -> list[float]:
    row = []
    for j, cell in enumerate(line.split(",") if "," in line else line.split(), start=1):
        cell = cell.strip()
        if len(cell) > MAX_CELL_CHARS:
            raise InvalidParameterError(f"CSV row {i}, column {j}: a cell of {len(cell)} characters, over the "
                                        f"limit of {MAX_CELL_CHARS}; write numbers in plain or exponent "
                                        "notation (1.5e-3)", param="data")
        if not _NUMBER.fullmatch(cell):
            raise InvalidParameterError(f"CSV row {i}, column {j}: {_why_not_a_number(cell, line, seen_rows)}",
                                        param="data")
        row.append(float(cell))
    return row


def _why_not_a_number(cell: str, line: str, seen_rows: bool) -> str:
    """The refusal of a CSV cell, with the fix for the likely cause."""
    if _NON_FINITE.fullmatch(cell):
        return (f"{cell!r} is not a number: every coordinate must be finite "
                "(drop or impute the points with missing values)")
    if ";" in line:
        return (f"{cell!r} is not a number; separate cells with commas "
                "(this line looks semicolon-separated: replace ';' by ',')")
    if not seen_rows:
        return f"{cell!r} is not a number (no header line allowed: remove the first line if it names the columns)"
    return f"{cell!r} is not a number; write plain decimal numbers (1.5, -2e-3)"
