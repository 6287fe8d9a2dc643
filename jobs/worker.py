"""The RQ worker: serves the queue named in the settings on ``REDIS_URL``, JSON only.

Run it as ``eoc-ntk worker`` or ``python -m jobs``; start as many as you like, on as many
machines as you like, against one Redis. ``eoc-ntk worker --check`` tells whether a worker
of this host is registered with a recent heartbeat (the Docker healthcheck).

Liveness comes from the worker's parent process, never from the work horse: a horse may hold
the interpreter lock for minutes inside one LAPACK call, but the parent only waits for it, so
its beats (:meth:`JobWorker.maintain_heartbeats`, every third of ``EOC_NTK_JOB_HEARTBEAT_TTL``)
are on time however long a single call lasts. If the worker dies, the beats stop and the API
fails the job as ``worker_lost``; if only the horse dies, the parent records the failure.

Every Redis call of the worker loop is inside reconnect logic: RQ's dequeue loop retries on its
own; a beat that fails is logged and tried again; a failure while a horse runs never abandons
the horse; and whatever else makes RQ's loop end (registration, registry upkeep, the end of a
job while Redis is away) starts the loop again in the same process (:func:`run_worker`).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from datetime import datetime, timezone

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.serializers import JSONSerializer
from rq.utils import now

from . import keys

# Imported for its side effect: NumPy/SciPy, the core and the job code load once, here, before
# forking horses (the redundant alias marks the name as used on purpose).
from . import rq_queue as rq_queue
from .errors import describe_timeout
from .settings import get_settings

__all__ = ["main", "run_worker", "check_worker", "JobWorker", "RECONNECT_MAX_SECONDS", "TIMEOUT_GRACE_SECONDS"]

#: Longest wait between two attempts to reach Redis again.
RECONNECT_MAX_SECONDS = 2.0


#: Seconds past a job's timeout after which the parent kills a horse that did not stop itself
#: (RQ's own alarm in the horse cannot interrupt a C call that holds the interpreter lock).
TIMEOUT_GRACE_SECONDS = 2

#: Seconds a stopped job's horse gets between SIGTERM and SIGKILL (see :meth:`JobWorker.kill_horse`).
TERMINATE_GRACE_SECONDS = 0.5

log = logging.getLogger("eoc_ntk.jobs")


def _terminate_and_wait(pid: int, grace: float) -> bool:
    """SIGTERM the child ``pid``, then wait up to ``grace`` seconds for it to end, without reaping it
    (RQ's loop waits for it and reads its exit status); True once it has ended."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # already reaped by RQ's loop
            return True
        time.sleep(0.02)
    return False


class JobWorker(Worker):
    """RQ's forking worker, whose parent process beats each job's alive key and enforces its timeout.

    The parent wakes every ``job_monitoring_interval`` seconds (a third of the heartbeat TTL, at
    least 1 s) while it waits for its horse; RQ then calls :meth:`maintain_heartbeats`."""

    def __init__(self, *args, heartbeat_ttl: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.heartbeat_ttl = heartbeat_ttl
        self.job_monitoring_interval = max(1, heartbeat_ttl // 3)

    def _beat_alive(self, job_id: str) -> None:
        """Refresh the job's alive key (:func:`jobs.keys.alive_key`); a failure is logged, never raised."""
        try:
            self.connection.set(keys.alive_key(job_id), "1", ex=self.heartbeat_ttl)
        except RedisError as exc:
            log.warning("job %s: heartbeat failed (%s); trying again in %s s", job_id, exc,
                        self.job_monitoring_interval)

    def prepare_execution(self, job):
        """Beat once before the horse is forked, so a started job always has a fresh key."""
        self._beat_alive(job.id)
        return super().prepare_execution(job)

    def prepare_job_execution(self, job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ's bookkeeping (in the horse: status ``started``, ``started_at``), then that start kept in
        the job's meta: RQ sets ``started_at`` again in memory a moment later and stores that second
        value when the job ends, so a job's start would move as it finished (the API reads the meta)."""
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        if job.started_at is None:
            return
        try:
            job.meta["started_at"] = job.started_at.timestamp()
            job.save_meta()
        except RedisError as exc:  # the API falls back on RQ's own started_at
            log.warning("job %s: could not record its start (%s)", job.id, exc)

    def maintain_heartbeats(self, job, execution):
        """RQ's beats (worker, execution, job), ours, and the timeout backstop; never raises on Redis."""
        self._beat_alive(job.id)
        try:
            super().maintain_heartbeats(job, execution)
        except RedisError as exc:
            log.warning("job %s: RQ heartbeat failed (%s); the horse keeps running", job.id, exc)
        self._enforce_timeout(job)

    def _enforce_timeout(self, job) -> None:
        """Kill the horse of a job past its timeout (+ grace), recording why first."""
        if not job.timeout or job.timeout < 0 or job.started_at is None:
            return
        working = (now() - job.started_at).total_seconds()
        if working <= job.timeout + TIMEOUT_GRACE_SECONDS:
            return
        log.warning("job %s ran %.0f s, past its timeout of %s s: killing its work horse", job.id, working, job.timeout)
        try:
            job.meta["error"] = describe_timeout(job.timeout)
            job.save_meta()
        except RedisError:
            log.warning("job %s: could not record its timeout (Redis away)", job.id)
        self.kill_horse()

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL):
        """RQ's kill (SIGKILL to the horse's process group: a stop command, a timeout), after a SIGTERM
        and up to :data:`TERMINATE_GRACE_SECONDS` for the horse to end by itself: a job on the Dask
        cluster uses them to cancel its futures there (:mod:`jobs.dask_engine`); any other job's horse
        ends at the SIGTERM, as RQ leaves its default action in place."""
        pid = self.horse_pid
        if sig == signal.SIGKILL and pid:
            if _terminate_and_wait(pid, TERMINATE_GRACE_SECONDS) or self.horse_pid != pid:
                # Ended: RQ's loop may already have reaped it and cleared horse_pid, and RQ's kill of a
                # cleared pid would signal the group of os.getpgid(0), this worker's own.
                return
        super().kill_horse(sig)

    def monitor_work_horse(self, job, queue, execution):
        """RQ's monitor; a Redis error once the horse ended (recording how) leaves the record to the API.

        The job is then still ``started`` in Redis (if Redis kept it), its alive key expires within
        the heartbeat TTL, and the API fails it as ``worker_lost``: it is never left running."""
        try:
            super().monitor_work_horse(job, queue, execution)
        except RedisError as exc:
            log.warning("job %s ended while Redis was away (%s); the API will fail it if it is still running",
                        job.id, exc)
            self._horse_pid = 0


def _redis_url(redis_url: str | None) -> str:
    url = redis_url or get_settings().redis_url
    if not url:
        raise SystemExit("REDIS_URL is not set: a worker serves the queue of a Redis-mode API "
                         "(embedded mode needs no worker)")
    return url


def run_worker(redis_url: str | None = None, *, burst: bool = False, name: str | None = None,
               log_level: str = "INFO") -> bool:
    """Work jobs until stopped (or, with ``burst``, until the queue is empty)."""
    settings = get_settings()
    url = _redis_url(redis_url)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    conn = Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=10)
    worker = None
    while True:
        try:
            # Inside the retry: building a worker talks to Redis too (it did: busy workers exited
            # when Redis vanished, because Worker(...) raised outside of it).
            queue = Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)
            worker = JobWorker([queue], connection=conn, serializer=JSONSerializer, name=name,
                               heartbeat_ttl=settings.job_heartbeat_ttl)
            worker.max_connection_wait_time = RECONNECT_MAX_SECONDS
            worked = worker.work(burst=burst, logging_level=log_level.upper())
        except (RedisError, ValueError, OSError) as exc:  # e.g. at registration while Redis restarts
            log.warning("worker lost Redis (%s); reconnecting in %s s", exc, RECONNECT_MAX_SECONDS)
            worked = False
        if worker is not None and (burst or _stop_requested(worker)):
            return worked
        # RQ's loop gives up on some Redis errors (heartbeats, registry upkeep): start it again, so
        # that a Redis restart never needs a worker restart.
        log.warning("worker loop ended without a stop request (Redis restarted?); restarting it")
        time.sleep(RECONNECT_MAX_SECONDS)
        if worker is not None and _stop_requested(worker):
            return worked


def _stop_requested(worker) -> bool:
    """True once the worker was asked to stop (SIGTERM/SIGINT: RQ records when)."""
    return bool(getattr(worker, "_stop_requested", False) or getattr(worker, "_shutdown_requested_date", None))


def check_worker(redis_url: str | None = None, host: str | None = None) -> tuple[bool, str]:
    """(True, why) when a worker of ``host`` (default: this one) is registered in Redis with a
    heartbeat younger than its TTL; (False, why) otherwise, or when Redis does not answer."""
    host = host or socket.gethostname()
    try:
        conn = Redis.from_url(_redis_url(redis_url), socket_timeout=5, socket_connect_timeout=2)
        workers = [w for w in Worker.all(connection=conn) if w.hostname == host]
    except RedisError as exc:
        return False, f"Redis does not answer ({exc})"
    now = datetime.now(timezone.utc)
    for w in workers:
        beat = w.last_heartbeat
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=timezone.utc)
        if beat is not None and (now - beat).total_seconds() <= w.worker_ttl:
            return True, f"worker {w.name} on {host}: last heartbeat {(now - beat).total_seconds():.0f} s ago"
    return False, f"no worker of host {host} is registered with a recent heartbeat"


def main(argv=None) -> int:
    """``eoc-ntk worker`` / ``python -m jobs``: run a worker, or ``--check`` one."""
    parser = argparse.ArgumentParser(prog="eoc-ntk worker", description="Run an RQ worker on REDIS_URL.")
    parser.add_argument("--redis-url", default=None, help="default: the REDIS_URL environment variable")
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: generated)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--check", action="store_true",
                        help="exit 0 when a worker of this host is registered with a recent heartbeat, else 1")
    args = parser.parse_args(argv)
    if args.check:
        ok, why = check_worker(args.redis_url)
        print(why, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    run_worker(args.redis_url, burst=args.burst, name=args.name, log_level=args.log_level)
    return 0
