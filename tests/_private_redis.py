"""A redis-server of a test module's own, on a free port, without persistence.

Several people's test runs share this machine's Redis on 6379; the tests that flush a database,
count its keys or kill Redis run against a private server instead, so that concurrent runs
cannot disturb each other. Where ``redis-server`` is not installed, or the caller's environment
variable names a Redis explicitly, that URL (a dedicated, flushed database) is used instead.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Iterator


def redis_or_skip(url: str):
    """A connection to the Redis at ``url``; the calling test is skipped when none answers."""
    import pytest
    import redis

    conn = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        conn.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")
    return conn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server (no persistence) that a test may kill and start again on the same port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="eoc-ntk-redis-")
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    conn.ping()
                    return
                except redis.exceptions.RedisError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.05)
        finally:
            conn.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_for_tests(env_var: str, shared_default: str) -> Iterator[str]:
    """The URL of a Redis for one test module: ``$env_var`` if set, else a private server, else
    ``shared_default`` (pytest skips the caller's tests when none answers)."""
    explicit = os.environ.get(env_var)
    if explicit or shutil.which("redis-server") is None:
        yield explicit or shared_default
        return
    server = RedisServer()
    try:
        server.start()
    except RuntimeError:
        server.close()
        yield shared_default
        return
    try:
        yield server.url
    finally:
        server.close()
