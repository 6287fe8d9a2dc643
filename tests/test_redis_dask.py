"""Issue #15, item 4: the service in Redis mode runs large spectra on a Dask cluster.

A private redis-server, a real RQ worker (``python -m jobs``) and a ``LocalCluster`` of 2 worker
processes with 1 thread each, started here; the API and the worker get
``EOC_NTK_DASK_ADDRESS`` = that scheduler and a small ``EOC_NTK_DASK_MIN_N``. The reference is
the single-machine core (``eoc_ntk.spectrum(..., eigenvalues="extremes")``, itself checked
against dense ``eigvalsh`` elsewhere); the cancel is checked on the scheduler's own state.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytest.importorskip("distributed")
from distributed import Client, LocalCluster
from fastapi.testclient import TestClient

import eoc_ntk
from _service_support import relu_model, wait_for_job
from _worker_process import start_worker, stop_worker, wait_registered
from service.app import create_app
from service.config import Settings

pytestmark = pytest.mark.redis

QUEUE = f"eoc-ntk-dask-test-{os.getpid()}"
#: Above DENSE_BELOW (1000), so that the tiled path runs: 3 x 3 tiles of 400 rows.
N, M0, DEPTH = 1200, 10, 10
DASK = {"dask_min_n": 200, "dask_chunks": 400}


@pytest.fixture(scope="module")
def cluster():
    """The scheduler's address and a client of its own that observes the scheduler."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            Client(c) as observer:
        yield c.scheduler_address, observer


@pytest.fixture(scope="module")
def worker(redis_conn, redis_test_url, cluster):
    name = f"eoc-ntk-dask-test-{os.getpid()}"
    env = {f"EOC_NTK_{k.upper()}": v for k, v in DASK.items()}
    proc = start_worker(redis_test_url, QUEUE, name, EOC_NTK_DASK_ADDRESS=cluster[0], **env)
    wait_registered(redis_conn, proc, name)
    yield proc
    stop_worker(proc)


@pytest.fixture(scope="module")
def client(worker, redis_test_url, cluster):
    settings = Settings(redis_url=redis_test_url, queue_name=QUEUE, dask_address=cluster[0], **DASK)
    with TestClient(create_app(settings)) as c:
        yield c


def _scheduler_tasks(observer) -> dict:
    """Every task the scheduler knows, by state (the observer's own client holds none)."""
    def states(dask_scheduler):
        out: dict = {}
        for ts in dask_scheduler.tasks.values():
            out[ts.state] = out.get(ts.state, 0) + 1
        return out
    return observer.run_on_scheduler(states)


def _cancel_events(observer) -> int:
    """How many ``client.cancel`` calls the scheduler has recorded (its event log, by client)."""
    return sum(1 for events in observer.get_events().values() for _, msg in events
               if isinstance(msg, dict) and msg.get("action") == "cancel")


