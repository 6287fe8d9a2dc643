"""The request flow: validated spec -> cache key -> cached result or job -> stored result.

One :class:`Engine` per API process holds the store (memory or Redis) and ONE job backend
(:class:`jobs.local.LocalBackend` in embedded mode, :class:`jobs.rq_queue.RQBackend` in Redis
mode) behind the :class:`jobs.backend.JobBackend` protocol. Route handlers only parse
requests and shape answers. What happens is told to the engine's observers
(:class:`EngineObserver`, e.g. the metrics), which never reach into the engine.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Iterator, Protocol

import numpy as np
import redis
import redis.asyncio
from redis.exceptions import RedisError

from jobs import tracing
from jobs.answers import RENDERED_OPS, content_hash, render
from jobs.backend import JobBackend
from jobs.codec import StoredValue
from jobs.dask_engine import on_cluster
from jobs.errors import DatasetMissing, JobCanceled, JobTimedOut, StillRunning
from jobs.local import LocalBackend
from jobs.rq_queue import RQBackend
from jobs.specs import cache_key, job_id_for, predicted_seconds
from jobs.states import IN_FLIGHT, JobStatus, JobView
from jobs.store import AsyncRedisStore, CachedAnswer, MemoryStore, RedisStore, Storage

from . import datasets
from .callbacks import Callbacks
from .config import Settings
from .errors import Conflict, Gone, InvalidInput, NotFound, SyncTooLong, Timeout, TooManyJobs, core_errors
from .specs import op_of_job

__all__ = ["Engine", "EngineObserver", "Answer", "Data"]

log = logging.getLogger("eoc_ntk.service")


@dataclass
class Data:
    """A dataset resolved from a request: its id and checked array."""

    dataset_id: str
    x: np.ndarray
    stored: bool = True  #: known to be in the store (workers read it from there)


@dataclass
class Answer:
    """A result (``value``, with ``cache`` "hit" or "miss"), an accepted ``job_id``, or both (a
    cached result asked for as a job, which is then finished)."""

    value: StoredValue | None = None
    cache: str = "miss"
    job_id: str | None = None


class EngineObserver(Protocol):
    """What the engine tells the outside (the metrics): every method is optional to act on."""

    def cache_lookup(self, hit: bool) -> None:
        """A compute request looked for its result in the cache."""

    def job_ended(self, view: JobView) -> None:
        """A run of this process ended (finished, failed or canceled), once per run; ``view.seconds`` how
        long it ran. An RQ worker's runs are not told here: the workers record them (:mod:`jobs.durations`)."""


