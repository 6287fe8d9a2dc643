"""The HTTP contract beyond single routes: HEAD on every GET route, and the document's promises
(error codes, headers, content types) held against what the service sends."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from _service_support import make_client, relu_model, unit_rows, wait_for_job
from service.openapi_dump import DEFAULT_PATH

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c


def _urls(client) -> dict[str, str]:
    """A concrete URL of every GET route of the document that answers 200, by path template."""
    x = unit_rows(6, 3, seed=31)
    dataset_id = client.post("/v1/datasets", json={"x": x.tolist()}).json()["dataset_id"]
    model = relu_model(2)
    assert client.post("/v1/spectra", json={"dataset_id": dataset_id, "model": model}).status_code == 200
    body = {"dataset_id": dataset_id, "depths": [1, 2], "activations": ["relu"]}
    assert client.post("/v1/sweeps", json=body).status_code == 200
    job_id = client.post("/v1/spectra", json={"dataset_id": dataset_id, "model": model}, headers=ASYNC).json()["job_id"]
    assert wait_for_job(client, job_id)["status"] == "finished"
    listed = client.get(f"/v1/datasets/{dataset_id}/results?kind=spectra").json()["items"]
    return {
        "/healthz": "/healthz", "/readyz": "/readyz", "/metrics": "/metrics",
        "/v1/datasets": "/v1/datasets?limit=10",
        "/v1/datasets/{dataset_id}/results": f"/v1/datasets/{dataset_id}/results?activation=relu&depth_min=2",
        "/v1/datasets/{dataset_id}/results/{result_id}": listed[0]["url"],
        "/v1/jobs": "/v1/jobs?status=finished",
        "/v1/datasets/{dataset_id}": f"/v1/datasets/{dataset_id}",
        "/v1/spectra": f"/v1/spectra?dataset_id={dataset_id}&depth=2&activation=relu",
        "/v1/sweeps": f"/v1/sweeps?dataset_id={dataset_id}&depths=1:2&activations=relu",
        "/v1/jobs/{job_id}": f"/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/result": f"/v1/jobs/{job_id}/result",
        "/v1/jobs/{job_id}/plot": f"/v1/jobs/{job_id}/plot?format=svg",
        "/v1/plots/eigenvalues": f"/v1/plots/eigenvalues?dataset_id={dataset_id}&depth=2&activations=relu",
    }


def test_head_answers_like_get_without_the_body_on_every_get_route(client):
    urls = _urls(client)
    document = client.get("/openapi.json").json()
    get_paths = {path for path, ops in document["paths"].items() if "get" in ops}
    assert get_paths == set(urls), "every GET route of the document needs a URL here"
    for url in [*urls.values(), "/", "/openapi.json", "/v1/spectra?dataset_id=0&depth=2&activation=relu",
                f"/v1/jobs/spectra-{'0' * 32}"]:
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code, url
        assert head.content == b"", url
        for name in ("content-type", "content-length", "etag", "cache-control"):
            if not (url == "/metrics" and name == "content-length"):  # its counters grow with each request
                assert head.headers.get(name) == got.headers.get(name), (url, name)
        assert url == "/metrics" or int(head.headers.get("content-length", 0)) == len(got.content), url
    # A conditional HEAD is answered 304 as the GET is.
    etag = client.get(urls["/v1/spectra"]).headers["etag"]
    assert client.head(urls["/v1/spectra"], headers={"If-None-Match": etag}).status_code == 304
    # A route without GET answers HEAD 405, as it answers GET.
    assert client.head("/v1/kernels").status_code == client.get("/v1/kernels").status_code == 405


def test_kind_names_the_operation_of_every_result(client):
    x = unit_rows(5, 3, seed=32)
    spectrum = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(1)}).json()
    kernels = client.post("/v1/kernels", json={"x": x.tolist(), "model": relu_model(1)}).json()
    assert spectrum["kind"] == "spectra" and kernels["kind"] == "kernels"
    np.testing.assert_allclose(kernels["ntk"], np.asarray(x) @ np.asarray(x).T * 2 / 3, rtol=1e-12)


# The document's error codes: every code the code base can send is in the enum.

ROOT = Path(__file__).resolve().parent.parent
_CODE = re.compile(r"^[a-z][a-z_]*$")


def _strings(node: ast.AST) -> set[str]:
    """The string constants of an expression that can be its value (not getattr's names, not f-string parts)."""
    if isinstance(node, ast.Constant):
        return {node.value} if isinstance(node.value, str) else set()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
        return set()
    if isinstance(node, ast.JoinedStr):
        return set()
    found: set[str] = set()
    for child in ast.iter_child_nodes(node):
        found |= _strings(child)
    return found


def _names(target: ast.AST) -> set[str]:
    return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(target)
            if isinstance(n, (ast.Name, ast.Attribute))}


