"""A work horse's side of the worker: it dies with its worker, and a guard process watches it.

RQ forks one work horse per job and runs the job inside the worker's ``death_penalty_class``;
:class:`JobDeathPenalty` is that class (RQ's signal alarm, plus what follows). When it is entered
in a horse, the horse

1. asks the kernel to SIGKILL it when its worker process ends (``PR_SET_PDEATHSIG`` on Linux, a
   lifeline thread elsewhere, :func:`die_with`): a worker killed outright leaves no orphan that
   computes, or that would later record a result over the ``worker_lost`` the API gave the job;
2. forks its guard (:func:`guard`), a small process that dies with the horse in the same way and

   - refreshes the job's alive key (:func:`jobs.keys.alive_key`) every third of
     ``EOC_NTK_JOB_HEARTBEAT_TTL``: a process of its own, so the beats keep time while the horse
     holds the interpreter lock for minutes inside one LAPACK call; when it could store none for
     three quarters of the TTL (Redis away), it ends the horse before the API can find the job
     abandoned, so that no horse records a result over the ``worker_lost`` the API gives it;
   - ends the horse (SIGTERM, then SIGKILL :data:`TERMINATE_GRACE_SECONDS` later) when a client
     cancels the job (:func:`jobs.keys.stop_key`, announced on :func:`jobs.keys.stop_channel`),
     when the job runs :data:`TIMEOUT_GRACE_SECONDS` past its timeout (RQ's alarm in the horse
     cannot interrupt a C call that holds the interpreter lock), and when its worker was asked
     to stop ``EOC_NTK_WORKER_STOP_GRACE`` seconds ago and the job still runs (the guard looks
     every :data:`STOP_CHECK_SECONDS` at most, and ends the horse at the grace's end however late
     it saw the request).

The SIGTERM lets a job on the Dask cluster cancel its futures there (:mod:`jobs.dask_engine`);
any other job's horse ends at once (RQ leaves SIGTERM's default action in the horse). The worker
then records why its horse ended, or hands a stopped job back to the queue
(:meth:`jobs.worker.JobWorker.record_horse_end`).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import timezone

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty
from rq.utils import utcparse

from . import keys
from .lifeline import exit_when_ended, running

__all__ = ["WorkerContext", "JobDeathPenalty", "die_with", "guard", "TIMEOUT_GRACE_SECONDS",
           "TERMINATE_GRACE_SECONDS", "STOP_CHECK_SECONDS"]

log = logging.getLogger("eoc_ntk.jobs")

#: Seconds past a job's timeout after which its guard ends the horse.
TIMEOUT_GRACE_SECONDS = 2
#: Seconds a horse gets between the guard's SIGTERM and its SIGKILL.
TERMINATE_GRACE_SECONDS = 0.5
#: Longest wait of a guard between two looks at whether its worker was asked to stop.
STOP_CHECK_SECONDS = 0.5
#: Linux's ``prctl`` option that sends a signal to a process when its parent ends.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerContext:
    """What a worker's horses need to know of it (set in the worker before any horse is forked)."""

    worker_pid: int
    worker_key: str
    redis_url: str
    heartbeat_ttl: int
    #: Seconds a job may run once its worker was asked to stop (``EOC_NTK_WORKER_STOP_GRACE``).
    stop_grace: float


