"""Job webhooks in Redis mode: real redis-server (the run's own), two real workers (``python -m jobs``)
whose delivery processes both watch the pending webhooks, and a real HTTP receiver that fails the
first delivery. Each webhook is delivered once per run (one of the two processes takes it), signed,
retried, and recorded where the API reads it (the job resource, /metrics)."""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _service_support import ntk_depth2_unit, relu_model, unit_rows, wait_for_job
from _webhook_support import SECRET, WEBHOOK_SETTINGS, Receiver, metric, wait_for_callback, webhook_env
from _worker_process import start_worker, stop_worker, wait_registered
from eoc_ntk.webhooks import SIGNATURE_HEADER, verify
from service.app import create_app
from service.config import Settings

pytestmark = pytest.mark.redis

QUEUE = f"eoc-ntk-webhooks-test-{os.getpid()}"


@pytest.fixture(scope="module")
def workers(redis_conn, redis_test_url):
    names = [f"eoc-ntk-webhooks-{os.getpid()}-{i}" for i in range(2)]
    procs = [start_worker(redis_test_url, QUEUE, name, **webhook_env()) for name in names]
    try:
        for proc, name in zip(procs, names, strict=True):
            wait_registered(redis_conn, proc, name)
        yield procs
    finally:
        with ThreadPoolExecutor(len(procs)) as pool:  # both stop at once
            list(pool.map(stop_worker, procs))


@pytest.fixture(scope="module")
def client(workers, redis_test_url):
    with TestClient(create_app(Settings(redis_url=redis_test_url, queue_name=QUEUE, **WEBHOOK_SETTINGS))) as c:
        yield c


def test_a_worker_delivers_once_after_a_failed_first_attempt(client):
    u = unit_rows(9, 3, seed=51)
    with Receiver({"/hook": [500, 200]}) as rx:
        r = client.post("/v1/spectra", json={"x": u.tolist(), "callback_url": rx.url("/hook"),
                                             "model": {"depth": 2, "activation": {"a": 0.5, "b": 0.5}}})
        assert r.status_code == 202, r.text
        first, second = rx.wait("/hook", 2)
        job = wait_for_callback(client, r.json()["job_id"], 2)
        time.sleep(0.3)  # both delivery processes had time to look again
        assert len(rx.at("/hook")) == 2
    for d in (first, second):
        assert verify(d.body, d.headers[SIGNATURE_HEADER], SECRET)
    body = json.loads(second.body)
    assert body["status"] == "finished" and body["callback"]["last_status"] == 500
    np.testing.assert_allclose(body["result"]["eigenvalues"], np.linalg.eigvalsh(ntk_depth2_unit(u) / 9),
                               rtol=1e-10)
    assert job["callback"]["attempts"] == 2 and job["callback"]["last_status"] == 200
    assert job["callback"]["delivered_at"] is not None
    text = client.get("/metrics").text  # counted by a worker's process, read from Redis by the API
    assert metric(text, "eoc_ntk_webhook_deliveries_total", outcome="delivered") == 1
    assert metric(text, "eoc_ntk_webhook_deliveries_total", outcome="retry") == 1


def test_a_cached_answer_asked_with_a_callback_is_delivered(client):
    u = unit_rows(6, 3, seed=52)
    body = {"x": u.tolist(), "model": relu_model(2)}
    done = wait_for_job(client, client.post("/v1/spectra", json=body,
                                            headers={"Prefer": "respond-async"}).json()["job_id"])
    with Receiver({"/hit": [200]}) as rx:
        hit = client.post("/v1/spectra", json={**body, "callback_url": rx.url("/hit")})
        assert hit.status_code == 202 and hit.json()["status"] == "finished"
        (delivery,) = rx.wait("/hit", 1)
    verify(delivery.body, delivery.headers[SIGNATURE_HEADER], SECRET)
    assert json.loads(delivery.body)["result"]["eigenvalues"] == done["result"]["eigenvalues"]


def test_a_job_canceled_while_its_worker_runs_it_is_delivered_as_canceled(client):
    x = np.random.default_rng(53).normal(size=(1500, 4))  # seconds of work in the worker
    with Receiver({"/canceled": [200]}) as rx:
        r = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(50),
                                             "callback_url": rx.url("/canceled")})
        assert r.status_code == 202, r.text
        wait_for_job(client, r.json()["job_id"], until=("running",))
        assert client.delete(f"/v1/jobs/{r.json()['job_id']}").status_code == 200
        (delivery,) = rx.wait("/canceled", 1)
        time.sleep(0.3)
        assert len(rx.at("/canceled")) == 1
    verify(delivery.body, delivery.headers[SIGNATURE_HEADER], SECRET)
    body = json.loads(delivery.body)
    assert body["status"] == "canceled" and body["error"]["code"] == "canceled"
