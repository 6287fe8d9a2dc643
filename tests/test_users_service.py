"""Plots served by the API (PNG, SVG, of a job), the web page, /metrics, request ids and JSON logs."""
from __future__ import annotations

import json
import logging

import numpy as np
from fastapi.testclient import TestClient

from _service_support import wait_for_job
from _users_support import small_data
from service.app import create_app
from service.config import Settings
from service.logs import JsonFormatter, RequestIdFilter


def _sweep_body(x, depths=(2, 5), acts=("relu", "abs")):
    return {"x": np.asarray(x).tolist(), "depths": list(depths), "activations": [{"name": a} for a in acts]}


def test_plots_as_png_and_svg(client):
    body = _sweep_body(small_data())
    r = client.post("/v1/plots/sweep", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    r = client.post("/v1/plots/sweep?format=svg", json=body)
    assert r.headers["content-type"].startswith("image/svg+xml") and b"<svg" in r.content[:400]
    assert b"limit" in r.content  # the depth limit is drawn and labelled
    r = client.post("/v1/plots/spectrum",
                    json={"x": small_data().tolist(), "model": {"depth": 3, "activation": {"name": "relu"}}})
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    r = client.post("/v1/plots/sweep?format=gif", json=body)
    assert r.status_code == 422


def test_plots_as_pdf_and_print_resolution_png(client):
    body = _sweep_body(small_data())
    r = client.post("/v1/plots/sweep?format=pdf", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content[:5] == b"%PDF-" and b"%%EOF" in r.content[-64:]
    png = client.post("/v1/plots/sweep", json=body).content
    assert int.from_bytes(png[16:20], "big") >= 1200  # 300 dpi at the default 7.5 inches
    r = client.post("/v1/plots/sweep?format=svg", json=body)
    assert b"<text" in r.content and b"condition number vs depth" in r.content  # text kept as text


def test_plot_of_a_job(client):
    body = _sweep_body(small_data(seed=9), depths=(3, 4))
    r = client.post("/v1/plots/sweep?format=svg", json=body, headers={"Prefer": "respond-async"})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert wait_for_job(client, job_id)["status"] == "finished"
    r = client.get(f"/v1/jobs/{job_id}/plot?format=svg")
    assert r.status_code == 200 and b"<svg" in r.content[:400]
    k = client.post("/v1/kernels", headers={"Prefer": "respond-async"},
                    json={"x": small_data().tolist(), "model": {"depth": 2, "activation": {"name": "relu"}}})
    kid = k.json()["job_id"]
    wait_for_job(client, kid)
    assert client.get(f"/v1/jobs/{kid}/plot").status_code == 406
    assert client.get("/v1/jobs/spectra-" + "0" * 32 + "/plot").status_code == 404


def test_web_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for marker in ('id="file"', 'id="paste"', 'id="depths"', 'id="progress"', 'id="plot"', "/v1/plots/sweep",
                   'id="eig-depth"', "/v1/plots/eigenvalues"):
        assert marker in r.text


def _samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_count_requests_cache_and_jobs(client):
    body = {"x": small_data(seed=11).tolist(), "model": {"depth": 4, "activation": {"name": "abs"}}}
    before = _samples(client.get("/metrics").text, "eoc_ntk_cache_requests_total")
    assert client.post("/v1/spectra", json=body).json()["cache"] == "miss"
    assert client.post("/v1/spectra", json=body).json()["cache"] == "hit"
    text = client.get("/metrics").text
    after = _samples(text, "eoc_ntk_cache_requests_total")
    for result in ("hit", "miss"):
        name = f'eoc_ntk_cache_requests_total{{result="{result}"}}'
        assert after[name] - before[name] == 1, result
    latency = _samples(text, "eoc_ntk_http_request_duration_seconds_count")
    assert latency['eoc_ntk_http_request_duration_seconds_count{method="POST",route="/v1/spectra",status="200"}'] >= 2
    jobs = _samples(text, "eoc_ntk_job_duration_seconds_count")
    assert jobs.get('eoc_ntk_job_duration_seconds_count{op="spectra",status="finished"}', 0) >= 1
    assert "eoc_ntk_queue_depth 0.0" in text and "eoc_ntk_jobs_running" in text
    client.get("/v1/jobs/spectra-" + "1" * 32)
    assert 'route="/v1/jobs/{job_id}"' in client.get("/metrics").text  # templates, not ids


def test_request_id_is_echoed_or_made(client):
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 32
    assert client.get("/nowhere").headers["x-request-id"]


def test_access_logs_are_json_with_the_request_id(client):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger("eoc_ntk.access")
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        client.post("/v1/spectra", json={"x": [[1, 2]]}, headers={"X-Request-ID": "req-42"})
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == "req-42" and line["route"] == "/v1/spectra"
    assert line["status"] == 422 and line["method"] == "POST" and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["time"].endswith("Z")


def test_plots_follow_the_api_keys():
    with TestClient(create_app(Settings(redis_url=None, api_keys="key-a,key-b"))) as c:
        body = _sweep_body(small_data(seed=13), depths=(2, 3))
        assert c.post("/v1/plots/sweep", json=body).status_code == 401
        r = c.post("/v1/plots/sweep", json=body, headers={"X-API-Key": "key-a", "Prefer": "respond-async"})
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        a = {"X-API-Key": "key-a"}
        c.headers.update(a)
        wait_for_job(c, job_id)
        assert c.get(f"/v1/jobs/{job_id}/plot", headers=a).status_code == 200
        assert c.get(f"/v1/jobs/{job_id}/plot", headers={"X-API-Key": "key-b"}).status_code == 404
        assert c.get("/metrics").status_code == 200 and c.get("/").status_code == 200


def test_served_logs_are_json_lines_with_the_request_id(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    err = open(tmp_path / "stderr", "w+b")
    proc = subprocess.Popen([sys.executable, "-m", "eoc_ntk.cli", "serve", "--port", str(port)],
                            stderr=err, stdout=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "trace-7"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
                time.sleep(0.1)
        assert r.headers["x-request-id"] == "trace-7"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    lines = [json.loads(line) for line in (tmp_path / "stderr").read_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "eoc_ntk.access"]
    assert access and access[0]["request_id"] == "trace-7" and access[0]["status"] == 200
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)


def test_metrics_answer_while_redis_is_down():
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue_name="eoc-ntk-users-nowhere")
    with TestClient(create_app(settings)) as c:
        r = c.get("/metrics")
        assert r.status_code == 200
        assert "eoc_ntk_http_request_duration_seconds" in r.text
        assert "\neoc_ntk_queue_depth " not in r.text  # unknown, not a false 0


def test_plot_size_and_dpi_in_the_query(client):
    import struct

    body = _sweep_body(small_data(seed=41), depths=(1, 2, 5, 10, 50))
    r = client.post("/v1/plots/sweep?width=4&height=2.5&dpi=50", json=body)
    assert r.status_code == 200, r.text
    assert struct.unpack(">II", r.content[16:24]) == (200, 125)
    r = client.post("/v1/plots/sweep?dpi=5000", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "dpi"
    svg = client.post("/v1/plots/sweep?format=svg", json=body).content
    assert b"depth limit" in svg and svg.count(b"depth limit") == 1  # ReLU and abs share the limit: once


def test_eigenvalue_plot_of_one_depth_draws_cached_spectra_only(client):
    """GET /v1/plots/eigenvalues (the page's figure of a depth picked in the table): the cached
    spectra of every activation asked at that depth, one curve each; 404 (never computes) otherwise."""
    import struct

    ds = client.post("/v1/datasets", json={"x": small_data(seed=43).tolist()}).json()["dataset_id"]
    q = {"dataset_id": ds, "depth": 3, "activations": "ReLU;leaky_relu:0.1", "format": "svg"}
    r = client.get("/v1/plots/eigenvalues", params=q)
    assert r.status_code == 404 and r.json()["error"]["field"] == "activations.0"  # nothing computed
    client.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": 3, "activation": "relu"}}).raise_for_status()
    r = client.get("/v1/plots/eigenvalues", params=q)
    assert r.status_code == 404 and r.json()["error"]["field"] == "activations.1"  # the second is named
    assert "leaky ReLU 0.1" in r.json()["error"]["message"] and "POST /v1/spectra" in r.json()["error"]["message"]
    client.post("/v1/spectra",
                json={"dataset_id": ds, "model": {"depth": 3, "activation": {"name": "leaky_relu", "slope": 0.1}}}
                ).raise_for_status()
    r = client.get("/v1/plots/eigenvalues", params=q)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    svg = r.content.decode()
    assert "eigenvalues of K/n at depth 3" in svg and "ReLU (Δ=0.5)" in svg and "leaky ReLU 0.1" in svg
    assert client.get("/v1/plots/eigenvalues", params={**q, "depth": 4}).status_code == 404  # another depth: not cached
    r = client.get("/v1/plots/eigenvalues", params={**q, "format": "png", "width": 4, "height": 2, "dpi": 50})
    assert r.status_code == 200 and struct.unpack(">II", r.content[16:24]) == (200, 100)
    r = client.get("/v1/plots/eigenvalues", params={**q, "activations": "mish"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "activations"


def test_served_figures_draw_an_activation_in_its_own_colour(client):
    """The API's sweep and dynamics figures: abs in its colour whether alone or beside ReLU, and ReLU's
    colour only where ReLU is drawn (the house style keys colours by activation, not by position)."""
    from eoc_ntk import plots

    abs_colour = plots.activation_style("abs")["color"].lower().encode()
    relu_colour = plots.activation_style("relu")["color"].lower().encode()
    x = small_data(seed=5)
    both = client.post("/v1/plots/sweep?format=svg", json=_sweep_body(x, acts=("relu", "abs"))).content
    alone = client.post("/v1/plots/sweep?format=svg", json=_sweep_body(x, acts=("abs",))).content
    assert abs_colour in both and relu_colour in both
    assert abs_colour in alone and relu_colour not in alone
    dyn = client.post("/v1/plots/dynamics?format=svg", json={
        "x": x.tolist(), "y": np.sign(x[:, 0]).tolist(), "model": {"depth": 3, "activation": "abs"}})
    assert dyn.status_code == 200 and abs_colour in dyn.content and relu_colour not in dyn.content
