"""The RQ backend (Redis mode): jobs on an RQ queue served by ``eoc-ntk worker`` processes.

Arguments, meta and results are JSON (RQ's ``JSONSerializer``): a job's only argument is its
spec; the worker reads the data from the store and writes the result to the cache under the
spec's cache key (:func:`run_job`). The job id is derived from the cache key
(:func:`jobs.specs.job_id_for`): submitting a spec whose job is queued or running returns
that job (single flight). Computations a request waits for run in this process
(:class:`jobs.local.LocalBackend`).

A started job whose worker died is found by its missing heartbeat and failed as ``worker_lost``
by the maintenance thread or by the next look at it. The heartbeat (the job's alive key) is
kept by the guard process of its work horse (:mod:`jobs.horse`), so a horse that holds the
interpreter lock for minutes in one LAPACK call still looks alive; a horse killed alone is
recorded failed by its worker at once. A cancel of a running job sets its stop key and
announces it; the guard ends the horse and the worker records the job canceled.

A job told ``finished``, ``failed`` or ``canceled`` never changes state: a worker killed
outright takes its horse with it (:func:`jobs.horse.die_with`), so nothing records a result over
the ``worker_lost`` the API gave the job; there is no automatic retry (resubmitting runs it again).

A job record that cannot be read (bad data, or a status RQ does not know) is a failed job with
the code ``corrupt_record``, never a 500.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from datetime import timezone

import numpy as np
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, get_current_job
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import Execution
from rq.job import Job
from rq.job import JobStatus as RQJobStatus
from rq.job_lifecycle import record_job_failure
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from . import keys
from .backend import EndedHook
from .codec import StoredValue
from .durations import RedisDurations
from .errors import describe_error, describe_timeout
from .local import LocalBackend
from .logs import request_id_var
from .observe import JobContext, observed_run
from .progress import JobProgress
from .settings import JobSettings, get_settings
from .specs import cache_key, job_id_for, predicted_for
from .states import IN_FLIGHT, JobStatus, JobView, state_of
from .store import RedisStore, Storage
from .tracing import flush

__all__ = ["RQBackend", "run_job", "fetch_record", "view_of_record", "CorruptRecord", "JOB_FUNCTION",
           "STORE_RETRY_SECONDS"]

log = logging.getLogger("eoc_ntk.jobs")

#: What a worker runs: the dotted name of :func:`run_job`.
JOB_FUNCTION = "jobs.rq_queue.run_job"
#: How long a finished computation keeps trying to store its result while Redis is away.
STORE_RETRY_SECONDS = 120
_RQ_STATUSES = frozenset(("created", "queued", "deferred", "scheduled", "ready_to_enqueue", "rate_limited",
                          "started", "finished", "failed", "stopped", "canceled"))


class CorruptRecord(Exception):
    """RQ's record of a job cannot be read (bad data or unknown status)."""


