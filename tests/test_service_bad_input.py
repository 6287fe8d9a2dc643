"""The bad-input catalogue (issue 5): every kind of bad request is answered 4xx, with a message
and the field it is about, and leaves nothing behind (no dataset, result, job or record).

The same catalogue runs in embedded mode and, when a Redis answers, in Redis mode, where
"nothing stored" means the database's key count did not move: on a redis-server of the
test run's own (``tests/_private_redis.py``), or on ``REDIS_TEST_URL`` when the user sets it,
flushed.
"""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _private_redis import redis_or_skip
from _upload_support import npy_bytes
from service.app import create_app
from service.config import Settings

LIMITS = dict(max_n=50, max_m0=20, max_depth=100, max_body_bytes=4096, min_n=2)

M = {"depth": 2, "activation": {"name": "relu"}}
X = [[1.0, 2.0], [3.0, 4.0]]
JSON = {"Content-Type": "application/json"}
NPY = {"Content-Type": "application/x-npy"}
CSV = {"Content-Type": "text/csv"}


def _spectra(x=X, model=M, **extra):
    return {"json": {"x": x, "model": model, **extra}}


def _raw(text: str | bytes, headers=JSON):
    return {"content": text.encode() if isinstance(text, str) else text, "headers": headers}


_M_JSON = json.dumps(M)

