"""Shared fixtures for the whole test suite: every fixture used by more than one module lives here.

The numerical core's tests import their references from ``tests/_reference`` (a plain
package next to this file: pytest puts this directory on ``sys.path`` for rootdir-less
test modules, and the insert below keeps that true whatever the import mode).
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed: tests stay deterministic."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def redis_server():
    """The test run's Redis (``tests/_private_redis.py``): a private redis-server on a free port,
    or ``REDIS_TEST_URL`` when set; never a Redis the run did not start unless told."""
    from _private_redis import session_redis

    with session_redis() as server:
        yield server


@pytest.fixture(scope="module")
def redis_test_url(request, redis_server) -> str:
    """The Redis URL of the requesting test module: its own database of the private server."""
    return redis_server.url(request.path.stem)


def pytest_report_header(config) -> str:
    """One line at the top of every run saying which Redis the Redis-mode tests will use."""
    import shutil

    from _private_redis import NO_SERVER, TEST_URL_VAR

    if os.environ.get(TEST_URL_VAR):
        return f"redis: {TEST_URL_VAR}={os.environ[TEST_URL_VAR]} (set by the user; flushed by the tests)"
    if shutil.which("redis-server"):
        return "redis: a private redis-server on a free port, started and stopped by the run"
    return f"redis: {NO_SERVER}"


@pytest.fixture(scope="module")
def redis_conn(redis_test_url):
    """A connection to the requesting module's own database, flushed before and after it (the
    module is skipped when no Redis answers)."""
    from _private_redis import redis_or_skip

    conn = redis_or_skip(redis_test_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture(scope="module")
def client():
    """The API in embedded mode with the default settings, shared by one module's tests (a module
    that needs other settings defines its own ``client``)."""
    from _service_support import make_client

    with make_client() as c:
        yield c


@pytest.fixture(scope="module")
def live_server():
    """The API in embedded mode served by uvicorn on a free port, in a thread of this process."""
    from _users_support import LiveServer

    with LiveServer() as server:
        yield server


@pytest.fixture
def own_redis():
    """A redis-server of the requesting test alone, which it may kill and start again on its port
    (``REDIS_RESTART_PORT`` fixes the port; default: a free one)."""
    from _private_redis import own_redis_server

    with own_redis_server(int(os.environ.get("REDIS_RESTART_PORT", "0")) or None) as server:
        yield server