class RQBackend:
    """Jobs on an RQ queue (JSON serializer); waited-for computations in a :class:`LocalBackend`."""

    needs_stored_data = True

    def __init__(self, connection, settings: JobSettings, storage: Storage, on_ended: EndedHook | None = None):
        self.conn = connection
        self.settings = settings
        self.serializer = JSONSerializer
        self.queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
        self.registry = StartedJobRegistry(queue=self.queue, serializer=self.serializer)
        # Runs of this process only: a worker adds the duration of each of its runs to the shared
        # histogram itself (jobs.durations).
        self.local = LocalBackend(settings, storage, on_ended)
        self._stop = threading.Event()
        threading.Thread(target=self._maintain, name="eoc-ntk-maintenance", daemon=True).start()

    # The protocol
    def run(self, spec: dict, key: str, pinned: dict[str, np.ndarray], wait: float | None = None) -> StoredValue:
        return self.local.run(spec, key, pinned, wait)

    def submit(self, spec: dict, key: str, pinned: dict[str, np.ndarray]) -> str:
        """Enqueue ``spec`` unless its job is already queued or running; returns the job id."""
        job_id = job_id_for(key)
        with self._submit_lock(job_id):
            try:
                job = self._checked(self._fetch(job_id), locked=True)
            except CorruptRecord as exc:  # an unreadable record: drop it and run again
                log.warning("job %s: dropping its unreadable record (%s)", job_id, exc)
                unreadable = Job(job_id, connection=self.conn, serializer=self.serializer)
                unreadable.set_status(RQJobStatus.FAILED)  # a status RQ knows, so that its delete can run
                self._forget(unreadable)
                job = None
            if job is not None:
                if state_of(job.get_status()) in IN_FLIGHT:
                    return job_id
                self._forget(job)  # ended (failed, canceled, or finished with an expired result): run again
            self.conn.delete(keys.stop_key(job_id))  # a cancel of an earlier run stops no new one
            self.queue.enqueue(
                JOB_FUNCTION, args=(spec,), kwargs={"context": JobContext.capture().to_dict()}, job_id=job_id,
                job_timeout=self.settings.job_timeout, result_ttl=self.settings.result_ttl,
                failure_ttl=self.settings.result_ttl, ttl=self.settings.result_ttl,
                meta={"progress": 0.0, "cache_key": key, "predicted_seconds": predicted_for(spec, pinned)},
                description=f"{spec['op']} of dataset {spec['dataset_id']}",
            )
        return job_id

    def get(self, job_id: str) -> JobView | None:
        """The job's view; a computation a request waited for and then left as a job (it runs in this
        process, see :meth:`run`) is this process's own while it runs."""
        local = self.local.get(job_id)
        if local is not None and local.status in IN_FLIGHT:
            return local
        try:
            job = self._checked(self._fetch(job_id))
            return local if job is None else self._view(job)
        except CorruptRecord as exc:
            return self._corrupt_view(job_id, exc)

    def cancel(self, job_id: str, wait: float = 3.0) -> JobView | None:
        """Cancel a queued job, or stop a running one (its guard ends its work horse, :mod:`jobs.horse`; a
        computation of this process, :meth:`run`, is stopped here)."""
        local = self.local.get(job_id)
        if local is not None and local.status in IN_FLIGHT:
            return self.local.cancel(job_id)
        try:
            return self._cancel(job_id, wait)
        except CorruptRecord as exc:
            return self._corrupt_view(job_id, exc)

    def _cancel(self, job_id: str, wait: float) -> JobView | None:
        job = self._checked(self._fetch(job_id))
        if job is None:
            return None
        deadline, stop_sent = time.monotonic() + wait, False
        while True:
            view = self._view(job)
            if view.status not in IN_FLIGHT or time.monotonic() > deadline:
                return view
            try:
                if view.status == JobStatus.queued:
                    job.cancel()
                elif not stop_sent:
                    self.conn.set(keys.stop_key(job_id), "1", ex=keys.ttl_for(keys.stop_key(job_id), self.settings))
                    self.conn.publish(keys.stop_channel(job_id), "stop")
                    stop_sent = True
            except InvalidJobOperation:
                pass  # between states (e.g. just taken by a worker): look again
            time.sleep(0.05)
            job = self._fetch(job_id)
            if job is None:
                return None

    def admission(self, principal: str) -> AbstractContextManager:
        return self.conn.lock(keys.admission_lock_key(principal), timeout=keys.SUBMIT_LOCK_SECONDS,
                              blocking_timeout=keys.SUBMIT_LOCK_SECONDS)

    def counts(self) -> tuple[int, int] | None:
        try:
            return int(self.queue.count), int(self.registry.count)
        except Exception:  # Redis down: unknown rather than a false 0
            log.debug("queue state unavailable", exc_info=True)
            return None

    def ready(self) -> bool:
        try:
            return bool(self.conn.ping())
        except Exception:
            return False

    def shutdown(self) -> None:
        self._stop.set()
        self.local.shutdown()

    # Records
    def _fetch(self, job_id: str):
        """RQ's record of ``job_id``, or None; :class:`CorruptRecord` when it cannot be read."""
        return fetch_record(self.conn, job_id)

    def _corrupt_view(self, job_id: str, exc: Exception) -> JobView:
        log.warning("job %s: unreadable record: %s", job_id, exc)
        message = (f"the stored record of job {job_id} is damaged and cannot be read ({exc}); "
                   f"submit the request again to recompute it")
        return JobView(job_id, {"op": job_id.split("-", 1)[0]}, "", JobStatus.failed, 0.0,
                       {"code": "corrupt_record", "message": message})

    def _view(self, job) -> JobView:
        return view_of_record(job)

    def _forget(self, job) -> None:
        """Delete an ended job and its executions from RQ's started registry."""
        self._forget_executions(job.id)
        job.delete()

    def _forget_executions(self, job_id: str, pipeline=None) -> None:
        """Drop a job's executions from RQ's started registry (through the registry's API). Job ids are
        reused (single flight), and a stale execution of a killed run would otherwise make RQ's cleanup
        fail a later run of the same id; its execution record may have expired, so the registry's
        entries are read, not the job's executions."""
        for owner, execution_id in self.registry.get_job_and_execution_ids(cleanup=False):
            if owner == job_id:
                self.registry.remove_execution(Execution(execution_id, job_id, connection=self.conn),
                                               pipeline=pipeline)

    # Abandoned jobs
    def _abandoned(self, job) -> bool:
        """A started job whose process stopped beating (its worker was killed): see :func:`heartbeat`."""
        raw = job.get_status(refresh=False)
        if str(getattr(raw, "value", raw)) != "started" or job.started_at is None:
            return False
        if time.time() - job.started_at.timestamp() < self.settings.job_heartbeat_ttl:
            return False  # grace: the job's process may not have beaten yet
        return not self.conn.exists(keys.alive_key(job.id))

    def _fail_abandoned(self, job) -> None:
        """Mark an abandoned job failed, the way RQ's own registry cleanup does, saying why."""
        message = (f"the worker running this job stopped (killed or lost) without a heartbeat for "
                   f"{self.settings.job_heartbeat_ttl} s; submit the request again to recompute it")
        log.warning("job %s abandoned (worker %s, started %.1f s ago): %s", job.id, job.worker_name,
                    time.time() - job.started_at.timestamp(), message)
        job.meta["error"] = {"code": "worker_lost", "message": message}
        job.save_meta()
        with self.conn.pipeline() as pipe:
            record_job_failure(job, message, pipe)
            self._forget_executions(job.id, pipeline=pipe)
            pipe.execute()

    def _checked(self, job, locked: bool = False):
        """``job``, failed first if it was abandoned (``locked``: the caller holds its submit lock)."""
        if job is not None and self._abandoned(job):
            if locked:
                self._fail_if_still_abandoned(job.id)
            else:
                with self._submit_lock(job.id):
                    self._fail_if_still_abandoned(job.id)
            job = self._fetch(job.id)
        return job

    def _submit_lock(self, job_id: str):
        return self.conn.lock(keys.submit_lock_key(job_id), timeout=keys.SUBMIT_LOCK_SECONDS,
                              blocking_timeout=keys.SUBMIT_LOCK_SECONDS)

    def _fail_if_still_abandoned(self, job_id: str) -> bool:
        """Fail the job ``job_id`` if it is abandoned *now*; the caller holds its submit lock.

        Decided on a fresh copy: two API threads (a request and the maintenance loop) may both
        find a killed run abandoned, and once a client has resubmitted, the job id belongs to
        a new run, which a stale copy must not fail (it once did, in a test: the second thread
        marked the resubmitted, running job failed)."""
        job = self._fetch(job_id)
        if job is None or not self._abandoned(job):
            return False
        self._fail_abandoned(job)
        return True

    def reap_abandoned(self) -> int:
        """Fail every abandoned job of the queue (and let RQ clean its registries); returns how many."""
        count = 0
        for job_id in self.registry.get_job_ids():
            try:
                job = self._fetch(job_id)
            except CorruptRecord:
                continue  # told as corrupt_record to whoever asks; resubmitting replaces it
            if job is not None and self._abandoned(job):
                with self._submit_lock(job_id):
                    count += self._fail_if_still_abandoned(job_id)
        return count

    def _maintain(self) -> None:
        """Fail abandoned jobs (their worker died) every ``maintenance_interval`` seconds."""
        while not self._stop.wait(self.settings.maintenance_interval):
            try:
                self.reap_abandoned()
            except Exception as exc:  # Redis down, or anything else: try again next time
                log.warning("abandoned-job sweep failed: %s", exc)