class JobDeathPenalty(UnixSignalDeathPenalty):
    """RQ's alarm, and in a work horse: die with the worker, and run the job under a guard.

    RQ builds it as ``JobDeathPenalty(timeout, JobTimeoutException, job_id=...)`` around a job
    (documented), and with other exceptions around its own waits in the worker's process, where it
    is RQ's alarm only. :meth:`bound` gives the class of one worker."""

    context: WorkerContext | None = None

    def __init__(self, timeout, exception=JobTimeoutException, **kwargs):
        super().__init__(timeout, exception, **kwargs)
        self.seconds = int(timeout or 0)
        self.job_id = kwargs.get("job_id")
        self.exception = exception
        self.guard_pid = 0

    @classmethod
    def bound(cls, context: WorkerContext) -> type[JobDeathPenalty]:
        """This class for the worker described by ``context``."""
        return type(cls.__name__, (cls,), {"context": context})

    def setup_death_penalty(self) -> None:
        super().setup_death_penalty()
        ctx = self.context
        if ctx is None or self.job_id is None or self.exception is not JobTimeoutException \
                or os.getpid() == ctx.worker_pid:
            return  # not a job in a work horse
        die_with(ctx.worker_pid)
        horse = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                guard(ctx, self.job_id, horse, self.seconds)
            except BaseException:  # the job's beats stop: the API fails it as worker_lost
                log.exception("job %s: its guard failed", self.job_id)
            finally:
                os._exit(1)
        self.guard_pid = pid

    def cancel_death_penalty(self) -> None:
        super().cancel_death_penalty()
        if self.guard_pid:
            pid, self.guard_pid = self.guard_pid, 0
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def die_with(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when ``parent_pid``, its parent, ends (Linux), or a
    lifeline thread end it (elsewhere; it waits while a C call holds the interpreter lock); end at
    once if the parent has already ended."""
    try:
        if sys.platform != "linux":
            raise OSError("PR_SET_PDEATHSIG is Linux's")
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    except (OSError, AttributeError):
        exit_when_ended(parent_pid)
    if os.getppid() != parent_pid or not running(parent_pid):
        os._exit(1)


def guard(ctx: WorkerContext, job_id: str, horse: int, timeout: int) -> None:
    """The guard's loop (in a process forked by the horse ``horse``): beat, then end the horse on a
    cancel, past the timeout, or past the worker's stop grace; see the module's docstring."""
    die_with(horse)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    conn = Redis.from_url(ctx.redis_url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
    deadline = time.monotonic() + timeout + TIMEOUT_GRACE_SECONDS if timeout > 0 else float("inf")
    interval = max(0.5, ctx.heartbeat_ttl / 3)
    pubsub, next_beat, beaten, next_look = None, 0.0, time.monotonic(), 0.0
    while True:
        if time.monotonic() >= deadline:
            log.warning("job %s: past its timeout of %s s; ending its work horse", job_id, timeout)
            end_horse(horse)
        if time.monotonic() - beaten >= 0.75 * ctx.heartbeat_ttl:
            log.warning("job %s: no heartbeat stored for %.1f s; ending its work horse before the API finds "
                        "the job lost", job_id, time.monotonic() - beaten)
            end_horse(horse)
        try:
            if pubsub is None:
                pubsub = conn.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(keys.stop_channel(job_id))
            if time.monotonic() >= next_beat:
                conn.set(keys.alive_key(job_id), "1", ex=ctx.heartbeat_ttl)
                beaten = time.monotonic()
                next_beat = beaten + interval
            if time.monotonic() >= next_look:
                stop_in = _stop_grace_left(conn, ctx)
                if stop_in <= 0:
                    log.warning("job %s: its worker was asked to stop %s s ago; ending its work horse",
                                job_id, ctx.stop_grace)
                    end_horse(horse)
                next_look = time.monotonic() + min(STOP_CHECK_SECONDS, stop_in)
            if conn.exists(keys.stop_key(job_id)):
                end_horse(horse)
            pubsub.get_message(timeout=max(0.0, min(next_beat, next_look, deadline) - time.monotonic()))
        except RedisError as exc:
            log.warning("job %s: its guard lost Redis (%s); trying again", job_id, exc)
            pubsub = None
            time.sleep(min(interval / 2, max(0.0, deadline - time.monotonic())))


def _stop_grace_left(conn: Redis, ctx: WorkerContext) -> float:
    """Seconds left of the stop grace once the worker was asked to stop (RQ records when), or
    infinity while it was not."""
    asked = conn.hget(ctx.worker_key, "shutdown_requested_date")
    if not asked:
        return float("inf")
    when = utcparse(asked.decode() if isinstance(asked, bytes) else asked)
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return ctx.stop_grace - (time.time() - when.timestamp())


def end_horse(horse: int) -> None:
    """SIGTERM the horse, then SIGKILL it :data:`TERMINATE_GRACE_SECONDS` later. The caller, its
    guard, dies with it (so the pid cannot have been reused while the guard runs)."""
    for sig, wait in ((signal.SIGTERM, TERMINATE_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.kill(horse, sig)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(wait)
    os._exit(0)