# (kind, method, path, request kwargs, status, field the error must name, words the message must hold)
CATALOGUE = [
    ("malformed JSON", "POST", "/v1/spectra", _raw('{"x": [[1, 2], [3, 4]], "model": '), 400, "body", "JSON"),
    ("malformed JSON upload", "POST", "/v1/datasets", _raw('{"x": [[1, 2]'), 400, "body", "JSON"),
    ("body not an object", "POST", "/v1/spectra", _raw("[1, 2]"), 422, "body", ""),
    ("wrong content type", "POST", "/v1/spectra",
     _raw(json.dumps({"x": X, "model": M}), {"Content-Type": "text/plain"}), 415, "Content-Type", "application/json"),
    ("wrong content type upload", "POST", "/v1/datasets", _raw("1,2", {"Content-Type": "application/xml"}), 415,
     "Content-Type", "text/csv"),
    ("ragged rows", "POST", "/v1/spectra", _spectra([[1.0, 2.0], [3.0]]), 422, "x", "ragged"),
    ("strings", "POST", "/v1/spectra", _spectra([["1.0", 2.0], [3.0, 4.0]]), 422, "x.0.0", "number"),
    ("booleans", "POST", "/v1/spectra", _spectra([[True, 2.0], [3.0, 4.0]]), 422, "x.0.0", "number"),
    ("NaN "
     "literal", "POST", "/v1/spectra", _raw('{"x": [[1, 2], [3, NaN]], "model": %s}' % _M_JSON), 422, "x", "finite"),
    ("Infinity literal", "POST", "/v1/spectra", _raw('{"x": [[1, 2], [Infinity, 4]], "model": %s}' % _M_JSON), 422,
     "x", "finite"),
    ("-Infinity in x2", "POST", "/v1/kernels",
     _raw('{"x": [[1, 2], [3, 4]], "x2": [[-Infinity, 1]], "model": %s}' % _M_JSON), 422, "x2", "finite"),
    ("empty dataset", "POST", "/v1/spectra", _spectra([]), 422, "x", "2-D"),
    ("empty rows", "POST", "/v1/spectra", _spectra([[], []]), 422, "x", "empty"),
    ("single point", "POST", "/v1/spectra", _spectra([[1.0, 2.0]]), 422, "x", "EOC_NTK_MIN_N"),
    ("single point by id", "POST", "/v1/sweeps", None, 422, "dataset_id", "EOC_NTK_MIN_N"),  # set up below
    ("n over the limit", "POST", "/v1/spectra", _spectra([[float(i), 1.0] for i in range(51)]), 422, "x",
     "EOC_NTK_MAX_N"),
    ("m0 over the limit", "POST", "/v1/spectra", _spectra([[1.0] * 21, [2.0] * 21]), 422, "x", "EOC_NTK_MAX_M0"),
    ("depth over the limit", "POST", "/v1/spectra", _spectra(model={**M, "depth": 101}), 422, "model.depth",
     "EOC_NTK_MAX_DEPTH"),
    ("sweep depth over the limit", "POST", "/v1/sweeps",
     {"json": {"x": X, "depths": [1, 101], "activations": [{"name": "relu"}]}}, 422, "depths", "EOC_NTK_MAX_DEPTH"),
    ("depth 0", "POST", "/v1/spectra", _spectra(model={**M, "depth": 0}), 422, "model.depth", "greater than"),
    ("depth negative", "POST", "/v1/spectra", _spectra(model={**M, "depth": -3}), 422, "model.depth", "greater than"),
    ("depth fractional", "POST", "/v1/spectra", _spectra(model={**M, "depth": 2.5}), 422, "model.depth", "integer"),
    ("depth as a string", "POST", "/v1/spectra", _spectra(model={**M, "depth": "2"}), 422, "model.depth", "integer"),
    ("sweep depth 0", "POST", "/v1/sweeps", {"json": {"x": X, "depths": [0], "activations": [{"name": "relu"}]}}, 422,
     "depths.0", "greater than"),
    ("a = b = 0", "POST", "/v1/spectra", _spectra(model={"depth": 2, "activation": {"a": 0.0, "b": 0.0}}), 422,
     "model.activation", "both 0"),
    ("unknown activation name", "POST", "/v1/spectra", _spectra(model={"depth": 2, "activation": {"name": "sigmoid"}}),
     422, "model.activation.name", "relu"),
    ("activation overflowing", "POST", "/v1/spectra",
     _spectra(model={"depth": 2, "activation": {"a": 1e300, "b": 1e300}}), 422, "model.activation", "a^2 + b^2"),
    ("negative "
     "sigma_w", "POST", "/v1/spectra", _spectra(model={**M, "sigma_w": -1.0}), 422, "model.sigma_w", "sigma_w"),
    ("values whose squares overflow", "POST", "/v1/spectra", _spectra([[1e200, 1.0], [1.0, 2.0]]), 422, "x",
     "overflow"),
    ("subnormal inputs", "POST", "/v1/spectra", _spectra([[1e-310, 0.0], [0.0, 1.0]]), 422, "x", "subnormal"),
    ("x2 of another width", "POST", "/v1/kernels", {"json": {"x": X, "x2": [[1.0, 2.0, 3.0]], "model": M}}, 422,
     "x2", "width"),
    ("unknown kernel kind", "POST", "/v1/kernels", {"json": {"x": X, "model": M, "kinds": ["rbf"]}}, 422, "kinds.0",
     "ntk"),
    ("both x and dataset_id", "POST", "/v1/spectra", _spectra(dataset_id="0" * 32), 422, "body", "exactly one"),
    ("neither x nor dataset_id", "POST", "/v1/spectra", {"json": {"model": M}}, 422, "body", "exactly one"),
    ("unknown field", "POST", "/v1/spectra", _spectra(colour="blue"), 422, "colour", "not permitted"),
    ("missing model", "POST", "/v1/spectra", {"json": {"x": X}}, 422, "model", "required"),
    ("unknown dataset_id", "POST", "/v1/spectra", {"json": {"dataset_id": "0" * 32, "model": M}}, 404, "dataset_id",
     "unknown dataset_id"),
    ("unknown dataset_id (GET)", "GET", "/v1/datasets/" + "0" * 32, {}, 404, "dataset_id", "unknown dataset_id"),
    ("malformed dataset_id", "POST", "/v1/spectra", {"json": {"dataset_id": "../../etc", "model": M}}, 422,
     "dataset_id", "32 hex digits"),
    ("cached query without a", "GET", "/v1/spectra", {"params": {"dataset_id": "0" * 32, "depth": 2, "b": 0.5}},
     422, "a", "required"),
    ("cached query fractional depth", "GET", "/v1/spectra",
     {"params": {"dataset_id": "0" * 32, "depth": 2.5, "a": 0.5, "b": 0.5}}, 422, "depth", "integer"),
    # Found by schemathesis: sigma_w^2 (a^2 + b^2) overflowed to inf inside the cache key (a 500).
    ("cached query chi overflow", "GET", "/v1/spectra",
     {"params": {"dataset_id": "0" * 32, "depth": 3, "a": 1.76e16, "b": 2.8e-201, "sigma_w": 6.98e149,
                 "sigma_b": 9.6e149}}, 422, "model.sigma_w", "chi = sigma_w^2"),
    ("malformed job id", "GET", "/v1/jobs/not-a-job", {}, 422, "job_id", "malformed job id"),
    ("malformed job id (DELETE)", "DELETE", "/v1/jobs/" + "x" * 500, {}, 422, "job_id", "malformed job id"),
    ("unknown job id", "GET", "/v1/jobs/spectra-" + "0" * 32, {}, 404, "job_id", "unknown job"),
    ("unknown job id (DELETE)", "DELETE", "/v1/jobs/sweeps-" + "0" * 32, {}, 404, "job_id", "unknown job"),
    ("body over the size limit", "POST", "/v1/spectra", _spectra([[1.0] * 20] * 50), 413, "body",
     "EOC_NTK_MAX_BODY_BYTES"),
    ("upload over the size limit", "POST", "/v1/datasets", _raw(b"1.0,2.0\n" * 600, CSV), 413, "body", "limit"),
    (".npy with object dtype", "POST", "/v1/datasets",
     _raw(npy_bytes(np.array([[1.0, "x"]], dtype=object), allow_pickle=True), NPY), 422, "body", "pickled"),
    ("pickled content as .npy", "POST", "/v1/datasets", _raw(pickle.dumps([[1.0, 2.0], [3.0, 4.0]]), NPY), 400,
     "body", ".npy"),
    (".npy truncated", "POST", "/v1/datasets", _raw(npy_bytes(np.ones((3, 2)))[:-5], NPY), 400, "body", ".npy"),
    (".npy of strings", "POST", "/v1/datasets", _raw(npy_bytes(np.array([["a", "b"]])), NPY), 422, "body", "dtype"),
    (".npy of complex numbers", "POST", "/v1/datasets", _raw(npy_bytes(np.ones((2, 2), complex)), NPY), 422, "body",
     "dtype"),
    (".npy 3-D", "POST", "/v1/datasets", _raw(npy_bytes(np.ones((2, 2, 2))), NPY), 422, "x", "2-D"),
    ("CSV with a header", "POST", "/v1/datasets", _raw("a,b\n1,2\n3,4\n", CSV), 422, "body", "header"),
    ("CSV with a blank line", "POST", "/v1/datasets", _raw("1,2\n\n3,4\n", CSV), 422, "body", "blank"),
    ("CSV with a non-number", "POST", "/v1/datasets", _raw("1,2\n3,four\n", CSV), 422, "body", "not a number"),
    ("CSV with nan", "POST", "/v1/datasets", _raw("1,2\n3,nan\n", CSV), 422, "body", "not a number"),
    ("CSV ragged", "POST", "/v1/datasets", _raw("1,2\n3\n", CSV), 422, "x", "ragged"),
    ("CSV empty", "POST", "/v1/datasets", _raw("", CSV), 422, "body", "no data"),
    ("CSV not UTF-8", "POST", "/v1/datasets", _raw(b"1,2\n\xff\xfe,3\n", CSV), 400, "body", "UTF-8"),
]
assert len({kind for kind, *_ in CATALOGUE}) == len(CATALOGUE) >= 25


