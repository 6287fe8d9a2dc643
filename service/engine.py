"""The request flow: validated spec -> cache key -> cached result or job -> stored result.

One :class:`Engine` per API process holds the store (memory or Redis), the in-process pool
and, in Redis mode, the RQ queue. Route handlers only parse requests and shape answers.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from workers.tasks import DatasetMissing, JobCanceled, JobTimedOut

from . import datasets, keys
from .codec import StoredValue
from .config import Settings
from .errors import Conflict, Gone, InvalidInput, NotFound, Timeout, TooManyJobs
from .jobs import IN_FLIGHT, JobView, LocalJobs, RQJobs
from .specs import cache_key, job_id_for, op_of_job
from .store import MemoryStore, RedisStore, Storage

__all__ = ["Engine", "Answer", "Data"]

log = logging.getLogger("eoc_ntk.service")


@dataclass
class Data:
    """A dataset resolved from a request: its id and checked array."""

    dataset_id: str
    x: np.ndarray
    stored: bool = True  #: known to be in the store (workers read it from there)


@dataclass
class Answer:
    """Either a result (``value``, with ``cache`` "hit" or "miss") or an accepted ``job_id``."""

    value: StoredValue | None = None
    cache: str = "miss"
    job_id: str | None = None


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.redis = None
        self.remote: RQJobs | None = None
        if settings.embedded:
            store = MemoryStore(settings.cache_bytes)
        else:
            import redis

            self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2,
                                              health_check_interval=10)
            store = RedisStore(self.redis)
            self.remote = RQJobs(self.redis, settings)
        self.storage = Storage(store, settings)
        self.local = LocalJobs(settings, self.storage)
        self._admission_lock = threading.Lock()
        self._stop = threading.Event()
        if self.remote is not None:
            threading.Thread(target=self._maintain, name="eoc-ntk-maintenance", daemon=True).start()

    @property
    def mode(self) -> str:
        return "embedded" if self.settings.embedded else "redis"

    def ready(self) -> tuple[bool, str | None]:
        if self.storage.ping():
            return True, None
        return False, "Redis does not answer at the configured REDIS_URL"

    # Datasets
    def store_dataset(self, x: np.ndarray, *, required: bool = True, principal: str | None = None) -> Data:
        data = Data(datasets.dataset_id_of(x), x)
        data.stored = self.storage.put_dataset(data.dataset_id, x, required=required, owner=principal)
        return data

    def dataset(self, dataset_id: str, principal: str | None, field: str = "dataset_id") -> np.ndarray:
        """A stored dataset the caller may see (:class:`NotFound` otherwise, as if it did not exist)."""
        if not self.storage.owns("dataset", dataset_id, principal):
            raise datasets.unknown_dataset(dataset_id, field)
        return datasets.load(self.storage, dataset_id, field)

    def resolve(self, x, dataset_id: str | None, field: str = "x", principal: str | None = None) -> Data:
        """Inline points (checked; stored once the request succeeds, see :meth:`answer`) or a stored dataset.

        The data of a computation (``field == "x"``) need at least ``min_n`` points."""
        if dataset_id is not None:
            id_field = "dataset_id" if field == "x" else f"{field}_dataset_id"
            data = Data(dataset_id, self.dataset(dataset_id, principal, id_field))
        else:
            arr = datasets.check_points(x, self.settings, field)
            data = Data(datasets.dataset_id_of(arr), arr, stored=False)
        if field == "x" and data.x.shape[0] < self.settings.min_n:
            where = "x" if dataset_id is None else "dataset_id"
            raise InvalidInput(f"{where} has n = {data.x.shape[0]} point(s); a computation needs at least "
                               f"{self.settings.min_n} (EOC_NTK_MIN_N)", field=where)
        return data

    def _keep(self, pinned: list[Data], principal: str | None, *, required: bool) -> None:
        """Store the inline datasets of an accepted request, so that their ids can be reused."""
        for d in pinned:
            if not d.stored:
                d.stored = self.storage.put_dataset(d.dataset_id, d.x, required=required, owner=principal)

    # Results
    def cached(self, spec: dict) -> StoredValue | None:
        return self.storage.get_result(cache_key(spec))

    def answer(self, spec: dict, pinned: list[Data], work: int, prefer_async: bool,
               principal: str | None = None) -> Answer:
        """The cached result, a new (or joined) job, or a result computed now.

        Nothing is stored for a request that is refused: inline data are kept only once the
        answer is a result or an accepted job."""
        key = cache_key(spec)
        value = self.storage.get_result(key)
        if value is not None:
            self._keep(pinned, principal, required=False)
            return Answer(value, "hit")
        arrays = {d.dataset_id: d.x for d in pinned}
        if prefer_async or work > self.settings.async_threshold:
            with self._admission(principal):
                job_id = job_id_for(key)
                self._admit(principal, job_id)
                # In Redis mode the worker reads the data from Redis: they must be stored.
                self._keep(pinned, principal, required=self.remote is not None)
                if self.remote is not None:
                    self.remote.submit(spec, key)
                else:
                    self.local.submit(spec, key, arrays)
                self.storage.grant("job", job_id, principal)
                if principal is not None:
                    self.storage.track_job(principal, job_id)
            return Answer(job_id=job_id)
        _, future = self.local.submit(spec, key, arrays, background=False)
        value = self._wait(future, "activations" if spec["op"] == "sweeps" else "model")
        self._keep(pinned, principal, required=False)
        return Answer(value, "miss")

    @contextmanager
    def _admission(self, principal: str | None) -> Iterator[None]:
        """Serialise "count the caller's jobs, then submit" per API key (across API processes in Redis mode)."""
        if principal is None:
            yield
        elif self.redis is not None:
            with self.redis.lock(keys.admission_lock_key(principal), timeout=keys.SUBMIT_LOCK_SECONDS,
                                 blocking_timeout=keys.SUBMIT_LOCK_SECONDS):
                yield
        else:
            with self._admission_lock:
                yield

    def _admit(self, principal: str | None, job_id: str) -> None:
        """:class:`TooManyJobs` when ``principal`` already has ``max_jobs_per_key`` jobs queued or running."""
        if principal is None:
            return
        active = self.storage.tracked_jobs(principal)
        if job_id in active:
            return  # the same job again (single flight): not one more
        in_flight = set()
        for other in active:
            view = self.remote.get(other) if self.remote is not None else self.local.get(other)
            if view is not None and view.status in IN_FLIGHT:
                in_flight.add(other)
            else:
                self.storage.untrack_job(principal, other)
        if len(in_flight) >= self.settings.max_jobs_per_key:
            raise TooManyJobs(f"this API key already has {len(in_flight)} jobs queued or running, the limit "
                              f"(EOC_NTK_MAX_JOBS_PER_KEY); wait for one to end or cancel one")

    @staticmethod
    def _wait(future, field: str = "model") -> StoredValue:
        """The result of a synchronous computation; a refusal by the core during it names the model
        (``field``), whose values together with the data's norms made it fail (e.g. an overflow)."""
        try:
            return future.result()
        except (JobCanceled, CancelledError) as exc:
            raise Conflict("the computation was canceled by another client's DELETE /v1/jobs; retry") from exc
        except JobTimedOut as exc:
            raise Timeout(str(exc)) from exc
        except DatasetMissing as exc:
            raise NotFound(str(exc), field="dataset_id") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidInput(str(exc), field=field) from exc

    # Jobs
    def _visible(self, job_id: str, principal: str | None) -> None:
        op_of_job(job_id)
        if not self.storage.owns("job", job_id, principal):
            raise _unknown_job(job_id)

    def job(self, job_id: str, principal: str | None = None) -> JobView:
        self._visible(job_id, principal)
        view = self.remote.get(job_id) if self.remote is not None else self.local.get(job_id)
        if view is None:
            raise _unknown_job(job_id)
        return view

    def cancel(self, job_id: str, principal: str | None = None) -> JobView:
        self._visible(job_id, principal)
        view = self.remote.cancel(job_id) if self.remote is not None else self.local.cancel(job_id)
        if view is None:
            raise _unknown_job(job_id)
        return view

    def job_result(self, view: JobView) -> StoredValue:
        value = self.storage.get_result(view.cache_key) if view.cache_key else None
        if value is None:
            raise Gone(f"job {view.job_id} finished, but its result is no longer stored (expired or evicted); "
                       "submit the request again to recompute it")
        return value

    def _maintain(self) -> None:
        """Redis mode: fail abandoned jobs (their worker died) every ``maintenance_interval`` seconds."""
        while not self._stop.wait(self.settings.maintenance_interval):
            try:
                self.remote.reap_abandoned()
            except Exception as exc:  # Redis down, or anything else: try again next time
                log.warning("abandoned-job sweep failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        self.local.shutdown()
        if self.redis is not None:
            self.redis.close()


def _unknown_job(job_id: str) -> NotFound:
    return NotFound(f"unknown job {job_id!r} (never submitted, its record expired, or not yours)", field="job_id")