class Engine:
    def __init__(self, settings: Settings, observers: list[EngineObserver] | tuple = ()):
        self.settings = settings
        self.observers = list(observers)
        self.redis = None
        # The hot path's redis.asyncio client, made in the loop that uses it.
        self._aredis: redis.asyncio.Redis | None = None
        self._aredis_loop: asyncio.AbstractEventLoop | None = None
        if settings.dask_configured and settings.max_n < settings.dask_min_n:
            log.warning("EOC_NTK_DASK_ADDRESS is set, but EOC_NTK_MAX_N = %d < EOC_NTK_DASK_MIN_N = %d refuses every "
                        "dataset large enough to run on the Dask cluster; raise EOC_NTK_MAX_N",
                        settings.max_n, settings.dask_min_n)
        if settings.embedded:
            self.storage = Storage(MemoryStore(settings.cache_bytes), settings)
            self.backend: JobBackend = LocalBackend(settings, self.storage, on_ended=self._job_ended)
        else:
            assert settings.redis_url is not None  # not embedded
            self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2,
                                              health_check_interval=10)
            self.storage = Storage(RedisStore(self.redis), settings)
            self.backend = RQBackend(self.redis, settings, self.storage, on_ended=self._job_ended)
        self.callbacks = Callbacks(settings, self.storage, self.redis, self._view)

    @property
    def mode(self) -> str:
        return "embedded" if self.settings.embedded else "redis"

    def ready(self) -> tuple[bool, str | None]:
        if not self.storage.ping():
            return False, "Redis does not answer at the configured REDIS_URL"
        problem = self.storage.write_problem() if self.redis is not None else None
        return (False, problem) if problem else (True, None)

    def queue_counts(self) -> tuple[int, int] | None:
        """(queued, running) jobs now; None when the queue does not answer."""
        return self.backend.counts()

    # Observers
    def _cache_lookup(self, hit: bool) -> None:
        for observer in self.observers:
            observer.cache_lookup(hit)

    def _job_ended(self, view: JobView) -> None:
        self.callbacks.job_ended()
        for observer in self.observers:
            try:
                observer.job_ended(view)
            except Exception:  # an observer never fails a job or a request
                log.debug("observer failed on job %s", view.job_id, exc_info=True)

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

    # Answers (rendered once, see jobs.answers): the hot path of repeated questions
    async def hot_answer(self, spec: dict, principal: str | None, dataset_id: str) -> CachedAnswer | None:
        """The stored answer of ``spec`` if the caller may see it, in one look-up from the event loop
        (one pipelined Redis round trip; no thread, no decoding of the result); None otherwise or
        on any store trouble, where :meth:`answer_of` (in a thread) decides, with its 503s."""
        query = self.storage.answer_query(cache_key(spec), principal, dataset_id)
        try:
            if self.redis is None:
                fetched = self.storage.store.fetch(query)
            else:
                fetched = await self._async_store().fetch(query)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.debug("hot path look-up failed (%s); taking the slow path", exc)
            return None
        found = self.storage.open_answer(fetched)
        if found is not None:
            self._cache_lookup(True)
        return found

    def answer_of(self, spec: dict, principal: str | None, dataset_id: str, *,
                  required: bool = False) -> CachedAnswer | None:
        """:meth:`hot_answer` from the stored result (blocking; when the rendered answer is missing,
        e.g. evicted, or the store failed): the answer rendered again, and kept for the next hit."""
        value = self.cached_for(spec, dataset_id, principal, required=required)
        return None if value is None else self.storage.put_answer(cache_key(spec), spec, value)

    def rendered(self, spec: dict, answer: Answer) -> CachedAnswer:
        """The rendered answer of a result from :meth:`answer`; a hit whose rendered answer was
        missing (else :meth:`hot_answer` had answered it) keeps it for the next."""
        assert answer.value is not None  # a result, not a job
        if answer.cache == "hit" and spec["op"] in RENDERED_OPS:
            return self.storage.put_answer(cache_key(spec), spec, answer.value)
        body = render(spec, answer.value)
        return CachedAnswer(content_hash(body), body)

    def _async_store(self) -> AsyncRedisStore:
        loop = asyncio.get_running_loop()
        if self._aredis_loop is not loop:  # a client belongs to one loop (tests run several in turn)
            assert self.settings.redis_url is not None  # the hot path's store in Redis mode
            self._aredis = redis.asyncio.Redis.from_url(self.settings.redis_url, socket_timeout=2,
                                                        socket_connect_timeout=1)
            self._aredis_loop = loop
        return AsyncRedisStore(self._aredis)

    async def aclose(self) -> None:
        """Close the hot path's client (in the loop it belongs to)."""
        if self._aredis is not None and self._aredis_loop is asyncio.get_running_loop():
            await self._aredis.aclose()
        self._aredis = self._aredis_loop = None

    # Results
    def cached(self, spec: dict, principal: str | None = None, *, required: bool = False) -> StoredValue | None:
        """The stored result of ``spec`` if the caller may know it exists (see :meth:`_lookup`);
        ``required``: a store outage raises (503) instead of answering None."""
        value = self._lookup(cache_key(spec), principal, required=required)
        self._cache_lookup(value is not None)
        return value

    def cached_for(self, spec: dict, dataset_id: str, principal: str | None, *,
                   required: bool = False) -> StoredValue | None:
        """:meth:`cached`, when the caller may also see ``dataset_id`` (else None)."""
        if not self.storage.owns("dataset", dataset_id, principal):
            return None
        return self.cached(spec, principal, required=required)

    def _lookup(self, key: str, principal: str | None, *, required: bool = False) -> StoredValue | None:
        """The stored result under ``key`` as the caller may see it.

        With API keys configured, a key sees only its own cache history: a result that another
        key caused to be computed is invisible to a key that never asked for it (``None``), so
        that no answer (the ``cache`` field, the status code, a ``GET /v1/spectra``) tells one
        key what another has analysed."""
        if principal is not None and not self.storage.has_asked(principal, key):
            return None
        return self.storage.get_result(key, required=required)

    def answer(self, spec: dict, pinned: list[Data], prefer_async: bool,
               principal: str | None = None, callback_url: str | None = None) -> Answer:
        """The cached result, a new (or joined) job, or a result computed now; with ``callback_url``
        always a job, whose end is posted there (:mod:`jobs.webhooks`).

        Nothing is stored for a request that is refused: inline data are kept only once the
        answer is a result or an accepted job."""
        if callback_url is None:
            return self._answer(spec, pinned, prefer_async, principal)
        target = self.callbacks.check(callback_url)
        answer = self._answer(spec, pinned, True, principal)
        assert answer.job_id is not None  # asked as a job
        self.callbacks.register(answer.job_id, _waiter(principal), target)
        return answer

    def callback_of(self, job_id: str, principal: str | None) -> dict | None:
        """The webhook ``principal`` registered on job ``job_id`` and its attempts so far, if any."""
        return self.callbacks.record(job_id, _waiter(principal))

    def _answer(self, spec: dict, pinned: list[Data], prefer_async: bool, principal: str | None) -> Answer:
        key = cache_key(spec)
        value = self._lookup(key, principal)
        self._cache_lookup(value is not None)
        if value is not None:
            self._keep(pinned, principal, required=False)
            if prefer_async:  # one shape per request: a job, finished already
                job_id = job_id_for(key)
                self.storage.put_answered_job(job_id, spec, key)
                self.storage.grant("job", job_id, principal)
                self.storage.listings.job_accepted(job_id, principal)
                return Answer(value, "hit", job_id=job_id)
            return Answer(value, "hit")
        # A key asking for the first time gets exactly what a first computation gets. Where that is
        # a job (202), the job really runs: a job record the key can poll, its duration and the
        # per-key job limit are then those of a first computation, and nothing in the backends
        # needs to know about keys. Where it is an answer now (200), a result stored for another
        # key is reused internally and answered "miss" (the same bytes a computation would give;
        # only the time to answer differs, as between any two computations). The key's history
        # grows only with answers it got (not with refusals such as 429).
        seconds = self.predicted(spec, pinned)
        if prefer_async or on_cluster(spec) or seconds > self.settings.async_seconds:
            return Answer(job_id=self._submit(spec, key, pinned, principal))
        if seconds > self.settings.sync_max_seconds:
            raise SyncTooLong(f"this computation is predicted to take {seconds:.3g} s, more than a synchronous "
                              f"request may (EOC_NTK_SYNC_MAX_SECONDS = {self.settings.sync_max_seconds:g} s); "
                              "send it again with the header 'Prefer: respond-async' to run it as a job",
                              field="Prefer")
        value = self.storage.get_result(key) if principal is not None else None
        if value is None:
            computed = self._compute_now(spec, key, pinned, principal)
            if isinstance(computed, str):  # still running after the wait: the caller's job
                return Answer(job_id=computed)
            value = computed
        self._keep(pinned, principal, required=False)
        if principal is not None:
            self.storage.remember_asked(principal, key)
        return Answer(value, "miss")

    def _submit(self, spec: dict, key: str, pinned: list[Data], principal: str | None) -> str:
        """Start ``spec`` as a job, or join the same one in flight (single flight); returns its id."""
        with self._admission(principal):
            job_id = job_id_for(key)
            self._admit(principal, job_id)
            # A backend whose jobs read the data from the store needs them stored first.
            self._keep(pinned, principal, required=self.backend.needs_stored_data)
            fresh = not self._in_flight(job_id)
            # The job's context (jobs.observe.JobContext) is captured inside this span: the job continues it.
            with tracing.span("enqueue", kind="producer", attributes={"eoc_ntk.job_id": job_id,
                                                                      "eoc_ntk.op": spec["op"]}):
                self.backend.submit(spec, key, {d.dataset_id: d.x for d in pinned})
            self._accept(job_id, key, principal, fresh=fresh)
        return job_id

    def _compute_now(self, spec: dict, key: str, pinned: list[Data], principal: str | None) -> StoredValue | str:
        """The result, computed while the caller waits at most ``EOC_NTK_SYNC_WAIT_SECONDS``; a computation
        still running then goes on as the caller's job, whose id is returned instead (answered 202). While
        it waits, the request is one of the computation's callers (a DELETE by another does not stop it)."""
        job_id = job_id_for(key)
        waiting = f"request:{uuid.uuid4().hex}"
        # Best effort: with the store away, a small computation is still answered (not as a job).
        attached = _quietly(lambda: self.storage.attach(job_id, waiting, fresh=not self._in_flight(job_id)))
        try:
            return self._run_now(spec, key, {d.dataset_id: d.x for d in pinned},
                                 "activations" if spec["op"] == "sweeps" else "model")
        except StillRunning:
            self._keep(pinned, principal, required=False)
            self._accept(job_id, key, principal, fresh=False)
            return job_id
        finally:
            if attached:
                _quietly(lambda: self.storage.detach(job_id, waiting))

    def _accept(self, job_id: str, key: str, principal: str | None, *, fresh: bool) -> None:
        """The caller waits for job ``job_id``: it may see it, it counts towards its limit, and its DELETE
        detaches it from the computation (``fresh``: a new run, whose earlier callers are gone)."""
        self.storage.grant("job", job_id, principal)
        self.storage.listings.job_accepted(job_id, principal)
        self.storage.attach(job_id, _waiter(principal), fresh=fresh)
        if principal is not None:
            self.storage.mark_detached(principal, job_id, False)
            self.storage.track_job(principal, job_id)
            self.storage.remember_asked(principal, key)

    def _in_flight(self, job_id: str) -> bool:
        view = self.backend.get(job_id)
        return view is not None and view.status in IN_FLIGHT

    @staticmethod
    def predicted(spec: dict, pinned: list[Data]) -> float:
        """Predicted seconds of ``spec`` on one core (:func:`eoc_ntk.core.cost.predict_seconds`)."""
        x2 = pinned[1].x.shape if spec["op"] == "kernels" and len(pinned) > 1 else None
        return predicted_seconds(spec, pinned[0].x.shape, x2)

    @contextmanager
    def _admission(self, principal: str | None) -> Iterator[None]:
        """Serialise "count the caller's jobs, then submit" per API key (across API processes in Redis mode)."""
        with nullcontext() if principal is None else self.backend.admission(principal):
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
            view = self.backend.get(other)
            if view is not None and view.status in IN_FLIGHT:
                in_flight.add(other)
            else:
                self.storage.untrack_job(principal, other)
        if len(in_flight) >= self.settings.max_jobs_per_key:
            raise TooManyJobs(f"this API key already has {len(in_flight)} jobs queued or running, the limit "
                              f"(EOC_NTK_MAX_JOBS_PER_KEY); wait for one to end or cancel one")

    def _run_now(self, spec: dict, key: str, arrays: dict[str, np.ndarray], field: str) -> StoredValue:
        """The result of a synchronous computation; a refusal by the core during it names the model
        (``field``), whose values together with the data's norms made it fail (e.g. an overflow),
        unless the core names a field of the request itself (``x``, ``x2``: e.g. the angle to a zero row;
        ``ridge``, ``steps``: out of range)."""
        try:
            with core_errors(field, fields=_REQUEST_PARAMS):
                return self.backend.run(spec, key, arrays, self.settings.sync_wait_seconds)
        except JobCanceled as exc:
            raise Conflict("the computation was canceled by another client's DELETE /v1/jobs; retry") from exc
        except JobTimedOut as exc:
            raise Timeout(str(exc)) from exc
        except DatasetMissing as exc:
            raise NotFound(str(exc), field="dataset_id") from exc

    # Jobs
    def _visible(self, job_id: str, principal: str | None) -> None:
        op_of_job(job_id)
        if not self.storage.owns("job", job_id, principal):
            raise _unknown_job(job_id)

    def job(self, job_id: str, principal: str | None = None) -> JobView:
        """The job as the caller sees it: from its backend, else a job answered from the cache
        (finished); canceled once the caller canceled it, even while others still wait for it."""
        view = self._known(job_id, principal, self._view)
        if principal is not None and view.status != JobStatus.canceled and self.storage.is_detached(principal, job_id):
            return _as_canceled(view)
        return view

    def _view(self, job_id: str) -> JobView | None:
        view = self.backend.get(job_id)
        if view is not None:
            return view
        answered = self.storage.answered_job(job_id)
        if answered is None:
            return None
        spec, key = answered
        return JobView(job_id, spec, key, JobStatus.finished, 1.0, seconds=0.0)

    def cancel(self, job_id: str, principal: str | None = None) -> JobView:
        """Detach the caller from job ``job_id``'s computation, and stop the computation when no other
        caller (an API key that asked for it, or a request waiting for it) waits for it any more."""
        self._visible(job_id, principal)
        if self.storage.detach(job_id, _waiter(principal)):
            view = self.backend.get(job_id)
            if view is None:
                raise _unknown_job(job_id)
            if view.status in IN_FLIGHT:
                if principal is not None:
                    self.storage.mark_detached(principal, job_id)
                    self.storage.untrack_job(principal, job_id)
                return _as_canceled(view)
        return self._known(job_id, principal, self.backend.cancel)

    def _known(self, job_id: str, principal: str | None, act) -> JobView:
        """``act(job_id)`` for a job the caller may see; :class:`NotFound` when it is not (or no longer) known."""
        self._visible(job_id, principal)
        view = act(job_id)
        if view is None:
            raise _unknown_job(job_id)
        return view

    def job_answer(self, view: JobView) -> CachedAnswer:
        """The rendered answer of a finished job: as stored when it finished, else rendered from its
        result (:class:`Gone` when that expired)."""
        if view.cache_key and view.spec.get("op") in RENDERED_OPS:
            try:
                found = self.storage.open_answer(self.storage.store.fetch(
                    self.storage.answer_query(view.cache_key, None, view.spec.get("dataset_id", ""))))
            except RedisError:
                found = None
            if found is not None:
                return found
        return self.rendered(view.spec, Answer(self.job_result(view), "hit"))

    def job_result(self, view: JobView) -> StoredValue:
        value = self.storage.get_result(view.cache_key) if view.cache_key else None
        if value is None:
            raise Gone(f"job {view.job_id} finished, but its result is no longer stored (expired or evicted); "
                       "submit the request again to recompute it")
        return value

    def close(self) -> None:
        self.callbacks.close()
        self.backend.shutdown()
        if self.redis is not None:
            self.redis.close()


#: The core's parameters that are the request's fields of the same names (the data, and the
#: training parameters of dynamics and learning curves).
_REQUEST_PARAMS = {name: name for name in ("x", "x2", "y", "steps", "learning_rate", "sizes", "ridge", "splits",
                                           "seed")}


def _quietly(act) -> bool:
    """``act()``; False (logged) when the store does not answer."""
    try:
        act()
    except (RedisError, OSError) as exc:
        log.debug("store bookkeeping skipped: %s", exc)
        return False
    return True


def _waiter(principal: str | None) -> str:
    """A caller of a job: its API key's fingerprint, or ``anonymous`` (authentication off: one caller)."""
    return "anonymous" if principal is None else f"key:{principal}"


def _as_canceled(view: JobView) -> JobView:
    """``view`` as a caller that canceled the job sees it (the same as a job stopped by its DELETE)."""
    return replace(view, status=JobStatus.canceled, error={"code": "canceled", "message": "canceled by a client"})


def _unknown_job(job_id: str) -> NotFound:
    return NotFound(f"unknown job {job_id!r} (never submitted, its record expired, or not yours)", field="job_id")
