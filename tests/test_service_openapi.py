"""The committed OpenAPI document is the generated one (regenerate: python -m service.openapi_dump)."""
from __future__ import annotations

import json

from service.openapi_dump import DEFAULT_PATH, openapi_text


def _without_defaults(node):
    """The document less ``"additionalProperties": true``, JSON Schema's default, which pydantic
    writes out for ``dict[str, Any]`` since 2.11 and leaves implicit before: the same contract at
    every pydantic the ranges allow (the lowest-versions CI step runs pydantic 2.6)."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if not (k == "additionalProperties" and v is True)}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def test_committed_openapi_matches_the_generated_document():
    generated = openapi_text()
    committed = DEFAULT_PATH.read_text()
    assert _without_defaults(json.loads(committed)) == _without_defaults(json.loads(generated)), (
        "openapi/openapi.json is out of date: run `python -m service.openapi_dump` and commit the result"
    )
