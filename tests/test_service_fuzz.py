"""Fuzzing (issue 5): schemathesis drives every operation of the committed OpenAPI document
(``openapi/openapi.json``) against the app in embedded mode, with valid and invalid data: no
answer is a 5xx, and every answer matches the document (status code, content type, headers,
body schema).

The default run is bounded (``EOC_NTK_FUZZ_EXAMPLES`` examples per operation, default 15,
derandomised so that CI is repeatable). A longer, random run, e.g. 500 examples each:

    EOC_NTK_FUZZ_EXAMPLES=500 EOC_NTK_FUZZ_SEED=random python -m pytest tests/test_service_fuzz.py -p no:randomly

or against a running server with the schemathesis CLI (see the README, "Security and limits").
The coverage phase is left to that CLI run in CI (``EOC_NTK_FUZZ_COVERAGE=1`` adds it here).
"""
from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app  # noqa: E402
from service.config import Settings  # noqa: E402
from service.openapi_dump import DEFAULT_PATH  # noqa: E402

EXAMPLES = int(os.environ.get("EOC_NTK_FUZZ_EXAMPLES", "15"))
# The figure routes draw a figure for every valid example (seconds each): the slow schemathesis run
# (tests/test_service_schemathesis.py) covers them; EOC_NTK_FUZZ_PLOTS=1 adds them here.
PLOTS = os.environ.get("EOC_NTK_FUZZ_PLOTS", "") == "1"
DERANDOMIZE = os.environ.get("EOC_NTK_FUZZ_SEED", "fixed") != "random"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]



class _OneLifespan:
    """The app for schemathesis, which enters (and leaves) the app's lifespan around every call: the
    app's own lifespan would close the engine after the first case, so that later computations
    fail; the app is started once here (its engine is closed with the process)."""

    def __init__(self, app=None):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            if message["type"] == "lifespan.shutdown":
                return


# Small limits keep generated computations quick. The committed document is the default deployment's
# (this one serves lower limits): these checks hold for both.
APP = create_app(Settings(redis_url=None, max_n=40, max_m0=40, max_depth=300, max_sweep_depths=20,
                          max_sweep_activations=4, max_body_bytes=1 << 20, workers=2))
# .npy uploads are fuzzed as arbitrary bytes (the document says "binary"), like application/octet-stream.
schemathesis.serializer.alias("application/x-npy", "application/octet-stream")
schema = schemathesis.openapi.from_path(str(DEFAULT_PATH))
schema = schema if PLOTS else schema.exclude(tag="plots")
schema.app = _OneLifespan(APP)
# The coverage phase (boundary values of every keyword and pattern) is built while pytest collects: about
# 80 s of CPU for this document, a fifth of the default run. CI's contract step runs it, with every check,
# against a live service (tests/test_service_schemathesis.py: --phases examples,coverage,fuzzing,stateful);
# here the examples and fuzzing phases run, and EOC_NTK_FUZZ_COVERAGE=1 adds it.
COVERAGE = os.environ.get("EOC_NTK_FUZZ_COVERAGE") == "1"
schema.config.phases.coverage.enabled = COVERAGE


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_answers_match_the_committed_document(case):
    case.call_and_validate(checks=CHECKS)


# The same in Redis mode (the run's own redis-server, or REDIS_TEST_URL; flushed;
# no worker, so accepted jobs just wait in the queue), with fewer examples.


REDIS_APP = _OneLifespan()  # its app is made by a fixture, so that nothing touches Redis at import time
redis_schema = schemathesis.openapi.from_path(str(DEFAULT_PATH))
redis_schema = redis_schema if PLOTS else redis_schema.exclude(tag="plots")
redis_schema.app = REDIS_APP
redis_schema.config.phases.coverage.enabled = COVERAGE


@pytest.fixture(scope="module")
def redis_app(redis_conn, redis_test_url):
    """The Redis-mode app on the module's own database (``redis_conn`` flushes it before and after)."""
    app = create_app(Settings(redis_url=redis_test_url, queue_name=f"fuzz-{os.getpid()}", max_n=40, max_m0=40,
                              max_depth=300, max_sweep_depths=20, max_sweep_activations=4, max_body_bytes=1 << 20))
    REDIS_APP.app = app
    yield app
    app.state.engine.close()


@pytest.mark.redis
@redis_schema.parametrize()
@settings(max_examples=max(3, EXAMPLES // 3), deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_answers_match_the_committed_document_in_redis_mode(case, redis_app):
    case.call_and_validate(checks=CHECKS)
