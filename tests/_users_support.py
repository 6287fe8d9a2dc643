"""Helpers of the users'-side tests (CLI, client, plots, web page, reproduce, sklearn).

``eoc_angle_ntk`` is an independent NumPy transcription of docs/math.md §3 (the angle recursion at
the edge of chaos, written from the formulas, not from the core) used as the reference for
numbers; :class:`LiveServer` (the ``live_server`` fixture of conftest.py) runs the API in embedded
mode on a free port in a thread.
"""
from __future__ import annotations

import math
import socket
import threading
import time

import numpy as np


def eoc_angle_ntk(x, depth, a=0.5, b=0.5, x2=None):
    """NTK ``K(x, x2)`` at the EOC: ``sqrt(q q') theta_l(alpha_1)``, plus the last angles ``alpha_l``.

    docs/math.md §3: ``rho_{k+1} = cos(alpha_k) + Delta (2/pi) g(alpha_k)``,
    ``rho_dot_{k+1} = 1 - 2 Delta alpha_k / pi``,
    ``theta_1 = cos(alpha_1)``, ``theta_{k+1} = rho_{k+1} + theta_k rho_dot_{k+1}``, ``q = |x|^2 / ((a^2+b^2) m0)``.
    """
    x = np.asarray(x, float)
    x2 = x if x2 is None else np.asarray(x2, float)
    delta = b * b / (a * a + b * b)
    nx, n2 = np.linalg.norm(x, axis=1), np.linalg.norm(x2, axis=1)
    cos = np.clip((x @ x2.T) / np.outer(nx, n2), -1.0, 1.0)
    alpha = np.arccos(cos)
    if x2 is x:
        np.fill_diagonal(alpha, 0.0)
    theta = np.cos(alpha)
    for _ in range(depth - 1):
        g = np.sin(alpha) - alpha * np.cos(alpha)
        rho = np.clip(np.cos(alpha) + delta * (2 / math.pi) * g, -1.0, 1.0)
        theta = rho + theta * (1 - 2 * delta * alpha / math.pi)
        alpha = np.arccos(rho)
    m0 = x.shape[1]
    q, q2 = nx ** 2 / ((a * a + b * b) * m0), n2 ** 2 / ((a * a + b * b) * m0)
    return np.sqrt(np.outer(q, q2)) * theta, alpha


def cond_of(k):
    """Condition number of ``K/n`` by numpy's eigvalsh."""
    eig = np.linalg.eigvalsh(k / len(k))
    return eig[-1] / eig[0]


def small_data(n=12, m0=16, seed=3):
    """Points in general position with n < m0 (every kernel here is non-singular)."""
    return np.random.default_rng(seed).normal(size=(n, m0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, settings=None):
        import uvicorn

        from service.app import create_app
        from service.config import Settings

        self.app = create_app(settings or Settings(redis_url=None))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
