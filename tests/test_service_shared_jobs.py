"""Shared computations, separate cancels; synchronous answers bounded by wall time. Both modes.

- Keys A and B ask for the same computation (single flight: one job). B's ``DELETE`` detaches B
  only: B sees its job canceled, A's job finishes with the right answer. Once every caller has
  deleted it, the computation stops.
- A synchronous request whose computation still runs after ``EOC_NTK_SYNC_WAIT_SECONDS`` is
  answered 202 with its job (``Location``), and the computation goes on as that job.

The eigenvalues are checked against the closed form of the depth-2 NTK of unit rows (docs/math.md §6).
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _private_redis import redis_or_skip
from _service_support import unit_rows, wait_for_job
from _worker_process import start_worker, stop_worker, wait_registered
from service.app import create_app
from service.config import Settings

QUEUE = f"eoc-ntk-shared-{os.getpid()}"
ASYNC = {"Prefer": "respond-async"}
KEYS = "key-a,key-b"
A, B = {"X-API-Key": "key-a"}, {"X-API-Key": "key-b"}
#: n large enough that the job still runs while two more requests are answered (a dense eigen-solve
#: of K/n, twice with the ICD analysis), small enough for the default run.
N = 700


def depth2_relu_spectrum(u: np.ndarray) -> np.ndarray:
    """Eigenvalues of K/n for the depth-2 EOC ReLU NTK of unit rows: ``K = q theta_2(angle)``."""
    delta, q = 0.5, 2.0 / u.shape[1]
    t = np.arccos(np.clip(u @ u.T, -1.0, 1.0))
    rho2 = np.cos(t) + delta * (2 / math.pi) * (np.sin(t) - t * np.cos(t))
    theta = rho2 + np.cos(t) * (1 - 2 * delta * t / math.pi)
    np.fill_diagonal(theta, 2.0)
    return np.linalg.eigvalsh(q * theta / len(u))


@pytest.fixture(scope="module", params=["embedded", "redis"])
def mode(request):
    """``make(**settings)`` building an app of the mode (Redis: the run's own redis-server and a real worker)."""
    if request.param == "embedded":
        yield lambda **kw: create_app(Settings(redis_url=None, **kw))
        return
    url = request.getfixturevalue("redis_test_url")
    conn = redis_or_skip(url)
    conn.flushdb()
    name = f"eoc-ntk-shared-{os.getpid()}"
    proc = start_worker(url, QUEUE, name)
    wait_registered(conn, proc, name)
    yield lambda **kw: create_app(Settings(redis_url=url, queue_name=QUEUE, **kw))
    stop_worker(proc)
    conn.flushdb()
    conn.close()


def body(seed: int) -> dict:
    return {"x": unit_rows(N, 3, seed=seed).tolist(), "model": {"depth": 2, "activation": "relu"}}


def test_a_delete_detaches_its_caller_and_the_shared_job_finishes_for_the_other(mode):
    request = body(seed=51)
    with TestClient(mode(api_keys=KEYS)) as c:
        first = c.post("/v1/spectra", json=request, headers={**A, **ASYNC})
        second = c.post("/v1/spectra", json=request, headers={**B, **ASYNC})
        assert first.status_code == second.status_code == 202, (first.text, second.text)
        job_id = first.json()["job_id"]
        assert second.json()["job_id"] == job_id  # one computation
        deleted = c.delete(f"/v1/jobs/{job_id}", headers=B)
        assert deleted.status_code == 200 and deleted.json()["status"] == "canceled", deleted.text
        assert c.get(f"/v1/jobs/{job_id}", headers=B).json()["status"] == "canceled"
        job = wait_for_job(c, job_id, headers=A)
        assert job["status"] == "finished", job
        np.testing.assert_allclose(job["result"]["eigenvalues"], depth2_relu_spectrum(np.array(request["x"])),
                                   rtol=1e-9, atol=1e-13)
        assert c.get(f"/v1/jobs/{job_id}", headers=B).json()["status"] == "canceled"  # B's answer stays final


def test_the_computation_stops_once_every_caller_deleted_it(mode):
    request = {**body(seed=52), "model": {"depth": 300, "activation": "relu", "sigma_b": 0.1}}  # a minute's work
    with TestClient(mode(api_keys=KEYS)) as c:
        job_id = c.post("/v1/spectra", json=request, headers={**A, **ASYNC}).json()["job_id"]
        assert c.post("/v1/spectra", json=request, headers={**B, **ASYNC}).json()["job_id"] == job_id
        assert c.delete(f"/v1/jobs/{job_id}", headers=B).json()["status"] == "canceled"
        assert c.get(f"/v1/jobs/{job_id}", headers=A).json()["status"] in ("queued", "running")
        assert c.delete(f"/v1/jobs/{job_id}", headers=A).json()["status"] == "canceled"
        engine = c.app.state.engine
        deadline = time.monotonic() + 30
        while engine.backend.get(job_id).status.value != "canceled":  # the computation itself
            assert time.monotonic() < deadline, engine.backend.get(job_id)
            time.sleep(0.05)


def test_a_synchronous_request_past_its_wait_is_answered_with_its_job(mode):
    request = body(seed=53)
    # Predicted far below a job (EOC_NTK_ASYNC_SECONDS), yet it runs longer than the wait.
    with TestClient(mode(async_seconds=1e9, sync_wait_seconds=0.05)) as c:
        started = time.monotonic()
        r = c.post("/v1/spectra", json=request)
        waited = time.monotonic() - started
        assert r.status_code == 202, r.text[:200]
        job_id = r.json()["job_id"]
        assert r.headers["Location"] == f"/v1/jobs/{job_id}"
        assert waited < 30, waited  # bounded by the wait (and the request's own work), not the computation
        job = wait_for_job(c, job_id)
        assert job["status"] == "finished", job
        np.testing.assert_allclose(job["result"]["eigenvalues"], depth2_relu_spectrum(np.array(request["x"])),
                                   rtol=1e-9, atol=1e-13)
        again = c.post("/v1/spectra", json=request)
        assert again.status_code == 200 and again.json()["cache"] == "hit"
