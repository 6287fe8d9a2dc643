"""Prometheus metrics (``GET /metrics``) and the request id of every request.

One :class:`Metrics` per app, on a registry of its own (several apps can live in one process,
as in the tests):

- ``eoc_ntk_http_request_duration_seconds{method, route, status}``: request latency, by route
  template (``/v1/jobs/{job_id}``), so that ids do not multiply the series; labels come from
  fixed sets only (a method outside :data:`METHODS` is ``other``, a path no route matched is
  ``unmatched``), so that invented methods or paths cannot grow the exposition;
- ``eoc_ntk_job_duration_seconds{op, status}``: how long each run of a computation took, by
  operation (``spectra``, ``kernels``, ``sweeps``, ``dynamics``, ``learning_curves``) and final
  state. Embedded mode: the API process's own runs (jobs and synchronous requests), in its
  memory. Redis mode: every run of the deployment (the workers' jobs and the API processes'
  synchronous computations), kept in Redis (:mod:`jobs.durations`) and read at scrape time, so
  that every API process answers the same histogram;
- ``eoc_ntk_cache_requests_total{result="hit"|"miss"}``: result cache look-ups of compute requests;
- ``eoc_ntk_queue_depth`` (jobs waiting) and ``eoc_ntk_jobs_running``, read at scrape time from
  the in-process pool or the RQ queue;
- ``eoc_ntk_webhook_deliveries_total{outcome="delivered"|"retry"|"failed"}``: webhook attempts
  by outcome (``failed``: the last attempt failed), read at scrape time from the job layer's
  counts (this process's in embedded mode; in Redis mode a Redis hash every worker adds to).

:class:`Metrics` is one of the engine's observers (:class:`service.engine.EngineObserver`):
the engine tells it about cache look-ups and ended jobs, and its queue counts are read at
scrape time; the request flow of :mod:`service.engine` holds no metrics code.

:class:`RequestContext` is the ASGI middleware that gives every request an id (the client's
``X-Request-ID`` when it is sane, else a new one), answers it in ``X-Request-ID``, puts it on
every log record of the request (:mod:`service.logs`) and logs one JSON access line.
"""
from __future__ import annotations

import logging
import re
import time
import uuid

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError

from jobs.durations import BUCKETS, RedisDurations

from .contract import operation
from .logs import request_id_var

__all__ = ["Metrics", "RequestContext", "router", "METHODS"]

#: The HTTP methods that get a label of their own; any other is counted as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

log = logging.getLogger("eoc_ntk.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_JOB_HELP = "Duration of computations (jobs and synchronous requests), by operation and final state."


class Metrics:
    """The app's metrics on a registry of its own: an :class:`~service.engine.EngineObserver`
    (cache look-ups, ended jobs) that also reads the engine's queue counts at scrape time."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("eoc_ntk_http_request_duration_seconds", "HTTP request latency.",
                                 ["method", "route", "status"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.job_duration = Histogram("eoc_ntk_job_duration_seconds", _JOB_HELP,
                                      ["op", "status"], buckets=BUCKETS, registry=self.registry)
        self.shared_durations: RedisDurations | None = None
        self.cache = Counter("eoc_ntk_cache_requests", "Result cache look-ups of compute requests.",
                             ["result"], registry=self.registry)
        for result in ("hit", "miss"):
            self.cache.labels(result)

    # EngineObserver
    def cache_lookup(self, hit: bool) -> None:
        self.cache.labels("hit" if hit else "miss").inc()

    def job_ended(self, view) -> None:
        if view.seconds is None:
            return
        if self.shared_durations is not None:
            self.shared_durations.observe(view.spec.get("op", "?"), view.status.value, view.seconds)
        else:
            self.job_duration.labels(view.spec.get("op", "?"), view.status.value).observe(view.seconds)

    def share_job_durations(self, durations: RedisDurations) -> None:
        """Redis mode: record this process's runs in the deployment's histogram (``durations``), and
        expose that histogram, read at every scrape, as ``eoc_ntk_job_duration_seconds``."""
        self.registry.unregister(self.job_duration)
        self.shared_durations = durations

        class SharedDurations:
            def collect(self):
                family = HistogramMetricFamily("eoc_ntk_job_duration_seconds", _JOB_HELP, labels=["op", "status"])
                try:
                    rows = durations.read()
                except RedisError:  # Redis down: no sample rather than a false 0
                    rows = []
                for row in rows:
                    bounds = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]
                    family.add_metric([row.op, row.status], list(zip(bounds, row.cumulative, strict=True)), row.sum)
                yield family

        self.registry.register(SharedDurations())

    def watch_queue(self, queue_counts) -> None:
        """Read ``queue_counts() -> (queued, running) | None`` at every scrape (``eoc_ntk_queue_depth``,
        ``eoc_ntk_jobs_running``)."""

        class QueueCollector:
            def collect(self):
                state = queue_counts()
                depth = GaugeMetricFamily("eoc_ntk_queue_depth", "Jobs waiting to run.")
                busy = GaugeMetricFamily("eoc_ntk_jobs_running", "Jobs running now (in-process pool only "
                                         "in embedded mode; RQ's started registry in Redis mode).")
                if state is not None:  # unknown while Redis is down: no sample rather than a false 0
                    depth.add_metric([], state[0])
                    busy.add_metric([], state[1])
                yield depth
                yield busy

        self.registry.register(QueueCollector())

    def watch_webhooks(self, webhook_counts) -> None:
        """Read ``webhook_counts() -> {outcome: attempts} | None`` at every scrape
        (``eoc_ntk_webhook_deliveries_total``)."""

        class WebhookCollector:
            def collect(self):
                counts = webhook_counts()
                family = CounterMetricFamily("eoc_ntk_webhook_deliveries", "Webhook delivery attempts by outcome "
                                             "(delivered: 2xx; retry: failed, tried again; failed: the last "
                                             "attempt failed).", labels=["outcome"])
                for outcome, value in (counts or {}).items():
                    family.add_metric([outcome], value)
                yield family

        self.registry.register(WebhookCollector())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter(tags=["health"])
_EXAMPLE = ("# HELP eoc_ntk_cache_requests_total Result cache look-ups of compute requests.\n"
            "eoc_ntk_cache_requests_total{result=\"hit\"} 3.0\n")


@router.get("/metrics", response_class=Response,
            **operation(secured=False, ok={"description": "Prometheus text exposition format.", "content": {
                "text/plain": {"schema": {"type": "string"}, "example": _EXAMPLE}}}))
def metrics(request: Request) -> Response:
    """Prometheus metrics: request latency, job durations, cache hits and misses, queue depth."""
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

        failed = False
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            failed = True
            raise
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.latency.labels(method, route, str(status)).observe(elapsed)
            log.info("%s %s %s", method, scope["path"], status,
                     extra={"method": method, "path": scope["path"], "route": route, "status": status,
                            "duration_ms": round(elapsed * 1000, 3)})
            if not failed:
                # On an exception the id stays set: the server's error lines that follow (in this
                # request's own task, whose context ends with it) carry it too.
                request_id_var.reset(token)
