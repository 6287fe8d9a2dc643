"""The RQ backend (Redis mode): jobs on an RQ queue served by ``eoc-ntk worker`` processes.

Arguments, meta and results are JSON (RQ's ``JSONSerializer``): a job's only argument is its
spec; the worker reads the data from the store and writes the result to the cache under the
spec's cache key (:func:`run_job`). The job id is derived from the cache key
(:func:`jobs.specs.job_id_for`): submitting a spec whose job is queued or running returns
that job (single flight). Computations a request waits for run in this process
(:class:`jobs.local.LocalBackend`).

A started job whose process died is found by its missing heartbeat (:func:`heartbeat`) and
failed as ``worker_lost`` by the maintenance thread or by the next look at it.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from datetime import timezone
from typing import Iterator

import numpy as np
from redis import ConnectionPool, Redis
from rq import Queue, get_current_job
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import Execution
from rq.job import Job
from rq.job_lifecycle import record_job_failure
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from . import keys
from .backend import EndedHook
from .codec import StoredValue
from .compute import compute, load_data
from .errors import describe_error
from .local import LocalBackend
from .progress import JobProgress
from .settings import Settings, get_settings
from .specs import cache_key, job_id_for
from .states import IN_FLIGHT, TERMINAL, JobStatus, JobView, state_of
from .store import RedisStore, Storage

__all__ = ["RQBackend", "run_job", "heartbeat", "JOB_FUNCTION"]

log = logging.getLogger("eoc_ntk.jobs")

#: What a worker runs: the dotted name of :func:`run_job`.
JOB_FUNCTION = "jobs.rq_queue.run_job"
_SEEN_ENDED = 10_000


class RQBackend:
    """Jobs on an RQ queue (JSON serializer); waited-for computations in a :class:`LocalBackend`."""

    needs_stored_data = True

    def __init__(self, connection, settings: Settings, storage: Storage, on_ended: EndedHook | None = None):
        self.conn = connection
        self.settings = settings
        self.serializer = JSONSerializer
        self.queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
        self.registry = StartedJobRegistry(queue=self.queue, serializer=self.serializer)
        self.local = LocalBackend(settings, storage, on_ended)
        self.on_ended = on_ended
        self._ended_seen: dict[str, None] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._maintain, name="eoc-ntk-maintenance", daemon=True).start()

    # The protocol
    def run(self, spec: dict, key: str, pinned: dict[str, np.ndarray]) -> StoredValue:
        return self.local.run(spec, key, pinned)

    def submit(self, spec: dict, key: str, pinned: dict[str, np.ndarray]) -> str:
        """Enqueue ``spec`` unless its job is already queued or running; returns the job id."""
        job_id = job_id_for(key)
        with self._submit_lock(job_id):
            job = self._checked(self._fetch(job_id), locked=True)
            if job is not None:
                if state_of(job.get_status()) in IN_FLIGHT:
                    return job_id
                self._forget(job)  # ended (failed, canceled, or finished with an expired result): run again
            self.queue.enqueue(
                JOB_FUNCTION, spec, job_id=job_id, job_timeout=self.settings.job_timeout,
                result_ttl=self.settings.result_ttl, failure_ttl=self.settings.result_ttl,
                ttl=self.settings.result_ttl, meta={"progress": 0.0, "cache_key": key},
                description=f"{spec['op']} of dataset {spec['dataset_id']}",
            )
        self._ended_seen.pop(job_id, None)
        return job_id

    def get(self, job_id: str) -> JobView | None:
        job = self._checked(self._fetch(job_id))
        return None if job is None else self._view(job)

    def cancel(self, job_id: str, wait: float = 3.0) -> JobView | None:
        """Cancel a queued job, or stop a running one (its work horse is killed)."""
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
        try:
            return Job.fetch(job_id, connection=self.conn, serializer=self.serializer)
        except NoSuchJobError:
            return None

    def _view(self, job) -> JobView:
        status = state_of(job.get_status(refresh=False))
        meta = job.meta or {}
        error = meta.get("error")
        if status == JobStatus.failed and error is None:
            result = job.latest_result()
            last = (getattr(result, "exc_string", None) or "").strip().splitlines()
            error = {"code": "worker_failure", "message": last[-1] if last else "the job failed in its worker"}
        if status == JobStatus.canceled:
            error = {"code": "canceled", "message": "canceled by a client"}
        progress = 1.0 if status == JobStatus.finished else float(meta.get("progress", 0.0))
        seconds = None
        if job.started_at and job.ended_at:
            seconds = max((job.ended_at - job.started_at).total_seconds(), 0.0)
        started_at = None
        if job.started_at is not None:  # RQ keeps naive UTC datetimes
            started = job.started_at
            started_at = (started if started.tzinfo else started.replace(tzinfo=timezone.utc)).timestamp()
        view = JobView(job.id, job.args[0], meta.get("cache_key", ""), status, progress, error, seconds, started_at)
        if status in TERMINAL:
            self._report_ended(view)
        return view

    def _report_ended(self, view: JobView) -> None:
        """Tell ``on_ended`` about a run the first time it is seen ended (RQ runs end in other processes)."""
        if self.on_ended is None or view.job_id in self._ended_seen:
            return
        self._ended_seen[view.job_id] = None
        while len(self._ended_seen) > _SEEN_ENDED:
            self._ended_seen.pop(next(iter(self._ended_seen)))
        try:
            self.on_ended(view)
        except Exception:  # an observer never fails a request
            log.debug("on_ended hook failed for job %s", view.job_id, exc_info=True)

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
            job = self._fetch(job_id)
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


@contextmanager
def heartbeat(connection, job_id: str, ttl: int) -> Iterator[None]:
    """Keep the job's alive key (:func:`jobs.keys.alive_key`) fresh from a thread while it runs.

    If the process is killed the key expires within ``ttl`` seconds, and the API fails the job
    as abandoned (:meth:`RQBackend.reap_abandoned`) instead of showing it running forever.
    The key is set once before the work starts, and the thread beats on a connection pool of
    its own (the job's pool was inherited through the work horse's fork and is shared with the
    computation's progress reports): a beat that stalls or raises must not let a live job look
    abandoned. Any error of a beat is logged and the next beat tried. The key outlives the
    work by up to ``ttl`` seconds, while RQ records how the job ended."""
    key, stop = keys.alive_key(job_id), threading.Event()
    own = Redis(connection_pool=ConnectionPool(**connection.connection_pool.connection_kwargs))

    def beat_once() -> None:
        try:
            own.set(key, "1", ex=ttl)
        except Exception as exc:  # Redis away for a moment, or anything else: try again next time
            log.warning("job %s heartbeat failed: %s", job_id, exc)

    def beat() -> None:
        while not stop.wait(max(0.5, ttl / 3)):
            beat_once()

    beat_once()
    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        # A last beat, not a delete: RQ records the job's end only after this returns, and a
        # started job without its key would meanwhile look abandoned to the API (it did: a
        # finished run was reported failed). The key expires by itself within ttl.
        beat_once()
        own.close()


def run_job(spec: dict) -> dict:
    """RQ entry point: load the data, compute with progress in the job's meta, cache the result."""
    job = get_current_job()
    settings = get_settings()
    storage = Storage(RedisStore(job.connection), settings)

    def report(fraction: float) -> None:
        job.meta["progress"] = fraction
        job.save_meta()

    try:
        with heartbeat(job.connection, job.id, settings.job_heartbeat_ttl):
            x, x2 = load_data(spec, storage.get_dataset)
            value = compute(spec, x, x2, JobProgress(report))
            key = cache_key(spec)
            storage.put_result(key, value, required=True)
    except BaseException as exc:
        job.meta["error"] = describe_error(exc)
        job.save_meta()
        raise
    report(1.0)
    return {"cache_key": key}
