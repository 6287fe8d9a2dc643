"""Labels uploaded with the points (issue #16 point 5): an ``.npz`` of ``x`` and ``y``, and
``?label_column=`` of a CSV or ``.npy`` matrix, against the JSON upload of the same arrays.

The reference is the JSON upload ``{"x": ..., "y": ...}`` (tested against its own references in
test_service_learning.py): the same arrays in any format get the same dataset and labels ids.
"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _service_support import unit_rows
from _upload_support import npy_bytes, npz_bytes, zip_bytes
from service.app import create_app
from service.config import Settings

NPZ = {"Content-Type": "application/x-npz"}
CSV = {"Content-Type": "text/csv"}
NPY = {"Content-Type": "application/x-npy"}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(redis_url=None, max_body_bytes=64 * 1024))) as c:
        yield c


@pytest.fixture(scope="module")
def xy():
    x = unit_rows(10, 4, seed=5)
    return x, np.sign(x[:, 0]) + 0.25


@pytest.fixture(scope="module")
def reference(client, xy):
    x, y = xy
    r = client.post("/v1/datasets", json={"x": x.tolist(), "y": y.tolist()})
    assert r.status_code == 201, r.text
    return r.json()


def _csv(arr) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in arr).encode()


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_with_x_and_y_stores_both_under_the_json_ids(client, xy, reference, save):
    x, y = xy
    r = client.post("/v1/datasets", content=npz_bytes(save, x=x, y=y), headers=NPZ)
    assert r.status_code == 201, r.text
    assert r.json() == reference
    r = client.post("/v1/datasets", content=npz_bytes(save, x=x), headers=NPZ)
    assert r.status_code == 201 and r.json()["dataset_id"] == reference["dataset_id"] and "labels_id" not in r.json()
    # The stored labels are the ones sent: dynamics by ids equals dynamics with inline arrays.
    model = {"depth": 2, "activation": {"name": "relu"}}
    by_ids = client.post("/v1/dynamics", json={"dataset_id": reference["dataset_id"],
                                               "labels_id": reference["labels_id"], "model": model, "steps": [0, 5]})
    inline = client.post("/v1/dynamics", json={"x": x.tolist(), "y": y.tolist(), "model": model, "steps": [0, 5]})
    assert by_ids.status_code == inline.status_code == 200, by_ids.text
    assert by_ids.json()["train_loss"] == inline.json()["train_loss"]
    assert by_ids.json()["train_loss"][0] == pytest.approx(float(np.sum(y * y)) / (2 * len(y)), rel=1e-12)


@pytest.mark.parametrize("column", [-1, 4, 0, 2])
def test_label_column_of_csv_and_npy(client, xy, reference, column):
    x, y = xy
    data = np.insert(x, column % 5, y, axis=1)
    for body, headers in ((_csv(data), CSV), (npy_bytes(data), NPY)):
        r = client.post(f"/v1/datasets?label_column={column}", content=body, headers=headers)
        assert r.status_code == 201, r.text
        assert r.json() == reference


def test_label_column_refusals_name_the_field(client, xy):
    x, y = xy
    data = np.column_stack([x, y])
    for query, status in (("label_column=5", 422), ("label_column=-6", 422), ("label_column=last", 422)):
        r = client.post(f"/v1/datasets?{query}", content=_csv(data), headers=CSV)
        assert r.status_code == status, r.text
        assert r.json()["error"]["field"] == "label_column", r.text
    assert "[-5, 4]" in client.post("/v1/datasets?label_column=5", content=_csv(data), headers=CSV).text
    r = client.post("/v1/datasets?label_column=0", content=_csv(data[:, :1]), headers=CSV)
    assert r.status_code == 422 and "no inputs are left" in r.json()["error"]["message"]
    for body, headers in (({"x": x.tolist(), "y": y.tolist()}, None), (npz_bytes(x=x, y=y), NPZ)):
        r = (client.post("/v1/datasets?label_column=0", json=body) if headers is None
             else client.post("/v1/datasets?label_column=0", content=body, headers=headers))
        assert r.status_code == 422 and r.json()["error"]["field"] == "label_column", r.text
        assert "drop label_column" in r.json()["error"]["message"]
    r = client.post("/v1/datasets?label_column=5", json={"x": data.tolist()})
    assert r.status_code == 422 and r.json()["error"]["field"] == "label_column" and "[-5, 4]" in r.text
    for query in ("", "?label_column=0"):  # the document declares y an array, not nullable
        r = client.post(f"/v1/datasets{query}", json={"x": data.tolist(), "y": None})
        assert r.status_code == 422 and r.json()["error"]["field"] == "y" and "not null" in r.text, r.text


@pytest.mark.parametrize("column", [-1, 0, 2])
def test_label_column_of_json_and_npz_without_y(client, xy, reference, column):
    """The column of JSON ``x`` or of the ``.npz`` member ``x`` equals ``y`` sent beside ``x``."""
    x, y = xy
    data = np.insert(x, column % 5, y, axis=1)
    r = client.post(f"/v1/datasets?label_column={column}", json={"x": data.tolist()})
    assert r.status_code == 201 and r.json() == reference, r.text
    r = client.post(f"/v1/datasets?label_column={column}", content=npz_bytes(x=data), headers=NPZ)
    assert r.status_code == 201 and r.json() == reference, r.text


def test_npz_refusals_name_the_field(client, xy):
    x, y = xy
    cases = [
        # (body, status, field, fragment)
        (npz_bytes(x=x, y=y[:-1]), 422, "y", "9 rows"),
        (npz_bytes(x=x, y=np.array([1.0, np.inf] * 5)), 422, "y", "finite"),
        (zip_bytes({"x.npy": npy_bytes(x), "y.npy": npy_bytes(np.array([None] * 10, dtype=object), allow_pickle=True)}),
         422, "y", "pickled content is refused"),
        (npz_bytes(x=x, labels=y), 422, "body", "only 'x' and 'y'"),
        (npz_bytes(y=y), 422, "body", "no array 'x'"),
        (npz_bytes(x=x[:, 0], y=y), 422, "x", "2-D"),
        (zip_bytes({"x.npy": npy_bytes(x), "y.npy": npy_bytes(np.zeros(20_000))}, zipfile.ZIP_DEFLATED), 422, "y",
         "inflates to"),
        (b"PK\x03\x04 not a zip", 400, "body", "not a readable .npz"),
        (npy_bytes(x), 400, "body", "not a readable .npz"),
    ]
    for body, status, field, fragment in cases:
        r = client.post("/v1/datasets", content=body, headers=NPZ)
        assert r.status_code == status, (fragment, r.text)
        assert r.json()["error"]["field"] == field and fragment in r.json()["error"]["message"], (fragment, r.text)
