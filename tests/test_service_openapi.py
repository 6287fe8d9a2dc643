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


def test_readme_configuration_table_lists_every_setting_with_its_default():
    from jobs.settings import settings_table

    readme = (DEFAULT_PATH.parent.parent / "README.md").read_text()
    section = readme.split("<!-- service -->", 1)[1]
    for env, default, _ in settings_table():
        assert f"| `{env}` | {default or '(unset)'} |" in section, f"README lacks {env} = {default}"
