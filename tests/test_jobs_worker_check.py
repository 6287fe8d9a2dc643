"""``eoc-ntk worker --check``: the worker's healthcheck, against a private redis-server.

Exit 0 with one line while a worker of this host is registered with a recent heartbeat;
exit 1 with one line before it starts and after it stopped (RQ unregisters a worker that
stops), and when Redis does not answer.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _private_redis import free_port, own_redis_server
from _worker_process import start_worker, stop_worker, wait_registered

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.redis


def check(url: str) -> subprocess.CompletedProcess:
    """``eoc-ntk worker --check`` through the CLI (the plugin path the Docker healthcheck uses)."""
    return subprocess.run([sys.executable, "-m", "eoc_ntk.cli", "worker", "--check", "--redis-url", url],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def server():
    with own_redis_server() as srv:
        yield srv


def test_worker_check_follows_the_worker_of_this_host(server):
    import redis

    before = check(server.url)
    assert before.returncode == 1 and "no worker" in one_line(before.stderr)
    name = "worker-check-test"
    proc = start_worker(server.url, "eoc-ntk-worker-check", name)
    conn = redis.Redis.from_url(server.url)
    try:
        wait_registered(conn, proc, name)
        during = check(server.url)
        assert during.returncode == 0 and name in one_line(during.stdout), during
    finally:
        stop_worker(proc)
        conn.close()
    after = check(server.url)
    assert after.returncode == 1 and "no worker" in one_line(after.stderr)


def test_worker_check_fails_in_one_line_when_redis_does_not_answer():
    down = check(f"redis://127.0.0.1:{free_port()}/0")
    assert down.returncode == 1 and "Redis does not answer" in one_line(down.stderr)
