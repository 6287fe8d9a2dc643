"""Redis mode under faults (issue 10, points 3, 4, 6), against real redis-servers and real workers:

- liveness comes from the horse's guard process: a job that holds the interpreter lock in one LAPACK
  call for 3x the heartbeat TTL ends ``finished``, and no poll ever saw it ``failed``;
- the guard ends a horse past its timeout even when the horse cannot run Python;
- ``DELETE`` of a running job kills its horse: the worker's process tree is idle within 1 s;
- workers ride out a Redis outage while busy: same pids, a new job finishes, nothing stays running;
- Redis errors are 503, never 500: ``store_full`` when Redis is out of memory (``/readyz`` too),
  ``unavailable`` on every route while Redis is down (``GET /v1/spectra`` included);
- an unreadable ``rq:job`` record is a failed job with the code ``corrupt_record``.

``python -m pytest -m slow tests/test_redis_liveness.py`` adds the same fault tests 10 times in a
row while another process keeps every core busy (``tests/_cpu_hog.py``).
"""
from __future__ import annotations

import os
import time

import psutil
import pytest
from fastapi.testclient import TestClient
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from _cpu_hog import hogging
from _private_redis import own_redis_server
from _service_support import healthz_seconds, relu_model, unit_rows, wait_for_job
from _worker_process import ROOT, stop_worker, wait_registered
from _worker_process import start_worker as _start_worker
from jobs.rq_queue import RQBackend
from jobs.store import RedisStore, Storage
from service.app import create_app
from service.config import Settings

pytestmark = pytest.mark.redis

QUEUE = f"eoc-ntk-liveness-{os.getpid()}"
HEARTBEAT = 2  # seconds: the TTL of a job's alive key in these tests
ASYNC = {"Prefer": "respond-async"}
TESTS_DIR = str(ROOT / "tests")
# About 6 s on 2 cores: 7 sweeps of 100 depths at n = 400 (as in test_service_faults.py).
SLOW = {"x": unit_rows(400, 4, seed=51).tolist(), "depths": list(range(1, 101)),
        "activations": [{"name": "relu"}, {"name": "abs"}, {"name": "leaky_relu"}, {"a": 0.3, "b": 0.9},
                        {"a": 0.6, "b": 0.2}, {"a": 0.8, "b": 0.5}, {"a": -0.4, "b": 0.7}]}


def settings_for(url: str, **overrides) -> Settings:
    return Settings(**{**dict(redis_url=url, queue_name=QUEUE, job_heartbeat_ttl=HEARTBEAT,
                              maintenance_interval=1), **overrides})


#: A queue no worker serves (the module's worker serves QUEUE): its jobs stay queued.
UNSERVED = f"{QUEUE}-unserved"


def start_worker(url: str, name: str, queue: str = QUEUE, **env):
    """A real worker (``python -m jobs``) that can also import the test jobs of ``tests/_gil_job.py``."""
    return _start_worker(url, queue, name, EOC_NTK_JOB_HEARTBEAT_TTL=HEARTBEAT,
                         PYTHONPATH=f"{ROOT}{os.pathsep}{TESTS_DIR}", **env)


@pytest.fixture(scope="module")
def worker(redis_conn, redis_test_url):
    """One worker serving QUEUE for the module: its tests end their jobs (or their horses) and check
    that the worker itself survives."""
    name = f"liveness-{os.getpid()}-{time.monotonic_ns()}"
    proc = start_worker(redis_test_url, name)
    wait_registered(redis_conn, proc, name)
    yield proc
    stop_worker(proc)


def enqueue_gil_job(conn, job_id: str, timeout: int = 600, **size) -> str:
    """A job (the ``RQBackend`` way: JSON, spec as the only argument) holding the GIL in one
    ``eigh`` (``seconds=``: at least that long; ``n=``: of that size)."""
    Queue(QUEUE, connection=conn, serializer=JSONSerializer).enqueue(
        "_gil_job.hold_the_gil", {"op": "spectra", "dataset_id": "0" * 32, **size},
        job_id=job_id, job_timeout=timeout, meta={"progress": 0.0, "cache_key": ""})
    return job_id


# 1. Liveness from a process that is not computing