def _delete_and_check_the_cluster_lets_go(c, job_id: str, observer) -> None:
    """DELETE a job running on the cluster: canceled, its client cancelled its futures, and the
    scheduler holds no queued or processing task within a few seconds."""
    cancels = _cancel_events(observer)
    assert _scheduler_tasks(observer), "the job has no tasks on the cluster"
    deleted = c.delete(f"/v1/jobs/{job_id}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "canceled", deleted.text
    _assert_tasks_released(observer, cancels)
    assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "canceled"



def _assert_tasks_released(observer, cancels: int, timeout: float = 10.0) -> None:
    """Within ``timeout`` s the scheduler holds no queued, waiting or processing task, and it
    recorded a cancel after the ``cancels`` seen before (the job's process called client.cancel)."""
    deadline = time.monotonic() + timeout
    while ((left := _scheduler_tasks(observer)) or _cancel_events(observer) == cancels) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left.get("processing") and not left.get("waiting") and not left.get("queued"), left
    assert _cancel_events(observer) > cancels, "the job's process did not cancel its futures (client.cancel)"

def _wait_for_progress(c, job_id: str, timeout: float = 60) -> float:
    """The first progress strictly between 0 and 1 seen while the job runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = c.get(f"/v1/jobs/{job_id}").json()
        assert view["status"] in ("queued", "running"), view
        if view["status"] == "running" and 0.0 < view["progress"] < 1.0:
            return view["progress"]
        time.sleep(0.1)
    raise AssertionError(f"no progress within {timeout} s while job {job_id} ran")


def test_a_spectrum_above_the_threshold_runs_on_the_cluster(client, cluster):
    x = np.random.default_rng(15).uniform(-1.0, 1.0, (N, M0))
    r = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(DEPTH)})
    assert r.status_code == 202, r.text  # always a job, though no Prefer header asked for one
    job = wait_for_job(client, r.json()["job_id"], timeout=120)
    assert job["status"] == "finished", job
    result = job["result"]
    assert result["engine"] == "dask" and result["eigenvalues"] is None and result["icd"] is None
    assert "Dask" in result["icd_unavailable"]
    ref = eoc_ntk.spectrum(x, depth=DEPTH, a=0.5, b=0.5, eigenvalues="extremes")
    for field in ("lambda_min", "lambda_max", "condition_number"):
        assert result[field] == pytest.approx(getattr(ref, field), rel=1e-9), field
    assert result["singular"] is ref.singular is False and result["n"] == N
    # The same question again, by id, is the cached answer of the cluster's run.
    again = client.post("/v1/spectra", json={"dataset_id": result["dataset_id"], "model": relu_model(DEPTH)})
    assert again.status_code == 200 and again.json()["cache"] == "hit" and again.json()["engine"] == "dask"
    # The plot of such a job is refused by name (no eigenvalues to draw).
    plot = client.get(f"/v1/jobs/{job['job_id']}/plot")
    assert plot.status_code == 406 and "dask" in plot.json()["error"]["message"]


def test_below_the_threshold_the_spectrum_runs_on_one_machine(client):
    x = np.random.default_rng(3).standard_normal((50, 4))
    r = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(3)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["engine"] == "numpy" and len(body["eigenvalues"]) == 50
    np.testing.assert_allclose(body["lambda_max"], eoc_ntk.spectrum(x, depth=3, a=0.5, b=0.5).lambda_max, rtol=1e-12)


def test_progress_while_running_then_delete_cancels_the_clusters_tasks(client, cluster):
    x = np.random.default_rng(16).standard_normal((2000, M0))  # 5 x 5 tiles: tens of seconds of work
    r = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(DEPTH)})
    assert r.status_code == 202, r.text
    _wait_for_progress(client, r.json()["job_id"])
    _delete_and_check_the_cluster_lets_go(client, r.json()["job_id"], cluster[1])


def test_embedded_mode_runs_it_on_the_cluster_too(cluster):
    """The job's child process of the embedded pool is the Dask client (the API's settings reach it)."""
    x = np.random.default_rng(17).standard_normal((1100, M0))
    settings = Settings(dask_address=cluster[0], **DASK)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(DEPTH)})
        assert r.status_code == 202, r.text
        job = wait_for_job(c, r.json()["job_id"], timeout=120)
    assert job["status"] == "finished" and job["result"]["engine"] == "dask", job
    ref = eoc_ntk.spectrum(x, depth=DEPTH, a=0.5, b=0.5, eigenvalues="extremes")
    assert job["result"]["lambda_min"] == pytest.approx(ref.lambda_min, rel=1e-9)
    assert job["result"]["lambda_max"] == pytest.approx(ref.lambda_max, rel=1e-9)


def test_embedded_mode_delete_cancels_the_clusters_tasks(cluster):
    x = np.random.default_rng(18).standard_normal((2000, M0))
    with TestClient(create_app(Settings(dask_address=cluster[0], **DASK))) as c:
        r = c.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(DEPTH)})
        assert r.status_code == 202, r.text
        _wait_for_progress(c, r.json()["job_id"])
        _delete_and_check_the_cluster_lets_go(c, r.json()["job_id"], cluster[1])


def test_a_scheduler_that_does_not_answer_fails_the_job_by_name():
    settings = Settings(dask_address="tcp://127.0.0.1:9", dask_min_n=2, dask_connect_timeout=1.0)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/spectra", json={"x": np.eye(20).tolist(), "model": relu_model(2)})
        assert r.status_code == 202, r.text
        job = wait_for_job(c, r.json()["job_id"], timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == "dask_unavailable", job
    assert "EOC_NTK_DASK_ADDRESS" in job["error"]["message"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["redis", "embedded"])
def test_a_timeout_cancels_the_clusters_tasks(mode, cluster, worker, redis_test_url):
    """EOC_NTK_JOB_TIMEOUT: RQ's own alarm in the work horse (Redis mode) or the pool's watchdog
    (embedded) stops the job; either way its client cancels its futures on the cluster."""
    observer = cluster[1]
    redis = {"redis_url": redis_test_url, "queue_name": QUEUE} if mode == "redis" else {}
    settings = Settings(dask_address=cluster[0], job_timeout=4, **redis, **DASK)
    x = np.random.default_rng(19 if mode == "redis" else 20).standard_normal((2000, M0))
    cancels = _cancel_events(observer)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(DEPTH)})
        assert r.status_code == 202, r.text
        # Until the job ends: did its tasks reach the cluster before the timeout (a loaded machine
        # may spend the 4 s before the first submission, and then there is nothing to cancel)?
        deadline, had_tasks = time.monotonic() + 60, False
        while (job := c.get(f"/v1/jobs/{r.json()['job_id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            had_tasks = had_tasks or bool(_scheduler_tasks(observer))
            time.sleep(0.1)
    assert job["status"] == "failed" and job["error"]["code"] == "timeout", job
    if not had_tasks:
        pytest.skip("the job timed out before it submitted anything to the cluster (machine too loaded)")
    _assert_tasks_released(observer, cancels)


def test_a_smooth_spectrum_above_the_threshold_runs_on_the_cluster(client):
    """tanh at its edge of chaos for sigma_b = 0.1: the same answer, in the same shape, as on one machine."""
    x = np.random.default_rng(21).uniform(-1.0, 1.0, (N, M0))
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # one variance group: the core's fast smooth path
    model = {"depth": DEPTH, "activation": "tanh", "sigma_b": 0.1}
    r = client.post("/v1/spectra", json={"x": x.tolist(), "model": model})
    assert r.status_code == 202, r.text
    job = wait_for_job(client, r.json()["job_id"], timeout=180)
    assert job["status"] == "finished", job
    result = job["result"]
    assert result["engine"] == "dask" and result["eigenvalues"] is None and result["icd"] is None
    assert "tanh" in result["icd_unavailable"]  # the activation's reason: no ICD on any engine
    ref = eoc_ntk.spectrum(x, depth=DEPTH, activation="tanh", sigma_b=0.1, eigenvalues="extremes")
    for field in ("lambda_min", "lambda_max", "condition_number", "trace"):
        assert result[field] == pytest.approx(getattr(ref, field), rel=1e-9), field
    assert result["singular"] is ref.singular is False
    eoc = eoc_ntk.Model(DEPTH, activation="tanh", sigma_b=0.1)
    assert result["model"]["activation"] == "tanh" and result["model"]["chi"] == 1.0
    assert result["model"]["sigma_w"] == eoc.sigma_w and result["model"]["q_star"] == eoc.q_star
    # Asked again by id: the cluster's cached answer.
    again = client.post("/v1/spectra", json={"dataset_id": result["dataset_id"], "model": model})
    assert again.status_code == 200 and again.json()["cache"] == "hit" and again.json()["engine"] == "dask"
    # Below the threshold the same question runs on one machine and answers the same fields.
    small = client.post("/v1/spectra", json={"x": x[:50].tolist(), "model": model})
    assert small.status_code == 200 and small.json()["engine"] == "numpy", small.text
    assert set(small.json()) == set(again.json()) and set(small.json()["model"]) == set(result["model"])
