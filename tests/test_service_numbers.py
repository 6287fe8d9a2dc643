"""No number outside float range becomes a 500.

Every numeric field of every operation of the OpenAPI document (request bodies and query
parameters; the fields are read from the committed document, and a test fails when one is not
covered here) gets the spellings of numbers a hostile client sends: ``1e±308``, ``1e±400``,
integers of 400 digits, ``NaN``/``Infinity`` (bare and quoted), the smallest subnormal and
negative zero. No answer is a 5xx; a number outside float range is refused with a 4xx naming the
field; negative zero is answered as zero.

The default run draws a derandomised sample (hypothesis); the ``slow`` test sends every case.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.config import Settings
from service.openapi_dump import DEFAULT_PATH

X = np.random.default_rng(3).normal(size=(5, 2)).round(3).tolist()
Y = [0.5, -1.0, 2.0, 0.25, 1.5]
MODEL = {"depth": 2, "activation": "relu"}
SPECTRA = {"x": X, "model": MODEL}
SWEEPS = {"x": X, "depths": [1, 2], "activations": ["relu"]}
DYNAMICS = {"x": X, "y": Y, "model": MODEL, "steps": [0, 1]}
CURVES = {"x": X, "y": Y, "model": MODEL, "sizes": [2], "ridge": 0.0, "splits": 1, "seed": 0}
#: A valid body of every operation with a JSON body.
BODIES = {
    "/v1/spectra": SPECTRA, "/v1/plots/spectrum": SPECTRA,
    "/v1/kernels": {"x": X, "x2": X[:3], "model": MODEL},
    "/v1/sweeps": SWEEPS, "/v1/plots/sweep": SWEEPS,
    "/v1/dynamics": DYNAMICS, "/v1/plots/dynamics": DYNAMICS,
    "/v1/learning-curves": CURVES, "/v1/plots/learning-curve": CURVES,
    "/v1/labels": {"y": Y},
    "/v1/datasets": {"x": X, "y": Y},
}
#: Objects a numeric field lives in, where the valid body holds another form (a named activation).
HOLDERS = {"a": {"a": 0.5, "b": 0.5}, "b": {"a": 0.5, "b": 0.5}, "slope": {"name": "leaky_relu", "slope": 0.1}}
#: Spellings outside float range: refused with a 4xx naming the field.
OUTSIDE = ["1e400", "-1e400", "1" + "0" * 400, "-1" + "0" * 400, "NaN", "-NaN", "Infinity", "-Infinity",
           '"NaN"', '"Infinity"', '"-Infinity"', '"1e400"']
#: Spellings inside float range, extreme or signed zero: never a 5xx (valid or refused as the field allows).
INSIDE = ["1e308", "-1e308", "1.7976931348623157e308", "1e-308", "5e-324", "-5e-324", "-0", "-0.0", "0e400"]
QUERY_OUTSIDE = ["1e400", "-1e400", "1" + "0" * 400, "NaN", "nan", "Infinity", "-inf"]
QUERY_INSIDE = ["1e308", "-1e308", "5e-324", "-0", "-0.0"]
DATASET = "0" * 32
JOB = "spectra-" + "0" * 32


def _resolve(schema: dict, doc: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = doc["components"]["schemas"][name]
    return schema


def numeric_paths(schema: dict, doc: dict, prefix: str = "", seen: frozenset = frozenset()) -> set[str]:
    """Paths (``model.sigma_b``, ``x[][]``, ``activations[].a``) of every number or integer in ``schema``."""
    schema = _resolve(schema, doc)
    key = json.dumps(schema, sort_keys=True)
    if key in seen:
        return set()
    seen = seen | {key}
    out = set()
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []):
        out |= numeric_paths(alt, doc, prefix, seen)
    kind = schema.get("type")
    if kind in ("number", "integer"):
        out.add(prefix)
    if kind == "array" and "items" in schema:
        out |= numeric_paths(schema["items"], doc, prefix + "[]", seen)
    for name, sub in schema.get("properties", {}).items():
        out |= numeric_paths(sub, doc, f"{prefix}.{name}" if prefix else name, seen)
    return out


def document_fields() -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    """(path, body field) of every numeric body field and (method, path, name) of every numeric query parameter."""
    doc = json.loads(DEFAULT_PATH.read_text())
    body, query = set(), set()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                body |= {(path, field) for field in numeric_paths(content["schema"], doc)}
            for param in op.get("parameters", []):
                if param["in"] == "query" and numeric_paths(param["schema"], doc):
                    query.add((method.upper(), path, param["name"]))
    return body, query


def place(body: dict, field: str, marker: str = "__HOSTILE__") -> dict:
    """``body`` with ``marker`` at ``field`` (e.g. ``model.activation.a``, ``y[][]``)."""
    out = json.loads(json.dumps(body))  # no shared rows (x and x2 hold the same lists)
    parts = field.replace("[]", ".[]").split(".")
    node, parent, last = out, None, None
    for i, part in enumerate(parts):
        final = i == len(parts) - 1
        if part == "[]":
            if not isinstance(node, list):  # y[][]: labels as a matrix
                node = [[v] for v in node] if isinstance(node, list) else node
            if final:
                node[0] = marker
            else:
                if not isinstance(node[0], (list, dict)):
                    node[0] = [node[0]] if parts[i + 1] == "[]" else copy.deepcopy(HOLDERS[parts[i + 1]])
                parent, last, node = node, 0, node[0]
            continue
        if not isinstance(node, dict):
            node = copy.deepcopy(HOLDERS[part])
            parent[last] = node
        if final:
            node[part] = marker
        else:
            if part not in node:
                node[part] = [1.0] if parts[i + 1] == "[]" else {}
            parent, last, node = node, part, node[part]
    return out


def _labels_as_matrix(body: dict, field: str) -> dict:
    """``body`` with labels when ``field`` is one (a sweep's are optional), as a matrix for ``y[][]``."""
    if field.startswith("y["):
        y = body.get("y", Y)
        body = {**body, "y": [[v] for v in y] if field.startswith("y[][]") else y}
    return body


def body_cases() -> list[tuple[str, str, str]]:
    fields, _ = document_fields()
    return sorted((path, field, spelling) for path, field in fields if path in BODIES
                  for spelling in OUTSIDE + INSIDE)


def query_cases() -> list[tuple[str, str, str, str]]:
    _, params = document_fields()
    return sorted((method, path, name, spelling) for method, path, name in params
                  for spelling in QUERY_OUTSIDE + QUERY_INSIDE)


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(redis_url=None, max_n=40, max_m0=40, max_depth=300, max_sweep_depths=20, workers=2))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def send_body(client, path: str, field: str, spelling: str):
    body = place(_labels_as_matrix(BODIES[path], field), field)
    text = json.dumps(body).replace('"__HOSTILE__"', spelling)
    return client.post(path, content=text, headers={"content-type": "application/json"})


