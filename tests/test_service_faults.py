"""Faults (issue 5), against real Redis servers and real worker processes:

1. a worker killed with SIGKILL mid-job: in bounded time the job is queued again as attempt 2
   and another worker finishes it; with no attempt left it fails, saying so, and resubmitting
   starts it anew;
2. Redis restarted under a running API and worker: both recover without a restart; during the
   outage async submissions get 503 + Retry-After, /readyz fails, small synchronous requests
   are still answered (a redis-server of the test's own that it kills and restarts);
3. corrupted or truncated cached values are detected, recomputed and never served;
4. the job timeout is enforced;
5. an expired result answers 410, an expired job record 404, each with a clear message.

``python -m pytest -m slow tests/test_service_faults.py -k every_core_busy`` runs the kill and
timeout tests 10 times in a row while another process keeps every core busy (``tests/_cpu_hog.py``).

They run against the test run's own redis-server on a free port (``tests/_private_redis.py``),
so that concurrent test runs on the machine cannot disturb them, or against ``REDIS_TEST_URL``
when the user sets it (flushed); they skip without either.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

import eoc_ntk
from _service_support import relu_model, unit_rows, wait_for_job
from _worker_process import start_worker as _start_worker
from _worker_process import stop_worker, wait_registered
from jobs import keys
from jobs.specs import cache_key, spectra_spec
from service.app import create_app
from service.config import Settings

ASYNC = {"Prefer": "respond-async"}
QUEUE = f"eoc-ntk-faults-{os.getpid()}"
#: The queue of the workers a test kills (``doomed_worker``), apart from the module's ``worker``.
DOOMED = f"{QUEUE}-doomed"
HEARTBEAT = 2  # seconds: a killed job is declared abandoned this long after its last beat

pytestmark = pytest.mark.redis


def fault_settings(url: str, **overrides) -> Settings:
    base = dict(redis_url=url, queue_name=QUEUE, job_heartbeat_ttl=HEARTBEAT, maintenance_interval=1)
    return Settings(**{**base, **overrides})


def start_worker(url: str, name: str, queue: str = QUEUE, **env) -> subprocess.Popen:
    return _start_worker(url, queue, name, **{"EOC_NTK_JOB_HEARTBEAT_TTL": HEARTBEAT, **env})


def horse_pids(worker_pid: int, timeout: float = 10.0) -> list[int]:
    """The work horses of a worker (RQ forks one per job, in a session of its own)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(worker_pid)], capture_output=True, text=True).stdout
        if out.split() or time.monotonic() > deadline:
            return [int(p) for p in out.split()]
        time.sleep(0.05)


def kill_worker(proc: subprocess.Popen) -> None:
    """SIGKILL a worker and its work horse at once, as when its machine or container dies."""
    horses = horse_pids(proc.pid)
    assert horses, "no work horse found"
    for pid in (proc.pid, *horses):
        os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=5)


@pytest.fixture(scope="module")
def worker(redis_conn, redis_test_url):
    """The module's worker on QUEUE: its tests end a job or its horse, never the worker."""
    name = f"faults-{os.getpid()}-{time.monotonic_ns()}"
    proc = start_worker(redis_test_url, name)
    wait_registered(redis_conn, proc, name)
    yield proc
    stop_worker(proc)


@pytest.fixture
def doomed_worker(redis_conn, redis_test_url):
    """A worker of one test, which kills it, on the DOOMED queue (apps of these tests submit there)."""
    name = f"faults-{os.getpid()}-{time.monotonic_ns()}"
    proc = start_worker(redis_test_url, name, queue=DOOMED)
    wait_registered(redis_conn, proc, name)
    yield proc
    stop_worker(proc)


@pytest.fixture
def client(redis_conn, redis_test_url):
    with TestClient(create_app(fault_settings(redis_test_url))) as c:
        yield c


def running(client, job_id, timeout=30.0) -> dict:
    return wait_for_job(client, job_id, timeout=timeout, until=("running", "finished", "failed", "canceled"))


