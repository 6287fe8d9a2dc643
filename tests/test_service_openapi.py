"""The committed OpenAPI document is the generated one (regenerate: python -m service.openapi_dump)."""
from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
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


def test_the_committed_document_does_not_depend_on_the_environment(monkeypatch):
    """The committed document is the default deployment's, whatever EOC_NTK_* the shell has set."""
    monkeypatch.setenv("EOC_NTK_MAX_N", "40")
    monkeypatch.setenv("EOC_NTK_MAX_DEPTH", "300")
    committed = DEFAULT_PATH.read_text()
    assert _without_defaults(json.loads(openapi_text())) == _without_defaults(json.loads(committed))


LIMITS = {"max_n": 40, "min_n": 3, "max_m0": 7, "max_depth": 300, "max_sweep_depths": 20, "max_sweep_activations": 4}


@pytest.fixture(scope="module")
def limited():
    """A deployment with other limits: its client and the document it serves."""
    app = create_app(Settings(redis_url=None, **LIMITS))
    with TestClient(app) as client:
        yield client, client.get("/openapi.json").json()
    app.state.engine.close()


def _array(node):
    return next(b for b in node.get("anyOf", [node]) if b.get("type") == "array")


def test_a_deployment_serves_its_own_limits(limited):
    _, doc = limited
    schemas = doc["components"]["schemas"]
    for name in ("SpectraIn", "KernelsIn", "SweepsIn", "DynamicsIn", "LearningCurvesIn"):
        x = _array(schemas[name]["properties"]["x"])
        assert (x["minItems"], x["maxItems"], x["items"]["maxItems"]) == (3, 40, 7), name
        assert (x["items"]["items"]["minimum"], x["items"]["items"]["maximum"]) == (-1e150, 1e150), name
    x2 = _array(schemas["KernelsIn"]["properties"]["x2"])
    assert (x2["minItems"], x2["maxItems"], x2["items"]["maxItems"]) == (1, 40, 7)
    vector, matrix = schemas["DynamicsIn"]["properties"]["y"]["anyOf"][0]["oneOf"]
    assert (vector["maxItems"], matrix["maxItems"], matrix["items"]["maxItems"]) == (40, 40, 7)
    assert schemas["ModelIn"]["properties"]["depth"]["maximum"] == 300
    depths_list, depths_text = schemas["SweepsIn"]["properties"]["depths"]["anyOf"]
    assert (depths_list["maxItems"], depths_list["items"]["maximum"]) == (20, 300)
    assert schemas["SweepsIn"]["properties"]["activations"]["maxItems"] == 4
    assert schemas["LearningCurvesIn"]["properties"]["sizes"]["items"]["maximum"] == 39
    upload = doc["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert (upload["properties"]["x"]["maxItems"], upload["properties"]["x"]["items"]["maxItems"]) == (40, 8)
    query = {p["name"]: p["schema"] for p in doc["paths"]["/v1/spectra"]["get"]["parameters"]}
    assert query["depth"]["maximum"] == 300
    # The depth grammar: depths (a range's ends are depths too) 1 to 300; a step up to eoc_ntk.MAX_DEPTH.
    text = re.compile(depths_text["pattern"])
    assert [d for d in range(0, 400) if text.match(str(d))] == list(range(1, 301))
    assert text.match("1:300:100000") and not text.match("1:300:100001") and not text.match("1:301")
    assert not text.match("301:400")
    assert text.match("1,2,5") and text.match("3:300:10") and not text.match("01") and not text.match("1:")
    sweeps_query = {p["name"]: p["schema"] for p in doc["paths"]["/v1/sweeps"]["get"]["parameters"]}
    assert sweeps_query["depths"]["pattern"] == depths_text["pattern"]
    # Built after this one, the default deployment's document is still the committed one (no shared node).
    assert _without_defaults(json.loads(openapi_text())) == _without_defaults(json.loads(DEFAULT_PATH.read_text()))


X = [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]
RELU = {"name": "relu"}


@pytest.mark.parametrize("body, field", [
    ({"x": X + [[1.0, 1.0]] * 38, "model": {"depth": 1, "activation": RELU}}, "x"),            # 41 rows > maxItems
    ({"x": X[:2], "model": {"depth": 1, "activation": RELU}}, "x"),                             # 2 rows < minItems
    ({"x": [[1.0] * 8] * 3, "model": {"depth": 1, "activation": RELU}}, "x"),                   # 8 numbers > maxItems
    ({"x": X, "model": {"depth": 301, "activation": RELU}}, "model.depth"),                     # > maximum
    ({"x": [[1e151, 0.0], [0.0, 1.0], [1.0, 1.0]], "model": {"depth": 1, "activation": RELU}}, "x"),  # > maximum
])
def test_what_the_served_document_refuses_is_refused(limited, body, field):
    client, _ = limited
    r = client.post("/v1/spectra", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_a_depth_list_longer_than_maxitems_is_refused_even_with_repeats(limited):
    client, doc = limited
    body = {"x": X, "depths": [1] * 21, "activations": [RELU]}
    r = client.post("/v1/sweeps", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "depths", r.text
    assert client.post("/v1/sweeps", json={**body, "depths": [1] * 20}).status_code == 200


def test_a_number_without_fraction_is_an_integer_as_json_schema_says(limited):
    """JSON Schema's ``integer`` holds 3.0: the service takes it as 3, and refuses 3.5 and "3"."""
    client, _ = limited
    body = {"x": X, "model": {"depth": 2.0, "activation": RELU}}
    r = client.post("/v1/spectra", json=body)
    assert r.status_code == 200 and r.json()["model"]["depth"] == 2, r.text
    for depth in (2.5, "2", True):
        r = client.post("/v1/spectra", json={**body, "model": {"depth": depth, "activation": RELU}})
        assert r.status_code == 422 and r.json()["error"]["field"] == "model.depth", (depth, r.text)