def fetch_record(conn, job_id: str):
    """RQ's record of ``job_id``, or None; :class:`CorruptRecord` when it cannot be read."""
    try:
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
        status = job.get_status(refresh=False)
        spec = job.args[0] if job.args else None
    except NoSuchJobError:
        return None
    except RedisError:
        raise
    except Exception as exc:  # bad data, an unknown status, a record of another program
        raise CorruptRecord(f"{type(exc).__name__}: {exc}") from exc
    if str(getattr(status, "value", status)) not in _RQ_STATUSES:
        raise CorruptRecord(f"unknown status {status!r}")
    if not isinstance(spec, dict) or not isinstance(job.meta, dict) or "unserialized" in job.meta:
        raise CorruptRecord("its arguments or metadata are not the JSON this service writes")
    return job


def view_of_record(job) -> JobView:
    """The view of one of RQ's job records (read by :func:`fetch_record`)."""
    status = state_of(job.get_status(refresh=False))
    meta = job.meta or {}
    error = meta.get("error")
    if status == JobStatus.failed and error is None:
        result = job.latest_result()
        last = (getattr(result, "exc_string", None) or "").strip().splitlines()
        if last and "AbandonedJobError" in last[-1]:  # RQ's own registry clean-up found it abandoned
            error = {"code": "worker_lost", "message": "the worker running this job stopped (killed or lost); "
                                                       "submit the request again to recompute it"}
        elif last and "Work-horse terminated unexpectedly" in last[-1]:  # the horse died, its worker saw it
            error = {"code": "worker_lost", "message": f"the process computing this job died "
                                                       f"({last[-1].strip('; ')}); "
                                                       f"submit the request again to recompute it"}
        elif last and "JobTimeoutException" in last[-1]:  # the horse's own alarm fired first
            error = describe_timeout(job.timeout)
        else:
            error = {"code": "worker_failure", "message": last[-1] if last else "the job failed in its worker"}
    if status == JobStatus.failed and isinstance(error, dict) and error.get("code") == "canceled":
        status = JobStatus.canceled  # its guard ended the horse on a client's cancel (jobs.horse)
    if status == JobStatus.canceled:
        error = {"code": "canceled", "message": "canceled by a client"}
    progress = 1.0 if status == JobStatus.finished else float(meta.get("progress", 0.0))
    # The start run_job recorded: RQ's own started_at moves by a few milliseconds when the job ends;
    # before the meta is written, RQ's stored value (the same one).
    started_at = meta.get("started_at")
    if started_at is None and job.started_at is not None:
        started_at = _utc_seconds(job.started_at)
    seconds = None
    if started_at is not None and job.ended_at:
        seconds = max(_utc_seconds(job.ended_at) - started_at, 0.0)
    return JobView(job.id, job.args[0], meta.get("cache_key", ""), status, progress, error, seconds, started_at,
                   meta.get("predicted_seconds"), meta.get("progress_at"))


