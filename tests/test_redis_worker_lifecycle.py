"""The worker's life, against a real redis-server and real ``python -m jobs`` processes:

- an idle worker exits within 5 s of SIGTERM, and a burst worker within 5 s of its last job;
- a worker killed with SIGKILL mid-job takes its work horse (and the horse's guard) with it
  within 2 s, and the job, once told failed (``worker_lost``), is never told anything else;
- a busy worker given SIGTERM lets a short job finish, and ends a long one after the stop grace
  (``worker_stopped``), then exits (slow: the grace is 20 s).

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
from jobs.horse import STOP_GRACE_SECONDS
from jobs.rq_queue import RQBackend
from jobs.settings import JobSettings
from jobs.store import RedisStore, Storage
from jobs.worker import PUBSUB_WAKE_SECONDS, WorkerRedis

pytestmark = pytest.mark.redis

QUEUE = f"eoc-ntk-lifecycle-{os.getpid()}"
HEARTBEAT = 2
TESTS_DIR = str(ROOT / "tests")
FINAL = ("finished", "failed", "canceled")


def start_worker(url: str, name: str):
    return _start_worker(url, QUEUE, name, EOC_NTK_JOB_HEARTBEAT_TTL=HEARTBEAT,
                         PYTHONPATH=f"{ROOT}{os.pathsep}{TESTS_DIR}")


def enqueue(conn, job_id: str, **size) -> str:
    Queue(QUEUE, connection=conn, serializer=JSONSerializer).enqueue(
        "_gil_job.hold_the_gil", {"op": "spectra", "dataset_id": "0" * 32, **size},
        job_id=job_id, job_timeout=600, meta={"progress": 0.0, "cache_key": ""})
    return job_id


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


@pytest.fixture(scope="module")
def url(redis_test_url):
    return redis_test_url


@pytest.fixture(scope="module")
def conn(redis_conn):
    return redis_conn


# RQ's worker stops its command thread when it exits; whether that thread was just waiting for a
# command or not is a race, so three workers at a time.
WORKERS = 3


def test_an_idle_worker_exits_within_5s_of_sigterm(conn, url):
    names = [f"idle-{os.getpid()}-{i}" for i in range(WORKERS)]
    procs = [start_worker(url, name) for name in names]
    try:
        for proc, name in zip(procs, names, strict=True):
            wait_registered(conn, proc, name)
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


def test_the_workers_command_thread_stops_within_a_second_once_unsubscribed(url):
    """The race behind a minute-long exit, made certain: RQ unsubscribes, then stops its command
    thread; a thread that saw the unsubscribe first waits for a new subscription (60 s with RQ's
    setting, redis-py 8). The worker's client wakes it every ``PUBSUB_WAKE_SECONDS``."""
    client = WorkerRedis.from_url(url)
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


def test_a_burst_worker_exits_within_5s_of_its_last_job(conn, url):
    job_ids = [enqueue(conn, f"burst-{os.getpid()}-{i}", n=50) for i in range(WORKERS)]
    env = {**os.environ, "REDIS_URL": url, "EOC_NTK_QUEUE_NAME": QUEUE, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS_DIR}"}
    procs = [subprocess.Popen([sys.executable, "-m", "jobs", "--burst", "--log-level", "WARNING"], cwd=ROOT, env=env)
             for _ in range(WORKERS)]
    exited = []
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        exited.append(time.time())
    jobs = [Job.fetch(job_id, connection=conn, serializer=JSONSerializer) for job_id in job_ids]
    assert all(job.get_status().value == "finished" for job in jobs)
    last = max((j.ended_at if j.ended_at.tzinfo else j.ended_at.replace(tzinfo=timezone.utc)).timestamp()
               for j in jobs)
    assert max(exited) - last <= 5.0, max(exited) - last


def test_a_worker_killed_with_sigkill_takes_its_horse_and_the_job_stays_failed(conn, url):
    name = f"killed-{os.getpid()}"
    proc = start_worker(url, name)
    settings = JobSettings(redis_url=url, queue_name=QUEUE, job_heartbeat_ttl=HEARTBEAT, maintenance_interval=1)
    backend = RQBackend(conn, settings, Storage(RedisStore(conn), settings))
    try:
        wait_registered(conn, proc, name)
        # One eigh of n = 2500: about 8 s on an idle core, with the interpreter lock held throughout.
        job_id = enqueue(conn, "spectra-" + "d" * 32, n=2500)
        wait_status(conn, job_id, ("started",))
        horse = horse_of(proc)
        time.sleep(0.5)  # inside the LAPACK call
        guards = horse.children()  # the horse's guard (jobs.horse)
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=5)
        while any(alive(p.pid) for p in (horse, *guards)):
            assert time.monotonic() - killed <= 2.0, "the work horse outlived its worker by 2 s"
            time.sleep(0.02)
        seen, first_final = [], None
        deadline = time.monotonic() + HEARTBEAT + 15
        while first_final is None or time.monotonic() < first_final + 3.0:
            view = backend.get(job_id)
            seen.append((view.status.value, (view.error or {}).get("code")))
            if first_final is None and view.status.value in FINAL:
                first_final = time.monotonic()
            assert time.monotonic() < deadline, seen[-3:]
            time.sleep(0.05)
        finals = [s for s in seen if s[0] in FINAL]
        assert finals[0] == ("failed", "worker_lost"), seen[-5:]
        assert set(finals) == {finals[0]}, "a final state changed"
        assert seen.index(finals[0]) + len(finals) == len(seen), "the job left its final state"
    finally:
        backend.shutdown()
        stop_worker(proc)


@pytest.mark.slow
def test_a_busy_worker_given_sigterm_finishes_a_short_job_then_exits(conn, url):
    name = f"short-{os.getpid()}"
    proc = start_worker(url, name)
    try:
        wait_registered(conn, proc, name)
        job_id = enqueue(conn, f"short-{os.getpid()}", seconds=2)
        wait_status(conn, job_id, ("started",))
        horse_of(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_GRACE_SECONDS) == 0
        assert status(conn, job_id) == "finished"
    finally:
        stop_worker(proc)


@pytest.mark.slow
def test_a_busy_worker_given_sigterm_ends_a_long_job_after_the_grace_then_exits(conn, url):
    name = f"long-{os.getpid()}"
    proc = start_worker(url, name)
    settings = JobSettings(redis_url=url, queue_name=QUEUE, job_heartbeat_ttl=HEARTBEAT)
    backend = RQBackend(conn, settings, Storage(RedisStore(conn), settings))
    try:
        wait_registered(conn, proc, name)
        job_id = enqueue(conn, "spectra-" + "e" * 32, seconds=3 * STOP_GRACE_SECONDS)
        wait_status(conn, job_id, ("started",))
        horse = horse_of(proc)
        proc.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        assert proc.wait(timeout=STOP_GRACE_SECONDS + 30) == 0
        took = time.monotonic() - asked
        assert STOP_GRACE_SECONDS <= took <= STOP_GRACE_SECONDS + HEARTBEAT / 3 + 5, took
        assert not alive(horse.pid)
        view = backend.get(job_id)
        assert view.status.value == "failed" and view.error["code"] == "worker_stopped", view
    finally:
        backend.shutdown()
        stop_worker(proc)
