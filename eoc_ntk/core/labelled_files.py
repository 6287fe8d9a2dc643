"""Points with their labels from one file: an ``.npz`` archive of ``x`` and ``y``, or a label column.

One set of rules for the service's ``POST /v1/datasets`` (``application/x-npz``, and
``?label_column=`` on CSV or ``.npy``) and the command line (docs/learning.md §1):

- ``.npz`` (what ``numpy.savez(f, x=x, y=y)`` or ``savez_compressed`` writes): a zip archive
  whose members are ``x.npy`` (required) and ``y.npy`` (optional), nothing else. Nothing is
  unpickled: each member is read by :mod:`eoc_ntk.core.point_files`' ``.npy`` rules (numeric dtype,
  header at most ``MAX_NPY_HEADER_BYTES``). A zip bomb does not inflate: each member's declared
  uncompressed size is checked against ``max_member_bytes`` before it is opened, its header
  (shape against ``max_n``/``max_m0``, declared bytes against the member's size) before the rest
  is read, and decompression stops at the declared size.
- label column: column ``c`` of a checked (n, m0) array (``-1`` the last; counted from 0) is
  the labels, shape (n,), and the other ``m0 - 1`` columns are the inputs. CSV files have no
  header line here, so a column is chosen by its index, never by a name.
- a file (the CLI's data FILE, :func:`load_labelled_points`): an ``.npz`` by its zip magic,
  read as above; any other file is points by :func:`eoc_ntk.core.point_files.load_points`' rules.

Errors are :class:`~eoc_ntk.core.errors.InvalidParameterError` (``param`` names the argument:
``"x"``, ``"y"``, ``"label_column"``, or ``"data"`` for the file as a whole) and
:class:`~eoc_ntk.core.point_files.UnreadablePoints` for bytes that are not a zip archive of ``.npy`` files.
"""
from __future__ import annotations

import io
import os
import zipfile
import zlib

import numpy as np

from eoc_ntk.core.arrays import FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.point_files import (
    MAX_NPY_HEADER_BYTES,
    UnreadablePoints,
    npy_array_header,
    npy_declared_bytes,
    npy_from_bytes,
    points_format,
    read_points,
)
from eoc_ntk.core.validation import check_data

__all__ = ["NPZ_MEMBERS", "is_npz", "load_labelled_points", "read_npz", "split_label_column"]

#: The members an ``.npz`` upload may hold: ``x`` (required) and ``y``.
NPZ_MEMBERS = ("x.npy", "y.npy")
_ZIP_MAGIC = b"PK\x03\x04"
#: Largest ``.npy`` header with its magic, version and length fields.
_HEAD_BYTES = 12 + MAX_NPY_HEADER_BYTES


def is_npz(data: bytes) -> bool:
    """True for bytes that start as a zip archive (an ``.npz`` file)."""
    return data[:4] == _ZIP_MAGIC


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_n: int | None, max_m0: int | None, max_bytes: int | None,
            name: str) -> np.ndarray:
    """One member read under the limits: its size, then its header, then exactly the declared bytes."""
    if max_bytes is not None and info.file_size > max_bytes:
        raise InvalidParameterError(
            f"the .npz member {info.filename} inflates to {info.file_size} bytes, over the limit of {max_bytes} "
            "bytes (EOC_NTK_MAX_BODY_BYTES); send fewer points", param=name)
    with zf.open(info) as fh:  # ZipExtFile stops at info.file_size, whatever the compressed stream says
        head = fh.read(min(info.file_size, _HEAD_BYTES))
        try:
            dtype, shape, fortran, offset = npy_array_header(head, max_n, max_m0, name)
        except InvalidParameterError as exc:
            raise type(exc)(f"the .npz member {info.filename}: {exc}",
                            param=name if exc.param == "data" and not isinstance(exc, UnreadablePoints)
                            else exc.param) from exc
        declared = npy_declared_bytes(dtype, shape)
        if offset + declared != info.file_size:
            raise UnreadablePoints(
                f"the .npz member {info.filename} declares shape {shape} of {dtype} ({declared} bytes) but holds "
                f"{info.file_size - offset} bytes after its header; write it with numpy.savez", param="data")
        body = head + fh.read(offset + declared - len(head))
    return npy_from_bytes(body, dtype, shape, fortran, offset)


