"""A tiny run of the load test (bench/load.py): a few clients for a few seconds against an API
it starts itself, in embedded mode and, when Redis answers, in Redis mode with a real worker
(on the run's own redis-server, or REDIS_TEST_URL). The full run (50 clients, 60 s) is by hand: see bench/README.md."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, *args) -> dict:
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--clients", "4", "--duration", "3",
                           "--drain", "60", "--json", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def _check(result: dict) -> None:
    assert result["server_errors"] == 0, result["errors"]
    assert set(result["jobs"]) <= {"finished"}, result["jobs"]  # no failed or lost job
    for kind in ("cached", "sync"):
        assert result["kinds"][kind]["ok"] > 0 and result["kinds"][kind]["p99_ms"] is not None


@pytest.mark.slow  # a server and 4 clients for seconds; the full run is by hand
def test_tiny_load_embedded(tmp_path):
    _check(_run(tmp_path, "--spawn", "embedded"))


@pytest.mark.slow
@pytest.mark.redis
def test_tiny_load_redis(tmp_path, redis_test_url):
    from _private_redis import redis_or_skip

    redis_or_skip(redis_test_url).close()
    _check(_run(tmp_path, "--spawn", "redis", "--redis-url", redis_test_url, "--workers", "1"))
