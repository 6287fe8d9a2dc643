"""Access control (issue 5): optional API keys, per-key visibility of datasets and jobs, the
per-key limit on concurrent jobs, CORS off unless configured, the body size limit."""
from __future__ import annotations

import hmac
import os

import pytest
from fastapi.testclient import TestClient

from _private_redis import redis_or_skip
from _service_support import make_client, relu_model, unit_rows
from service import access
from service.app import create_app
from service.config import Settings
from service.errors import Unauthorized

ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"
A = {"X-API-Key": ALICE}
B = {"Authorization": f"Bearer {BOB}"}
ASYNC = {"Prefer": "respond-async"}
X = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]


@pytest.fixture(scope="module")
def keyed():
    with make_client(api_keys=f"{ALICE},{BOB}", max_jobs_per_key=2, workers=1) as c:
        yield c


def test_without_configured_keys_no_key_is_needed():
    with make_client() as c:
        assert c.post("/v1/spectra", json={"x": X, "model": relu_model(2)}).status_code == 200
        assert c.post("/v1/spectra", json={"x": X, "model": relu_model(2)}, headers=A).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ALICE[:-1]},
                                     {"X-API-Key": ALICE + "x"}, {"Authorization": "Bearer nope"},
                                     {"Authorization": f"Basic {ALICE}"}, {"X-API-Key": ""}])
def test_every_v1_route_needs_a_valid_key(keyed, headers):
    for method, path, kwargs in (
        ("POST", "/v1/spectra", {"json": {"x": X, "model": relu_model(2)}}),
        ("POST", "/v1/datasets", {"json": {"x": X}}),
        ("GET", "/v1/datasets/" + "0" * 32, {}),
        ("GET", "/v1/spectra", {"params": {"dataset_id": "0" * 32, "depth": 2, "a": 0.5, "b": 0.5}}),
        ("POST", "/v1/kernels", {"json": {"x": X, "model": relu_model(2)}}),
        ("POST", "/v1/sweeps", {"json": {"x": X, "depths": [1], "activations": [{"name": "relu"}]}}),
        ("GET", "/v1/jobs/spectra-" + "0" * 32, {}),
        ("DELETE", "/v1/jobs/spectra-" + "0" * 32, {}),
    ):
        r = keyed.request(method, path, headers=headers, **kwargs)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthorized" and r.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_v1_operation_declares_the_key(keyed):
    """Structural: a /v1 route added later cannot forget authentication (the key dependency puts
    a security requirement on the operation)."""
    paths = keyed.app.openapi()["paths"]
    operations = [(path, method, op) for path, item in paths.items() if path.startswith("/v1")
                  for method, op in item.items()]
    assert len(operations) >= 8
    for path, method, op in operations:
        schemes = {name for requirement in op.get("security", []) for name in requirement}
        assert {"APIKeyHeader", "HTTPBearer"} <= schemes, f"{method.upper()} {path} does not authenticate"
    for path in ("/healthz", "/readyz"):
        assert not paths[path]["get"].get("security")


def test_health_needs_no_key(keyed):
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200


def test_keys_are_compared_in_constant_time(monkeypatch):
    """Every configured key is compared through hmac.compare_digest on fixed-length digests."""
    calls = []
    real = hmac.compare_digest

    def spy(x, y):
        calls.append((len(x), len(y)))
        return real(x, y)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    settings = Settings(redis_url=None, api_keys="k1,k2-longer,k3")
    assert access.authenticate(settings, "k1") == access.fingerprint("k1")
    assert len(calls) == 3, "no early exit: every key is compared"
    calls.clear()
    with pytest.raises(Unauthorized, match="not valid"):
        access.authenticate(settings, "a much longer wrong key than any")
    assert calls == [(32, 32)] * 3  # digests: the key's length does not show
    assert access.fingerprint("k1") != "k1" and "k1" not in access.fingerprint("k1")


def test_datasets_are_visible_only_to_the_key_that_stored_them(keyed):
    x = unit_rows(5, 3, seed=31).tolist()
    r = keyed.post("/v1/datasets", json={"x": x}, headers=A)
    assert r.status_code == 201
    dataset_id = r.json()["dataset_id"]
    assert keyed.get(f"/v1/datasets/{dataset_id}", headers=A).status_code == 200
    r = keyed.get(f"/v1/datasets/{dataset_id}", headers=B)
    assert r.status_code == 404 and r.json()["error"]["field"] == "dataset_id"
    r = keyed.post("/v1/spectra", json={"dataset_id": dataset_id, "model": relu_model(2)}, headers=B)
    assert r.status_code == 404
    # The owner computes; the other key cannot read the cached result by id either.
    assert keyed.post("/v1/spectra", json={"dataset_id": dataset_id, "model": relu_model(2)},
                      headers=A).status_code == 200
    query = {"dataset_id": dataset_id, "depth": 2, "a": 0.5, "b": 0.5}
    assert keyed.get("/v1/spectra", params=query, headers=A).status_code == 200
    assert keyed.get("/v1/spectra", params=query, headers=B).status_code == 404
    # Sending the same data (inline) proves Bob has them: then the id is his too. The answer is
    # a "miss" all the same: Bob never asked, and must not learn that Alice did (issue 11, item 8).
    assert keyed.post("/v1/spectra", json={"x": x, "model": relu_model(2)}, headers=B).json()["cache"] == "miss"
    assert keyed.get(f"/v1/datasets/{dataset_id}", headers=B).status_code == 200
    assert keyed.get("/v1/spectra", params=query, headers=B).json()["cache"] == "hit"  # now his own history