# A job of a few seconds that reports progress at every depth.
# About 6 s on 2 cores (7 sweeps of 100 depths at n = 400): long enough to be caught running,
# killed or timed out; the sweep got 5x faster in issue 4, so it has to be this big.
SLOW = {"x": unit_rows(400, 4, seed=51).tolist(), "depths": list(range(1, 101)),
        "activations": [{"name": "relu"}, {"name": "abs"}, {"name": "leaky_relu"}, {"a": 0.3, "b": 0.9},
                        {"a": 0.6, "b": 0.2}, {"a": 0.8, "b": 0.5}, {"a": -0.4, "b": 0.7}]}


# 1. Worker killed mid-job

# Two of SLOW's seven sweeps (about 2 s idle): the run again must end within the 300 s test
# timeout, and the whole of SLOW took 240 s at a load average of 7 on 2 cores.
KILLED = {**SLOW, "activations": SLOW["activations"][:2]}
FINAL = ("finished", "failed", "canceled")


def wait_seeing(client, job_id: str, until, timeout: float) -> list[dict]:
    """Every job resource ``GET /v1/jobs/{job_id}`` answers, polled every 50 ms until ``until(body)``;
    none of them may be in a final state before the last (a final state is final)."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if until(seen[-1]):
            break
        assert seen[-1]["status"] not in FINAL, [b["status"] for b in seen[-5:]]
        assert time.monotonic() < deadline, f"job {job_id} still {seen[-1]['status']} after {timeout} s"
        time.sleep(0.05)
    return seen


def test_worker_killed_with_sigkill_mid_job_runs_again_as_attempt_2_on_another_worker(redis_test_url,
                                                                                   doomed_worker):
    with TestClient(create_app(fault_settings(redis_test_url, queue_name=DOOMED))) as client:
        job_id = client.post("/v1/sweeps", json=KILLED, headers=ASYNC).json()["job_id"]
        assert running(client, job_id)["attempt"] == 1
        kill_worker(doomed_worker)
        killed = time.monotonic()
        seen = wait_seeing(client, job_id, lambda body: body["attempt"] == 2, timeout=HEARTBEAT + 15)
        assert seen[-1]["status"] == "queued" and "error" not in seen[-1], seen[-1]
        assert time.monotonic() - killed < HEARTBEAT + 10
        # A request for the same computation joins it; a new worker runs it to the end.
        again = client.post("/v1/sweeps", json=KILLED, headers=ASYNC)
        assert again.status_code == 202 and again.json()["job_id"] == job_id and again.json()["attempt"] == 2
        fresh = start_worker(redis_test_url, f"faults-{os.getpid()}-again", queue=DOOMED)
        try:
            done = wait_seeing(client, job_id, lambda body: body["status"] in FINAL, timeout=240)[-1]
            assert done["status"] == "finished" and done["attempt"] == 2, done
            assert done["result"]["depths"][-1] == 100
            assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "finished"
        finally:
            stop_worker(fresh)


def test_a_lost_job_with_no_attempt_left_fails_and_resubmitting_runs_it_anew(redis_test_url, doomed_worker):
    with TestClient(create_app(fault_settings(redis_test_url, queue_name=DOOMED, job_max_attempts=1))) as c:
        job_id = c.post("/v1/sweeps", json={**KILLED, "depths": list(range(8, 108))}, headers=ASYNC).json()["job_id"]
        assert running(c, job_id)["status"] == "running"
        kill_worker(doomed_worker)
        killed = time.monotonic()
        job = wait_seeing(c, job_id, lambda body: body["status"] in FINAL, timeout=HEARTBEAT + 15)[-1]
        assert time.monotonic() - killed < HEARTBEAT + 10
        assert (job["status"], job["error"]["code"], job["attempt"]) == ("failed", "worker_lost", 1), job
        assert "submit the request again" in job["error"]["message"]
        assert "EOC_NTK_JOB_MAX_ATTEMPTS" in job["error"]["message"]
        # Resubmitting starts a new run of the job id (attempt 1 again); running one to the end on a
        # new worker is the test above's.
        again = c.post("/v1/sweeps", json={**KILLED, "depths": list(range(8, 108))}, headers=ASYNC)
        assert again.status_code == 202 and again.json()["job_id"] == job_id, again.text
        assert (again.json()["status"], again.json()["attempt"]) == ("queued", 1), again.json()
        assert c.delete(f"/v1/jobs/{job_id}").json()["status"] == "canceled"


@pytest.mark.slow
def test_worker_killed_with_default_settings_is_found_lost_within_heartbeat_plus_sweep(redis_conn, redis_test_url):
    """The same with the shipped defaults (15 s heartbeat TTL, 10 s sweep): queued again as
    attempt 2 within about 25 s."""
    defaults = Settings()
    name = f"faults-{os.getpid()}-defaults"
    proc = start_worker(redis_test_url, name, queue=DOOMED, EOC_NTK_JOB_HEARTBEAT_TTL=defaults.job_heartbeat_ttl)
    try:
        wait_registered(redis_conn, proc, name)
        with TestClient(create_app(Settings(redis_url=redis_test_url, queue_name=DOOMED))) as c:
            job_id = c.post("/v1/sweeps", json={**SLOW, "depths": list(range(6, 106))}, headers=ASYNC).json()["job_id"]
            assert running(c, job_id)["status"] == "running"
            kill_worker(proc)
            killed = time.monotonic()
            bound = defaults.job_heartbeat_ttl + defaults.maintenance_interval + 5
            seen = wait_seeing(c, job_id, lambda body: body["attempt"] == 2, timeout=bound + 10)
            assert seen[-1]["status"] == "queued"
            assert time.monotonic() - killed < bound
            assert c.delete(f"/v1/jobs/{job_id}").json()["status"] == "canceled"
    finally:
        stop_worker(proc)


def test_abandoned_job_is_queued_again_by_the_sweep_without_anyone_polling(redis_conn, redis_test_url,
                                                                         doomed_worker):
    """Nobody asks about the job: the API's maintenance loop queues it again all the same."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    with TestClient(create_app(fault_settings(redis_test_url, queue_name=DOOMED))) as c:
        job_id = c.post("/v1/sweeps", json={**SLOW, "depths": list(range(2, 102))}, headers=ASYNC).json()["job_id"]
        assert running(c, job_id)["status"] == "running"
        kill_worker(doomed_worker)
        deadline = time.monotonic() + HEARTBEAT + 15
        while (job := Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)).meta.get("attempt") != 2:
            assert time.monotonic() < deadline, "the maintenance loop did not queue the abandoned job again"
            time.sleep(0.2)
        assert job.get_status().value == "queued" and job_id in c.app.state.engine.backend.queue.job_ids
        assert c.delete(f"/v1/jobs/{job_id}").json()["status"] == "canceled"  # no later test's worker runs it


