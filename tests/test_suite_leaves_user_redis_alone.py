"""A test of the test suite: running the Redis-mode tests leaves a user's Redis untouched.

A "user's Redis" is played by a decoy redis-server on a free port (the real 127.0.0.1:6379 of
this machine belongs to other people): every database of it holds keys, every Redis address the
suite or the code under test could fall back to is pointed at it through the environment
(``REDIS_URL``, ``EOC_NTK_REDIS_URL``, the per-module variables older versions of the suite
read), ``pytest -m redis`` runs in a subprocess, and afterwards every key is still there with its
value and its TTL. A hard-coded ``127.0.0.1:6379`` cannot be redirected that way, so a second
test reads the test sources and refuses one.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from _private_redis import RedisServer, require_redis_server

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATABASES = 16  # redis-server's default number of databases
# Every variable through which a Redis address reaches the tests, the API or a worker.
FALLBACK_VARS = ("REDIS_URL", "EOC_NTK_REDIS_URL", "REDIS_USERS_TEST_URL", "REDIS_FAULTS_URL",
                 "REDIS_FUZZ_URL", "REDIS_BAD_INPUT_URL", "REDIS_LOAD_URL")


def _snapshot(port: int) -> dict:
    """Every key of every database: {(db, key): (type, DUMP of the value, has a TTL)}."""
    import redis

    out = {}
    for db in range(DATABASES):
        r = redis.Redis(port=port, db=db)
        for key in r.keys("*"):
            out[(db, key)] = (r.type(key), r.dump(key), r.ttl(key) > 0)
        r.close()
    return out


def _populate(port: int) -> None:
    """Keys of several types in every database, some under names RQ or the service would use."""
    import redis

    for db in range(DATABASES):
        r = redis.Redis(port=port, db=db)
        r.set("user:string", f"precious-{db}")
        r.set("user:expiring", "x", ex=3600)
        r.hset("user:hash", mapping={"a": "1", "b": str(db)})
        r.rpush("user:list", *[str(i) for i in range(5)])
        r.zadd("rq:workers", {"someone-else": 1.0})
        r.set("eoc-ntk:result:deadbeef", b"\x00user-owned")
        r.close()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the whole `pytest -m redis` runs inside: 5-10 minutes on 2 loaded cores
def test_redis_mode_tests_leave_every_key_of_a_users_redis_untouched(tmp_path):
    require_redis_server()

    decoy = RedisServer()
    decoy.start()
    try:
        _populate(decoy.port)
        before = _snapshot(decoy.port)
        assert len(before) == 6 * DATABASES
        decoy_url = f"redis://127.0.0.1:{decoy.port}/0"
        env = {k: v for k, v in os.environ.items() if k != "REDIS_TEST_URL"}  # nobody told the tests to use one
        env.update({var: decoy_url for var in FALLBACK_VARS})
        report = tmp_path / "report.xml"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "redis", f"--junitxml={report}",
             str(TESTS)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1700, stdin=subprocess.DEVNULL)
        tail = (proc.stdout + proc.stderr)[-4000:]
        # 1: a Redis-mode test failed (the ordinary run reports it); anything else: the run broke.
        assert proc.returncode in (0, 1), tail
        suite = ElementTree.parse(report).getroot().iter("testsuite").__next__()
        ran = int(suite.get("tests")) - int(suite.get("skipped"))
        assert ran > 0, "no Redis-mode test ran, so this check proved nothing\n" + tail
        after = _snapshot(decoy.port)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, f"the Redis-mode tests changed a user's keys: {changed}"
    finally:
        decoy.close()


# The literal, split so that this file does not trip its own check.
_DEFAULT_REDIS = re.compile(r"(127\.0\.0\.1|localhost)" + ":" + "6379")
_DEFAULT_CLIENT = re.compile(r"\bRedis\(\s*\)")  # redis.Redis() connects to localhost:6379


def test_no_test_names_the_default_redis_address():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            if _DEFAULT_REDIS.search(line) or _DEFAULT_CLIENT.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, ("tests must use the run's own Redis (the redis_test_url fixture), not the default "
                           "address:\n" + "\n".join(offenders))
