"""Job back ends: an in-process pool (embedded mode, and synchronous requests in every mode)
and an RQ queue served by ``eoc-ntk worker`` processes (Redis mode).

Both derive the job id from the cache key (:func:`service.specs.job_id_for`): submitting a
spec whose job is queued or running returns that job (single flight). Both report the same
:class:`JobView`, with the states of :class:`service.schemas.JobStatus`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from workers.tasks import DatasetMissing, JobCanceled, Progress, compute, describe_error

from . import keys
from .codec import StoredValue
from .config import Settings
from .schemas import JobStatus
from .specs import job_id_for
from .store import Storage

__all__ = ["JobView", "LocalJobs", "RQJobs", "IN_FLIGHT"]

log = logging.getLogger("eoc_ntk.service")

IN_FLIGHT = (JobStatus.queued, JobStatus.running)


@dataclass
class JobView:
    """What the API tells about a job."""

    job_id: str
    spec: dict
    cache_key: str
    status: JobStatus
    progress: float = 0.0
    error: dict | None = None


@dataclass
class _LocalJob:
    job_id: str
    spec: dict
    cache_key: str
    status: JobStatus = JobStatus.queued
    progress: float = 0.0
    error: dict | None = None
    future: Future | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    ended: float | None = None

    def view(self) -> JobView:
        return JobView(self.job_id, self.spec, self.cache_key, self.status, self.progress, self.error)


class LocalJobs:
    """A bounded thread pool with single flight, job records and cooperative cancel.

    Threads suit the core: NumPy and LAPACK release the GIL for the heavy parts. A job is
    stopped (cancel, timeout) at its next progress report. Background jobs and computations
    a request waits for have a pool each (``workers`` threads), so that long jobs never hold
    up small synchronous requests.
    """

    def __init__(self, settings: Settings, storage: Storage):
        self.settings = settings
        self.storage = storage
        self.pools = {
            background: ThreadPoolExecutor(settings.workers, thread_name_prefix=f"eoc-ntk-{name}")
            for background, name in ((True, "job"), (False, "sync"))
        }
        self._jobs: OrderedDict[str, _LocalJob] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, spec: dict, key: str, pinned: dict[str, np.ndarray], *,
               background: bool = True) -> tuple[str, Future]:
        """Start ``spec`` (or join the same one in flight); returns the job id and its future."""
        job_id = job_id_for(key)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.status in IN_FLIGHT and job.future is not None:
                return job_id, job.future
            job = _LocalJob(job_id, spec, key)
            self._jobs[job_id] = job
            self._jobs.move_to_end(job_id)
            self._prune()
            job.future = self.pools[background].submit(self._run, job, dict(pinned))
            return job_id, job.future

    def _run(self, job: _LocalJob, pinned: dict[str, np.ndarray]) -> StoredValue:
        with self._lock:
            if job.cancel.is_set():
                job.future, job.ended = None, time.monotonic()
                raise JobCanceled("the job was canceled")
            job.status = JobStatus.running

        def report(fraction: float) -> None:
            job.progress = fraction

        progress = Progress(report, interval=0.0, canceled=job.cancel.is_set,
                            deadline=time.monotonic() + self.settings.job_timeout)
        try:
            x = self._data(job.spec["dataset_id"], pinned)
            x2 = self._data(job.spec["x2_id"], pinned) if job.spec.get("x2_id") else None
            value = compute(job.spec, x, x2, progress)
            self.storage.put_result(job.cache_key, value)
        except BaseException as exc:
            with self._lock:
                if not job.cancel.is_set():
                    job.status, job.error = JobStatus.failed, describe_error(exc)
                job.future, job.ended = None, time.monotonic()
            raise
        with self._lock:
            if not job.cancel.is_set():
                job.status, job.progress = JobStatus.finished, 1.0
            job.future, job.ended = None, time.monotonic()
        return value

    def _data(self, dataset_id: str, pinned: dict[str, np.ndarray]) -> np.ndarray:
        x = pinned.get(dataset_id)
        if x is None:
            x = self.storage.get_dataset(dataset_id)
        if x is None:
            raise DatasetMissing("the job's dataset expired from the store before the job ran; upload it again")
        return x

    def _prune(self) -> None:
        """Forget ended jobs past the result TTL, and the oldest ended ones beyond ``max_jobs``."""
        horizon = time.monotonic() - self.settings.result_ttl
        for job_id in [j.job_id for j in self._jobs.values() if j.ended is not None and j.ended < horizon]:
            del self._jobs[job_id]
        ended = (j.job_id for j in list(self._jobs.values()) if j.ended is not None)
        while len(self._jobs) > self.settings.max_jobs:
            victim = next(ended, None)
            if victim is None:
                break
            del self._jobs[victim]

    def get(self, job_id: str) -> JobView | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.view()

    def cancel(self, job_id: str) -> JobView | None:
        """Cancel a queued or running job; an ended job is left as it is."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status in IN_FLIGHT:
                job.cancel.set()
                job.status, job.error = JobStatus.canceled, {"code": "canceled", "message": "canceled by a client"}
                if job.future is not None and job.future.cancel():
                    job.future, job.ended = None, time.monotonic()
            return job.view()

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
        for pool in self.pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


