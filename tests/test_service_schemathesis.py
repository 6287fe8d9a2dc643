"""``schemathesis run --checks all`` against a running service and the document it serves: every
phase (examples, coverage, fuzzing, stateful) and every check (status codes, content types,
headers, response schemas, positive and negative data, authentication, ...) pass.

Slow (minutes): CI runs it in its own step (``.ci/run``); by hand::

    python -m pytest -m slow tests/test_service_schemathesis.py

``EOC_NTK_SCHEMATHESIS_EXAMPLES`` sets the examples per operation (default 5). The configuration
(tests/schemathesis/schemathesis.toml) says which refusals the document cannot state.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from _service_support import ApiProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

CONFIG = Path(__file__).resolve().parent / "schemathesis" / "schemathesis.toml"
EXAMPLES = os.environ.get("EOC_NTK_SCHEMATHESIS_EXAMPLES", "5")


def test_schemathesis_with_every_check_passes_against_the_served_document(tmp_path):
    cli = shutil.which("schemathesis") or shutil.which("st")
    if cli is None:
        pytest.skip("the schemathesis command is not installed (pip install -e '.[test]')")
    env = {**os.environ, "EOC_NTK_MAX_N": "40", "EOC_NTK_MAX_M0": "40", "EOC_NTK_MAX_BODY_BYTES": str(1 << 20)}
    env.pop("REDIS_URL", None)
    with open(tmp_path / "service.log", "wb") as log, ApiProcess(env, "--log-level", "warning", log=log) as api:
        run = subprocess.run(
            [cli, "--config-file", str(CONFIG), "run", "--checks", "all", f"{api.url}/openapi.json",
             "--max-examples", EXAMPLES, "--workers", "1", "--seed", "1", "--suppress-health-check", "all",
             "--phases", "examples,coverage,fuzzing,stateful"],
            capture_output=True, text=True, timeout=1400, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout and "unique failure" not in run.stdout, run.stdout[-3000:]