def test_work_horse_killed_mid_job_fails_the_job(redis_conn, client, worker):
    job_id = client.post("/v1/sweeps", json={**SLOW, "depths": list(range(3, 103))}, headers=ASYNC).json()["job_id"]
    assert running(client, job_id)["status"] == "running"
    horses = horse_pids(worker.pid)
    assert horses, "no work horse found"
    os.kill(horses[0], signal.SIGKILL)
    job = wait_for_job(client, job_id, timeout=HEARTBEAT + 15, until=("finished", "failed", "canceled"))
    assert job["status"] == "failed" and job["error"]["code"] == "worker_lost", job
    assert "submit the request again" in job["error"]["message"]
    assert worker.poll() is None, "the worker survives the loss of its work horse"


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_stale_abandoned_verdict_never_ends_the_next_run(redis_conn, redis_test_url, attempts):
    """Two API threads (a request and the maintenance loop) can both find a killed run
    abandoned. Once one of them queued it again (attempts left) or the client resubmitted it
    (none left), the job id belongs to a new run: the slower thread must decide again on a
    fresh copy instead of ending the new run (a finished resubmission was once reported failed)."""
    from datetime import datetime, timedelta, timezone

    from rq.job import Job
    from rq.serializers import JSONSerializer

    from jobs.rq_queue import RQBackend
    from jobs.store import RedisStore, Storage

    settings = fault_settings(redis_test_url, queue_name=f"{QUEUE}-unserved", job_max_attempts=attempts)
    jobs = RQBackend(redis_conn, settings, Storage(RedisStore(redis_conn), settings))
    spec = {"op": "spectra", "dataset_id": "0" * 32, "model": {"depth": 2}}
    key = f"spectra:stale-verdict-{os.getpid()}-{attempts}"

    def start(job_id, ago):
        job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
        job.set_status("started")
        redis_conn.hset(job.key, "started_at", (datetime.now(timezone.utc) - timedelta(seconds=ago))
                  .strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    job_id = jobs.submit(spec, key, {})
    start(job_id, ago=10 * HEARTBEAT)                  # the killed run: old, no heartbeat
    stale = jobs._fetch(job_id)
    assert jobs._abandoned(stale)                      # thread A's verdict, then A stalls
    told = jobs.get(job_id)                            # thread B ends that run; the client sees
    assert (told.status.value, told.attempt) == (("failed", 1) if attempts == 1 else ("queued", 2))
    assert jobs.submit(spec, key, {}) == job_id        # a resubmission: a new run, or joins the queued one
    start(job_id, ago=0)                               # just taken by a worker (no beat yet)
    with jobs._submit_lock(job_id):                    # thread A resumes
        assert jobs._end_if_still_abandoned(job_id) is False
    assert jobs.reap_abandoned() == 0
    view = jobs.get(job_id)
    assert view.status.value == "running" and view.error is None and view.attempt == told.attempt
    Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).delete()
    jobs.shutdown()


