"""Jobs log JSON lines with the API's fields and the submitting request's id, in both modes; in
Redis mode the workers' job durations reach every API process's /metrics without any poll.

Real processes: the API served by ``python -m service`` (embedded mode: its job processes), and
a real ``eoc-ntk worker`` (``python -m jobs``) on a redis-server of the test's own. The duration
histogram is checked against the seconds the worker itself logged for the run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from _private_redis import own_redis_server
from _service_support import ApiProcess, wait_for_job
from _users_support import small_data
from jobs.durations import BUCKETS
from service.app import create_app
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
#: The fields of every JSON line of the API (service.logs), and so of every job's line.
FIELDS = {"time", "level", "logger", "message", "request_id", "pid"}


def _json_lines(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(FIELDS <= set(line) for line in parsed), [line for line in parsed if not FIELDS <= set(line)]
    return parsed


def _job_lines(lines: list[dict], job_id: str) -> list[dict]:
    return [line for line in lines if line.get("job_id") == job_id and line["logger"] == "eoc_ntk.jobs"]


def test_embedded_job_processes_log_json_with_the_requests_id(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    body = {"x": small_data().tolist(), "model": {"depth": 3, "activation": "relu"}}
    with open(tmp_path / "api.log", "w+b") as log, ApiProcess(env, log=log, probe="/healthz") as api:
        r = httpx.post(api.url + "/v1/spectra", json=body, timeout=60,
                       headers={"Prefer": "respond-async", "X-Request-ID": "req-embedded-7"})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        with httpx.Client(base_url=api.url, timeout=60) as client:
            assert wait_for_job(client, job_id)["status"] == "finished"
        api_pid = api.proc.pid
    lines = _json_lines(tmp_path / "api.log")
    job = _job_lines(lines, job_id)
    assert [line["status"] for line in job if "status" in line] == ["finished"], job
    assert len(job) == 2 and job[0]["message"] == f"job {job_id} started", job
    assert {line["request_id"] for line in job} == {"req-embedded-7"}
    assert {line["pid"] for line in job} != {api_pid}, "the job's lines come from its own process"
    access = [line for line in lines if line["logger"] == "eoc_ntk.access" and line["request_id"] == "req-embedded-7"]
    assert access and access[0]["pid"] == api_pid and access[0]["status"] == 202


def _histogram(text: str, op: str, status: str) -> dict[str, float]:
    """The samples of eoc_ntk_job_duration_seconds{op, status}: ``le`` -> count, and ``count``, ``sum``."""
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name != "eoc_ntk_job_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("op") == op and sample.labels.get("status") == status:
                key = sample.labels.get("le") or sample.name.rsplit("_", 1)[-1]
                out[key] = sample.value
    return out


def test_redis_workers_log_json_with_the_requests_id_and_share_job_durations(tmp_path):
    queue = f"eoc-ntk-job-logs-{os.getpid()}"
    x = small_data()
    with own_redis_server() as server:
        settings = Settings(redis_url=server.url, queue_name=queue)
        with TestClient(create_app(settings)) as client, TestClient(create_app(settings)) as other:
            r = client.post("/v1/spectra", json={"x": x.tolist(), "model": {"depth": 4, "activation": "abs"}},
                            headers={"Prefer": "respond-async", "X-Request-ID": "req-redis-9"})
            job_id = r.json()["job_id"]
            env = {**os.environ, "REDIS_URL": server.url, "EOC_NTK_QUEUE_NAME": queue, "PYTHONPATH": str(ROOT)}
            with open(tmp_path / "worker.log", "w") as log:
                subprocess.run([sys.executable, "-m", "jobs", "--burst", "--log-level", "INFO"], cwd=ROOT, env=env,
                               stderr=log, check=True, timeout=120)
            # Before anyone polls the job: the worker recorded it, and every API process shows it.
            seen = [_histogram(c.get("/metrics").text, "spectra", "finished") for c in (client, other)]
            # A computation of the API process itself (a small synchronous request) joins the same histogram.
            kernels_body = {"x": x.tolist(), "model": {"depth": 2, "activation": "relu"}}
            assert client.post("/v1/kernels", json=kernels_body).status_code == 200
            kernels = _histogram(other.get("/metrics").text, "kernels", "finished")
            assert wait_for_job(client, job_id)["status"] == "finished"
            again = _histogram(client.get("/metrics").text, "spectra", "finished")
    lines = _json_lines(tmp_path / "worker.log")
    job = _job_lines(lines, job_id)
    assert {line["request_id"] for line in job} == {"req-redis-9"}, job
    ended = [line for line in job if line.get("status") == "finished"]
    assert len(ended) == 1 and ended[0]["op"] == "spectra", job
    assert any(line["logger"].startswith("rq.") for line in lines), "RQ's own lines are JSON too"
    seconds = ended[0]["seconds"]
    expected = {floatToGoString(b): float(seconds <= b) for b in BUCKETS}
    for histogram in seen:
        assert histogram["count"] == 1 and abs(histogram["sum"] - seconds) <= 2e-6, histogram
        assert {le: histogram[le] for le in expected} == expected and histogram["+Inf"] == 1, histogram
    assert seen[0] == seen[1] and again == seen[0], "every API process shows the same runs, each once"
    assert kernels["count"] == 1 and kernels["+Inf"] == 1, kernels