def send_query(client, method: str, path: str, name: str, spelling: str):
    path = path.replace("{job_id}", JOB).replace("{dataset_id}", DATASET)
    params = {"dataset_id": DATASET, "depth": "2", "activations": "relu", "depths": "1,2"}
    params.update({"a": "0.5", "b": "0.5"} if name in ("a", "b") else {"activation": "relu"})
    params[name] = spelling
    if method == "POST":
        return client.post(path, params=params, content=json.dumps(SPECTRA if "spectrum" in path else
                                                                   BODIES.get(path, {"x": X})),
                           headers={"content-type": "application/json"})
    return client.get(path, params=params)


def check_answer(r, field: str, spelling: str, outside: bool, query: bool = False) -> None:
    """No 5xx; a number ``outside`` float range is refused (4xx), a 422 naming the body field (its
    top-level name) or the query parameter (its name, e.g. ``sigma_b`` as ``model.sigma_b``)."""
    assert r.status_code < 500, f"{field} = {spelling[:20]}: {r.status_code} {r.text[:300]}"
    if outside:
        assert 400 <= r.status_code < 500, f"{field} = {spelling[:20]} accepted: {r.status_code} {r.text[:200]}"
        if r.status_code == 422:
            named = (r.json()["error"].get("field") or "").replace("[", ".").split(".")
            wanted = field if query else field.split(".")[0].split("[")[0]
            if query and field in ("a", "b"):  # the activation given by its coefficients
                wanted = "activation"
            assert wanted in (named if query else named[:1]), f"{field} = {spelling[:20]}: names {named!r}"


