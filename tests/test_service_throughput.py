"""Issue 18: repeated answers served from their stored bytes.

- a cached answer equals the first answer byte for byte except in its ``cache`` field (GET and
  POST, a finished job's result, and per API key: a key's first answer is a "miss" with the
  same bytes);
- ETag (the content hash of the answer without ``cache``), ``If-None-Match`` -> 304,
  ``Cache-Control: private, max-age``;
- ``python -m service --workers 2`` in Redis mode serves hits from both processes (a real
  private redis-server, two processes: the access log lines carry each process's pid);
- ``--workers 2`` is refused in embedded mode.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import eoc_ntk
from _private_redis import free_port, redis_or_skip
from _service_support import ApiProcess, relu_model, wait_for_job
from service.app import create_app
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
ASYNC = {"Prefer": "respond-async"}
HIT, MISS = b',"cache":"hit"}', b',"cache":"miss"}'


def _without_cache(body: bytes) -> bytes:
    """The bytes of an answer before its ``cache`` field (which the API puts last)."""
    for tail in (HIT, MISS):
        if body.endswith(tail):
            return body[: -len(tail)]
    raise AssertionError(f"the answer does not end with its cache field: ...{body[-60:]!r}")


def _etag(body: bytes) -> str:
    """The documented ETag: the BLAKE2b-128 content hash of the answer without ``cache``, weak."""
    return 'W/"' + hashlib.blake2b(_without_cache(body) + b"}", digest_size=16).hexdigest() + '"'


@pytest.fixture()
def data():
    return np.random.default_rng(18).normal(size=(30, 4))


def _reference_eigenvalues(x: np.ndarray, depth: int) -> np.ndarray:
    k = eoc_ntk.kernel(x, depth=depth, a=0.5, b=0.5)
    return np.linalg.eigvalsh(k / x.shape[0])


def test_cached_answers_equal_the_first_byte_for_byte_except_cache(data):
    with TestClient(create_app(Settings(redis_url=None))) as client:
        ds = client.post("/v1/datasets", json={"x": data.tolist()}).json()["dataset_id"]
        body = {"dataset_id": ds, "model": relu_model(4)}
        first = client.post("/v1/spectra", json=body)
        assert first.status_code == 200 and first.content.endswith(MISS)
        np.testing.assert_allclose(first.json()["eigenvalues"], _reference_eigenvalues(data, 4), rtol=1e-9, atol=1e-12)
        again = client.post("/v1/spectra", json=body)
        by_get = client.get("/v1/spectra", params={"dataset_id": ds, "depth": 4, "activation": "relu"})
        inline = client.post("/v1/spectra", json={"x": data.tolist(), "model": relu_model(4)})
        for later in (again, by_get, inline):
            assert later.status_code == 200 and later.content.endswith(HIT)
            assert _without_cache(later.content) == _without_cache(first.content)
        # A finished job's result is the same rendered answer ("cache": "miss" in a job).
        job_id = client.post("/v1/spectra", json={"dataset_id": ds, "model": relu_model(5)},
                             headers=ASYNC).json()["job_id"]
        wait_for_job(client, job_id)
        job = client.get(f"/v1/jobs/{job_id}").content
        hit = client.get("/v1/spectra", params={"dataset_id": ds, "depth": 5, "a": 0.5, "b": 0.5}).content
        assert job.endswith(b',"result":' + _without_cache(hit) + MISS[:-1] + b"}}")
        np.testing.assert_allclose(json.loads(hit)["eigenvalues"], _reference_eigenvalues(data, 5), rtol=1e-9,
                                   atol=1e-12)


def test_with_api_keys_a_keys_first_answer_is_a_miss_with_the_same_bytes(data):
    with TestClient(create_app(Settings(redis_url=None, api_keys="k1,k2"))) as client:
        k1, k2 = {"X-API-Key": "k1"}, {"X-API-Key": "k2"}
        ds = client.post("/v1/datasets", json={"x": data.tolist()}, headers=k1).json()["dataset_id"]
        body = {"dataset_id": ds, "model": relu_model(3)}
        query = {"dataset_id": ds, "depth": 3, "activation": "relu"}
        first = client.post("/v1/spectra", json=body, headers=k1).content
        assert client.get("/v1/spectra", params=query, headers=k1).content.endswith(HIT)
        assert client.get("/v1/spectra", params=query, headers=k2).status_code == 404  # k2 has not asked
        assert client.post("/v1/spectra", json=body, headers=k2).status_code == 404  # nor may it see the data
        client.post("/v1/datasets", json={"x": data.tolist()}, headers=k2)  # now k2 has the data too
        assert client.get("/v1/spectra", params=query, headers=k2).status_code == 404  # but has not asked yet
        k2_first = client.post("/v1/spectra", json=body, headers=k2).content
        assert k2_first.endswith(MISS) and _without_cache(k2_first) == _without_cache(first)
        k2_again = client.get("/v1/spectra", params=query, headers=k2)
        assert k2_again.content.endswith(HIT) and _without_cache(k2_again.content) == _without_cache(first)
        assert "X-API-Key" in k2_again.headers["vary"]


def test_etag_if_none_match_and_cache_control(data):
    settings = Settings(redis_url=None, cache_ttl=1234, result_ttl=567)
    with TestClient(create_app(settings)) as client:
        ds = client.post("/v1/datasets", json={"x": data.tolist()}).json()["dataset_id"]
        first = client.post("/v1/spectra", json={"dataset_id": ds, "model": relu_model(3)})
        query = {"dataset_id": ds, "depth": 3, "a": 0.5, "b": 0.5}
        hit = client.get("/v1/spectra", params=query)
        etag = _etag(hit.content)
        assert hit.headers["etag"] == etag == first.headers["etag"] == _etag(first.content)
        assert hit.headers["cache-control"] == "private, max-age=1234"
        for header in (etag, f'W/"other", {etag}', etag.removeprefix("W/"), "*"):
            not_modified = client.get("/v1/spectra", params=query, headers={"If-None-Match": header})
            assert not_modified.status_code == 304 and not_modified.content == b"", header
            assert not_modified.headers["etag"] == etag
        changed = client.get("/v1/spectra", params=query, headers={"If-None-Match": 'W/"0123456789abcdef"'})
        assert changed.status_code == 200 and changed.content == hit.content
        # Another model: another result, another ETag.
        client.post("/v1/spectra", json={"dataset_id": ds, "model": relu_model(4)})
        other = client.get("/v1/spectra", params={**query, "depth": 4})
        assert other.headers["etag"] == _etag(other.content) != etag
        # A finished job: its own ETag (a hash of its whole answer), 304, cached; a queued one is not.
        job_id = client.post("/v1/spectra", json={"dataset_id": ds, "model": relu_model(6)},
                             headers=ASYNC).json()["job_id"]
        wait_for_job(client, job_id)
        job = client.get(f"/v1/jobs/{job_id}")
        job_etag = 'W/"' + hashlib.blake2b(job.content, digest_size=16).hexdigest() + '"'
        assert job.headers["etag"] == job_etag and job.headers["cache-control"] == "private, max-age=567"
        assert client.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": job_etag}).status_code == 304


def test_workers_are_refused_in_embedded_mode():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    out = subprocess.run([sys.executable, "-m", "service", "--workers", "2", "--port", str(free_port())],
                         cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "needs Redis mode" in out.stderr and "REDIS_URL" in out.stderr


@pytest.mark.redis
def test_two_api_processes_in_redis_mode_both_serve_hits(redis_test_url, tmp_path, data):
    conn = redis_or_skip(redis_test_url)
    conn.flushdb()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_test_url,
           "EOC_NTK_QUEUE_NAME": f"eoc-ntk-test-throughput-{os.getpid()}"}
    try:
        with open(tmp_path / "api.log", "wb") as log, ApiProcess(env, "--workers", "2", log=log) as api:
            url = api.url
            first = httpx.post(url + "/v1/spectra", json={"x": data.tolist(), "model": relu_model(3)}, timeout=60)
            assert first.status_code == 200, first.text
            query = {"dataset_id": first.json()["dataset_id"], "depth": 3, "a": 0.5, "b": 0.5}

            def hit(_):  # a new connection each time, so that either process may accept it
                r = httpx.get(url + "/v1/spectra", params=query, timeout=30)
                return r.status_code, r.content

            pids: set[int] = set()
            deadline = time.monotonic() + 60
            while len(pids) < 2 and time.monotonic() < deadline:
                with ThreadPoolExecutor(8) as pool:
                    answers = list(pool.map(hit, range(64)))
                assert all(status == 200 and body.endswith(HIT)
                           and _without_cache(body) == _without_cache(first.content) for status, body in answers)
                time.sleep(0.5)  # let the access lines reach the log
                lines = [json.loads(line) for line in (tmp_path / "api.log").read_text().splitlines()
                         if line.startswith("{")]
                pids = {line["pid"] for line in lines if line.get("route") == "/v1/spectra"
                        and line.get("method") == "GET" and line.get("status") == 200}
            assert len(pids) == 2, f"hits answered by the processes {pids}"
            assert api.proc.pid not in pids  # the supervisor does not serve; its two workers do
    finally:
        conn.flushdb()