def test_a_job_holding_the_gil_for_3x_the_heartbeat_ttl_is_never_seen_failed(redis_conn, redis_test_url, worker):
    """Fails with a heartbeat thread inside the work horse: the thread cannot run during the call,
    the alive key expires after 2 s, and the API's maintenance fails the job as worker_lost."""
    settings = settings_for(redis_test_url)
    backend = RQBackend(redis_conn, settings, Storage(RedisStore(redis_conn), settings))  # its maintenance thread runs
    try:
        # Held for at least 3.25 TTLs: hold_the_gil repeats its call until one held the lock that long.
        job_id = enqueue_gil_job(redis_conn, "spectra-" + "a" * 32, seconds=3.25 * HEARTBEAT)
        seen, deadline = [], time.monotonic() + 240
        while True:
            view = backend.get(job_id)
            seen.append(view.status.value)
            if view.status.value in ("finished", "failed", "canceled"):
                break
            assert time.monotonic() < deadline, seen[-5:]
            time.sleep(0.1)
        assert "running" in seen and "failed" not in seen, (seen[-3:], view.error)
        assert view.status.value == "finished"
        meta = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).meta
        assert meta["gil_held_seconds"] > 3 * HEARTBEAT, meta  # the scenario really happened
    finally:
        backend.shutdown()


def test_the_guard_ends_a_horse_past_its_timeout_while_it_holds_the_gil(redis_conn, redis_test_url, worker):
    """RQ's alarm in the horse cannot interrupt the LAPACK call; the horse's guard ends it."""
    settings = settings_for(redis_test_url)
    backend = RQBackend(redis_conn, settings, Storage(RedisStore(redis_conn), settings))
    try:
        started = time.monotonic()
        # n = 3000: 14 s in one call on an idle core, started within a second or two; RQ's alarm at
        # 2 s waits for the call to end, the guard ends the horse at 2 + 2 s.
        job_id = enqueue_gil_job(redis_conn, "spectra-" + "b" * 32, timeout=2, n=3000)
        while backend.get(job_id).status.value in ("queued", "running"):
            assert time.monotonic() - started < 25, "the job was not stopped at its timeout"
            time.sleep(0.1)
        view = backend.get(job_id)
        assert view.status.value == "failed" and view.error["code"] == "timeout", view.error
        assert "EOC_NTK_JOB_TIMEOUT" in view.error["message"]
        assert "its process was stopped" in view.error["message"]  # by the guard, not RQ's alarm
        assert worker.poll() is None
    finally:
        backend.shutdown()


# 2. Cancel kills the horse

