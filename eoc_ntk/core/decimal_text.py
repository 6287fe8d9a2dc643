"""Short decimal numbers parsed from text bytes by whole-array NumPy operations, exactly.

A cell ``[+-]?digits[.digits]`` of at most :data:`MAX_DIGITS` digits is the integer ``m`` of
its digits divided by ``10**f`` (``f``: the digits after the point). Both are exact float64
(``m < 10**15 < 2**53``, ``f <= 15 <= 22``), so the one division is correctly rounded: the
value is the one ``float(cell)`` and ``numpy.loadtxt`` give (Clinger's fast path). Any other
cell (an exponent, more digits, a stray byte) makes :func:`parse_decimals` answer None, and
the caller parses those bytes by its general reader.

The cost is a few passes over the bytes in NumPy's C loops, about 10-20 ns per byte, with no
Python object per number (a float64 per cell and a few temporary arrays of the bytes' length).
"""
from __future__ import annotations

import numpy as np

__all__ = ["MAX_DIGITS", "parse_decimals"]

#: Most digits of a cell read here (so that the integer of its digits is exact in float64).
MAX_DIGITS = 15
_POW10 = 10 ** np.arange(MAX_DIGITS + 1, dtype=np.int64)
_POW10F = _POW10.astype(np.float64)
_MINUS, _PLUS, _POINT, _ZERO = 45, 43, 46, 48


def parse_decimals(buf: np.ndarray, sep: np.ndarray) -> np.ndarray | None:
    """The values of the cells of ``buf``, or None when a cell is not a short plain decimal.

    Parameters
    ----------
    buf : ndarray of uint8, shape (b,)
        Text bytes; the last byte is a separator.
    sep : ndarray of bool, shape (b,)
        True at the separator that ends each cell (cell ``i`` is the bytes between separators
        ``i - 1`` and ``i``).

    Returns
    -------
    ndarray of float64, shape (cells,), or None
        ``sign * m / 10**f`` per cell; None when a cell is empty, holds a byte other than digits,
        one point and a leading sign, has no digit, or more than :data:`MAX_DIGITS` digits.
    """
    ends = np.flatnonzero(sep)
    n = ends.size
    if n == 0 or not sep[-1]:
        return None
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    length = ends - starts
    if length.min() < 1:
        return None
    first = buf[starts]
    signed = (first == _MINUS) | (first == _PLUS)
    n_signed = int(np.count_nonzero(signed))
    if int(np.count_nonzero((buf == _MINUS) | (buf == _PLUS))) != n_signed:
        return None  # a sign inside a cell
    cell = np.cumsum(sep)  # the cell of a byte that is not a separator
    points = np.flatnonzero(buf == _POINT)
    point_cell = cell[points]
    if points.size > 1 and not np.all(np.diff(point_cell)):
        return None  # two points in a cell
    point = np.full(n, -1, dtype=ends.dtype)
    point[point_cell] = points
    digits_per_cell = length - signed - (point >= 0)
    if digits_per_cell.min() < 1 or digits_per_cell.max() > MAX_DIGITS:
        return None
    digit = buf - np.uint8(_ZERO)  # wraps: a digit is < 10, any other byte >= 10
    at = np.flatnonzero(digit < 10)
    if at.size + n_signed + points.size != int(length.sum()):
        return None  # a byte that is no digit, sign or point
    c = cell[at]
    place = ends[c] - 1 - at - (point[c] > at)
    m = np.bincount(c, weights=digit[at] * _POW10[place], minlength=n)  # integer sums < 2**53: exact
    out = m / _POW10F[np.where(point >= 0, ends - 1 - point, 0)]
    np.negative(out, out=out, where=first == _MINUS)
    return out
