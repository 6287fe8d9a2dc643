"""Points with labels from one file (eoc_ntk.core.labelled_files): ``.npz`` archives and label columns.

References: the arrays written by ``numpy.savez`` themselves, and archives built byte by byte
with :mod:`zipfile` (``_upload_support.zip_bytes``: a pickled member, a member whose directory
entry lies about its size).
"""
from __future__ import annotations

import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from _upload_support import npy_bytes, npz_bytes, zip_bytes
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.labelled_files import is_npz, load_labelled_points, read_npz, split_label_column
from eoc_ntk.core.point_files import UnreadablePoints

X = np.arange(12.0).reshape(4, 3) / 7
Y = np.array([1.0, -1.0, 1.0, -1.0])


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_of_x_and_y_reads_back_both_arrays(save):
    data = npz_bytes(save, x=X.astype(np.float32), y=Y.astype(np.int8))
    assert is_npz(data)
    x, y = read_npz(data)
    np.testing.assert_array_equal(x, X.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(y, Y)
    assert x.dtype == y.dtype == np.float64
    x, y = read_npz(npz_bytes(save, x=X))
    np.testing.assert_array_equal(x, X)
    assert y is None


@pytest.mark.parametrize("members, error, param, fragment", [
    ({"x.npy": npy_bytes(X), "z.npy": npy_bytes(Y)}, InvalidParameterError, "data", "only 'x' and 'y'"),
    ({"y.npy": npy_bytes(Y)}, InvalidParameterError, "data", "no array 'x'"),
    ({"x.npy": npy_bytes(X), "y.npy": npy_bytes(np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)},
     InvalidParameterError, "y", "pickled content is refused"),
    ({"x.npy": npy_bytes(np.array([["a", "b"]] * 4))}, InvalidParameterError, "x", "dtype"),
    ({"x.npy": b"not an npy file"}, UnreadablePoints, "data", "x.npy"),
    ({"x.npy": npy_bytes(X)[:-8]}, UnreadablePoints, "data", "declares shape (4, 3)"),
])
def test_npz_refusals_name_the_member_and_the_argument(members, error, param, fragment):
    with pytest.raises(error) as info:
        read_npz(zip_bytes(members))
    assert info.value.param == param and fragment in str(info.value), str(info.value)


def test_npz_limits_are_checked_from_the_directory_and_the_header():
    header_only = npy_bytes(np.zeros((2, 2)))[:128].replace(b"(2, 2)", b"(100000, 3)")
    with pytest.raises(InvalidParameterError, match="EOC_NTK_MAX_N") as info:
        read_npz(zip_bytes({"x.npy": header_only}), max_n=1000)
    assert info.value.param == "x"
    with pytest.raises(InvalidParameterError, match="EOC_NTK_MAX_M0"):
        read_npz(zip_bytes({"x.npy": npy_bytes(X)}), max_m0=2)
    with pytest.raises(InvalidParameterError, match="inflates to") as info:
        read_npz(zip_bytes({"x.npy": npy_bytes(X), "y.npy": npy_bytes(np.zeros(4000))}, zipfile.ZIP_DEFLATED),
                 max_member_bytes=10_000)
    assert info.value.param == "y"
    with pytest.raises(UnreadablePoints, match="not a readable .npz"):
        read_npz(b"PK\x03\x04 truncated")


def test_a_zip_bomb_lying_about_its_size_is_never_inflated():
    """A deflated member of 20 MB whose directory entries claim the size of a 2 x 2 array: reading
    stops at the claimed size (the CRC then fails), and at most a few kB are ever allocated."""
    small = npy_bytes(np.eye(2))
    payload = small + bytes(20 * 1024 * 1024)
    data = zip_bytes({"x.npy": payload}, zipfile.ZIP_DEFLATED)
    true_size, claimed = struct.pack("<I", len(payload)), struct.pack("<I", len(small))
    assert data.count(true_size) == 2            # the local header and the central directory
    data = data.replace(true_size, claimed)
    tracemalloc.start()
    try:
        with pytest.raises(UnreadablePoints, match="CRC"):
            read_npz(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, peak


def test_split_label_column_takes_the_column_out():
    data = np.column_stack([X, Y])
    for column in (-1, 3):
        x, y = split_label_column(data, column)
        np.testing.assert_array_equal(x, X)
        np.testing.assert_array_equal(y, Y)
    x, y = split_label_column(data, 0)
    np.testing.assert_array_equal(x, data[:, 1:])
    np.testing.assert_array_equal(y, X[:, 0])
    for bad in (4, -5, 1.0, True, "last"):
        with pytest.raises(InvalidParameterError) as info:
            split_label_column(data, bad)
        assert info.value.param == "label_column"
    with pytest.raises(InvalidParameterError, match="no inputs are left"):
        split_label_column(X[:, :1], 0)


def test_load_labelled_points_tells_an_npz_by_its_magic(tmp_path):
    np.savez(tmp_path / "xy.npz", x=X, y=Y)
    (tmp_path / "data.bin").write_bytes((tmp_path / "xy.npz").read_bytes())  # the name does not matter
    for name in ("xy.npz", "data.bin"):
        x, y = load_labelled_points(tmp_path / name)
        np.testing.assert_array_equal(x, X)
        np.testing.assert_array_equal(y, Y)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    np.save(tmp_path / "x.npy", X)
    for name in ("x.csv", "x.npy"):
        x, y = load_labelled_points(tmp_path / name)
        np.testing.assert_array_equal(x, X)
        assert y is None
