"""Arrays of numbers held in the smallest dtype that represents every value exactly.

Numbers read from text (JSON bodies) are often small integers (``0``, ``1``, class labels),
whose float64 array is four times their text (8 bytes for ``"0,"``). They are held instead in
the first dtype of :data:`COMPACT_DTYPES` (then float64) that holds every value exactly:

- int8, int16, int32 when every value is an integer in that dtype's range and none is ``-0.0``;
- float64 otherwise (a fraction, ``-0.0``, or a magnitude of ``2**31`` or more).

Converting such an array to float64 gives back every value bit for bit, so a computation on
``x.astype(np.float64)`` and a content hash of its float64 bytes (:func:`update_float64_hash`,
chunk by chunk, never a float64 copy of the whole array) are those of the float64 array.

An integer array of these dtypes passes every value check of
:func:`eoc_ntk.core.validation.check_data` by construction: its values are finite, below
``2**31 <= MAX_ABS_VALUE`` in magnitude, and never subnormal.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from eoc_ntk.core.validation import check_data

__all__ = ["COMPACT_DTYPES", "HASH_CHUNK", "exact_dtype", "wider", "is_compact", "check_compact_data",
           "update_float64_hash"]

#: The integer dtypes an array of numbers may be held in, narrowest first (float64 after them).
COMPACT_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
#: Values converted to float64 at once by :func:`update_float64_hash` (512 KiB of float64).
HASH_CHUNK = 1 << 16
_FLOAT64 = np.dtype(np.float64)


def exact_dtype(values: np.ndarray) -> np.dtype:
    """The narrowest of int8, int16, int32, float64 that holds every value of ``values`` exactly.

    Parameters
    ----------
    values : ndarray of float64, any shape
        Finite numbers.

    Returns
    -------
    numpy.dtype
        int8 / int16 / int32 when every value ``v`` is an integer (``v == trunc(v)``), not
        ``-0.0``, and within the dtype's range; float64 otherwise (an empty array: int8).
    """
    if values.size == 0:
        return COMPACT_DTYPES[0]
    lo, hi = float(values.min()), float(values.max())
    if not (lo >= -2.0 ** 31 and hi < 2.0 ** 31):
        return _FLOAT64
    if not np.array_equal(np.trunc(values), values) or np.signbit(values[values == 0]).any():
        return _FLOAT64  # a fraction, or -0.0 (an integer 0 has no sign)
    for dtype in COMPACT_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    return COMPACT_DTYPES[-1]


def wider(a: np.dtype, b: np.dtype) -> np.dtype:
    """The wider of two dtypes of the chain int8 < int16 < int32 < float64 (each holds the ones before it)."""
    return a if a.itemsize >= b.itemsize else b


def is_compact(x: Any) -> bool:
    """Whether ``x`` is an ndarray held in one of :data:`COMPACT_DTYPES`."""
    return isinstance(x, np.ndarray) and x.dtype in COMPACT_DTYPES


def update_float64_hash(h: Any, x: np.ndarray) -> None:
    """Feed ``h`` (a :mod:`hashlib` object) the little-endian float64 bytes of ``x`` in C order.

    The bytes are those of ``np.ascontiguousarray(x, dtype="<f8")``: a float64 array is read in
    place; any other is converted :data:`HASH_CHUNK` values at a time (memory: one chunk, 512 KiB).
    """
    if x.dtype == np.dtype("<f8") and x.flags.c_contiguous:
        h.update(x.data.cast("B"))  # the array's memory, not a copy
        return
    flat = np.ravel(x, order="C")  # a view of a C-contiguous array
    for start in range(0, flat.size, HASH_CHUNK):
        h.update(flat[start:start + HASH_CHUNK].astype("<f8").data.cast("B"))


def check_compact_data(x: Any, name: str = "x") -> np.ndarray:
    """``x`` itself when it is a compact integer array of shape (n, m0), else :func:`check_data` of it.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        As for :func:`eoc_ntk.core.validation.check_data`.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray of shape (n, m0)
        A C-contiguous array of int8, int16 or int32 (``x``, not copied: every value check of
        ``check_data`` holds for it, see the module's note) or a new float64 array (``check_data``).
    """
    if is_compact(x) and x.ndim == 2 and x.size > 0:
        return np.ascontiguousarray(x)
    return check_data(x, name)