# 4. Job timeout

def test_job_timeout_is_enforced(redis_conn, redis_test_url, worker):
    with TestClient(create_app(fault_settings(redis_test_url, job_timeout=1))) as c:
        started = time.monotonic()
        job_id = c.post("/v1/sweeps", json={**SLOW, "depths": list(range(4, 104))}, headers=ASYNC).json()["job_id"]
        job = wait_for_job(c, job_id, timeout=30)
        assert job["status"] == "failed" and job["error"]["code"] == "timeout", job
        assert "EOC_NTK_JOB_TIMEOUT" in job["error"]["message"]
        assert time.monotonic() - started < 20


def test_job_timeout_is_enforced_in_embedded_mode():
    with TestClient(create_app(Settings(redis_url=None, job_timeout=1))) as c:
        job_id = c.post("/v1/sweeps", json={**SLOW, "depths": list(range(5, 105))}, headers=ASYNC).json()["job_id"]
        job = wait_for_job(c, job_id, timeout=30)
        assert job["status"] == "failed" and job["error"]["code"] == "timeout", job


# 3. Corrupted and truncated cached values

DAMAGES = ["truncate", "flip", "empty", "other-version", "garbage"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_cached_result_is_recomputed_never_served(redis_conn, client, damage):
    from jobs import codec

    x = np.random.default_rng(61 + DAMAGES.index(damage)).normal(size=(6, 3))
    first = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(3)}).json()
    assert first["cache"] == "miss"
    key = keys.result_key(cache_key(spectra_spec(first["dataset_id"], eoc_ntk.Model.from_activation(3, "relu"))))
    blob = redis_conn.get(key)
    damaged = {
        "truncate": blob[: len(blob) // 2],
        "flip": blob[:-9] + bytes([blob[-9] ^ 0x10]) + blob[-8:],
        "empty": b"",
        "other-version": blob.replace(f'"format":{codec.FORMAT_VERSION}'.encode(), b'"format":0', 1),
        "garbage": os.urandom(len(blob)),
    }[damage]
    redis_conn.set(key, damaged)
    query = {"dataset_id": first["dataset_id"], "depth": 3, "a": 0.5, "b": 0.5}
    assert client.get("/v1/spectra", params=query).status_code == 404  # never served
    assert redis_conn.get(key) is None  # dropped on detection
    again = client.post("/v1/spectra", json={"dataset_id": first["dataset_id"], "model": relu_model(3)}).json()
    assert again["cache"] == "miss" and again["eigenvalues"] == first["eigenvalues"]
    assert client.get("/v1/spectra", params=query).json()["cache"] == "hit"  # and stored again, intact


def test_damaged_dataset_is_never_used(redis_conn, client):
    x = np.random.default_rng(62).normal(size=(5, 3))
    dataset_id = client.post("/v1/datasets", json={"x": x.tolist()}).json()["dataset_id"]
    key = keys.dataset_key(dataset_id)
    redis_conn.set(key, redis_conn.get(key)[:-16])
    r = client.post("/v1/spectra", json={"dataset_id": dataset_id, "model": relu_model(2)})
    assert r.status_code == 404 and r.json()["error"]["field"] == "dataset_id"


# 5. Expired results and job records

def test_expired_result_is_gone_and_expired_job_is_unknown(redis_conn, client, worker):
    body = {"x": unit_rows(7, 3, seed=63).tolist(), "model": relu_model(4)}
    job_id = client.post("/v1/spectra", json=body, headers=ASYNC).json()["job_id"]
    job = wait_for_job(client, job_id)
    assert job["status"] == "finished"
    model = eoc_ntk.Model.from_activation(4, "relu")
    key = keys.result_key(cache_key(spectra_spec(job["result"]["dataset_id"], model)))
    redis_conn.pexpire(key, 1)  # let Redis expire it
    time.sleep(0.05)
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 410, r.text
    message = r.json()["error"]["message"]
    assert "no longer stored" in message and "submit the request again" in message
    for k in redis_conn.keys(f"rq:job:{job_id}*"):
        redis_conn.pexpire(k, 1)
    time.sleep(0.05)
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 404 and "expired" in r.json()["error"]["message"]


# 2. Redis restarted under a running API and worker

def test_redis_restart_service_and_worker_recover_without_restart(own_redis):
    import redis

    url = own_redis.url
    conn = redis.Redis.from_url(url)
    name = f"restart-{os.getpid()}"
    proc = start_worker(url, name)
    try:
        wait_registered(conn, proc, name)
        with TestClient(create_app(fault_settings(url))) as c:
            small = {"x": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "model": relu_model(2)}
            before = c.post("/v1/spectra", json={**small, "model": relu_model(3)}, headers=ASYNC).json()["job_id"]
            assert wait_for_job(c, before)["status"] == "finished"

            own_redis.kill()
            r = c.get("/readyz")
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
            r = c.post("/v1/spectra", json={**small, "model": relu_model(5)}, headers=ASYNC)
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
            assert r.json()["error"]["code"] == "unavailable"
            r = c.post("/v1/spectra", json=small)
            assert r.status_code == 200 and r.json()["cache"] == "miss"  # computed without cache
            r = c.get(f"/v1/jobs/{before}")
            assert r.status_code == 503 and r.headers["Retry-After"]
            assert c.get("/healthz").status_code == 200

            own_redis.start()  # empty: no persistence
            deadline = time.monotonic() + 15
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the API did not see Redis come back"
                time.sleep(0.1)
            r = c.post("/v1/spectra", json={**small, "model": relu_model(6)}, headers=ASYNC)
            assert r.status_code == 202, r.text
            job = wait_for_job(c, r.json()["job_id"], timeout=60)  # the same worker process takes it
            assert job["status"] == "finished", job
            assert proc.poll() is None, "the worker was not restarted"
            assert c.post("/v1/spectra", json={**small, "model": relu_model(6)}).json()["cache"] == "hit"
    finally:
        stop_worker(proc)
        conn.close()


# Under load: the fault tests that a heartbeat inside the computing horse once made fail on a
# busy machine (issue 10), 10 times in a row with every core kept busy by another process.

LOADED_FAULT_TESTS = [
    test_worker_killed_with_sigkill_mid_job_runs_again_as_attempt_2_on_another_worker,
    test_a_lost_job_with_no_attempt_left_fails_and_resubmitting_runs_it_anew,
    test_work_horse_killed_mid_job_fails_the_job,
    test_job_timeout_is_enforced,
]


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(10))
def test_fault_tests_pass_with_every_core_busy(redis_conn, redis_test_url, worker, round_):
    import inspect

    from _cpu_hog import hogging

    for key in redis_conn.scan_iter(f"{keys.PREFIX}:*"):  # each round computes afresh (no cached results)
        redis_conn.delete(key)
    with hogging():
        for test in LOADED_FAULT_TESTS:
            params = inspect.signature(test).parameters
            name = f"faults-{os.getpid()}-loaded-{round_}-{test.__name__[:20]}"
            doomed = start_worker(redis_test_url, name, queue=DOOMED) if "doomed_worker" in params else None
            try:
                if doomed is not None:
                    wait_registered(redis_conn, doomed, name)
                with TestClient(create_app(fault_settings(redis_test_url))) as client:
                    given = {"redis_conn": redis_conn, "redis_test_url": redis_test_url, "client": client,
                             "worker": worker, "doomed_worker": doomed}
                    test(**{arg: given[arg] for arg in params})
            finally:
                if doomed is not None:
                    stop_worker(doomed)
