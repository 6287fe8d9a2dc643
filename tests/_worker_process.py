"""Real RQ worker subprocesses for the Redis-mode tests (``python -m jobs``, the code behind
``eoc-ntk worker``): start one on a queue of the test run's own, wait until it registers, stop it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_worker(url: str, queue: str, name: str, **env) -> subprocess.Popen:
    """A worker serving ``queue`` on ``url``, in a session of its own (so is its work horse);
    ``env``: extra environment variables, e.g. ``EOC_NTK_JOB_HEARTBEAT_TTL=2``."""
    environ = {**os.environ, "REDIS_URL": url, "EOC_NTK_QUEUE_NAME": queue, "PYTHONPATH": str(ROOT),
               **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, "-m", "jobs", "--name", name, "--log-level", "WARNING"],
                            cwd=ROOT, env=environ, start_new_session=True)


def wait_registered(conn, proc: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    """Wait until the worker ``name`` appears in RQ's worker registry (fail if it exits first)."""
    from rq import Worker

    deadline = time.monotonic() + timeout
    while name not in {w.name for w in Worker.all(connection=conn)}:
        assert proc.poll() is None, "the worker exited at start"
        assert time.monotonic() < deadline, f"the worker did not register within {timeout} s"
        time.sleep(0.1)


def stop_worker(proc: subprocess.Popen) -> None:
    """SIGTERM (RQ finishes its job and stops), then SIGKILL to the whole session after 5 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and its work horse (own session)
            proc.wait(timeout=5)
