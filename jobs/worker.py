"""The RQ worker: serves the queue named in the settings on ``REDIS_URL``, JSON only.

Run it as ``eoc-ntk worker`` or ``python -m jobs``; start as many as you like, on as many
machines as you like, against one Redis. ``eoc-ntk worker --check`` tells whether a worker
of this host is registered with a recent heartbeat (the Docker healthcheck).

It is RQ's forking worker, configured through RQ's public seams only: its
``death_penalty_class`` (:class:`jobs.horse.JobDeathPenalty`: each work horse dies with its
worker and runs under a guard process that beats the job's alive key, ends the horse on a
cancel, past the job's timeout and past the stop grace), its ``work_horse_killed_handler``
(:meth:`JobWorker.record_horse_end`: why a horse ended), ``job_monitoring_interval`` and
``Worker.work``'s options.

Signals: SIGTERM or SIGINT to an idle worker ends it within a second or two. A busy worker
finishes its job and then exits; a job still running :data:`jobs.horse.STOP_GRACE_SECONDS`
after the signal is ended by its guard and failed with the code ``worker_stopped`` (a final
state: resubmit to run it again). A second SIGTERM or SIGINT ends the job at once, the same way.
A worker killed outright (SIGKILL, out of memory) takes its horse with it within a second; the
API fails the job as ``worker_lost`` once its alive key expires, and nothing records over that.

Webhooks: with ``EOC_NTK_WEBHOOK_ALLOW`` and ``EOC_NTK_WEBHOOK_SECRET`` set, the worker forks a
delivery process at start (:mod:`jobs.webhook_worker`) that posts the webhooks of ended jobs;
it dies with the worker.

Redis: the worker's connection retries every command for about :data:`REDIS_RETRY_SECONDS`
while Redis is away, so that a restart of Redis never abandons a running horse nor ends the
worker; RQ's dequeue loop retries on its own beyond that. A worker that still loses Redis for
longer ends (its supervisor, e.g. Docker's restart policy, starts it again); a horse left
running by RQ's loop is stopped first, never orphaned.
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
from redis.backoff import ExponentialBackoff
from redis.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from rq import Queue, Worker
from rq.serializers import JSONSerializer
from rq.utils import now

from . import keys, tracing

# Imported for its side effect: NumPy/SciPy, the core and the job code load once, here, before
# forking horses (the redundant alias marks the name as used on purpose).
from . import rq_queue as rq_queue
from .device import job_device
from .durations import RedisDurations
from .errors import describe_timeout
from .horse import JobDeathPenalty, WorkerContext
from .logs import FORMATS, LogSetup, request_id_var
from .observe import JobContext
from .settings import get_settings
from .webhook_worker import start_delivery_process

__all__ = ["main", "run_worker", "check_worker", "JobWorker", "WorkerRedis", "RECONNECT_MAX_SECONDS",
           "REDIS_RETRY_SECONDS", "PUBSUB_WAKE_SECONDS"]

#: Longest wait between two attempts to reach Redis again.
RECONNECT_MAX_SECONDS = 2.0
#: About how long one Redis command of the worker is retried while Redis is away.
REDIS_RETRY_SECONDS = 120
#: Longest wait of the worker's command thread (RQ's pubsub) before it looks whether to stop.
PUBSUB_WAKE_SECONDS = 0.5

log = logging.getLogger("eoc_ntk.jobs")


class _PromptPubSub(PubSub):
    """A PubSub whose listening thread wakes every :data:`PUBSUB_WAKE_SECONDS`: RQ's thread waits up
    to 60 s per call, and RQ joins it when the worker stops (an idle worker took a minute to exit)."""

    def run_in_thread(self, sleep_time: float = 0.0, *args, **kwargs):
        return super().run_in_thread(min(sleep_time, PUBSUB_WAKE_SECONDS), *args, **kwargs)


class WorkerRedis(Redis):
    """The worker's Redis client: its pubsub threads stop promptly (:class:`_PromptPubSub`)."""

    def pubsub(self, **kwargs) -> PubSub:
        return _PromptPubSub(self.connection_pool, **kwargs)


