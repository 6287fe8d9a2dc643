"""What a job does: run one spec (see :mod:`service.specs`) through the core.

:func:`compute` is shared by every executor (the API's in-process pool and RQ workers);
:func:`run_job` is the RQ entry point. Its only argument is the JSON spec: the data are
read from the store by dataset id, and the result is written to the cache under the spec's
cache key, so the job's own RQ return value stays tiny (and JSON).
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

import eoc_ntk
from eoc_ntk.kernels import compute_kernels
from service.codec import StoredValue

__all__ = ["Progress", "JobCanceled", "JobTimedOut", "DatasetMissing", "compute", "run_job", "describe_error"]

log = logging.getLogger("eoc_ntk.workers")


class JobCanceled(Exception):
    """Raised from the progress callback when a client canceled the job."""


class JobTimedOut(Exception):
    """Raised from the progress callback past the job's deadline."""


class DatasetMissing(LookupError):
    """A job's dataset is no longer in the store (expired or evicted)."""


class Progress:
    """Progress callback handed to the core: records the fraction done, reports it at most
    every ``interval`` seconds to ``sink``, and stops the computation (by raising) when
    ``canceled()`` turns true or the deadline passes."""

    def __init__(self, sink: Callable[[float], None] | None = None, *, interval: float = 0.25,
                 canceled: Callable[[], bool] | None = None, deadline: float | None = None):
        self.sink = sink
        self.interval = interval
        self.canceled = canceled
        self.deadline = deadline
        self.value = 0.0
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        self.value = min(1.0, max(self.value, float(fraction)))
        if self.canceled is not None and self.canceled():
            raise JobCanceled("the job was canceled")
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise JobTimedOut("the job ran past its time limit (EOC_NTK_JOB_TIMEOUT)")
        if self.sink is not None and now - self._last >= self.interval:
            self._last = now
            self.sink(self.value)

    def part(self, index: int, count: int) -> Callable[[float], None]:
        """Callback for part ``index`` of ``count`` equal parts of the work."""
        return lambda f: self((index + f) / count)


def _model(params: dict, depth: int | None = None) -> eoc_ntk.Model:
    return eoc_ntk.Model(params["depth"] if depth is None else depth, params["a"], params["b"],
                         sigma_w=params["sigma_w"], sigma_b=params["sigma_b"])


def compute(spec: dict, x: np.ndarray, x2: np.ndarray | None, progress: Progress) -> StoredValue:
    """The result of ``spec`` for checked data ``x`` (and ``x2`` for cross-kernels)."""
    op = spec["op"]
    if op == "spectra":
        return StoredValue(doc=eoc_ntk.analyze(x, _model(spec["model"]), progress=progress))
    if op == "kernels":
        kinds = tuple(spec["kinds"])
        out = compute_kernels(x, x2, _model(spec["model"]), kinds, progress=progress)
        return StoredValue(doc={"kinds": list(kinds)}, arrays=out)
    if op == "sweeps":
        results = []
        acts = spec["activations"]
        for i, params in enumerate(acts):
            sweep = eoc_ntk.depth_sweep(x, depths=spec["depths"], a=params["a"], b=params["b"],
                                        sigma_w=params["sigma_w"], sigma_b=params["sigma_b"],
                                        progress=progress.part(i, len(acts)))
            results.append({"activation": params, **sweep.to_dict()})
        return StoredValue(doc={"depths": spec["depths"], "results": results})
    raise ValueError(f"unknown operation {op!r}")


def describe_error(exc: BaseException) -> dict:
    """``{"code", "message"}`` of a failed job, for clients."""
    if isinstance(exc, JobTimedOut):
        return {"code": "timeout", "message": str(exc)}
    if isinstance(exc, JobCanceled):
        return {"code": "canceled", "message": str(exc)}
    if isinstance(exc, DatasetMissing):
        return {"code": "dataset_missing", "message": str(exc)}
    if isinstance(exc, (ValueError, TypeError)):
        return {"code": "invalid_input", "message": str(exc)}
    if type(exc).__name__ == "JobTimeoutException":  # RQ's own death penalty
        return {"code": "timeout", "message": f"the job ran past its time limit (EOC_NTK_JOB_TIMEOUT): {exc}"}
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}


@contextmanager
def heartbeat(connection, job_id: str, ttl: int) -> Iterator[None]:
    """Keep the job's alive key (:func:`service.keys.alive_key`) fresh from a thread while it runs.

    If the process is killed the key expires within ``ttl`` seconds, and the API fails the job
    as abandoned (``service.jobs.RQJobs.reap_abandoned``) instead of showing it running forever.
    The key is set once before the work starts, and the thread beats on a connection pool of
    its own (the job's pool was inherited through the work horse's fork and is shared with the
    computation's progress reports): a beat that stalls or raises must not let a live job look
    abandoned. Any error of a beat is logged and the next beat tried. The key outlives the
    work by up to ``ttl`` seconds, while RQ records how the job ended."""
    from redis import ConnectionPool, Redis

    from service.keys import alive_key

    key, stop = alive_key(job_id), threading.Event()
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
    from rq import get_current_job

    from service.config import get_settings
    from service.specs import cache_key
    from service.store import RedisStore, Storage

    job = get_current_job()
    settings = get_settings()
    storage = Storage(RedisStore(job.connection), settings)

    def report(fraction: float) -> None:
        job.meta["progress"] = fraction
        job.save_meta()

    try:
        with heartbeat(job.connection, job.id, settings.job_heartbeat_ttl):
            x = storage.get_dataset(spec["dataset_id"])
            x2 = storage.get_dataset(spec["x2_id"]) if spec.get("x2_id") else None
            if x is None or (spec.get("x2_id") and x2 is None):
                raise DatasetMissing("the job's dataset expired from the store before the job ran; upload it again")
            value = compute(spec, x, x2, Progress(report))
            key = cache_key(spec)
            storage.put_result(key, value, required=True)
    except BaseException as exc:
        job.meta["error"] = describe_error(exc)
        job.save_meta()
        raise
    report(1.0)
    return {"cache_key": key}
