"""Points from files and bytes: ``.npy`` (never pickles) and CSV text, one set of rules for the CLI and the service.

Rules (the service's upload of ``text/csv`` and ``application/x-npy`` and the CLI's files
share them):

- ``.npy``: the ``\\x93NUMPY`` magic, no object arrays (nothing is unpickled), a single array
  (not an ``.npz``), of real numbers (bool, integer or float dtype);
- CSV: UTF-8 text (a byte-order mark is skipped), one point per line, cells separated by
  commas (or by white space on a line without commas), every cell a plain decimal number
  (no ``nan``, ``inf`` or header line), lines starting with ``#`` are comments; blank lines
  are allowed only at the end.

The shape is checked by the core (:func:`eoc_ntk.check_data`): 2-D, not ragged, finite.

Errors are :class:`~eoc_ntk.errors.InvalidParameterError` with ``param="data"``;
:class:`UnreadablePoints` (a subclass) marks bytes that are not a file of the format at
all (the service answers those 400, the others 422).
"""
from __future__ import annotations

import io
import os
import re

import numpy as np

from ._validation import check_data
from .errors import InvalidParameterError

__all__ = ["FORMATS", "UnreadablePoints", "points_format", "read_points", "load_points"]

#: Formats of :func:`read_points`.
FORMATS = ("npy", "csv")
_NPY_MAGIC = b"\x93NUMPY"
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


class UnreadablePoints(InvalidParameterError):
    """The bytes are not a file of the stated format (not ``.npy``, not UTF-8, truncated)."""


def points_format(data: bytes, name: str = "") -> str:
    """``"npy"`` for bytes with the ``.npy`` magic or a name ending in ``.npy``, else ``"csv"``."""
    return "npy" if data[:6] == _NPY_MAGIC or name.lower().endswith(".npy") else "csv"


def _read_npy(data: bytes) -> np.ndarray:
    if not data.startswith(_NPY_MAGIC):
        raise UnreadablePoints("the data are not a .npy file (no \\x93NUMPY magic); write it with numpy.save",
                               param="data")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        msg = str(exc)
        if "allow_pickle" in msg or "Object arrays" in msg:
            raise InvalidParameterError("the .npy data hold Python objects (pickled content is refused); "
                                        "save a numeric array", param="data") from exc
        raise UnreadablePoints(f"the data are not a valid .npy file ({msg})", param="data") from exc
    except (OSError, EOFError) as exc:
        raise UnreadablePoints(f"the data are not a valid .npy file ({exc})", param="data") from exc
    if not isinstance(arr, np.ndarray):
        raise UnreadablePoints("the data are an .npz archive; save a single array with numpy.save", param="data")
    if arr.dtype.kind not in "biuf":
        raise InvalidParameterError(f"the .npy array has dtype {arr.dtype}; save real numbers (float64)",
                                    param="data")
    return arr


def _read_csv(data: bytes) -> list[list[float]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadablePoints(f"the CSV data are not UTF-8 ({exc})", param="data") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for i, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            continue
        if not line.strip():
            raise InvalidParameterError(f"CSV row {i} is blank; give one data point per line, no blank lines",
                                        param="data")
        cells = line.split(",") if "," in line else line.split()
        row = []
        for j, cell in enumerate(cells, start=1):
            cell = cell.strip()
            if not _NUMBER.match(cell):
                hint = " (no header line allowed)" if not rows else ""
                raise InvalidParameterError(f"CSV row {i}, column {j}: {cell!r} is not a number{hint}",
                                            param="data")
            row.append(float(cell))
        rows.append(row)
    if not rows:
        raise InvalidParameterError("the CSV data hold no data points", param="data")
    return rows


def read_points(data: bytes, fmt: str, name: str = "x") -> np.ndarray:
    """Points of shape (n, m0), float64, from the bytes of a ``.npy`` file or CSV text.

    Parameters
    ----------
    data : bytes
        The file's content.
    fmt : {"npy", "csv"}
        Its format (see :func:`points_format` to guess it from a file name).
    name : str
        The name of the points in the core's shape errors (``"x"``).

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
    raw = _read_npy(data) if fmt == "npy" else _read_csv(data)
    return check_data(raw, name=name)


def load_points(path: str | os.PathLike) -> np.ndarray:
    """Points of shape (n, m0) from a ``.npy`` file or a CSV file (one point per line, no header)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return read_points(data, points_format(data, os.fspath(path)))
