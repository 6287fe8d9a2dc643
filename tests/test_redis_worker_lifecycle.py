"""The worker's life, against a real redis-server and real ``python -m jobs`` processes:

- an idle worker exits within 5 s of SIGTERM, and a burst worker within 5 s of its last job;
- a worker killed with SIGKILL mid-job takes its work horse (and the horse's guard) with it
  within 2 s, and the job, lost with its last attempt, is told failed (``worker_lost``) and never
  anything else (a lost job with attempts left runs again: ``tests/test_service_faults.py``);
- a busy worker given SIGTERM lets a short job finish; a long one it ends after the stop grace
  (``EOC_NTK_WORKER_STOP_GRACE``, short here) and hands back: a second worker finishes it as
  attempt 2; a job that has had its ``EOC_NTK_JOB_MAX_ATTEMPTS`` attempts fails as
  ``worker_stopped`` instead, and stays failed.

The jobs are ``tests/_gil_job.py``'s (one LAPACK call of a chosen size, enqueued the way the
API's RQ backend does), so that a horse is computing, and holding the interpreter lock, when
its worker is killed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timezone

import psutil
import pytest
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from _worker_process import ROOT, stop_worker, wait_registered
from _worker_process import start_worker as _start_worker
from jobs.rq_queue import RQBackend
from jobs.settings import JobSettings
from jobs.store import RedisStore, Storage
from jobs.worker import PUBSUB_WAKE_SECONDS, WorkerRedis

pytestmark = pytest.mark.redis

QUEUE = f"eoc-ntk-lifecycle-{os.getpid()}"
HEARTBEAT = 2
TESTS_DIR = str(ROOT / "tests")
FINAL = ("finished", "failed", "canceled")


#: Seconds a busy worker given SIGTERM lets its job run in these tests (EOC_NTK_WORKER_STOP_GRACE).
GRACE = 0.5
#: About 1.7 s of one LAPACK call on an idle core: still running GRACE after the SIGTERM.
HANDED_BACK_N = 1500


def start_worker(url: str, name: str, **env):
    return _start_worker(url, QUEUE, name, EOC_NTK_JOB_HEARTBEAT_TTL=HEARTBEAT, EOC_NTK_WORKER_STOP_GRACE=GRACE,
                         PYTHONPATH=f"{ROOT}{os.pathsep}{TESTS_DIR}", **env)


def enqueue(conn, job_id: str, **size) -> str:
    Queue(QUEUE, connection=conn, serializer=JSONSerializer).enqueue(
        "_gil_job.hold_the_gil", {"op": "spectra", "dataset_id": "0" * 32, **size},
        job_id=job_id, job_timeout=600, meta={"progress": 0.0, "attempt": 1, "cache_key": ""})
    return job_id


def backend_for(conn, url: str, **settings) -> RQBackend:
    """The API's view of the jobs (its maintenance thread runs: it ends lost jobs' runs)."""
    config = JobSettings(**{"redis_url": url, "queue_name": QUEUE, "job_heartbeat_ttl": HEARTBEAT,
                            "maintenance_interval": 1, **settings})
    return RQBackend(conn, config, Storage(RedisStore(conn), config))


def watch(backend: RQBackend, job_id: str, timeout: float, after: float = 1.0) -> list[tuple]:
    """Every (status, error code, attempt) the API tells about ``job_id``, polled every 50 ms until
    ``after`` seconds past its first final state."""
    seen, first_final, deadline = [], None, time.monotonic() + timeout
    while first_final is None or time.monotonic() < first_final + after:
        view = backend.get(job_id)
        seen.append((view.status.value, (view.error or {}).get("code"), view.attempt))
        if first_final is None and view.status.value in FINAL:
            first_final = time.monotonic()
        assert time.monotonic() < deadline, seen[-3:]
        time.sleep(0.05)
    return seen


def final_and_unchanged(seen: list[tuple]) -> tuple:
    """The first final state of ``seen``, checked to be its only one and never left."""
    finals = [s for s in seen if s[0] in FINAL]
    assert set(finals) == {finals[0]}, f"a final state changed: {sorted(set(finals))}"
    assert seen.index(finals[0]) + len(finals) == len(seen), "the job left its final state"
    return finals[0]


def status(conn, job_id: str) -> str:
    return Job.fetch(job_id, connection=conn, serializer=JSONSerializer).get_status().value


def wait_status(conn, job_id: str, wanted: tuple[str, ...], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while (now := status(conn, job_id)) not in wanted:
        assert time.monotonic() < deadline, f"job {job_id} is {now}, not one of {wanted}"
        time.sleep(0.05)
    return now


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by whoever inherited it, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def horse_of(worker: subprocess.Popen, timeout: float = 30.0) -> psutil.Process:
    """The worker's work horse (its one child)."""
    deadline = time.monotonic() + timeout
    while not (children := psutil.Process(worker.pid).children()):
        assert time.monotonic() < deadline, "no work horse"
        time.sleep(0.05)
    return children[0]