class Mode:
    """A client in one mode, and a way to count everything it stores."""

    def __init__(self, name: str, url: str | None = None):
        self.name = name
        if name == "embedded":
            self.client = TestClient(create_app(Settings(redis_url=None, **LIMITS)))
            self.conn = None
        else:
            self.conn = redis_or_skip(url)
            self.conn.flushdb()
            self.client = TestClient(create_app(Settings(redis_url=url, queue_name=f"bad-input-{os.getpid()}",
                                                         **LIMITS)))
        self.client.__enter__()
        one = self.client.post("/v1/datasets", json={"x": [[1.0, 2.0]]})  # a stored one-point dataset
        assert one.status_code == 201, one.text
        self.one_point_id = one.json()["dataset_id"]

    def footprint(self):
        engine = self.client.app.state.engine
        if self.conn is None:
            store = engine.storage.store
            return len(store._items), len(store._sets), len(engine.backend)
        # Metrics (job durations, counters) are no stored data: a refused job is still counted.
        stored = sum(1 for key in self.conn.scan_iter() if not key.startswith(b"eoc-ntk:metrics:"))
        return stored, len(engine.backend.local)  # the pool of Redis mode's synchronous requests

    def close(self):
        self.client.__exit__(None, None, None)
        if self.conn is not None:
            self.conn.flushdb()
            self.conn.close()


