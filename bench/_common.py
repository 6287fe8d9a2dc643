"""Shared helpers of the benchmark scripts: data sets, timing, markdown rows, a service to measure.

Every figure is a ratio of timings taken in one run, each timing the best of ``repeat``
runs (the machine is shared and noisy, so the minimum is the most stable estimate).
"""
from __future__ import annotations

import datetime
import gc
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATASETS = ("uniform", "gaussian", "mnistlike")


def make_data(kind: str, n: int, m0: int, seed: int = 0) -> np.ndarray:
    """``uniform``: i.i.d. U[0,1]^m0 (like raw MNIST pixels, all in one orthant);
    ``gaussian``: i.i.d. N(0, I_m0); ``mnistlike``: sparse non-negative rows (about 20 %
    non-zeros in [0.5, 1], the rest 0), closer to real digit images."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.random((n, m0))
    if kind == "gaussian":
        return rng.standard_normal((n, m0))
    if kind == "mnistlike":
        x = rng.uniform(0.5, 1.0, (n, m0))
        x[rng.random((n, m0)) > 0.2] = 0.0
        x[:, 0] += 1e-3  # no zero rows
        return x
    raise ValueError(f"unknown data kind {kind!r}; expected one of {DATASETS}")


def timed(fn, setup=None) -> tuple[float, object]:
    """Wall time of one call of ``fn()`` (after ``setup()`` and a garbage collection, untimed), and its result."""
    if setup is not None:
        setup()
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_of(fn, repeat: int = 3, setup=None) -> tuple[float, object]:
    """Best wall time over ``repeat`` calls of ``fn()`` (``setup()`` untimed before each), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        if setup is not None:
            setup()
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def machine_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores, load {load:.1f}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}")


def row(*cells) -> str:
    """One markdown table row."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def emit(figure: str, target: str, measured: str, command: str) -> None:
    print(row(figure, target, f"{measured} ({machine_note()})", f"`{command}`"), flush=True)


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_processes(procs, timeout: float = 15.0) -> None:
    """SIGTERM every process still running, then wait for each; one that outlives ``timeout`` is
    killed with its session (each was started with ``start_new_session=True``)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


class ServiceProcesses:
    """An API (``python -m service`` on a free port) and ``workers`` RQ workers (``python -m jobs``).

    ``env`` is the whole environment of both (``REDIS_URL`` set for Redis mode, unset for
    embedded mode); ``api_options`` are more options of the API (``--workers 2``, ``--log-level``);
    the output of both goes to ``log`` (an open binary file; the workers' stdout then to
    ``/dev/null``), or to this process's own without it. Each process is a session of its own,
    so that :meth:`stop` can kill what a process started.
    """

    def __init__(self, env: dict[str, str], *, api_options=(), workers: int = 0, name: str = "bench", log=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.api = subprocess.Popen([sys.executable, "-m", "service", "--port", str(self.port), *api_options],
                                    cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
        self.workers = [subprocess.Popen(
            [sys.executable, "-m", "jobs", "--name", f"{name}-{os.getpid()}-{i}", "--log-level", "WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL if log else None, stderr=log, start_new_session=True)
            for i in range(workers)]

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until ``GET /readyz`` answers 200; ``SystemExit`` when the API exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # refused while it starts, or 503 while it is not ready
                pass
            if self.api.poll() is not None:
                raise SystemExit("the API exited at start" + (f" (see {self.log.name})" if self.log else ""))
            time.sleep(0.2)
        raise SystemExit(f"the API was not ready within {timeout} s")

    def stop(self) -> None:
        """Stop the workers, then the API."""
        stop_processes([*self.workers, self.api])
