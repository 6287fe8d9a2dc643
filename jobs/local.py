"""The in-process backend: a bounded pool with single flight, job records and cooperative cancel.

Embedded mode runs every job here, and every mode runs the computations a request waits for
here (:meth:`LocalBackend.run`). This module is the only one that knows the pool is made of
threads: everything else sees the :class:`jobs.backend.JobBackend` protocol.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from .backend import EndedHook
from .codec import StoredValue
from .compute import compute, load_data
from .errors import JobCanceled, describe_error
from .progress import JobProgress
from .settings import Settings
from .specs import job_id_for
from .states import IN_FLIGHT, JobStatus, JobView
from .store import Storage

__all__ = ["LocalBackend"]


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
    started: float | None = None
    ended: float | None = None
    started_at: float | None = None  # wall clock (time.time()) of ``started``, for the API's started_at

    def view(self) -> JobView:
        seconds = None if self.started is None or self.ended is None else self.ended - self.started
        return JobView(self.job_id, self.spec, self.cache_key, self.status, self.progress, self.error, seconds,
                       self.started_at)


class LocalBackend:
    """Jobs in this process: a pool for background jobs and one for computations a request waits for
    (``settings.workers`` threads each), so that long jobs never hold up small synchronous requests.

    Threads suit the core for now: NumPy and LAPACK release the GIL for the heavy parts. A job is
    stopped (cancel, timeout) at its next progress report.
    """

    needs_stored_data = False

    def __init__(self, settings: Settings, storage: Storage, on_ended: EndedHook | None = None):
        self.settings = settings
        self.storage = storage
        self.on_ended = on_ended
        self.pools = {
            background: ThreadPoolExecutor(settings.workers, thread_name_prefix=f"eoc-ntk-{name}")
            for background, name in ((True, "job"), (False, "sync"))
        }
        self._jobs: OrderedDict[str, _LocalJob] = OrderedDict()
        self._lock = threading.Lock()
        self._admission_lock = threading.Lock()

    def submit(self, spec: dict, key: str, pinned: dict[str, np.ndarray]) -> str:
        return self._start(spec, key, pinned, background=True)[0]

    def run(self, spec: dict, key: str, pinned: dict[str, np.ndarray]) -> StoredValue:
        _, future = self._start(spec, key, pinned, background=False)
        try:
            return future.result()
        except CancelledError as exc:
            raise JobCanceled("the job was canceled") from exc

    def _start(self, spec: dict, key: str, pinned: dict[str, np.ndarray], *,
               background: bool) -> tuple[str, Future]:
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
            job.status, job.started, job.started_at = JobStatus.running, time.monotonic(), time.time()

        def report(fraction: float) -> None:
            job.progress = fraction

        progress = JobProgress(report, interval=0.0, canceled=job.cancel.is_set,
                               deadline=time.monotonic() + self.settings.job_timeout)
        try:
            x, x2 = load_data(job.spec, lambda dataset_id: pinned.get(dataset_id)
                              if dataset_id in pinned else self.storage.get_dataset(dataset_id))
            value = compute(job.spec, x, x2, progress)
            self.storage.put_result(job.cache_key, value)
        except BaseException as exc:
            self._end(job, JobStatus.failed, describe_error(exc))
            raise
        self._end(job, JobStatus.finished, None)
        return value

    def _end(self, job: _LocalJob, status: JobStatus, error: dict | None) -> None:
        with self._lock:
            if not job.cancel.is_set():
                job.status, job.error = status, error
                if status == JobStatus.finished:
                    job.progress = 1.0
            job.future, job.ended = None, time.monotonic()
            view = job.view()
        if self.on_ended is not None:
            self.on_ended(view)

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

    def __len__(self) -> int:
        """How many job records this pool holds (queued, running and remembered ended ones)."""
        with self._lock:
            return len(self._jobs)

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

    def admission(self, principal: str) -> AbstractContextManager:
        return self._admission_lock

    def counts(self) -> tuple[int, int]:
        with self._lock:
            states = [j.status for j in self._jobs.values()]
        return states.count(JobStatus.queued), states.count(JobStatus.running)

    def ready(self) -> bool:
        return True

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
        for pool in self.pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
