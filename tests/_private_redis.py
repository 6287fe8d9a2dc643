"""The Redis of a test run: a redis-server of its own, on a free port, in a temporary folder.

No test touches a Redis it did not start (in particular not a Redis of the user on the default port) unless
the user names one explicitly with ``REDIS_TEST_URL`` (a database the tests may flush; every
Redis-mode test module then uses that one database, one module after the other). Otherwise one
private, non-persistent server serves the whole session (``conftest.py``'s ``redis_server``), each
module on a database number of its own (``DATABASES``). Without ``redis-server`` and without
``REDIS_TEST_URL``, the Redis-mode tests (``@pytest.mark.redis``) skip with one line: ``NO_SERVER``.
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

import pytest

TEST_URL_VAR = "REDIS_TEST_URL"
NO_SERVER = ("redis-server is not installed and REDIS_TEST_URL is not set: Redis-mode tests skipped "
             "(apt-get install redis-server, or set REDIS_TEST_URL to a Redis database the tests may flush)")

#: Databases of the session's private server (redis-server's default is 16).
SESSION_DATABASES = 32
# One database of the session's private server per test module, so that their keys never meet.
DATABASES = {
    "test_redis_service": 1,
    "test_users_redis_metrics": 2,
    "test_service_faults": 3,
    "test_service_fuzz": 4,
    "test_service_bad_input": 5,
    "test_service_access": 6,
    "test_bench_load": 7,
    "test_service_learning": 12,
    "test_service_throughput": 13,
    "test_redis_liveness": 8,
    "test_service_hostile": 9,
    "test_redis_dask": 14,
    "test_redis_worker_lifecycle": 11,
    "test_service_shared_jobs": 10,
    "test_service_listings": 15,
    "test_redis_webhooks": 0,
}


def redis_or_skip(url: str):
    """A connection to the Redis at ``url``; the calling test is skipped when none answers."""
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

    def __init__(self, port: int | None = None, options: tuple[str, ...] = (), password: str | None = None):
        """``options``: more ``redis-server`` arguments, e.g. ``("--maxmemory", "1mb")`` or
        ``("--appendonly", "yes")`` (they override the defaults); ``password``: its ``requirepass``."""
        self.port = port or free_port()
        self.options = tuple(options)
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="eoc-ntk-redis-")
        self.proc = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, *self.options, *(("--requirepass", self.password) if self.password else ())],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
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

    def stop(self) -> None:
        """SIGTERM: Redis's own shutdown (it flushes its append-only file, when on, and exits 0)."""
        self.proc.terminate()
        assert self.proc.wait(timeout=30) == 0, "redis-server did not shut down cleanly"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def own_redis_server(port: int | None = None, options: tuple[str, ...] = (),
                     password: str | None = None) -> Iterator[RedisServer]:
    """A redis-server of the calling test alone (it may kill it and start it again on its port),
    closed at the end; the test is skipped without the binary or when the server cannot start."""
    require_redis_server()
    server = RedisServer(port, options, password)
    try:
        server.start()
    except RuntimeError as exc:
        server.close()
        pytest.skip(f"cannot run a redis-server: {exc}")
    try:
        yield server
    finally:
        server.close()


def require_redis_server() -> None:
    """Skip the calling test (with the one ``NO_SERVER`` line) when ``redis-server`` is missing."""
    if shutil.which("redis-server") is None:
        pytest.skip(NO_SERVER)


class SessionRedis:
    """Where the test run's Redis is: the explicit ``REDIS_TEST_URL`` or a private server."""

    def __init__(self, explicit_url: str | None = None, server: RedisServer | None = None):
        self.explicit_url = explicit_url
        self.server = server

    def url(self, module: str) -> str:
        """The Redis URL the test module ``module`` (file stem, e.g. ``"test_redis_service"``) uses."""
        if self.explicit_url:
            return self.explicit_url
        if module not in DATABASES:
            raise KeyError(f"test module {module!r} has no database of its own: add it to DATABASES in "
                           f"tests/_private_redis.py with an unused number (0-{SESSION_DATABASES - 1})")
        return f"redis://127.0.0.1:{self.server.port}/{DATABASES[module]}"


@contextlib.contextmanager
def session_redis() -> Iterator[SessionRedis]:
    """``REDIS_TEST_URL`` when the user set it; else a private redis-server for the whole session,
    stopped and its folder removed at the end; else skip (one line)."""
    explicit = os.environ.get(TEST_URL_VAR)
    if explicit:
        yield SessionRedis(explicit_url=explicit)
        return
    require_redis_server()
    server = RedisServer(options=("--databases", str(SESSION_DATABASES)))
    try:
        server.start()
    except RuntimeError as exc:
        server.close()
        pytest.skip(f"cannot start a private redis-server: {exc}")
    try:
        yield SessionRedis(server=server)
    finally:
        server.close()
