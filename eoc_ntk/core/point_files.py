"""Points from files and bytes: ``.npy`` (never pickles) and CSV text, one set of rules for the CLI and the service.

Rules (the service's upload of ``text/csv`` and ``application/x-npy`` and the CLI's files
share them):

- ``.npy``: the ``\\x93NUMPY`` magic, no object arrays (nothing is unpickled), a single array
  (not an ``.npz``), of real numbers (bool, integer or float dtype);
- CSV: UTF-8 text (a byte-order mark is skipped), one point per line, cells separated by
  commas (or by white space on a line without commas), every cell a plain decimal number
  (no ``nan``, ``inf`` or header line), lines starting with ``#`` are comments; blank lines
  are allowed only at the end; a cell holds at most :data:`MAX_CELL_CHARS` characters.

Hostile input costs time and memory linear in its size, and no more: a CSV cell is checked
for its length before a linear, non-backtracking match; an ``.npy`` header is read with a size
cap and checked (dtype, shape against ``max_n``/``max_m0``, declared bytes against the body)
before anything is allocated, and the array is then a view on the body, converted once (by
:func:`eoc_ntk.check_data`, into a new C-order float64 array).

The shape is checked by the core (:func:`eoc_ntk.check_data`): 2-D, not ragged, finite.

Errors are :class:`~eoc_ntk.core.errors.InvalidParameterError` with ``param="data"``;
:class:`UnreadablePoints` (a subclass) marks bytes that are not a file of the format at
all (the service answers those 400, the others 422).
"""
from __future__ import annotations

import ast
import os

import numpy as np

from eoc_ntk.core.arrays import FloatArray
from eoc_ntk.core.csv_points import MAX_CELL_CHARS, UnreadableCSV, read_csv
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.validation import check_data

__all__ = ["FORMATS", "MAX_CELL_CHARS", "MAX_NPY_HEADER_BYTES", "UnreadablePoints", "points_format",
           "read_points", "load_points", "npy_array_header", "npy_declared_bytes", "npy_from_bytes"]

#: Formats of :func:`read_points`.
FORMATS = ("npy", "csv")
#: Largest ``.npy`` header (NumPy writes 128 bytes for any 2-D numeric array).
MAX_NPY_HEADER_BYTES = 4096
_NPY_MAGIC = b"\x93NUMPY"


class UnreadablePoints(InvalidParameterError):
    """The bytes are not a file of the stated format (not ``.npy``, not UTF-8, truncated)."""


def points_format(data: bytes, name: str = "") -> str:
    """``"npy"`` for bytes with the ``.npy`` magic or a name ending in ``.npy``, else ``"csv"``."""
    return "npy" if data[:6] == _NPY_MAGIC or name.lower().endswith(".npy") else "csv"


