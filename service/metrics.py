"""Prometheus metrics (``GET /metrics``) and the request id of every request.

One :class:`Metrics` per app, on a registry of its own (several apps can live in one process,
as in the tests):

- ``eoc_ntk_http_request_duration_seconds{method, route, status}``: request latency, by route
  template (``/v1/jobs/{job_id}``), so that ids do not multiply the series;
- ``eoc_ntk_job_duration_seconds{op, status}``: computations run by the API process (jobs of
  embedded mode and synchronous requests), and, in Redis mode, RQ jobs as the API first sees
  them ended (from RQ's start and end times);
- ``eoc_ntk_cache_requests_total{result="hit"|"miss"}``: result cache look-ups of compute requests;
- ``eoc_ntk_queue_depth`` (jobs waiting) and ``eoc_ntk_jobs_running``, read at scrape time from
  the in-process pool or the RQ queue.

The engine is observed from outside (its ``answer``, ``cached`` and ``job`` methods and its
pool's runner are wrapped once, when the app is built), so the request flow of
:mod:`service.engine` stays free of metrics code.

:class:`RequestContext` is the ASGI middleware that gives every request an id (the client's
``X-Request-ID`` when it is sane, else a new one), answers it in ``X-Request-ID``, puts it on
every log record of the request (:mod:`service.logs`) and logs one JSON access line.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections import OrderedDict
from functools import wraps

from fastapi import APIRouter, Request, Response

from .logs import request_id_var

__all__ = ["Metrics", "RequestContext", "router"]

log = logging.getLogger("eoc_ntk.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TERMINAL = ("finished", "failed", "canceled")


class Metrics:
    """The app's metrics on a registry of its own, fed by :meth:`observe_engine` and the middleware."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("eoc_ntk_http_request_duration_seconds", "HTTP request latency.",
                                 ["method", "route", "status"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.job_duration = Histogram("eoc_ntk_job_duration_seconds", "Duration of computations (jobs).",
                                      ["op", "status"], buckets=_JOB_BUCKETS, registry=self.registry)
        self.cache = Counter("eoc_ntk_cache_requests", "Result cache look-ups of compute requests.",
                             ["result"], registry=self.registry)
        for result in ("hit", "miss"):
            self.cache.labels(result)
        self._seen_jobs: OrderedDict[str, None] = OrderedDict()
        self.engine = None

    # Engine
    def observe_engine(self, engine) -> None:
        """Count cache hits and misses, time jobs, and read queue depth from ``engine``."""
        from prometheus_client.core import GaugeMetricFamily

        self.engine = engine
        answer, cached, job, run = engine.answer, engine.cached, engine.job, engine.local._run

        @wraps(answer)
        def counted_answer(*args, **kwargs):
            result = answer(*args, **kwargs)
            self.cache.labels("hit" if result.cache == "hit" and result.job_id is None else "miss").inc()
            return result

        @wraps(cached)
        def counted_cached(*args, **kwargs):
            value = cached(*args, **kwargs)
            self.cache.labels("miss" if value is None else "hit").inc()
            return value

        @wraps(run)
        def timed_run(local_job, *args, **kwargs):
            start, status = time.perf_counter(), "finished"
            try:
                return run(local_job, *args, **kwargs)
            except BaseException:
                status = "canceled" if local_job.cancel.is_set() else "failed"
                raise
            finally:
                self.job_duration.labels(local_job.spec.get("op", "?"), status).observe(time.perf_counter() - start)

        @wraps(job)
        def observed_job(job_id, *args, **kwargs):
            view = job(job_id, *args, **kwargs)
            if engine.remote is not None:
                self._observe_remote(engine, view)
            return view

        engine.answer, engine.cached, engine.local._run = counted_answer, counted_cached, timed_run
        engine.job = observed_job

        metrics = self

        class QueueCollector:
            def collect(self):
                state = metrics.queue_state()
                depth = GaugeMetricFamily("eoc_ntk_queue_depth", "Jobs waiting to run.")
                busy = GaugeMetricFamily("eoc_ntk_jobs_running", "Jobs running now (in-process pool only "
                                         "in embedded mode; RQ's started registry in Redis mode).")
                if state is not None:  # unknown while Redis is down: no sample rather than a false 0
                    depth.add_metric([], state[0])
                    busy.add_metric([], state[1])
                yield depth
                yield busy

        self.registry.register(QueueCollector())

    def _observe_remote(self, engine, view) -> None:
        status = getattr(view.status, "value", view.status)
        if status not in _TERMINAL or view.job_id in self._seen_jobs:
            return
        self._seen_jobs[view.job_id] = None
        while len(self._seen_jobs) > 10_000:
            self._seen_jobs.popitem(last=False)
        try:
            rq_job = engine.remote._fetch(view.job_id)
            if rq_job is not None and rq_job.started_at and rq_job.ended_at:
                seconds = (rq_job.ended_at - rq_job.started_at).total_seconds()
                self.job_duration.labels(view.spec.get("op", "?"), status).observe(max(seconds, 0.0))
        except Exception:  # metrics never fail a request
            log.debug("could not read the duration of job %s", view.job_id, exc_info=True)

    def queue_state(self) -> tuple[int, int] | None:
        """(queued, running) jobs now; None when Redis does not answer."""
        engine = self.engine
        if engine is None:
            return 0, 0
        try:
            if engine.remote is not None:
                queue = engine.remote.queue
                return int(queue.count), int(queue.started_job_registry.count)
            local = engine.local
            with local._lock:
                states = [getattr(j.status, "value", j.status) for j in local._jobs.values()]
            return states.count("queued"), states.count("running")
        except Exception:  # Redis down: the scrape still answers
            log.debug("queue state unavailable", exc_info=True)
            return None

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format."}})
def metrics(request: Request) -> Response:
    """Prometheus metrics: request latency, job durations, cache hits and misses, queue depth."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class RequestContext:
    """ASGI middleware: request id, latency metric and one JSON access log line per request."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(elapsed)
            log.info("%s %s %s", scope["method"], scope["path"], status,
                     extra={"method": scope["method"], "path": scope["path"], "route": route, "status": status,
                            "duration_ms": round(elapsed * 1000, 3)})
            request_id_var.reset(token)