def tree_cpu_percent(pid: int, interval: float = 0.5) -> float:
    """CPU use (percent of one core) of ``pid`` and its descendants over ``interval`` seconds."""
    procs = []
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    before = {}
    for p in procs:
        try:
            before[p.pid] = sum(p.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    time.sleep(interval)
    used = 0.0
    for p in procs:
        try:
            used += sum(p.cpu_times()[:2]) - before.get(p.pid, 0.0)
        except psutil.NoSuchProcess:
            pass  # gone: it used nothing more
    return 100.0 * used / interval


def test_delete_of_a_running_job_stops_the_cpu_within_1s(redis_conn, redis_test_url, worker):
    with TestClient(create_app(settings_for(redis_test_url))) as c:
        job_id = c.post("/v1/sweeps", json={**SLOW, "depths": list(range(7, 107))}, headers=ASYNC).json()["job_id"]
        wait_for_job(c, job_id, timeout=30, until=("running", "finished", "failed", "canceled"))
        time.sleep(0.5)
        horses = psutil.Process(worker.pid).children()
        # Computing (> 5 % of a core also when other processes keep every core busy).
        assert horses and tree_cpu_percent(worker.pid) > 5, "the job is not computing: nothing to stop"
        r = c.delete(f"/v1/jobs/{job_id}")
        asked = time.monotonic()
        assert r.status_code == 200 and r.json()["status"] == "canceled", r.text
        time.sleep(max(0.0, 0.5 - (time.monotonic() - asked)))
        assert tree_cpu_percent(worker.pid, 0.5) < 5  # measured over 0.5-1.0 s after the DELETE
        assert not any(h.is_running() and h.status() != psutil.STATUS_ZOMBIE for h in horses), "the horse lives"
        assert worker.poll() is None


# 4. Redis errors are 503, never 500; corrupt records

@pytest.fixture
def full_redis():
    """A redis-server that refuses writes once 2 MB are used (``maxmemory-policy noeviction``)."""
    with own_redis_server(options=("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")) as server:
        yield server


def fill(conn) -> None:
    """Write until Redis answers OOM, then lower ``maxmemory`` below what is used: near the limit,
    freed client buffers would let a small write through now and then."""
    import redis

    for i in range(10_000):
        try:
            conn.set(f"filler:{i}", b"x" * 16_384)
        except redis.exceptions.OutOfMemoryError:  # redis-py's class for a reply starting with OOM
            conn.config_set("maxmemory", int(conn.info("memory")["used_memory"]) // 2)
            return
    raise AssertionError("Redis never refused a write")


def test_redis_out_of_memory_is_503_store_full_and_readyz_says_so(full_redis):
    import redis

    conn = redis.Redis.from_url(full_redis.url)
    small = {"x": unit_rows(5, 3, seed=71).tolist(), "model": relu_model(3)}
    with TestClient(create_app(settings_for(full_redis.url)), raise_server_exceptions=False) as c:
        assert c.get("/readyz").status_code == 200
        fill(conn)
        for r in (c.get("/readyz"),
                  c.post("/v1/datasets", json={"x": small["x"]}),
                  c.post("/v1/spectra", json=small, headers=ASYNC)):
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, (r.request.url, r.text)
        assert c.post("/v1/datasets", json={"x": small["x"]}).json()["error"]["code"] == "store_full"
        assert c.post("/v1/spectra", json=small, headers=ASYNC).json()["error"]["code"] == "store_full"
        assert c.post("/v1/spectra", json=small).status_code == 200  # computed, not stored
        conn.flushdb()
        conn.config_set("maxmemory", "2mb")
        assert c.get("/readyz").status_code == 200
    conn.close()


def test_every_route_is_503_while_redis_is_down(own_redis):
    import redis

    conn = redis.Redis.from_url(own_redis.url)
    with TestClient(create_app(settings_for(own_redis.url)), raise_server_exceptions=False) as c:
        dataset_id = c.post("/v1/datasets", json={"x": unit_rows(4, 3, seed=72).tolist()}).json()["dataset_id"]
        job_id = "spectra-" + "c" * 32
        own_redis.kill()
        answers = {
            "GET /v1/spectra": c.get("/v1/spectra", params={"dataset_id": dataset_id, "depth": 3, "a": 0.5, "b": 0.5}),
            "POST /v1/datasets": c.post("/v1/datasets", json={"x": unit_rows(4, 3, seed=73).tolist()}),
            "GET /v1/datasets": c.get(f"/v1/datasets/{dataset_id}"),
            "POST /v1/spectra by id": c.post("/v1/spectra", json={"dataset_id": dataset_id, "model": relu_model(3)}),
            "POST /v1/sweeps async": c.post("/v1/sweeps", json={**SLOW, "depths": [1, 2]}, headers=ASYNC),
            "GET /v1/jobs": c.get(f"/v1/jobs/{job_id}"),
            "DELETE /v1/jobs": c.delete(f"/v1/jobs/{job_id}"),
            "GET /readyz": c.get("/readyz"),
        }
        for route, r in answers.items():
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, (route, r.status_code, r.text)
        assert c.get("/healthz").status_code == 200
    conn.close()


@pytest.mark.parametrize("damage", ["data", "status", "meta"])
def test_a_corrupted_job_record_is_a_failed_job_with_code_corrupt_record(redis_conn, redis_test_url, damage):
    with TestClient(create_app(settings_for(redis_test_url, queue_name=UNSERVED)), raise_server_exceptions=False) as c:
        body = {"x": unit_rows(6, 3, seed=74 + len(damage)).tolist(), "model": relu_model(3)}
        job_id = c.post("/v1/spectra", json=body, headers=ASYNC).json()["job_id"]  # stays queued: no worker
        redis_conn.hset(f"rq:job:{job_id}", damage, b"\x00not json{" if damage != "status" else b"exploded")
        r = c.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "failed" and r.json()["error"]["code"] == "corrupt_record", r.json()
        gone = c.delete(f"/v1/jobs/{job_id}")  # an ended (failed) job: nothing to cancel
        assert gone.status_code == 409 and gone.json()["error"]["status"] == "failed", gone.text
        again = c.post("/v1/spectra", json=body, headers=ASYNC)  # resubmitting replaces the record
        assert again.status_code == 202 and c.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
        Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).delete()


# 3. Workers ride out Redis outages

def test_busy_workers_ride_out_a_15s_redis_outage(own_redis):
    import redis

    url = own_redis.url
    conn = redis.Redis.from_url(url)
    names = [f"outage-{os.getpid()}-{i}" for i in range(2)]
    procs = [start_worker(url, name) for name in names]
    try:
        for proc, name in zip(procs, names, strict=True):
            wait_registered(conn, proc, name)
        with TestClient(create_app(settings_for(url)), raise_server_exceptions=False) as c:
            busy = [c.post("/v1/sweeps", json={**SLOW, "activations": SLOW["activations"][i:i + 2],
                                               "depths": list(range(10 + i, 110 + i))},
                           headers=ASYNC).json()["job_id"] for i in range(2)]
            for job_id in busy:
                wait_for_job(c, job_id, timeout=30, until=("running", "finished", "failed", "canceled"))
            assert all(psutil.Process(p.pid).children() for p in procs), "both workers must be busy"
            own_redis.kill()
            time.sleep(15)
            assert all(p.poll() is None for p in procs), "a worker exited during the outage"
            own_redis.start()  # empty: no persistence
            fresh = c.post("/v1/spectra", json={"x": unit_rows(6, 3, seed=75).tolist(), "model": relu_model(4)},
                           headers=ASYNC)
            assert fresh.status_code == 202, fresh.text
            # The busy jobs may still be computing (a loaded machine): the new job waits for a worker.
            assert wait_for_job(c, fresh.json()["job_id"], timeout=400)["status"] == "finished"
            deadline = time.monotonic() + HEARTBEAT + 30
            for job_id in busy:  # gone with the old data, or ended: never running
                while (r := c.get(f"/v1/jobs/{job_id}")).status_code == 200 and r.json()["status"] == "running":
                    assert time.monotonic() < deadline, f"job {job_id} stays running"
                    time.sleep(0.2)
                assert r.status_code in (200, 404, 410), r.text
            assert all(p.poll() is None for p in procs), "the same worker processes serve after the outage"
    finally:
        for proc in procs:
            stop_worker(proc)
        conn.close()


# 5. Under load: the fault tests, 10 times in a row, with every core kept busy

FAULT_TESTS = [
    test_a_job_holding_the_gil_for_3x_the_heartbeat_ttl_is_never_seen_failed,
    test_delete_of_a_running_job_stops_the_cpu_within_1s,
]


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(10))
def test_fault_tests_pass_with_every_core_busy(redis_conn, redis_test_url, worker, round_):
    with hogging():
        for test in FAULT_TESTS:
            test(redis_conn, redis_test_url, worker)


