"""Helpers of the service tests: closed-form references (docs/math.md §6), job polling, the API in
embedded mode in-process (:func:`make_client`; the module-scoped fixture ``client`` of
conftest.py uses it), and an API process of a test's own (:class:`ApiProcess`).

The references are written from the formulas, not from the core, so that the service's
numbers are checked independently.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from _private_redis import free_port
from service.app import create_app
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def ntk_depth1(x, x2=None, a=0.5, b=0.5, sigma_w=None, sigma_b=0.0):
    """``Theta_1 = sigma_w^2 <x, x'> / m0 + sigma_b^2`` (EOC: ``sigma_w^2 = 1/(a^2+b^2)``)."""
    x = np.asarray(x, float)
    x2 = x if x2 is None else np.asarray(x2, float)
    sw2 = 1.0 / (a * a + b * b) if sigma_w is None else sigma_w ** 2
    return sw2 * (x @ x2.T) / x.shape[1] + sigma_b ** 2


def theta2(t, delta):
    """Normalised depth-2 NTK of unit inputs at angle ``t`` (docs/math.md §6)."""
    rho2 = math.cos(t) + delta * (2 / math.pi) * (math.sin(t) - t * math.cos(t))
    return rho2 + math.cos(t) * (1 - 2 * delta * t / math.pi)


def ntk_depth2_unit(x, a=0.5, b=0.5):
    """Depth-2 EOC NTK matrix of unit-norm rows ``x``: ``q * theta_2(angle)``."""
    x = np.asarray(x, float)
    delta = b * b / (a * a + b * b)
    q = 1.0 / ((a * a + b * b) * x.shape[1])
    n = len(x)
    k = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            c = float(np.clip(x[i] @ x[j], -1.0, 1.0))
            k[i, j] = q * (2.0 if i == j else theta2(math.acos(c), delta))
    return k


def unit_rows(n, m0, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, m0))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def wait_for_job(client, job_id, timeout=60.0, until=("finished", "failed", "canceled"), headers=None):
    """Poll ``GET /v1/jobs/{job_id}`` (with ``headers``, e.g. an API key) until its status is one of
    ``until``; returns the body."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in until:
            return body
        assert time.monotonic() < deadline, f"job {job_id} still {body['status']} after {timeout}s"
        time.sleep(0.05)


def healthz_seconds(client, count: int = 100) -> list[float]:
    """Seconds of ``count`` consecutive ``GET /healthz`` (each must answer 200), through any client
    with ``get`` (TestClient, httpx.Client)."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        times.append(time.perf_counter() - start)
    return times


def relu_model(depth):
    return {"depth": depth, "activation": {"name": "relu"}}


def make_client(**overrides) -> TestClient:
    """A TestClient of the API in embedded mode, ``Settings(redis_url=None, **overrides)``; enter it
    (``with make_client() as c:``) to run the app's start-up."""
    return TestClient(create_app(Settings(redis_url=None, **overrides)))


class ApiProcess:
    """``python -m service --port P *options`` on a free port, in a session of its own.

    As a context manager: started, then waited for until ``GET probe`` answers 200 (an
    ``AssertionError`` with the end of ``log`` if the process exits or ``timeout`` passes first),
    then stopped on exit (SIGTERM, and SIGKILL to its session after 30 s). ``env`` is the whole
    environment; ``log`` an open binary file for its output (else this process's own).
    """

    def __init__(self, env: dict[str, str], *options: str, log=None, probe: str = "/readyz",
                 timeout: float = 120.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.options, self.log, self.probe, self.timeout = env, options, log, probe, timeout
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ApiProcess":
        self.proc = subprocess.Popen([sys.executable, "-m", "service", "--port", str(self.port), *self.options],
                                     cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + self.probe, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # refused while it starts, 503 while it is not ready
                pass
            alive = self.proc.poll() is None
            assert alive and time.monotonic() < deadline, (
                f"the API {'exited' if not alive else f'was not ready within {self.timeout} s'}"
                + (f"; its log ends: {Path(self.log.name).read_text()[-2000:]}" if self.log else ""))
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __exit__(self, *exc) -> None:
        self.stop()
