"""Redis mode's webhook deliveries: a process beside every ``eoc-ntk worker``.

:func:`start_delivery_process` forks it when the worker starts, before the worker forks any
work horse (so no thread of it is ever copied into a horse); it dies with its worker
(:func:`jobs.horse.die_with`). It runs a :class:`jobs.webhooks.Dispatcher` over Redis, whose
jobs' states are read from RQ's records (or the answered-from-cache jobs of the store), and
counts attempts in the Redis hash the API's ``/metrics`` reads. With several workers, every
one of these processes looks, and the first to take a webhook off the pending set delivers it.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal

from redis import Redis
from rq.job import Job

from .horse import die_with
from .rq_queue import CorruptRecord, fetch_record, view_of_record
from .settings import get_settings
from .states import JobStatus, JobView
from .store import RedisStore, Storage
from .webhooks import Dispatcher, RedisCounts

__all__ = ["redis_view_of", "rq_may_have_ended", "start_delivery_process", "run_deliveries"]

#: RQ's statuses of a run that is over (``stopped``: ended by its worker).
_RQ_ENDED = frozenset({"finished", "failed", "stopped", "canceled"})

log = logging.getLogger("eoc_ntk.jobs")


def redis_view_of(conn, storage: Storage):
    """``view_of(job_id)`` for a :class:`~jobs.webhooks.Dispatcher` in Redis mode: RQ's record, else a
    job answered from the cache (finished), else None; an unreadable record is a failed job."""

    def view_of(job_id: str) -> JobView | None:
        try:
            job = fetch_record(conn, job_id)
        except CorruptRecord as exc:
            return JobView(job_id, {"op": job_id.split("-", 1)[0]}, "", JobStatus.failed, 0.0,
                           {"code": "corrupt_record", "message": f"the stored record of this job is damaged ({exc})"})
        if job is not None:
            return view_of_record(job)
        answered = storage.answered_job(job_id)
        if answered is None:
            return None
        return JobView(job_id, answered[0], answered[1], JobStatus.finished, 1.0, seconds=0.0)

    return view_of


def rq_may_have_ended(conn):
    """``may_have_ended(job_ids)`` for a :class:`~jobs.webhooks.Dispatcher` in Redis mode: the jobs whose
    RQ status says ended, or that have no RQ record (answered from the cache, or forgotten), in one
    pipelined round trip; the others are still queued or running."""

    def may_have_ended(job_ids: list[str]) -> set[str]:
        with conn.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(Job.key_for(job_id), "status")
            statuses = pipe.execute()
        return {job_id for job_id, raw in zip(job_ids, statuses, strict=True)
                if raw is None or (raw.decode() if isinstance(raw, bytes) else str(raw)) in _RQ_ENDED}

    return may_have_ended


def run_deliveries(redis_url: str, parent_pid: int) -> None:
    """The delivery process's body: dispatch until its worker ends."""
    die_with(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the worker's group: the worker decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    settings = get_settings()
    conn = Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=10)
    storage = Storage(RedisStore(conn), settings)
    Dispatcher(storage, settings, redis_view_of(conn, storage), RedisCounts(conn),
               may_have_ended=rq_may_have_ended(conn)).run()


def start_delivery_process(redis_url: str) -> multiprocessing.process.BaseProcess | None:
    """Fork the delivery process of this worker (nothing when webhooks are off: no allow list or
    no secret, so no callback can have been registered)."""
    if not get_settings().webhooks_enabled:
        return None
    process = multiprocessing.get_context("fork").Process(
        target=run_deliveries, args=(redis_url, os.getpid()), name="eoc-ntk-webhooks", daemon=True)
    process.start()
    return process