# RQ's worker stops its command thread when it exits; whether that thread was just waiting for a
# command or not is a race, so three workers at a time.
WORKERS = 3


def test_an_idle_worker_exits_within_5s_of_sigterm(redis_conn, redis_test_url):
    names = [f"idle-{os.getpid()}-{i}" for i in range(WORKERS)]
    procs = [start_worker(redis_test_url, name) for name in names]
    try:
        for proc, name in zip(procs, names, strict=True):
            wait_registered(redis_conn, proc, name)
        time.sleep(0.5)  # well inside RQ's blocking dequeue
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        for proc in procs:
            assert proc.wait(timeout=90) == 0
            assert time.monotonic() - asked <= 5.0, time.monotonic() - asked
    finally:
        for proc in procs:
            stop_worker(proc)


def test_the_workers_command_thread_stops_within_a_second_once_unsubscribed(redis_test_url):
    """The race behind a minute-long exit, made certain: RQ unsubscribes, then stops its command
    thread; a thread that saw the unsubscribe first waits for a new subscription (60 s with RQ's
    setting, redis-py 8). The worker's client wakes it every ``PUBSUB_WAKE_SECONDS``."""
    client = WorkerRedis.from_url(redis_test_url)
    pubsub = client.pubsub()
    pubsub.subscribe(**{f"lifecycle-{os.getpid()}": lambda message: None})
    thread = pubsub.run_in_thread(sleep_time=60, daemon=True)  # RQ's call
    try:
        deadline = time.monotonic() + 10
        while not pubsub.subscribed:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pubsub.unsubscribe()
        while pubsub.subscribed:  # the thread read the unsubscribe's reply
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # and waits for a subscription again
        asked = time.monotonic()
        threading.Thread(target=thread.stop, daemon=True).start()  # redis-py 8's stop() waits for the thread
        thread.join(3.0)
        assert not thread.is_alive() and time.monotonic() - asked <= 2 * PUBSUB_WAKE_SECONDS + 0.5
    finally:
        pubsub.close()
        client.close()


def test_a_burst_worker_exits_within_5s_of_its_last_job(redis_conn, redis_test_url):
    job_ids = [enqueue(redis_conn, f"burst-{os.getpid()}-{i}", n=50) for i in range(WORKERS)]
    env = {**os.environ, "REDIS_URL": redis_test_url, "EOC_NTK_QUEUE_NAME": QUEUE,
           "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS_DIR}"}
    procs = [subprocess.Popen([sys.executable, "-m", "jobs", "--burst", "--log-level", "WARNING"], cwd=ROOT, env=env)
             for _ in range(WORKERS)]
    exited = []
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        exited.append(time.time())
    jobs = [Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer) for job_id in job_ids]
    assert all(job.get_status().value == "finished" for job in jobs)
    last = max((j.ended_at if j.ended_at.tzinfo else j.ended_at.replace(tzinfo=timezone.utc)).timestamp()
               for j in jobs)
    assert max(exited) - last <= 5.0, max(exited) - last


def test_a_worker_killed_with_sigkill_takes_its_horse_and_its_last_attempt_stays_failed(redis_conn,
                                                                                      redis_test_url):
    name = f"killed-{os.getpid()}"
    proc = start_worker(redis_test_url, name)
    backend = backend_for(redis_conn, redis_test_url, job_max_attempts=1)
    try:
        wait_registered(redis_conn, proc, name)
        # One eigh of n = 2500: about 8 s on an idle core, with the interpreter lock held throughout.
        job_id = enqueue(redis_conn, "spectra-" + "d" * 32, n=2500)
        wait_status(redis_conn, job_id, ("started",))
        horse = horse_of(proc)
        time.sleep(0.5)  # inside the LAPACK call
        guards = horse.children()  # the horse's guard (jobs.horse)
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=5)
        while any(alive(p.pid) for p in (horse, *guards)):
            assert time.monotonic() - killed <= 2.0, "the work horse outlived its worker by 2 s"
            time.sleep(0.02)
        seen = watch(backend, job_id, timeout=HEARTBEAT + 15, after=2.0)
        assert final_and_unchanged(seen) == ("failed", "worker_lost", 1), seen[-5:]
        assert "EOC_NTK_JOB_MAX_ATTEMPTS" in backend.get(job_id).error["message"]
    finally:
        backend.shutdown()
        stop_worker(proc)


