"""A restart of Redis keeps the datasets, the finished jobs and the cached results (the production
compose's Redis), outside Docker.

A real redis-server runs with the persistence options of ``docker-compose.yml``'s ``redis`` service
(read from the file: AOF, fsync every second, its memory policy) and a password; the API
(``python -m service``, Redis mode) and a real worker (``eoc-ntk worker``) reach it by a
``REDIS_URL`` that carries the password. After an upload, a finished job and a cached result,
redis-server is shut down (SIGTERM: Redis's own shutdown) and started again on the same folder
and port: the same API and worker, reconnected, still serve the dataset, the job and its result,
and answer the cached result as a hit. The numbers are checked against an independent transcription
of the recursion (``_users_support.eoc_angle_ntk``).
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import yaml

from _private_redis import own_redis_server
from _service_support import ApiProcess, wait_for_job
from _users_support import cond_of, eoc_angle_ntk, small_data
from _worker_process import start_worker, stop_worker, wait_registered

pytestmark = [pytest.mark.redis, pytest.mark.slow]  # two servers' and a worker's starts: about 10 s

ROOT = Path(__file__).resolve().parent.parent


def _compose_persistence() -> tuple[str, ...]:
    """The ``redis`` service's options of docker-compose.yml but its folder and password (the test's own)."""
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["redis"]["command"]
    pairs = list(zip(command[1::2], command[2::2], strict=True))
    assert ("--appendonly", "yes") in pairs and ("--appendfsync", "everysec") in pairs, command
    return tuple(part for flag, value in pairs if flag not in ("--dir", "--requirepass") for part in (flag, value))


def _until_ok(get, deadline_s: float = 30.0) -> httpx.Response:
    """``get()`` until it answers 200 (the API and the worker reconnect by themselves after a restart)."""
    deadline = time.monotonic() + deadline_s
    while True:
        r = get()
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_a_redis_restart_keeps_datasets_finished_jobs_and_cached_results(tmp_path):
    password = secrets.token_hex(16)
    x = small_data(n=20, m0=24)
    reference = cond_of(eoc_angle_ntk(x, 5, 0.0, 1.0)[0])  # abs: a = 0, b = 1
    queue = f"eoc-ntk-persistence-{os.getpid()}"
    with own_redis_server(options=_compose_persistence(), password=password) as server:
        assert "@" in server.url and password in server.url
        env = {k: v for k, v in os.environ.items() if not k.startswith("EOC_NTK_")}
        env.update(REDIS_URL=server.url, EOC_NTK_QUEUE_NAME=queue, PYTHONPATH=str(ROOT))
        worker = start_worker(server.url, queue, f"persistence-{os.getpid()}")
        try:
            with open(tmp_path / "api.log", "w+b") as log, ApiProcess(env, log=log) as api, \
                    httpx.Client(base_url=api.url, timeout=30) as client:
                wait_registered(redis.Redis.from_url(server.url), worker, f"persistence-{os.getpid()}")
                dataset_id = client.post("/v1/datasets", json={"x": x.tolist()}).json()["dataset_id"]
                body = {"dataset_id": dataset_id, "model": {"depth": 5, "activation": "abs"}}
                job_id = client.post("/v1/spectra", json=body, headers={"Prefer": "respond-async"}).json()["job_id"]
                finished = wait_for_job(client, job_id)
                assert finished["status"] == "finished", finished
                np.testing.assert_allclose(finished["result"]["condition_number"], reference, rtol=1e-7)
                query = {"dataset_id": dataset_id, "depth": 5, "activation": "abs"}
                assert client.get("/v1/spectra", params=query).json()["cache"] == "hit"

                server.stop()
                assert client.get("/readyz").status_code == 503  # Redis is really gone
                server.start()  # same port, same folder: the append-only file is read back

                dataset = _until_ok(lambda: client.get(f"/v1/datasets/{dataset_id}"))
                assert dataset.status_code == 200 and dataset.json()["n"] == 20, dataset.text
                job = _until_ok(lambda: client.get(f"/v1/jobs/{job_id}")).json()
                assert job["status"] == "finished" and job["result"] == finished["result"], job
                cached = _until_ok(lambda: client.get("/v1/spectra", params=query)).json()
                assert cached["cache"] == "hit" and cached["condition_number"] == finished["result"]["condition_number"]
                again = client.post("/v1/spectra", json=body).json()
                assert again["cache"] == "hit" and again["condition_number"] == cached["condition_number"]
        finally:
            stop_worker(worker)
        assert any(path.name.startswith("appendonly") for path in Path(server.dir).rglob("*")), \
            "the data came back from the append-only file"