def sent_codes(folders=("service", "jobs")) -> dict[str, str]:
    """Every error code written in the code base -> where: values assigned to ``code`` (class
    attributes, locals), values under a ``"code"`` key, ``code=`` keywords and the first argument
    of ``error_body``."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                values: list[ast.AST] = []
                if isinstance(node, ast.Assign) and any("code" in _names(t) for t in node.targets):
                    values.append(node.value)
                elif isinstance(node, ast.AnnAssign) and node.value is not None and "code" in _names(node.target):
                    values.append(node.value)
                elif isinstance(node, ast.Dict):
                    values += [v for k, v in zip(node.keys, node.values, strict=True)
                               if isinstance(k, ast.Constant) and k.value == "code"]
                elif isinstance(node, ast.Call):
                    values += [kw.value for kw in node.keywords if kw.arg == "code"]
                    if isinstance(node.func, ast.Name) and node.func.id == "error_body" and node.args:
                        values.append(node.args[0])
                for value in values:
                    for code in _strings(value):
                        if _CODE.match(code):
                            found.setdefault(code, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_error_code_the_service_sends_is_in_the_documents_enum():
    document = json.loads(DEFAULT_PATH.read_text())
    enum = set(document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"])
    sent = sent_codes()
    # The walk finds the codes it must (so that it cannot pass by finding nothing).
    assert {"invalid_input", "sync_too_long", "worker_lost", "store_full", "timeout", "http_error"} <= set(sent)
    missing = {code: where for code, where in sent.items() if code not in enum}
    assert not missing, f"error codes sent but not in ErrorDetail.code's enum (service.errors.ERROR_CODES): {missing}"
    assert set(document["components"]["schemas"]["JobError"]["properties"]["code"]["enum"]) == enum


def _has_example(document: dict, media: dict) -> bool:
    """An example of the media type, or of the component its schema names."""
    if "example" in media or "examples" in media:
        return True
    ref = media["schema"].get("$ref", "")
    return bool(ref) and "examples" in document["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_document_declares_what_is_sent():
    """Image routes: PNG and SVG bytes, no JSON; every status with X-Request-ID; the 202's Location;
    ETag on cacheable GETs and their 304; the API key optional; a default error answer everywhere."""
    document = json.loads(DEFAULT_PATH.read_text())
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            assert "default" in responses and "500" not in responses, where
            assert responses["default"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"}, where
            for status, answer in responses.items():
                assert answer["headers"]["X-Request-ID"]["required"] is True, (where, status)
                for media in answer.get("content", {}).values():  # bytes (figures, .npy) have no example
                    assert _has_example(document, media) or media["schema"].get("format") == "binary", (where, status)
            if "requestBody" in op:
                for media_type, media in op["requestBody"]["content"].items():
                    assert _has_example(document, media) or media["schema"].get("format") == "binary", (
                        where, media_type)
            if "202" in responses:
                assert responses["202"]["headers"]["Location"]["required"] is True, where
                assert responses["202"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/JobOut"}, where
            if "304" in responses:
                assert {"ETag", "Cache-Control"} <= set(responses["304"]["headers"]), where
                assert {"ETag", "Cache-Control"} <= set(responses["200"]["headers"]), where
            if "429" in responses:
                assert responses["429"]["headers"]["Retry-After"]["required"] is True, where
            if path.startswith("/v1/"):
                assert {} in op["security"], f"{where}: the API key must be optional"
            if "plot" in path:
                content = responses["200"]["content"]
                assert set(content) == {"image/png", "image/svg+xml", "application/pdf"}, where
                assert all(c["schema"] == {"type": "string", "format": "binary"} for c in content.values()), where
    for path in ("/v1/spectra", "/v1/sweeps", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result"):
        assert "304" in document["paths"][path]["get"]["responses"], path
    result = document["components"]["schemas"]["JobOut"]["properties"]["result"]
    assert result["discriminator"]["propertyName"] == "kind" and len(result["oneOf"]) == 5
    uploads = document["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]
    assert uploads["text/csv"]["schema"]["type"] == "string"
    for media in ("application/x-npy", "application/x-npz"):
        assert uploads[media]["schema"]["type"] == "string" and uploads[media]["schema"]["format"] == "binary"
