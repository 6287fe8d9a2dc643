"""Arrays of JSON bodies held in the narrowest exact dtype (eoc_ntk.core.compact) through the API.

References: Python's ``float`` of each number's text for the values (compared bit for bit, the
sign of zero included: ``float("-0")`` is -0.0), SHA-256 of the float64 bytes written out here
for the ids, the ids of the same data sent as float64 ``.npy``, the depth-1 kernel's closed
form (tests/_service_support.py) for kernels computed from compact data (in the API process and
in a job's process), and a learning curve of the same integers sent as float64 ``.npy``.
"""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from _service_support import make_client, ntk_depth1, wait_for_job
from eoc_ntk.core.compact import exact_dtype, update_float64_hash
from eoc_ntk.core.json_arrays import CHUNK_BYTES, find_number_arrays
from jobs.codec import StoredValue, decode, encode
from service.jsonbody import validate_json
from service.schemas import DatasetWithLabelsJSONIn

KEYS = ("x", "x2", "y")
LINEAR = {"depth": 1, "activation": {"name": "linear"}}


def _bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).view(np.int64)


def _read(values: str) -> np.ndarray:
    (found,) = find_number_arrays(f'{{"x": [{values}]}}'.encode(), KEYS)
    np.testing.assert_array_equal(_bits(found.values), _bits([float(v) for v in values.split(",")]))
    return found.values


@pytest.mark.parametrize("values, dtype", [
    ("0, 1, -1, 127, -128", np.int8), ("1.0, 2e1, 1E2, -5.000", np.int8), ("128", np.int16), ("-129", np.int16),
    ("32768", np.int32), ("-2147483648, 2147483647", np.int32), ("2147483648", np.float64),
    ("-2147483649", np.float64), ("0.5", np.float64), ("-0", np.float64), ("-0.0, 1", np.float64),
    ("1e-320", np.float64), ("3, 1e300", np.float64),
])
def test_each_array_takes_the_narrowest_dtype_that_holds_every_value(values, dtype):
    assert _read(values).dtype == dtype


@pytest.mark.parametrize("late, dtype", [("300", np.int16), ("70000", np.int32), ("0.25", np.float64),
                                         ("-0", np.float64)])
