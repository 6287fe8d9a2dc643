"""What a job carries of the request that submitted it, and one observed run of a job.

:class:`JobContext` is captured where a request submits a computation (in the request's thread):
the request's id (``X-Request-ID``) and the W3C ``traceparent`` of the current span (the
``enqueue`` span of :mod:`jobs.tracing`). It is stored with the job's spec (RQ: a keyword
argument of :func:`jobs.rq_queue.run_job`, in the job's record; embedded mode: the job's record
in the API process, and the arguments of its job process), never in the spec itself, so that it
changes neither the cache key nor the job id. A job joined by later requests (single flight)
keeps the context of the request that started it.

:func:`observed_run` wraps one run in the process that computes it (a work horse, a job process,
or the API's slot thread for an inline computation): the request id on every log line, the
``job`` span and its phases, one line when the run starts and one when it ends, and, where given,
the run's duration in the shared histogram (:mod:`jobs.durations`).
"""
from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .codec import StoredValue
from .compute import compute, load_data
from .errors import JobCanceled, describe_error
from .logs import request_id_var
from .progress import JobProgress
from .settings import JobSettings
from .tracing import Phases, current_traceparent, span

__all__ = ["JobContext", "JobRun", "observed_run"]

log = logging.getLogger("eoc_ntk.jobs")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class JobContext:
    """The request a job came from: its id and the W3C trace context (either may be None)."""

    request_id: str | None = None
    traceparent: str | None = None

    @classmethod
    def capture(cls) -> JobContext:
        """The context of the request being served in this thread (and of its current span)."""
        return cls(request_id_var.get(), current_traceparent())

    def to_dict(self) -> dict:
        return {k: v for k, v in (("request_id", self.request_id), ("traceparent", self.traceparent)) if v}

    @classmethod
    def from_dict(cls, stored) -> JobContext:
        """The context stored with a job; a value that is not what :meth:`to_dict` writes is dropped."""
        stored = stored if isinstance(stored, dict) else {}
        rid, parent = stored.get("request_id"), stored.get("traceparent")
        return cls(rid if isinstance(rid, str) and _REQUEST_ID.match(rid) else None,
                   parent if isinstance(parent, str) and _TRACEPARENT.match(parent) else None)


class JobRun:
    """One run being observed (see :func:`observed_run`): its steps are spans, the core's phases too."""

    def __init__(self, attributes: dict):
        self.attributes = attributes
        self._phases: Phases | None = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A step of the run (``load``, ``compute``, ``store``) as a span; the core's phases nest in it."""
        with span(name, attributes=self.attributes):
            outer, self._phases = self._phases, Phases(self.attributes)
            try:
                yield
            finally:
                self._phases.close()
                self._phases = outer

    def phase(self, name: str) -> None:
        """The core entered phase ``name`` (``kernel``, ``icd``, ``eigen``): a span in the current step."""
        if self._phases is not None:
            self._phases.enter(name)

    def load(self, spec: dict, fetch) -> tuple[np.ndarray, np.ndarray | None]:
        """:func:`jobs.compute.load_data` as the ``load`` step."""
        with self.step("load"):
            return load_data(spec, fetch)

    def compute(self, spec: dict, x: np.ndarray, x2: np.ndarray | None, progress: JobProgress,
                settings: JobSettings | None = None) -> StoredValue:
        """:func:`jobs.compute.compute` as the ``compute`` step, the core's phases as its children."""
        progress.on_phase = self.phase
        with self.step("compute"):
            return compute(spec, x, x2, progress, settings)


@contextmanager
def observed_run(job_id: str, spec: dict, context: JobContext | None = None,
                 durations: Callable[[str, str, float], None] | None = None) -> Iterator[JobRun]:
    """One run of job ``job_id`` in the process that computes it: the request id of ``context`` on
    every log line, the ``job`` span (a child of the context's ``traceparent``), a log line at the
    start and one at the end (``status``, ``seconds``), and ``durations(op, status, seconds)``."""
    context = context or JobContext()
    op = str(spec.get("op", "?"))
    token = request_id_var.set(context.request_id)
    fields = {"job_id": job_id, "op": op}
    attributes = {"eoc_ntk.job_id": job_id, "eoc_ntk.op": op}
    if context.request_id:
        attributes["eoc_ntk.request_id"] = context.request_id
    log.info("job %s started", job_id, extra=fields)
    start, status, error = time.monotonic(), "failed", None
    try:
        with span("job", kind="consumer", attributes=attributes, traceparent=context.traceparent):
            yield JobRun(attributes)
        status = "finished"
    except JobCanceled:
        status = "canceled"
        raise
    except BaseException as exc:
        error = describe_error(exc)
        raise
    finally:
        seconds = time.monotonic() - start
        ended = {**fields, "status": status, "seconds": round(seconds, 6)}
        if error:
            ended["error"] = error["code"]
        log.log(logging.WARNING if error else logging.INFO, "job %s %s after %.3f s%s", job_id, status, seconds,
                f": {error['message']}" if error else "", extra=ended)
        if durations is not None:
            try:
                durations(op, status, seconds)
            except Exception as exc:  # a metric never fails a job
                log.warning("job %s: could not record its duration (%s)", job_id, exc, extra=fields)
        request_id_var.reset(token)