def test_every_numeric_field_of_the_document_is_covered():
    fields, params = document_fields()
    assert {path for path, _ in fields} == set(BODIES), "a JSON operation without a valid body here"
    assert ("/v1/learning-curves", "ridge") in fields and ("/v1/dynamics", "steps[]") in fields
    assert ("/v1/spectra", "model.activation.a") in fields and ("/v1/labels", "y[][]") in fields
    assert ("GET", "/v1/spectra", "sigma_b") in params and ("POST", "/v1/plots/spectrum", "dpi") in params
    for path, field in fields:  # every field can be placed in its operation's body
        text = json.dumps(place(_labels_as_matrix(BODIES[path], field), field))
        assert text.count('"__HOSTILE__"') == 1, (path, field)


@pytest.mark.parametrize("path, field, spelling", [
    ("/v1/dynamics", "steps[]", "1" + "0" * 400),
    ("/v1/learning-curves", "ridge", "1e308"),
])
def test_the_reported_overflows_are_refused_naming_the_field(client, path, field, spelling):
    r = send_body(client, path, field, spelling)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].split(".")[0] == field.split("[")[0]


def test_negative_zero_is_zero(client):
    zero = client.post("/v1/spectra", json={"x": X, "model": {**MODEL, "sigma_b": 0.0}})
    negative = client.post("/v1/spectra", content=json.dumps({"x": X, "model": {**MODEL, "sigma_b": "Z"}})
                           .replace('"Z"', "-0.0"), headers={"content-type": "application/json"})
    assert zero.status_code == negative.status_code == 200
    assert negative.json()["eigenvalues"] == zero.json()["eigenvalues"] and negative.json()["cache"] == "hit"
    steps = client.post("/v1/dynamics", content=json.dumps(DYNAMICS).replace("[0, 1]", "[-0, 1]"),
                        headers={"content-type": "application/json"})
    assert steps.status_code == 200 and steps.json()["steps"] == [0, 1]


BODY_CASES = body_cases()
QUERY_CASES = query_cases()


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=st.sampled_from(BODY_CASES), query=st.sampled_from(QUERY_CASES))
def test_hostile_numbers_never_give_a_5xx(client, case, query):
    path, field, spelling = case
    check_answer(send_body(client, path, field, spelling), field, spelling, spelling in OUTSIDE)
    method, qpath, name, qspelling = query
    check_answer(send_query(client, method, qpath, name, qspelling), name, qspelling, qspelling in QUERY_OUTSIDE,
                 query=True)


@pytest.mark.slow
def test_every_hostile_number_in_every_field(client):
    failures = []
    for path, field, spelling in BODY_CASES:
        try:
            check_answer(send_body(client, path, field, spelling), field, spelling, spelling in OUTSIDE)
        except AssertionError as exc:
            failures.append(f"{path}: {exc}")
    for method, path, name, spelling in QUERY_CASES:
        try:
            check_answer(send_query(client, method, path, name, spelling), name, spelling,
                         spelling in QUERY_OUTSIDE, query=True)
        except AssertionError as exc:
            failures.append(f"{method} {path}: {exc}")
    assert not failures, "\n".join(failures)