def test_a_late_value_widens_what_was_read_before_it(late, dtype):
    """The first chunks read as int8, a value of a later chunk widens them (every value kept)."""
    head = ",".join(["1", "-7", "0"] * (2 * CHUNK_BYTES // 5))
    values = _read(f"{head},{late},5")
    assert values.dtype == dtype and values.size == 3 * (2 * CHUNK_BYTES // 5) + 2


def test_random_numbers_round_trip_bit_for_bit():
    rng = np.random.default_rng(5)
    for _ in range(50):
        ints = rng.integers(-2 ** rng.integers(1, 40), 2 ** rng.integers(1, 40), 40)
        cells = [str(v) for v in ints] + [repr(float(v)) for v in rng.standard_normal(rng.integers(0, 3))]
        rng.shuffle(cells)
        values = _read(", ".join(cells))
        assert values.dtype == exact_dtype(values.astype(np.float64))


def _sha(prefix: bytes, values: np.ndarray) -> str:
    """The ids' formula: SHA-256 of the prefix, the shape, the float64 bytes (first 32 hex digits)."""
    x = np.asarray(values, dtype="<f8")
    return hashlib.sha256(prefix + repr(x.shape).encode() + x.tobytes()).hexdigest()[:32]


def test_float64_hash_of_a_compact_array_is_that_of_its_float64_bytes():
    x = np.random.default_rng(1).integers(-100, 100, (1000, 70)).astype(np.int8)  # several hash chunks
    for arr in (x, x.astype(np.int16), x.astype(np.int32), x.astype(np.float64), x.T):
        h = hashlib.sha256(b"p")
        update_float64_hash(h, arr)
        assert h.digest() == hashlib.sha256(b"p" + np.ascontiguousarray(arr, dtype="<f8").tobytes()).digest()


def test_json_datasets_keep_their_compact_dtype_and_the_ids_of_float64(client):
    x = np.random.default_rng(2).integers(0, 2, (40, 6))
    y = np.random.default_rng(3).integers(-3, 300, 40)
    parsed = validate_json(DatasetWithLabelsJSONIn, json.dumps({"x": x.tolist(), "y": y.tolist()}).encode(), 1 << 20)
    assert parsed.x.dtype == np.int8 and parsed.y.dtype == np.int16
    got = client.post("/v1/datasets", json={"x": x.tolist(), "y": y.tolist()}).json()
    assert got["dataset_id"] == _sha(b"float64<", x) and got["labels_id"] == _sha(b"labels-float64<", y)
    npy = io.BytesIO()
    np.save(npy, x.astype(np.float64))
    as_npy = client.post("/v1/datasets", content=npy.getvalue(), headers={"Content-Type": "application/x-npy"})
    assert as_npy.json()["dataset_id"] == got["dataset_id"]
    assert client.post("/v1/labels", json={"y": y.tolist()}).json()["labels_id"] == got["labels_id"]


@pytest.mark.parametrize("inline_max_seconds", [1000.0, 0.0])  # computed in the API process / in a job's process
def test_kernels_of_compact_data_are_the_closed_form(inline_max_seconds):
    x = np.random.default_rng(4).integers(-3, 4, (9, 5))
    x2 = np.random.default_rng(5).integers(-200, 200, (4, 5))
    with make_client(inline_max_seconds=inline_max_seconds) as c:
        r = c.post("/v1/kernels", json={"x": x.tolist(), "x2": x2.tolist(), "model": LINEAR})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["ntk"], ntk_depth1(x, x2, a=1.0, b=0.0), rtol=1e-14)
        stored = c.post("/v1/kernels", json={"dataset_id": r.json()["dataset_id"], "model": LINEAR},
                        headers={"Prefer": "respond-async"})
        job = wait_for_job(c, stored.json()["job_id"])
        assert job["status"] == "finished", job
        np.testing.assert_allclose(c.get(f"/v1/jobs/{job['job_id']}/result").json()["ntk"],
                                   ntk_depth1(x, a=1.0, b=0.0), rtol=1e-14)


def _npy(a: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, np.asarray(a, dtype=np.float64))
    return out.getvalue()


def _result(c, body: dict) -> dict:
    r = c.post("/v1/learning-curves", json=body, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    job = wait_for_job(c, r.json()["job_id"])
    assert job["status"] == "finished", job
    return c.get(f"/v1/jobs/{job['job_id']}/result").json()


def test_integer_json_data_answer_as_the_same_data_sent_as_float64_npy():
    """A learning curve of integer x and labels sent inline (compact) and as float64 .npy uploads
    (each to an API of its own, so that neither answer comes from the other's cache)."""
    x = np.random.default_rng(6).integers(-4, 5, (24, 3))
    y = np.random.default_rng(7).integers(-300, 300, 24)
    params = {"model": {"depth": 2, "activation": {"name": "relu"}}, "sizes": [8, 16]}
    with make_client() as c:
        inline = _result(c, {"x": x.tolist(), "y": y.tolist(), **params})
    with make_client() as c:
        ids = {"dataset_id": c.post("/v1/datasets", content=_npy(x),
                                    headers={"Content-Type": "application/x-npy"}).json()["dataset_id"],
               "labels_id": c.post("/v1/labels", content=_npy(y),
                                   headers={"Content-Type": "application/x-npy"}).json()["labels_id"]}
        uploaded = _result(c, {**ids, **params})
    assert inline == uploaded


def test_stored_values_keep_the_compact_dtypes():
    """A compact dataset is stored as it is (1, 2 or 4 bytes a number); other integers as int64."""
    arrays = {"a": np.array([[-128, 127]], np.int8), "b": np.array([300, -7], np.int16),
              "c": np.array([2 ** 31 - 1], np.int32), "d": np.array([5], np.int64), "e": np.array([True]),
              "f": np.array([0.25])}
    back = decode(encode(StoredValue(arrays=arrays), b"k"), b"k").arrays
    assert {k: v.dtype for k, v in back.items()} == {"a": np.int8, "b": np.int16, "c": np.int32, "d": np.int64,
                                                    "e": np.int64, "f": np.float64}
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v.astype(back[k].dtype))
