"""The request flow: validated spec -> cache key -> cached result or job -> stored result.

One :class:`Engine` per API process holds the store (memory or Redis), the in-process pool
and, in Redis mode, the RQ queue. Route handlers only parse requests and shape answers.
"""
from __future__ import annotations

import logging
from concurrent.futures import CancelledError
from dataclasses import dataclass

import numpy as np

from workers.tasks import DatasetMissing, JobCanceled, JobTimedOut

from . import datasets
from .codec import StoredValue
from .config import Settings
from .errors import Conflict, Gone, InvalidInput, NotFound, Timeout
from .jobs import JobView, LocalJobs, RQJobs
from .specs import cache_key, op_of_job
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

    @property
    def mode(self) -> str:
        return "embedded" if self.settings.embedded else "redis"

    def ready(self) -> tuple[bool, str | None]:
        if self.storage.ping():
            return True, None
        return False, "Redis does not answer at the configured REDIS_URL"

    # Datasets
    def store_dataset(self, x: np.ndarray, *, required: bool = True) -> Data:
        data = Data(datasets.dataset_id_of(x), x)
        data.stored = self.storage.put_dataset(data.dataset_id, x, required=required)
        return data

    def resolve(self, x, dataset_id: str | None, field: str = "x") -> Data:
        """Inline points (checked and stored, so that the id can be reused) or a stored dataset."""
        if dataset_id is not None:
            id_field = "dataset_id" if field == "x" else f"{field}_dataset_id"
            return Data(dataset_id, datasets.load(self.storage, dataset_id, id_field))
        return self.store_dataset(datasets.check_points(x, self.settings, field), required=False)

    # Results
    def cached(self, spec: dict) -> StoredValue | None:
        return self.storage.get_result(cache_key(spec))

    def answer(self, spec: dict, pinned: list[Data], work: int, prefer_async: bool) -> Answer:
        """The cached result, a new (or joined) job, or a result computed now."""
        key = cache_key(spec)
        value = self.storage.get_result(key)
        if value is not None:
            return Answer(value, "hit")
        arrays = {d.dataset_id: d.x for d in pinned}
        if prefer_async or work > self.settings.async_threshold:
            if self.remote is not None:
                for d in pinned:  # the worker reads the data from Redis
                    if not d.stored:
                        d.stored = self.storage.put_dataset(d.dataset_id, d.x, required=True)
                return Answer(job_id=self.remote.submit(spec, key))
            job_id, _ = self.local.submit(spec, key, arrays)
            return Answer(job_id=job_id)
        _, future = self.local.submit(spec, key, arrays, background=False)
        return Answer(self._wait(future), "miss")

    @staticmethod
    def _wait(future) -> StoredValue:
        try:
            return future.result()
        except (JobCanceled, CancelledError) as exc:
            raise Conflict("the computation was canceled by another client's DELETE /v1/jobs; retry") from exc
        except JobTimedOut as exc:
            raise Timeout(str(exc)) from exc
        except DatasetMissing as exc:
            raise NotFound(str(exc), field="dataset_id") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidInput(str(exc)) from exc

    # Jobs
    def job(self, job_id: str) -> JobView:
        op_of_job(job_id)
        view = self.remote.get(job_id) if self.remote is not None else self.local.get(job_id)
        if view is None:
            raise NotFound(f"unknown job {job_id!r} (never submitted, or its record expired)", field="job_id")
        return view

    def cancel(self, job_id: str) -> JobView:
        op_of_job(job_id)
        view = self.remote.cancel(job_id) if self.remote is not None else self.local.cancel(job_id)
        if view is None:
            raise NotFound(f"unknown job {job_id!r} (never submitted, or its record expired)", field="job_id")
        return view

    def job_result(self, view: JobView) -> StoredValue:
        value = self.storage.get_result(view.cache_key) if view.cache_key else None
        if value is None:
            raise Gone(f"job {view.job_id} finished, but its result is no longer stored (expired or evicted); "
                       "submit the request again to recompute it")
        return value

    def close(self) -> None:
        self.local.shutdown()
        if self.redis is not None:
            self.redis.close()
