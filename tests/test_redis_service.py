"""Redis mode against a real Redis (the run's own redis-server, or REDIS_TEST_URL; flushed) and a real worker.

The worker is a subprocess (``python -m jobs``, the code behind ``eoc-ntk worker``).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

import eoc_ntk
from _service_support import ntk_depth2_unit, relu_model, unit_rows, wait_for_job
from _worker_process import start_worker, stop_worker, wait_registered
from jobs import keys
from jobs.specs import cache_key, spectra_spec
from service.app import create_app
from service.config import Settings

ASYNC = {"Prefer": "respond-async"}
# A queue of this run's own, so that a worker of another test run on the same Redis never takes its jobs.
QUEUE = f"eoc-ntk-test-{os.getpid()}"


def redis_settings(url: str, **overrides) -> Settings:
    return Settings(redis_url=url, queue_name=QUEUE, **overrides)


@pytest.fixture(scope="module")
def worker(redis_conn, redis_test_url):
    name = f"eoc-ntk-test-{os.getpid()}"
    proc = start_worker(redis_test_url, QUEUE, name)
    wait_registered(redis_conn, proc, name)
    yield proc
    stop_worker(proc)


@pytest.fixture(scope="module")
def client(worker, redis_test_url):
    with TestClient(create_app(redis_settings(redis_test_url))) as c:
        yield c


pytestmark = pytest.mark.redis


def test_ready_in_redis_mode(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["mode"] == "redis"


def test_job_then_cache_hit_then_cached_query(client):
    u = unit_rows(10, 4, seed=21)
    body = {"x": u.tolist(), "model": relu_model(2)}
    r = client.post("/v1/spectra", json=body, headers=ASYNC)
    assert r.status_code == 202, r.text
    job = wait_for_job(client, r.json()["job_id"])
    assert job["status"] == "finished" and job["progress"] == 1.0
    ref = np.linalg.eigvalsh(ntk_depth2_unit(u) / 10)
    np.testing.assert_allclose(job["result"]["eigenvalues"], ref, rtol=1e-10)
    dataset_id = job["result"]["dataset_id"]
    again = client.post("/v1/spectra", json=body, headers=ASYNC)  # one shape: the finished job
    assert again.status_code == 202 and again.json()["job_id"] == job["job_id"]
    assert again.json()["status"] == "finished"
    assert again.json()["result"]["eigenvalues"] == job["result"]["eigenvalues"]
    assert client.post("/v1/spectra", json=body).json()["cache"] == "hit"
    # A result computed synchronously, asked again as a job: a finished job that no worker ran,
    # recorded in Redis (another API process sees it).
    sync_body = {"x": u.tolist(), "model": relu_model(4)}
    assert client.post("/v1/spectra", json=sync_body).status_code == 200
    answered = client.post("/v1/spectra", json=sync_body, headers=ASYNC)
    assert answered.status_code == 202 and answered.json()["status"] == "finished"
    polled = client.get(answered.headers["Location"])
    assert polled.status_code == 200 and polled.json()["result"] == answered.json()["result"]
    by_id = client.post("/v1/spectra",
                        json={"dataset_id": dataset_id, "model": {"depth": 2, "activation": {"a": 0.5, "b": 0.5}}})
    assert by_id.json()["cache"] == "hit"
    query = client.get("/v1/spectra", params={"dataset_id": dataset_id, "depth": 2, "a": 0.5, "b": 0.5})
    assert query.status_code == 200 and query.json()["eigenvalues"] == job["result"]["eigenvalues"]
    assert client.get("/v1/spectra",
                      params={"dataset_id": dataset_id, "depth": 3, "a": 0.5, "b": 0.5}).status_code == 404


def test_a_result_a_worker_stored_is_listed_and_read_by_its_url(client):
    """The worker writes the results listing where it stores the result (the API never ran it)."""
    u = unit_rows(9, 4, seed=23)
    r = client.post("/v1/spectra", json={"x": u.tolist(), "model": relu_model(2)}, headers=ASYNC)
    job = wait_for_job(client, r.json()["job_id"])
    dataset_id = job["result"]["dataset_id"]
    items = client.get(f"/v1/datasets/{dataset_id}/results").json()["items"]
    assert [(i["kind"], i["model"]["depth"]) for i in items] == [("spectra", 2)]
    assert client.get(items[0]["url"]).json()["eigenvalues"] == job["result"]["eigenvalues"]
    assert job["job_id"] in [j["job_id"] for j in client.get("/v1/jobs?status=finished&limit=500").json()["items"]]


def test_cache_is_shared_by_api_processes_and_corruption_is_recomputed(client, redis_conn, redis_test_url):
    x = np.random.default_rng(4).normal(size=(6, 3))
    first = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(3)}).json()
    assert first["cache"] == "miss"
    with TestClient(create_app(redis_settings(redis_test_url))) as other:
        assert other.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(3)}).json()["cache"] == "hit"
    model = eoc_ntk.Model.from_activation(3, "relu")
    ckey = cache_key(spectra_spec(first["dataset_id"], model))
    query = {"dataset_id": first["dataset_id"], "depth": 3, "a": 0.5, "b": 0.5}
    # The rendered answer (issue 18) alone corrupted: rendered again from the intact result.
    body = bytearray(redis_conn.get(keys.body_key(ckey)))
    body[-3] ^= 0xFF
    redis_conn.set(keys.body_key(ckey), bytes(body))
    assert client.get("/v1/spectra", params=query).json()["eigenvalues"] == first["eigenvalues"]
    assert redis_conn.get(keys.body_key(ckey)) != bytes(body)  # replaced
    # Both the result and its answer corrupted: never served.
    for key in (keys.result_key(ckey), keys.body_key(ckey)):
        blob = bytearray(redis_conn.get(key))
        blob[-3] ^= 0xFF
        redis_conn.set(key, bytes(blob))
    assert client.get("/v1/spectra", params=query).status_code == 404  # never served
    again = client.post("/v1/spectra", json={"dataset_id": first["dataset_id"], "model": relu_model(3)}).json()
    assert again["cache"] == "miss" and again["eigenvalues"] == first["eigenvalues"]


def test_single_flight(client, redis_conn):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    body = {"x": unit_rows(120, 4, seed=22).tolist(), "depths": list(range(1, 61)), "activations": [{"name": "relu"}]}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/sweeps", json=body, headers=ASYNC), range(8)))
    job_ids = {r.json()["job_id"] for r in answers if r.status_code == 202}
    assert len(job_ids) == 1 and all(r.status_code in (200, 202) for r in answers)
    job_id = job_ids.pop()
    assert wait_for_job(client, job_id)["status"] == "finished"
    job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
    assert len(job.results()) == 1  # executed once
    assert all(r.json()["cache"] == "hit" for r in answers if r.status_code == 200)


def test_progress_is_reported_while_running(client):
    body = {"x": unit_rows(150, 4, seed=23).tolist(), "depths": list(range(1, 101)), "activations": [{"name": "abs"}]}
    job_id = client.post("/v1/sweeps", json=body, headers=ASYNC).json()["job_id"]
    seen = []
    deadline = time.monotonic() + 120
    while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] != "finished":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        seen.append(job["progress"])
        time.sleep(0.05)
    assert any(0.0 < p < 1.0 for p in seen), seen
    assert seen == sorted(seen)


@pytest.fixture
def local_time_not_utc():
    """The test process (where the API runs) in a zone far from UTC, so that a start time read as
    local time instead of UTC would be off by hours."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def _utc_seconds(iso: str) -> float:
    from datetime import datetime, timezone

    assert iso.endswith("Z"), iso  # UTC, said so
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def test_job_timing_from_a_real_worker(client, local_time_not_utc):
    """started_at (UTC), elapsed_seconds and eta_seconds of a sweep run by the RQ worker: the start
    lies between the submission and the first look, elapsed is the wall clock since the start and
    grows, eta never grows while the progress stands still, and the finished job keeps its start."""
    body = {"x": unit_rows(150, 4, seed=27).tolist(), "depths": list(range(1, 151)), "activations": [{"name": "relu"}]}
    submitted = time.time()
    job_id = client.post("/v1/sweeps", json=body, headers=ASYNC).json()["job_id"]
    running = []  # (time before the request, time after it, the job's status body)
    deadline = time.monotonic() + 120
    while True:
        before = time.time()
        job = client.get(f"/v1/jobs/{job_id}").json()
        after = time.time()
        if job["status"] == "finished":
            seen_finished = after
            break
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        if job["status"] == "queued":
            assert "started_at" not in job and "elapsed_seconds" not in job
        else:
            running.append((before, after, job))
        time.sleep(0.1)
    assert len(running) >= 2, "the job ended before it was seen running twice"
    starts = {j["started_at"] for _, _, j in running} | {job["started_at"]}
    assert len(starts) == 1, starts  # one start, kept once finished
    started = _utc_seconds(starts.pop())
    assert submitted - 0.01 <= started <= running[0][1] + 0.01
    for before, after, j in running:
        assert before - started - 0.01 <= j["elapsed_seconds"] <= after - started + 0.01, (before, after, started, j)
        assert j.get("eta_seconds", 0.0) >= 0.0, j
    for (_, _, a), (_, _, b) in zip(running, running[1:], strict=False):
        if a["progress"] == b["progress"] and "eta_seconds" in a and "eta_seconds" in b:
            assert b["eta_seconds"] <= a["eta_seconds"] + 1e-3, (a, b)
    elapsed = [j["elapsed_seconds"] for _, _, j in running]
    assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0]  # it grows while the job runs
    assert any("eta_seconds" in j for _, _, j in running)
    # It ended after the last look that saw progress < 1, and before the look that saw it finished.
    last_unfinished = max(before for before, _, j in running if j["progress"] < 1.0)
    assert job["eta_seconds"] == 0.0
    assert last_unfinished - started - 0.01 <= job["elapsed_seconds"] <= seen_finished - started + 0.01