def test_jobs_are_visible_only_to_the_key_that_submitted_them(keyed):
    body = {"x": unit_rows(6, 3, seed=32).tolist(), "model": relu_model(3)}
    r = keyed.post("/v1/spectra", json=body, headers={**A, **ASYNC})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert wait_for_job_with(keyed, job_id, A)["status"] == "finished"
    for method in ("GET", "DELETE"):
        r = keyed.request(method, f"/v1/jobs/{job_id}", headers=B)
        assert r.status_code == 404 and r.json()["error"]["field"] == "job_id"


def wait_for_job_with(client, job_id, headers, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while (body := client.get(f"/v1/jobs/{job_id}", headers=headers).json())["status"] not in (
            "finished", "failed", "canceled"):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def test_per_key_limit_on_concurrent_jobs(keyed):
    # One worker thread: a long sweep holds it, so the following jobs stay queued.
    long = {"x": unit_rows(150, 4, seed=33).tolist(), "depths": list(range(1, 201)), "activations": [{"name": "relu"}]}
    first = keyed.post("/v1/sweeps", json=long, headers={**A, **ASYNC})
    second = keyed.post("/v1/spectra", json={"x": unit_rows(5, 3, seed=34).tolist(), "model": relu_model(2)},
                        headers={**A, **ASYNC})
    assert first.status_code == second.status_code == 202
    # The same request again joins its job: not one more.
    assert keyed.post("/v1/sweeps", json=long, headers={**A, **ASYNC}).status_code == 202
    third = keyed.post("/v1/spectra", json={"x": unit_rows(5, 3, seed=35).tolist(), "model": relu_model(2)},
                       headers={**A, **ASYNC})
    assert third.status_code == 429, third.text
    assert third.json()["error"]["code"] == "too_many_jobs" and int(third.headers["Retry-After"]) > 0
    assert "EOC_NTK_MAX_JOBS_PER_KEY" in third.json()["error"]["message"]
    # Another key is not held up; synchronous requests are not jobs.
    other = keyed.post("/v1/spectra", json={"x": unit_rows(5, 3, seed=35).tolist(), "model": relu_model(2)},
                       headers={**B, **ASYNC})
    assert other.status_code == 202
    assert keyed.post("/v1/spectra", json={"x": X, "model": relu_model(4)}, headers=A).status_code == 200
    # Once a job ends, there is room again.
    assert keyed.delete(f"/v1/jobs/{first.json()['job_id']}", headers=A).json()["status"] == "canceled"
    assert wait_for_job_with(keyed, second.json()["job_id"], A)["status"] == "finished"
    again = keyed.post("/v1/spectra", json={"x": unit_rows(5, 3, seed=35).tolist(), "model": relu_model(2)},
                       headers={**A, **ASYNC})
    assert again.status_code in (200, 202), again.text


def test_cors_is_off_unless_configured():
    origin = {"Origin": "https://notebook.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    with make_client() as c:
        r = c.get("/healthz", headers=origin)
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in c.options("/v1/spectra", headers=preflight).headers
    with make_client(cors_origins="https://notebook.example") as c:
        r = c.get("/healthz", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://notebook.example"
        r = c.options("/v1/spectra", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://notebook.example"
        r = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_body_size_limit_is_configured(keyed):
    with make_client(max_body_bytes=2048) as c:
        r = c.post("/v1/datasets", json={"x": [[1.0] * 100] * 10})
        assert r.status_code == 413 and r.json()["error"]["field"] == "body"
        assert "EOC_NTK_MAX_BODY_BYTES" in r.json()["error"]["message"]


@pytest.mark.redis
def test_ownership_and_job_limit_in_redis_mode(redis_test_url):
    """The same rules with Redis as the store (the run's own redis-server, or REDIS_TEST_URL;
    flushed) and no worker: jobs stay queued."""
    _ownership_and_job_limit(redis_test_url)


def _ownership_and_job_limit(url: str) -> None:
    conn = redis_or_skip(url)
    conn.flushdb()
    settings = Settings(redis_url=url, queue_name=f"access-{os.getpid()}", api_keys=f"{ALICE},{BOB}",
                        max_jobs_per_key=2)
    try:
        with TestClient(create_app(settings)) as c:
            assert c.post("/v1/spectra", json={"x": X, "model": relu_model(2)}).status_code == 401
            dataset_id = c.post("/v1/datasets", json={"x": X}, headers=A).json()["dataset_id"]
            assert c.get(f"/v1/datasets/{dataset_id}", headers=B).status_code == 404
            jobs = [c.post("/v1/spectra", json={"dataset_id": dataset_id, "model": relu_model(d)},
                           headers={**A, **ASYNC}) for d in (2, 3)]
            assert [r.status_code for r in jobs] == [202, 202]
            r = c.post("/v1/spectra", json={"dataset_id": dataset_id, "model": relu_model(4)}, headers={**A, **ASYNC})
            assert r.status_code == 429 and r.headers["Retry-After"]
            job_id = jobs[0].json()["job_id"]
            assert c.get(f"/v1/jobs/{job_id}", headers=B).status_code == 404
            assert c.get(f"/v1/jobs/{job_id}", headers=A).json()["status"] == "queued"
            assert c.delete(f"/v1/jobs/{job_id}", headers=A).json()["status"] == "canceled"
            r = c.post("/v1/spectra", json={"dataset_id": dataset_id, "model": relu_model(4)}, headers={**A, **ASYNC})
            assert r.status_code == 202
            assert not [k for k in conn.keys("eoc-ntk:*") if ALICE.encode() in k or BOB.encode() in k]
            assert not [k for k in conn.keys("*") if conn.type(k) == b"string" and ALICE.encode() in conn.get(k)]
    finally:
        conn.flushdb()
        conn.close()