@pytest.mark.slow
def test_healthz_stays_fast_while_two_workers_compute_n_4000(redis_conn, redis_test_url):
    """The API does not compute jobs: with 2 workers busy on n = 4000 spectra, GET /healthz p99
    <= 100 ms over 100 requests, and a 2-point synchronous spectra answers in <= 300 ms (the
    cost model sends it to a job process, as every computation)."""
    names = [f"load-{os.getpid()}-{i}" for i in range(2)]
    procs = [start_worker(redis_test_url, name, queue=UNSERVED) for name in names]  # these two only
    try:
        for proc, name in zip(procs, names, strict=True):
            wait_registered(redis_conn, proc, name)
        with TestClient(create_app(settings_for(redis_test_url, queue_name=UNSERVED))) as c:
            jobs = [c.post("/v1/spectra", json={"x": unit_rows(4000, 3, seed=80 + i).tolist(), "model": relu_model(3)},
                           headers=ASYNC).json()["job_id"] for i in range(2)]
            for job_id in jobs:
                wait_for_job(c, job_id, timeout=120, until=("running", "finished", "failed", "canceled"))
            time.sleep(2)  # well into the eigendecompositions
            assert all(psutil.Process(p.pid).children() for p in procs), "both workers must be busy"
            times = healthz_seconds(c)
            start = time.perf_counter()
            small = c.post("/v1/spectra", json={"x": [[1.0, 0.0], [0.0, 1.0]], "model": relu_model(2)})
            sync_seconds = time.perf_counter() - start
            p99 = sorted(times)[98]
            print(f"healthz p99 {1000 * p99:.1f} ms, max {1000 * max(times):.1f} ms; "
                  f"2-point synchronous spectra {1000 * sync_seconds:.1f} ms")
            assert small.status_code == 200
            assert p99 <= 0.100, p99
            assert sync_seconds <= 0.300, sync_seconds
            for job_id in jobs:
                c.delete(f"/v1/jobs/{job_id}")
    finally:
        for proc in procs:
            stop_worker(proc)