@pytest.mark.slow
def test_a_busy_worker_given_sigterm_finishes_a_short_job_then_exits(redis_conn, redis_test_url):
    name = f"short-{os.getpid()}"
    proc = start_worker(redis_test_url, name, EOC_NTK_WORKER_STOP_GRACE=20)
    try:
        wait_registered(redis_conn, proc, name)
        job_id = enqueue(redis_conn, f"short-{os.getpid()}", seconds=2)
        wait_status(redis_conn, job_id, ("started",))
        horse_of(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert status(redis_conn, job_id) == "finished"
    finally:
        stop_worker(proc)


def sigterm_its_worker(conn, procs: dict[str, subprocess.Popen], job_id: str) -> str:
    """Wait until one of ``procs`` (by worker name) computes ``job_id``, SIGTERM that one, check that
    it exits within the grace plus 5 s with its work horse gone, and return its name."""
    wait_status(conn, job_id, ("started",))
    name = Job.fetch(job_id, connection=conn, serializer=JSONSerializer).worker_name
    proc = procs[name]
    horse = horse_of(proc)
    proc.send_signal(signal.SIGTERM)
    asked = time.monotonic()
    assert proc.wait(timeout=GRACE + 30) == 0
    took = time.monotonic() - asked
    assert GRACE <= took <= GRACE + 5, took
    assert not alive(horse.pid)
    return name


def start_workers(conn, url: str, names: list[str], **env) -> dict[str, subprocess.Popen]:
    """Workers of these names, started together, once all are registered."""
    procs = {name: start_worker(url, name, **env) for name in names}
    for name, proc in procs.items():
        wait_registered(conn, proc, name)
    return procs


def test_a_busy_worker_given_sigterm_hands_its_job_back_and_another_finishes_it(redis_conn, redis_test_url):
    backend = backend_for(redis_conn, redis_test_url)
    procs = {}
    try:
        procs = start_workers(redis_conn, redis_test_url, [f"hand-back-{os.getpid()}-{i}" for i in (1, 2)])
        job_id = enqueue(redis_conn, "spectra-" + "f" * 32, n=HANDED_BACK_N)
        stopped = sigterm_its_worker(redis_conn, procs, job_id)
        seen = watch(backend, job_id, timeout=120)
        assert seen[0] in (("queued", None, 2), ("running", None, 2)), seen[:3]  # handed back before it exited
        assert final_and_unchanged(seen) == ("finished", None, 2), seen[-5:]
        job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
        assert job.worker_name != stopped and job.meta["n"] == HANDED_BACK_N  # the other worker computed it
    finally:
        backend.shutdown()
        for proc in procs.values():
            stop_worker(proc)


def test_a_job_stopped_in_its_last_attempt_fails_as_worker_stopped_and_stays_failed(redis_conn, redis_test_url):
    backend = backend_for(redis_conn, redis_test_url, job_max_attempts=2)
    procs = {}
    try:
        procs = start_workers(redis_conn, redis_test_url, [f"last-attempt-{os.getpid()}-{i}" for i in (1, 2)],
                              EOC_NTK_JOB_MAX_ATTEMPTS=2)
        job_id = enqueue(redis_conn, "spectra-" + "e" * 32, n=HANDED_BACK_N)
        first = sigterm_its_worker(redis_conn, procs, job_id)
        assert backend.get(job_id).attempt == 2
        second = sigterm_its_worker(redis_conn, procs, job_id)
        assert first != second
        seen = watch(backend, job_id, timeout=30, after=1.5)
        assert final_and_unchanged(seen) == ("failed", "worker_stopped", 2), seen[-5:]
        message = backend.get(job_id).error["message"]
        assert "EOC_NTK_WORKER_STOP_GRACE" in message and "EOC_NTK_JOB_MAX_ATTEMPTS" in message, message
    finally:
        backend.shutdown()
        for proc in procs.values():
            stop_worker(proc)