# RQ's states, in ours.
_RQ_STATUS = {
    "created": JobStatus.queued, "queued": JobStatus.queued, "deferred": JobStatus.queued,
    "scheduled": JobStatus.queued, "ready_to_enqueue": JobStatus.queued, "rate_limited": JobStatus.queued,
    "started": JobStatus.running, "finished": JobStatus.finished, "failed": JobStatus.failed,
    "stopped": JobStatus.canceled, "canceled": JobStatus.canceled,
}
JOB_FUNCTION = "workers.tasks.run_job"


class RQJobs:
    """Jobs on an RQ queue (JSON serializer: arguments, meta and results are JSON)."""

    def __init__(self, connection, settings: Settings):
        from rq import Queue
        from rq.serializers import JSONSerializer

        self.conn = connection
        self.settings = settings
        self.serializer = JSONSerializer
        self.queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)

    def _fetch(self, job_id: str):
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            return Job.fetch(job_id, connection=self.conn, serializer=self.serializer)
        except NoSuchJobError:
            return None

    def submit(self, spec: dict, key: str) -> str:
        """Enqueue ``spec`` unless its job is already queued or running; returns the job id."""
        job_id = job_id_for(key)
        with self._submit_lock(job_id):
            job = self._checked(self._fetch(job_id), locked=True)
            if job is not None:
                if _RQ_STATUS.get(str(getattr(job.get_status(), "value", job.get_status())),
                                  JobStatus.failed) in IN_FLIGHT:
                    return job_id
                job.delete()  # ended (failed, canceled, or finished with an expired result): run again
                self._forget_executions(job_id)
            self.queue.enqueue(
                JOB_FUNCTION, spec, job_id=job_id, job_timeout=self.settings.job_timeout,
                result_ttl=self.settings.result_ttl, failure_ttl=self.settings.result_ttl,
                ttl=self.settings.result_ttl, meta={"progress": 0.0, "cache_key": key},
                description=f"{spec['op']} of dataset {spec['dataset_id']}",
            )
        return job_id

    def _abandoned(self, job) -> bool:
        """A started job whose process stopped beating (its worker was killed): see :func:`workers.tasks.run_job`."""
        raw = job.get_status(refresh=False)
        if str(getattr(raw, "value", raw)) != "started" or job.started_at is None:
            return False
        started = job.started_at.timestamp()
        if time.time() - started < self.settings.job_heartbeat_ttl:
            return False  # grace: the job's process may not have beaten yet
        return not self.conn.exists(keys.alive_key(job.id))

    def _fail_abandoned(self, job) -> None:
        """Mark an abandoned job failed, the way RQ's own registry cleanup does, saying why."""
        from rq.job_lifecycle import record_job_failure

        message = (f"the worker running this job stopped (killed or lost) without a heartbeat for "
                   f"{self.settings.job_heartbeat_ttl} s; submit the request again to recompute it")
        log.warning("job %s abandoned (worker %s, started %.1f s ago): %s", job.id, job.worker_name,
                    time.time() - job.started_at.timestamp(), message)
        job.meta["error"] = {"code": "worker_lost", "message": message}
        job.save_meta()
        with self.conn.pipeline() as pipe:
            record_job_failure(job, message, pipe)
            pipe.execute()
        self._forget_executions(job.id)

    def _forget_executions(self, job_id: str) -> None:
        """Drop a job's entries from RQ's started registry. Job ids are reused (single flight), and a
        stale entry of a killed run would otherwise make RQ's cleanup fail a later run of the same id."""
        from rq.registry import StartedJobRegistry

        registry = StartedJobRegistry(queue=self.queue, serializer=self.serializer)
        prefix = f"{job_id}:".encode()
        stale = [e for e in self.conn.zrange(registry.key, 0, -1) if e.startswith(prefix) or e == job_id.encode()]
        if stale:
            self.conn.zrem(registry.key, *stale)

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
        from rq.registry import StartedJobRegistry

        registry = StartedJobRegistry(queue=self.queue, serializer=self.serializer)
        count = 0
        for job_id in registry.get_job_ids():
            job = self._fetch(job_id)
            if job is not None and self._abandoned(job):
                with self._submit_lock(job_id):
                    count += self._fail_if_still_abandoned(job_id)
        return count

    def _view(self, job) -> JobView:
        raw = job.get_status(refresh=False)
        status = _RQ_STATUS.get(str(getattr(raw, "value", raw)), JobStatus.failed)
        meta = job.meta or {}
        error = meta.get("error")
        if status == JobStatus.failed and error is None:
            result = job.latest_result()
            last = (getattr(result, "exc_string", None) or "").strip().splitlines()
            error = {"code": "worker_failure", "message": last[-1] if last else "the job failed in its worker"}
        if status == JobStatus.canceled:
            error = {"code": "canceled", "message": "canceled by a client"}
        progress = 1.0 if status == JobStatus.finished else float(meta.get("progress", 0.0))
        return JobView(job.id, job.args[0], meta.get("cache_key", ""), status, progress, error)

    def get(self, job_id: str) -> JobView | None:
        job = self._checked(self._fetch(job_id))
        return None if job is None else self._view(job)

    def cancel(self, job_id: str, wait: float = 3.0) -> JobView | None:
        """Cancel a queued job, or stop a running one (its work horse is killed)."""
        from rq.command import send_stop_job_command
        from rq.exceptions import InvalidJobOperation

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
                    send_stop_job_command(self.conn, job_id, serializer=self.serializer)
                    stop_sent = True
            except InvalidJobOperation:
                pass  # between states (e.g. just taken by a worker): look again
            time.sleep(0.05)
            job = self._fetch(job_id)
            if job is None:
                return None
