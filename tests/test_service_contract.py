"""The HTTP contract beyond single routes: HEAD on every GET route, and the document's promises
(error codes, headers, content types) held against what the service sends."""
from __future__ import annotations

import numpy as np
import pytest
from _service_support import make_client, relu_model, unit_rows, wait_for_job

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
    return {
        "/healthz": "/healthz", "/readyz": "/readyz", "/metrics": "/metrics",
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