@pytest.fixture(scope="module", params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def mode(request):
    if request.param == "embedded":
        m = Mode("embedded")
        yield m
        m.close()
        return
    m = Mode("redis", request.getfixturevalue("redis_test_url"))
    yield m
    m.close()


def _request(mode: Mode, method: str, path: str, kwargs, headers=None):
    if kwargs is None:  # the one-point dataset, by id
        kwargs = {"json": {"dataset_id": mode.one_point_id, "depths": [1], "activations": [{"name": "relu"}]}}
    kwargs = dict(kwargs)
    if headers:
        kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
    return mode.client.request(method, path, **kwargs)


@pytest.mark.parametrize("kind, method, path, kwargs, status, field, words", CATALOGUE,
                         ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(mode, kind, method, path, kwargs, status,
                                                                      field, words):
    before = mode.footprint()
    r = _request(mode, method, path, kwargs)
    assert r.status_code == status, (kind, r.status_code, r.text)
    error = r.json()["error"]
    assert error["field"] == field, (kind, error)
    assert words in error["message"], (kind, error)
    assert mode.footprint() == before, f"{kind}: something was stored for a refused request"


@pytest.mark.parametrize("kind, method, path, kwargs, status, field, words",
                         [c for c in CATALOGUE if c[1] == "POST" and c[2] != "/v1/datasets"],
                         ids=[c[0] for c in CATALOGUE if c[1] == "POST" and c[2] != "/v1/datasets"])
def test_bad_input_is_refused_before_any_job_is_made(mode, kind, method, path, kwargs, status, field, words):
    before = mode.footprint()
    r = _request(mode, method, path, kwargs, headers={"Prefer": "respond-async"})
    assert r.status_code == status, (kind, r.status_code, r.text)
    assert r.json()["error"]["field"] == field
    assert mode.footprint() == before, f"{kind}: something was stored for a refused request"


def test_core_refusal_after_parsing_stores_nothing(mode):
    """Refused by the core during the computation itself (overflow off the edge of chaos)."""
    before = mode.footprint()[:-1]  # the in-process job record of a synchronous computation is kept
    body = {"x": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "model": {"depth": 100, "activation": {"name": "relu"},
                                                                  "sigma_w": 1e100}}
    r = mode.client.post("/v1/spectra", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "model" and "overflow" in r.json()["error"]["message"]
    assert mode.footprint()[:-1] == before


def test_zero_and_duplicate_rows_are_valid_and_singular(mode):
    for x in ([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]], [[1.0, 2.0], [1.0, 2.0], [3.0, 1.0]]):
        r = mode.client.post("/v1/spectra", json={"x": x, "model": {"depth": 3, "activation": {"name": "relu"}}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["singular"] is True and body["condition_number"] is None