class JobWorker(Worker):
    """RQ's forking worker, with :class:`jobs.horse.JobDeathPenalty` as its death penalty and
    :meth:`record_horse_end` as its work-horse-killed handler; it overrides none of RQ's methods.

    RQ's parent process wakes every ``job_monitoring_interval`` seconds (a third of the heartbeat
    TTL, at least 1 s) while it waits for its horse, to keep RQ's own heartbeats."""

    def __init__(self, queues, *, heartbeat_ttl: int, redis_url: str, **kwargs):
        self.heartbeat_ttl = heartbeat_ttl
        super().__init__(queues, job_monitoring_interval=max(1, heartbeat_ttl // 3),
                         work_horse_killed_handler=self.record_horse_end, **kwargs)
        self.death_penalty_class = JobDeathPenalty.bound(
            WorkerContext(os.getpid(), self.key, redis_url, heartbeat_ttl))

    def record_horse_end(self, job, retpid, ret_val, rusage) -> None:
        """Why a horse ended before its job did, in the job's meta (RQ then fails the job): a
        client's cancel (``canceled``: the job is told canceled), past its timeout (``timeout``),
        or this worker asked to stop (``worker_stopped``). Otherwise RQ's record says how it died
        (the API tells ``worker_lost``). The run's end is logged (with its request's id) and its
        duration recorded (:mod:`jobs.durations`), as the horse would have. Never raises."""
        context = JobContext.from_dict((job.kwargs or {}).get("context"))
        token = request_id_var.set(context.request_id)
        try:
            error = self._why_the_horse_ended(job)
            if error is not None:
                job.get_meta(refresh=True)  # the horse's last progress, then the reason
                job.meta["error"] = error
                job.save_meta()
            status = "canceled" if error is not None and error["code"] == "canceled" else "failed"
            seconds = (now() - job.started_at).total_seconds() if job.started_at is not None else 0.0
            op = str((job.args[0] if job.args else {}).get("op", "?"))
            log.warning("job %s %s after %.3f s: its work horse ended (%s)", job.id, status, seconds,
                        error["code"] if error else f"exit status {ret_val}",
                        extra={"job_id": job.id, "op": op, "status": status, "seconds": round(seconds, 6),
                               "error": error["code"] if error else "worker_lost"})
            RedisDurations(self.connection).observe(op, status, seconds)
        except (RedisError, AttributeError, TypeError) as exc:
            log.warning("job %s: could not record why its work horse ended (%s)", job.id, exc)
        finally:
            request_id_var.reset(token)

    def _why_the_horse_ended(self, job) -> dict | None:
        if self.connection.exists(keys.stop_key(job.id)):
            return {"code": "canceled", "message": "canceled by a client"}
        if job.timeout and job.timeout > 0 and job.started_at is not None \
                and (now() - job.started_at).total_seconds() >= job.timeout:
            return describe_timeout(job.timeout)
        if self.shutdown_requested_date is not None:
            return {"code": "worker_stopped",
                    "message": "the worker running this job was asked to stop (SIGTERM) and the job did not end "
                               "within its grace period; submit the request again to recompute it"}
        return None


def _redis_url(redis_url: str | None) -> str:
    url = redis_url or get_settings().redis_url
    if not url:
        raise SystemExit("REDIS_URL is not set: a worker serves the queue of a Redis-mode API "
                         "(embedded mode needs no worker)")
    return url


def worker_connection(url: str) -> WorkerRedis:
    """The worker's Redis client: commands retried for about :data:`REDIS_RETRY_SECONDS` while Redis
    is away (exponential backoff capped at :data:`RECONNECT_MAX_SECONDS`)."""
    retry = Retry(ExponentialBackoff(cap=RECONNECT_MAX_SECONDS, base=0.1),
                  int(REDIS_RETRY_SECONDS / RECONNECT_MAX_SECONDS))
    conn = WorkerRedis.from_url(url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=10,
                                retry=retry, retry_on_error=[RedisConnectionError, RedisTimeoutError])
    assert isinstance(conn, WorkerRedis)  # from_url builds its own class
    return conn


def run_worker(redis_url: str | None = None, *, burst: bool = False, name: str | None = None,
               log_level: str = "INFO", log_format: str = "json") -> bool:
    """Work jobs until stopped (or, with ``burst``, until the queue is empty); True if any job ran.
    It logs to stderr, one JSON object per line (``log_format="text"``: plain lines), with the
    request id of the job its line is about (:mod:`jobs.logs`).

    Building the worker and registering it talk to Redis: while that fails, it is tried again
    every :data:`RECONNECT_MAX_SECONDS`."""
    settings = get_settings()
    url = _redis_url(redis_url)
    LogSetup(logging.getLevelNamesMapping()[log_level.upper()], log_format).apply()
    tracing.configure("eoc-ntk-worker")  # off unless the OTEL_* variables and the [otel] extra ask for it
    conn = worker_connection(url)
    start_delivery_process(url)  # before any work horse is forked
    while True:
        worker = None
        try:
            queue = Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)
            worker = JobWorker([queue], connection=conn, serializer=JSONSerializer, name=name,
                               heartbeat_ttl=settings.job_heartbeat_ttl, redis_url=url)
            worker.max_connection_wait_time = RECONNECT_MAX_SECONDS
            return worker.work(burst=burst, logging_level=log_level.upper())
        except (RedisError, ValueError, OSError) as exc:  # e.g. at registration while Redis restarts
            log.warning("worker lost Redis (%s); trying again in %s s", exc, RECONNECT_MAX_SECONDS)
        finally:
            if worker is not None:
                _stop_left_horse(worker)
        time.sleep(RECONNECT_MAX_SECONDS)


def _stop_left_horse(worker: Worker) -> None:
    """SIGKILL and reap the horse RQ's loop left running when it ended on an error (its job is then
    failed as ``worker_lost`` once its alive key expires)."""
    pid = worker.horse_pid
    if not pid:
        return
    log.warning("worker loop ended while horse %s ran; stopping it", pid)
    try:
        os.killpg(pid, signal.SIGKILL)  # the horse leads its own process group (with its guard)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


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
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    parser.add_argument("--log-format", choices=FORMATS, default="json",
                        help="json (default): one JSON object per line, the API's fields; text: plain lines")
    parser.add_argument("--check", action="store_true",
                        help="exit 0 when a worker of this host is registered with a recent heartbeat, else 1")
    args = parser.parse_args(argv)
    if args.check:
        ok, why = check_worker(args.redis_url)
        print(why, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    try:
        job_device()  # a malformed EOC_NTK_DEVICE stops the worker here, not each spectra job later
    except ValueError as exc:
        print(f"eoc-ntk worker: {exc}", file=sys.stderr)
        return 2
    run_worker(args.redis_url, burst=args.burst, name=args.name, log_level=args.log_level,
               log_format=args.log_format)
    return 0
