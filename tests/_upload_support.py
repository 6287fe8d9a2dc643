"""Bytes of the files the tests upload or read: ``.npy``, ``.npz`` and hand-built zip archives.

Written with NumPy's own writers (``numpy.save``, ``numpy.savez``) and :mod:`zipfile`, never
with the project's readers, so that these bytes are an independent reference for them.
"""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np


def npy_bytes(arr, allow_pickle: bool = False) -> bytes:
    """``numpy.save`` of ``arr`` (``allow_pickle=True`` for object arrays: a hostile file)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_header_only(shape, descr="<f8") -> bytes:
    """A version-1.0 ``.npy`` header declaring ``shape`` (no array bytes follow), written by hand
    after the format's specification (a hostile file: the shape it declares is never sent)."""
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode("latin-1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def npz_bytes(save=np.savez, **arrays) -> bytes:
    """``numpy.savez`` (or ``save=numpy.savez_compressed``) of the named arrays."""
    buf = io.BytesIO()
    save(buf, **arrays)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive of ``{name: content}`` written member by member (a hand-made ``.npz``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