def read_npz(data: bytes, *, max_n: int | None = None, max_m0: int | None = None,
             max_member_bytes: int | None = None) -> tuple[FloatArray, FloatArray | None]:
    """``(x, y)`` from the bytes of an ``.npz`` archive of ``x`` and (optionally) ``y``.

    Parameters
    ----------
    data : bytes
        The archive (``numpy.savez(f, x=x, y=y)``, compressed or not).
    max_n, max_m0 : int, optional
        Limits on the rows of ``x`` and ``y`` and on their columns, checked from each member's
        header before its array is read.
    max_member_bytes : int, optional
        Largest uncompressed member, checked from the archive's directory before decompressing.

    Returns
    -------
    x : ndarray of shape (n, m0), float64, checked by :func:`eoc_ntk.check_data`
    y : ndarray of shape (n,) or (n, k), float64, or None without a ``y`` member
        Not checked against ``x`` here (:func:`eoc_ntk.check_labels` does that).

    Raises
    ------
    UnreadablePoints
        Not a zip archive, a damaged one, or a member that is not ``.npy`` (``param="data"``).
    InvalidParameterError
        A member other than ``x.npy``/``y.npy`` or no ``x.npy`` (``param="data"``); a member's
        dtype, shape or size over the limits (``param="x"`` or ``"y"``).
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise UnreadablePoints(f"the data are not a readable .npz (zip) archive ({exc}); write it with "
                               "numpy.savez(f, x=x, y=y)", param="data") from exc
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        extra = [nm for nm in names if nm not in NPZ_MEMBERS]
        if extra or len(set(names)) != len(names):
            raise InvalidParameterError(
                f"the .npz archive holds {', '.join(repr(nm) for nm in names)}; it may hold only 'x' and 'y' "
                "(numpy.savez(f, x=x, y=y))", param="data")
        if "x.npy" not in names:
            raise InvalidParameterError("the .npz archive has no array 'x'; save the points as x "
                                        "(numpy.savez(f, x=x, y=y))", param="data")
        out = {}
        try:
            for info in infos:
                out[info.filename[:-4]] = _member(zf, info, max_n, max_m0, max_member_bytes, info.filename[:-4])
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError, zlib.error) as exc:
            # RuntimeError: an encrypted member; NotImplementedError: an unknown compression method.
            raise UnreadablePoints(f"the .npz archive is damaged or unsupported ({exc}); write it with numpy.savez",
                                   param="data") from exc
    y = out.get("y")  # a view of the member's bytes until here: its own float64 copy
    return check_data(out["x"], name="x"), None if y is None else np.array(y, dtype=np.float64)


def split_label_column(data: FloatArray, column: int, name: str = "label_column") -> tuple[FloatArray, FloatArray]:
    """``(x, y)``: column ``column`` of the checked (n, m0) ``data`` as labels (n,), the rest as inputs.

    Raises
    ------
    InvalidParameterError (param=name)
        ``column`` not an integer in ``[-m0, m0 - 1]``, or ``data`` with a single column (no
        inputs would be left).
    """
    m = data.shape[1]
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)):
        raise InvalidParameterError(f"{name} must be a column index (an integer, -1 for the last), got {column!r}",
                                    param=name)
    if not -m <= column < m:
        raise InvalidParameterError(f"{name} = {column} is outside the {m} columns of the data (shape {data.shape}); "
                                    f"give a column in [{-m}, {m - 1}]", param=name)
    if m < 2:
        raise InvalidParameterError(f"the data have one column (shape {data.shape}): no inputs are left after "
                                    f"taking {name} out; send the labels separately", param=name)
    c = int(column) % m
    return np.delete(data, c, axis=1), data[:, c].copy()


def load_labelled_points(path: str | os.PathLike[str]) -> tuple[FloatArray, FloatArray | None]:
    """``(x, y or None)`` from a file: an ``.npz`` of ``x`` and (optionally) ``y``, or points alone.

    An ``.npz`` (told by its zip magic, whatever the file's name) is read by :func:`read_npz`;
    any other file by :func:`eoc_ntk.core.point_files.read_points` (``.npy`` or CSV), with ``y = None``.

    Raises
    ------
    OSError
        The file cannot be read.
    InvalidParameterError, UnreadablePoints
        As :func:`read_npz` and :func:`eoc_ntk.core.point_files.read_points`.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if is_npz(data):
        return read_npz(data)
    return read_points(data, points_format(data, os.fspath(path))), None
