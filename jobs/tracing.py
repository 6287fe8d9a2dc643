"""Optional OpenTelemetry tracing: request -> enqueue -> job -> the computation's phases.

Off unless the ``[otel]`` extra is installed and the standard ``OTEL_*`` variables ask for it;
every function here is then a no-op (and nothing fails when OpenTelemetry is not installed).
The SDK reads its own variables; :func:`configure` only decides whether to install a tracer
provider, and with which exporters:

- ``OTEL_SDK_DISABLED=true``: off;
- ``OTEL_TRACES_EXPORTER``: ``otlp`` (OTLP over HTTP/protobuf to ``OTEL_EXPORTER_OTLP_ENDPOINT``
  or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), ``console`` (JSON on stdout), both comma-separated,
  or ``none``; unset, tracing is on (``otlp``) only when an OTLP endpoint is set;
- ``OTEL_SERVICE_NAME`` names the process in the traces (default: the ``service_name`` given
  to :func:`configure`, ``eoc-ntk-api`` or ``eoc-ntk-worker``); ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_BSP_*`` and ``OTEL_EXPORTER_OTLP_*`` (headers, timeout, ...) as the SDK defines them.

A tracer provider installed by the program that embeds the API (or by ``opentelemetry-instrument``)
is used as it is. The request's span is FastAPI's own (its native telemetry, FastAPI >= 0.143, which
the extra requires; it continues a caller's ``traceparent``). The spans made here:

- ``enqueue`` (producer): a request submitting a job; the job's context (:class:`jobs.observe.JobContext`)
  stores the W3C ``traceparent`` of this span with the job;
- ``job`` (consumer, in the job's process, a child of ``enqueue``, or of the request's span for a
  computation the request waits for): one run of a job;
- ``load``, ``kernel``, ``icd``, ``eigen``, ``store``: its phases (the core names its own phases,
  :func:`eoc_ntk.core.progress.phase`; :class:`Phases` makes them spans).
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

try:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # no OpenTelemetry: tracing is off
    trace = None  # type: ignore[assignment]

__all__ = ["configure", "enabled", "span", "current_traceparent", "flush", "Phases", "TRACER_NAME"]

log = logging.getLogger("eoc_ntk.jobs")

#: The instrumentation scope of every span made here.
TRACER_NAME = "eoc_ntk"
_KINDS = ("internal", "producer", "consumer", "server", "client")
_owned: list[Any] = []  # the tracer provider this process installed, if any


def _is_proxy(provider) -> bool:
    """True when no tracer provider has been installed (the API's placeholder)."""
    return type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider")


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        names = ["otlp"] if endpoint else []
    return [n for n in names if n != "none"]


def configure(service_name: str = "eoc-ntk", environ: Mapping[str, str] | None = None) -> bool:
    """Install a tracer provider as the ``OTEL_*`` variables of ``environ`` (default: the environment)
    ask, unless one is installed already; True when spans are recorded in this process."""
    environ = os.environ if environ is None else environ
    if trace is None or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not _is_proxy(trace.get_tracer_provider()):
        return enabled()
    names = _exporter_names(environ)
    if not names:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_* variables ask for traces, but the OpenTelemetry SDK is not installed: "
                    "pip install 'eoc-ntk[otel]'; tracing stays off")
        return False
    named = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(named))
    for name in names:
        exporter = _exporter(name)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _owned.append(provider)
    return True


def _exporter(name: str):
    """The span exporter called ``name`` in ``OTEL_TRACES_EXPORTER``, or None (logged) when unknown or missing."""
    try:
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter
            return ConsoleSpanExporter()
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            return OTLPSpanExporter()
    except ImportError as exc:
        log.warning("OTEL_TRACES_EXPORTER=%s: its exporter is not installed (%s): pip install 'eoc-ntk[otel]'",
                    name, exc)
        return None
    log.warning("OTEL_TRACES_EXPORTER=%s is not supported here (otlp, console or none); ignored", name)
    return None


def enabled() -> bool:
    """True when spans are recorded in this process (a tracer provider is installed)."""
    return trace is not None and not _is_proxy(trace.get_tracer_provider())


def _kind(kind: str):
    if kind not in _KINDS:
        raise ValueError(f"span kind must be one of {_KINDS}, got {kind!r}")
    return getattr(trace.SpanKind, kind.upper())


@contextmanager
def span(name: str, *, kind: str = "internal", attributes: Mapping[str, Any] | None = None,
         traceparent: str | None = None) -> Iterator[None]:
    """A span around the body, current inside it: a child of the current span, or of the W3C
    ``traceparent`` when given (a job continuing its request's trace). An exception ends it as an error."""
    if trace is None:
        yield
        return
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(name, context=context, kind=_kind(kind), attributes=dict(attributes or {})):
        yield


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None when no span is being recorded."""
    if trace is None:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans ended so far: a job's process calls it before it ends (a work horse and a
    job process end with ``os._exit``, which runs no exit handler)."""
    if trace is None:
        return
    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if callable(force_flush):
        try:
            force_flush(timeout_millis)
        except Exception as exc:  # an exporter's trouble never fails a job
            log.warning("could not export the job's spans: %s", exc)


class Phases:
    """Spans of a computation's phases, children of the span current when it was made (the job's):
    :meth:`enter` ends the phase before and starts the next; :meth:`close` ends the last."""

    def __init__(self, attributes: Mapping[str, Any] | None = None):
        self.attributes = dict(attributes or {})
        self._span: Any = None
        self._context = None if trace is None else trace.set_span_in_context(trace.get_current_span())

    def enter(self, name: str) -> None:
        self.close()
        if trace is not None:
            self._span = trace.get_tracer(TRACER_NAME).start_span(name, context=self._context,
                                                                   attributes=self.attributes)

    def close(self) -> None:
        if self._span is not None:
            self._span.end()
            self._span = None
