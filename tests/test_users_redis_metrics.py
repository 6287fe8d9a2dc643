"""/metrics in Redis mode, against a real Redis (the run's own redis-server, or REDIS_TEST_URL;
flushed) and a real worker in burst mode.

Queue depth is read from the RQ queue; RQ jobs' durations are recorded when the API first
reports them ended.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from _private_redis import redis_or_skip
from _service_support import wait_for_job
from _users_support import cond_of, eoc_angle_ntk, small_data
from service.app import create_app
from service.config import Settings

pytestmark = pytest.mark.redis

QUEUE = f"eoc-ntk-users-test-{os.getpid()}"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_conn(redis_test_url):
    conn = redis_or_skip(redis_test_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


def _gauge(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_queue_depth_and_rq_job_durations(redis_conn, redis_test_url):
    settings = Settings(redis_url=redis_test_url, queue_name=QUEUE)
    x = small_data()
    with TestClient(create_app(settings)) as client:
        body = {"x": x.tolist(), "depths": [3, 7], "activations": [{"name": "abs"}]}
        job_id = client.post("/v1/sweeps", json=body, headers={"Prefer": "respond-async"}).json()["job_id"]
        other = client.post("/v1/spectra",
                            json={"x": x.tolist(), "model": {"depth": 4, "activation": {"name": "relu"}}},
                            headers={"Prefer": "respond-async"}).json()["job_id"]
        assert _gauge(client.get("/metrics").text, "eoc_ntk_queue_depth") == 2  # no worker yet
        env = {**os.environ, "REDIS_URL": redis_test_url, "EOC_NTK_QUEUE_NAME": QUEUE, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "jobs", "--burst", "--log-level", "WARNING"], cwd=ROOT, env=env,
                       check=True, timeout=120)
        result = wait_for_job(client, job_id)["result"]
        wait_for_job(client, other)
        np.testing.assert_allclose(result["results"][0]["condition_number"],
                                   [cond_of(eoc_angle_ntk(x, d, 0.0, 1.0)[0]) for d in (3, 7)], rtol=1e-7)
        text = client.get("/metrics").text
        assert _gauge(text, "eoc_ntk_queue_depth") == 0
        assert 'eoc_ntk_job_duration_seconds_count{op="sweeps",status="finished"} 1.0' in text
        assert 'eoc_ntk_job_duration_seconds_count{op="spectra",status="finished"} 1.0' in text
        wait_for_job(client, job_id)  # seen again: not counted twice
        assert 'eoc_ntk_job_duration_seconds_count{op="sweeps",status="finished"} 1.0' in client.get("/metrics").text
