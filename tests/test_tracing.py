"""OpenTelemetry traces: request -> enqueue -> job -> load, compute (kernel, icd, eigen), store.

The API's spans are read from the SDK's ``InMemorySpanExporter`` (installed once, on this test
process's tracer provider); a real worker's spans from its ``OTEL_TRACES_EXPORTER=console`` output,
parsed as the JSON the SDK writes. A caller's W3C ``traceparent`` is continued end to end: every
span has the caller's trace id, and each one's parent is the span it nests in. Tracing is off
without configuration, with ``OTEL_SDK_DISABLED=true``, and without OpenTelemetry installed.
Skipped, in one line, without the ``[otel]`` extra.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk.trace", reason="the [otel] extra is not installed: tracing tests skipped")
pytest.importorskip("fastapi.telemetry", reason="FastAPI < 0.143 has no native request spans: tracing tests skipped")

from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _private_redis import own_redis_server
from _service_support import ApiProcess, make_client, wait_for_job
from _users_support import small_data
from service.app import create_app
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


@pytest.fixture(scope="module")
def spans():
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _hex(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


def _in_memory(exporter) -> list[dict]:
    """The finished spans as plain records: name, kind, trace, span and parent ids (hex)."""
    return [{"name": s.name, "kind": s.kind.name, "trace": _hex(s.context.trace_id, 32),
             "span": _hex(s.context.span_id, 16), "parent": _hex(s.parent.span_id, 16) if s.parent else None,
             "attributes": dict(s.attributes or {})} for s in exporter.get_finished_spans()]


def _one(records: list[dict], name: str) -> dict:
    found = [r for r in records if r["name"] == name]
    assert len(found) == 1, (name, [r["name"] for r in records])
    return found[0]


def _ancestors(records: list[dict], record: dict) -> list[str]:
    """Names of the spans above ``record``, nearest first (within ``records``)."""
    by_id, out = {r["span"]: r for r in records}, []
    while record["parent"] in by_id:
        record = by_id[record["parent"]]
        out.append(record["name"])
    return out


def _check_computation(records: list[dict], job: dict, phases: tuple[str, ...]) -> None:
    compute = _one(records, "compute")
    assert compute["parent"] == job["span"]
    assert [r["name"] for r in records if r["parent"] == compute["span"]] == list(phases)
    assert all(r["trace"] == TRACE_ID for r in records)


def test_a_request_its_job_and_the_phases_continue_the_callers_trace(spans):
    spans.clear()
    body = {"x": small_data().tolist(), "model": {"depth": 3, "activation": "relu"}}
    with make_client(inline_max_seconds=1000.0) as client:  # computed in the API process: its spans are here
        r = client.post("/v1/spectra", json=body, headers={"traceparent": TRACEPARENT, "X-Request-ID": "req-tr-1"})
        assert r.status_code == 200, r.text
    records = _in_memory(spans)
    server = [r for r in records if r["kind"] == "SERVER"]
    assert len(server) == 1 and server[0]["parent"] == CALLER_SPAN, records
    job = _one(records, "job")
    assert job["kind"] == "CONSUMER" and job["attributes"]["eoc_ntk.request_id"] == "req-tr-1"
    assert server[0]["name"] in _ancestors(records, job), _ancestors(records, job)
    _check_computation(records, job, ("kernel", "icd", "eigen"))  # relu, sigma_b = 0: the ICD applies


def _console_spans(text: str) -> list[dict]:
    """The spans a ConsoleSpanExporter printed (one JSON document each), as :func:`_in_memory` records."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return out
        doc, at = decoder.raw_decode(text, at)
        out.append({"name": doc["name"], "kind": doc["kind"].rsplit(".", 1)[-1],
                    "trace": doc["context"]["trace_id"][2:], "span": doc["context"]["span_id"][2:],
                    "parent": doc["parent_id"][2:] if doc.get("parent_id") else None,
                    "attributes": doc["attributes"], "service": doc["resource"]["attributes"]["service.name"]})