def test_failed_job_says_why(client):
    bad = {"x": unit_rows(5, 3, seed=24).tolist(),
           "model": {"depth": 1500, "activation": {"name": "relu"}, "sigma_w": 2.0}}
    job = wait_for_job(client, client.post("/v1/spectra", json=bad, headers=ASYNC).json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_input" and "overflow" in job["error"]["message"]
    assert "result" not in job


def test_cancel_running_and_queued_jobs(client):
    # Half a minute of recursion to depth 2000 before its first progress report: stopped at once.
    long = {"x": unit_rows(300, 4, seed=25).tolist(), "depths": [2000], "activations": [{"name": "relu"}]}
    running = client.post("/v1/sweeps", json=long, headers=ASYNC).json()["job_id"]
    queued_body = {"x": unit_rows(6, 3, seed=26).tolist(), "model": relu_model(5)}
    queued = client.post("/v1/spectra", json=queued_body, headers=ASYNC).json()["job_id"]
    wait_for_job(client, running, until=("running",))
    assert client.get(f"/v1/jobs/{queued}").json()["status"] == "queued"
    r = client.delete(f"/v1/jobs/{queued}")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    r = client.delete(f"/v1/jobs/{running}")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert client.get(f"/v1/jobs/{running}").json()["error"]["code"] == "canceled"
    # The worker survives and serves the next job; resubmitting a canceled request runs it.
    again = client.post("/v1/spectra", json=queued_body, headers=ASYNC).json()
    assert again["job_id"] == queued
    assert wait_for_job(client, queued)["status"] == "finished"


def test_unknown_job_and_dataset(client):
    assert client.get("/v1/jobs/spectra-" + "f" * 32).status_code == 404
    assert client.post("/v1/spectra", json={"dataset_id": "f" * 32, "model": relu_model(2)}).status_code == 404


def test_redis_down_readiness_fails_small_requests_still_answered():
    """Not needing Redis itself: a REDIS_URL where nothing listens."""
    with TestClient(create_app(Settings(redis_url="redis://127.0.0.1:1/0"))) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.headers["Retry-After"]
        small = c.post("/v1/spectra", json={"x": [[1.0, 0.0], [0.0, 1.0]], "model": relu_model(2)})
        assert small.status_code == 200 and small.json()["cache"] == "miss"
        r = c.post("/v1/spectra", json={"x": [[1.0, 0.0], [0.0, 1.0]], "model": relu_model(2)}, headers=ASYNC)
        assert r.status_code == 503 and r.headers["Retry-After"]