def _npy_header(data: bytes) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, offset of the array bytes) read from the header alone."""
    if not data.startswith(_NPY_MAGIC):
        raise UnreadablePoints("the data are not a .npy file (no \\x93NUMPY magic); write it with numpy.save",
                               param="data")
    if len(data) < 10:
        raise UnreadablePoints("the .npy data are truncated inside the header", param="data")
    major = data[6]
    if major not in (1, 2, 3):
        raise UnreadablePoints(f"the .npy data are of format version {major}.{data[7]}; write them with numpy.save",
                               param="data")
    size_bytes = 2 if major == 1 else 4
    size = int.from_bytes(data[8:8 + size_bytes], "little")
    if size > MAX_NPY_HEADER_BYTES:
        raise UnreadablePoints(f"the .npy header is too large ({size} bytes, the most is {MAX_NPY_HEADER_BYTES}); "
                               "write the array with numpy.save", param="data")
    start = 8 + size_bytes
    if len(data) < start + size:
        raise UnreadablePoints("the .npy data are truncated inside the header", param="data")
    text = data[start:start + size].decode("utf-8" if major == 3 else "latin-1", errors="replace")
    try:
        header = ast.literal_eval(text)  # a dict of literals: bounded by the header cap above
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise UnreadablePoints(f"the .npy header is not readable ({type(exc).__name__})", param="data") from exc
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise UnreadablePoints("the .npy header lacks descr, fortran_order or shape; write it with numpy.save",
                               param="data")
    shape, descr, fortran = header["shape"], header["descr"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise UnreadablePoints(f"the .npy header has an invalid shape {shape!r}", param="data")
    if not isinstance(descr, str) or not isinstance(fortran, bool):
        raise InvalidParameterError(f"the .npy array has dtype {descr!r}; save real numbers (float64)",
                                    param="data")
    try:
        dtype = np.dtype(descr)
    except TypeError as exc:
        raise UnreadablePoints(f"the .npy header has an invalid dtype {descr!r}", param="data") from exc
    if dtype.hasobject:
        raise InvalidParameterError("the .npy data hold Python objects (pickled content is refused); "
                                    "save a numeric array", param="data")
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise InvalidParameterError(f"the .npy array has dtype {dtype}; save real numbers (float64)", param="data")
    return dtype, shape, fortran, start + size


def npy_array_header(data: bytes, max_n: int | None = None, max_m0: int | None = None,
                     name: str = "x") -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """``(dtype, shape, fortran_order, offset)`` of ``.npy`` bytes, checked before anything is allocated.

    ``data`` needs to hold only the header. Refused: not ``.npy`` (:class:`UnreadablePoints`),
    object or non-numeric dtypes (``param="data"``), and a 2-D shape over ``max_n`` rows or
    ``max_m0`` columns, or a 1-D shape over ``max_n`` entries (``param=name``)."""
    dtype, shape, fortran, offset = _npy_header(data)
    if len(shape) in (1, 2) and max_n is not None and shape[0] > max_n:
        raise InvalidParameterError(f"the .npy array has n = {shape[0]} points, over the limit {max_n} (EOC_NTK_MAX_N)",
                                    param=name)
    if len(shape) == 2 and max_m0 is not None and shape[1] > max_m0:
        raise InvalidParameterError(f"the .npy array has m0 = {shape[1]} features, over the limit {max_m0} "
                                    "(EOC_NTK_MAX_M0)", param=name)
    return dtype, shape, fortran, offset


def npy_declared_bytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """Bytes of the array an ``.npy`` header declares."""
    count = 1
    for d in shape:
        count *= d
    return count * dtype.itemsize


def npy_from_bytes(data: bytes, dtype: np.dtype, shape: tuple[int, ...], fortran: bool, offset: int) -> np.ndarray:
    """The array of checked ``.npy`` bytes (:func:`npy_array_header`): a read-only view, not a copy.

    The body after the header must hold exactly the declared bytes (else :class:`UnreadablePoints`)."""
    declared = npy_declared_bytes(dtype, shape)
    if declared != len(data) - offset:
        raise UnreadablePoints(f"the .npy header declares shape {shape} of {dtype} ({declared} bytes) but the body "
                               f"holds {len(data) - offset} bytes after it; send the whole file", param="data")
    view = np.frombuffer(data, dtype=dtype, count=declared // dtype.itemsize, offset=offset)  # no copy
    # Still a view of ``data``: check_data (check_labels for labels) makes the one float64, C-order copy.
    return view.reshape(shape, order="F" if fortran else "C")


def _read_npy(data: bytes, max_n: int | None, max_m0: int | None) -> np.ndarray:
    header = npy_array_header(data, max_n, max_m0, "x")
    return npy_from_bytes(data, *header)


def read_points(data: bytes, fmt: str, name: str = "x", *, max_n: int | None = None,
                max_m0: int | None = None) -> FloatArray:
    """Points of shape (n, m0), float64, from the bytes of a ``.npy`` file or CSV text.

    Parameters
    ----------
    data : bytes
        The file's content.
    fmt : {"npy", "csv"}
        Its format (see :func:`points_format` to guess it from a file name).
    name : str
        The name of the points in the core's shape errors (``"x"``).
    max_n, max_m0 : int, optional
        Limits on the shape ``(n, m0)`` of an ``.npy`` array, checked from its header before
        anything is allocated (refused with ``param="x"``).

    Raises
    ------
    UnreadablePoints
        The bytes are not a file of that format.
    InvalidParameterError
        The file is readable but its content is refused (``param="data"``), or the points
        are not a finite 2-D array (``param=name``, from :func:`eoc_ntk.check_data`).
    """
    if fmt not in FORMATS:
        raise InvalidParameterError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}", param="fmt")
    if fmt == "npy":
        return check_data(_read_npy(data, max_n, max_m0), name=name)
    try:
        return check_data(read_csv(data, max_n, name), name=name)
    except UnreadableCSV as exc:
        raise UnreadablePoints(str(exc), param="data") from exc


def load_points(path: str | os.PathLike[str]) -> FloatArray:
    """Points of shape (n, m0) from a ``.npy`` file or a CSV file (one point per line, no header)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return read_points(data, points_format(data, os.fspath(path)))