@pytest.mark.redis
@pytest.mark.slow  # a worker's start and Python's imports: about 5 s
def test_a_workers_job_continues_the_enqueue_span_of_its_request(spans, tmp_path):
    spans.clear()
    queue = f"eoc-ntk-tracing-{os.getpid()}"
    body = {"x": small_data().tolist(), "model": {"depth": 3, "activation": "abs"}}
    with own_redis_server() as server:
        with TestClient(create_app(Settings(redis_url=server.url, queue_name=queue))) as client:
            r = client.post("/v1/spectra", json=body, headers={"traceparent": TRACEPARENT, "Prefer": "respond-async",
                                                               "X-Request-ID": "req-tr-2"})
            assert r.status_code == 202, r.text
        env = {**os.environ, "REDIS_URL": server.url, "EOC_NTK_QUEUE_NAME": queue, "PYTHONPATH": str(ROOT),
               "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "eoc-ntk-test-worker"}
        out = subprocess.run([sys.executable, "-m", "jobs", "--burst", "--log-level", "WARNING"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=True).stdout
    api = _in_memory(spans)
    enqueue = _one(api, "enqueue")
    assert enqueue["kind"] == "PRODUCER" and enqueue["trace"] == TRACE_ID
    assert enqueue["attributes"]["eoc_ntk.job_id"] == r.json()["job_id"]
    server_spans = [s for s in api if s["kind"] == "SERVER" and s["parent"] == CALLER_SPAN]
    assert len(server_spans) == 1 and server_spans[0]["name"] in _ancestors(api, enqueue), api
    worker = _console_spans(out)
    job = _one(worker, "job")
    assert job["parent"] == enqueue["span"] and job["kind"] == "CONSUMER", job
    assert job["attributes"]["eoc_ntk.request_id"] == "req-tr-2"
    assert {s["service"] for s in worker} == {"eoc-ntk-test-worker"}
    assert [s["name"] for s in worker if s["parent"] == job["span"]] == ["load", "compute", "store"]
    _check_computation(worker, job, ("kernel", "icd", "eigen"))


@pytest.mark.slow  # a server's start: about 4 s
def test_an_embedded_job_process_continues_the_enqueue_span_of_its_request(tmp_path):
    """Embedded mode, served by ``python -m service`` with the console exporter: the request's and the
    enqueue span come from the API process, the job and its phases from the job's own process."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("OTEL_")}
    env.update(PYTHONPATH=str(ROOT), OTEL_TRACES_EXPORTER="console")
    body = {"x": small_data().tolist(), "model": {"depth": 3, "activation": "relu"}}
    with open(tmp_path / "out", "w+b") as out:
        with ApiProcess(env, log=out, probe="/healthz") as api, httpx.Client(base_url=api.url, timeout=60) as client:
            r = client.post("/v1/spectra", json=body, headers={"traceparent": TRACEPARENT, "Prefer": "respond-async"})
            assert wait_for_job(client, r.json()["job_id"])["status"] == "finished"
    text = (tmp_path / "out").read_text()
    every = _console_spans("\n".join(line for line in text.splitlines() if not line.startswith('{"time"')))
    spans = [s for s in every if s["trace"] == TRACE_ID]  # not the readiness probes' and polls' traces
    enqueue, job = _one(spans, "enqueue"), _one(spans, "job")
    assert enqueue["trace"] == TRACE_ID and job["parent"] == enqueue["span"], (enqueue, job)
    assert {s["service"] for s in every} == {"eoc-ntk-api"}
    assert [s["name"] for s in spans if s["parent"] == job["span"]] == ["load", "compute"]
    assert _one(spans, "POST /v1/spectra")["parent"] == CALLER_SPAN  # FastAPI's, flushed at the API's stop
    _check_computation(spans, job, ("kernel", "icd", "eigen"))


_OFF = """
import os
from jobs import tracing
print(tracing.configure(environ={}), tracing.enabled(), tracing.current_traceparent())
print(tracing.configure(environ={"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}), tracing.enabled())
print(tracing.configure(environ={"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}))
print(tracing.configure(environ={"OTEL_TRACES_EXPORTER": "console"}), tracing.enabled())
"""
_ABSENT = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed
from jobs import observe, tracing
with tracing.span("job", kind="consumer", traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"):
    print(tracing.configure(environ={"OTEL_TRACES_EXPORTER": "console"}), tracing.current_traceparent(),
          observe.JobContext.capture().to_dict())
"""


def test_tracing_is_off_unless_configured_and_without_opentelemetry():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | {"PYTHONPATH": str(ROOT)}
    lines = subprocess.run([sys.executable, "-c", _OFF], cwd=ROOT, env=env, capture_output=True, text=True,
                           check=True, timeout=60).stdout.splitlines()
    assert lines == ["False False None", "False False", "False", "True True"], lines
    absent = subprocess.run([sys.executable, "-c", _ABSENT], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True, timeout=60).stdout.splitlines()
    assert absent == ["False None {}"], absent
