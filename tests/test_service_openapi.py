"""The committed OpenAPI document is the generated one (regenerate: python -m service.openapi_dump)."""
from __future__ import annotations

import json

from service.openapi_dump import DEFAULT_PATH, openapi_text


def test_committed_openapi_matches_the_generated_document():
    generated = openapi_text()
    committed = DEFAULT_PATH.read_text()
    assert json.loads(committed) == json.loads(generated), (
        "openapi/openapi.json is out of date: run `python -m service.openapi_dump` and commit the result"
    )