def _utc_seconds(when) -> float:
    """Seconds since the epoch of one of RQ's datetimes (UTC; naive before rq 2)."""
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def run_job(spec: dict, context: dict | None = None) -> dict:
    """RQ entry point: load the data, compute with progress in the job's meta, cache the result.

    ``context``: the submitting request's :class:`jobs.observe.JobContext` (its id on the job's
    log lines, its trace continued by the job's spans)."""
    job = get_current_job()
    assert job is not None  # called by an RQ worker
    settings = get_settings()
    storage = Storage(RedisStore(job.connection), settings)
    _keep_start(job)

    def report(fraction: float) -> None:
        job.meta["progress"], job.meta["progress_at"] = fraction, time.time()
        job.save_meta()

    context_ = JobContext.from_dict(context)
    request_id_var.set(context_.request_id)  # this horse runs this job alone: RQ's own lines about it carry it too
    try:
        with observed_run(job.id, spec, context_, RedisDurations(job.connection).observe) as run:
            try:
                x, x2 = run.load(spec, storage.get_dataset)
                value = run.compute(spec, x, x2, JobProgress(report), settings)
                key = cache_key(spec)
                with run.step("store"):
                    _store_riding_out_outages(lambda: storage.put_result(key, value, required=True, spec=spec),
                                              job.id)
            except BaseException as exc:
                job.meta["error"] = describe_error(exc)
                job.save_meta()
                raise
    finally:
        flush()  # the horse ends with os._exit: export its spans now
    _store_riding_out_outages(lambda: report(1.0), job.id)
    return {"cache_key": key}


def _keep_start(job) -> None:
    """Record the job's start as RQ stored it, in the meta: RQ sets ``started_at`` again in memory
    just before running the job and stores that second value when it ends, so that a job's start
    would move as it finished (the API reads the meta)."""
    try:
        stored = Job.fetch(job.id, connection=job.connection, serializer=job.serializer).started_at
        if stored is not None:
            job.meta["started_at"] = _utc_seconds(stored)
            job.save_meta()
    except RedisError as exc:  # the API falls back on RQ's own started_at
        log.warning("job %s: could not record its start (%s)", job.id, exc)


def _store_riding_out_outages(write, job_id: str) -> None:
    """``write()``, tried again while Redis is away (up to :data:`STORE_RETRY_SECONDS`): a result
    computed during an outage is stored once Redis is back rather than lost."""
    deadline, wait = time.monotonic() + STORE_RETRY_SECONDS, 0.5
    while True:
        try:
            write()
            return
        except Exception as exc:  # RedisError, or StoreUnavailable wrapping one
            if not _is_outage(exc) or time.monotonic() > deadline:
                raise
            log.warning("job %s: Redis away while storing (%s); trying again in %.1f s", job_id, exc, wait)
            time.sleep(wait)
            wait = min(2 * wait, 5.0)


def _is_outage(exc: BaseException) -> bool:
    """True for a lost connection (or a timeout) to Redis, directly or as the cause of ``exc``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (RedisConnectionError, RedisTimeoutError)):
            return True
        seen = seen.__cause__
    return False
