"""Every endpoint of the service in embedded mode (no Redis), values against closed forms."""
from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest

from _service_support import make_client, ntk_depth1, ntk_depth2_unit, relu_model, unit_rows, wait_for_job


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(7).normal(size=(7, 4))


# Health and documents

def test_health_and_readiness(client):
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["mode"] == "embedded"


def test_openapi_served(client):
    doc = client.get("/openapi.json").json()
    for path in ("/v1/datasets", "/v1/kernels", "/v1/spectra", "/v1/sweeps", "/v1/jobs/{job_id}", "/readyz"):
        assert path in doc["paths"]


# Datasets

def test_dataset_formats_share_one_content_id(client, x):
    r_json = client.post("/v1/datasets", json={"x": x.tolist()})
    assert r_json.status_code == 201, r_json.text
    buf = io.BytesIO()
    np.save(buf, x)
    r_npy = client.post("/v1/datasets", content=buf.getvalue(), headers={"Content-Type": "application/x-npy"})
    csv = "\n".join(",".join(repr(float(v)) for v in row) for row in x) + "\n"
    r_csv = client.post("/v1/datasets", content=csv, headers={"Content-Type": "text/csv"})
    ids = {r.json()["dataset_id"] for r in (r_json, r_npy, r_csv)}
    assert len(ids) == 1
    assert r_npy.json() == {"dataset_id": ids.pop(), "n": 7, "m0": 4}
    other = client.post("/v1/datasets", json={"x": (x + 1).tolist()}).json()["dataset_id"]
    assert other != r_json.json()["dataset_id"]
    got = client.get(f"/v1/datasets/{other}")
    assert got.status_code == 200 and got.json()["n"] == 7


def test_dataset_refusals_name_the_problem(client):
    cases = [
        ({"content": b'{"x": [[1, 2], [3]]}', "headers": {"Content-Type": "application/json"}}, 422, "ragged"),
        ({"json": {"x": [["a", 1]]}}, 422, "x.0.0"),
        ({"json": {"x": [[]]}}, 422, "empty"),
        ({"json": {"x": []}}, 422, "2-D"),
        ({"content": b"a,b\n1,2\n", "headers": {"Content-Type": "text/csv"}}, 422, "header"),
        ({"content": b"1,2\n\n3,4\n", "headers": {"Content-Type": "text/csv"}}, 422, "blank"),
        ({"content": b"1,2", "headers": {"Content-Type": "text/plain"}}, 415, "Content-Type"),
        ({"content": b"not npy", "headers": {"Content-Type": "application/x-npy"}}, 400, ".npy"),
        ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
    ]
    for kwargs, status, needle in cases:
        r = client.post("/v1/datasets", **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        assert needle in r.json()["error"]["message"], r.text


def test_npy_with_objects_is_refused_unread(client):
    buf = io.BytesIO()
    np.save(buf, np.array([[1.0, "x"]], dtype=object), allow_pickle=True)
    r = client.post("/v1/datasets", content=buf.getvalue(), headers={"Content-Type": "application/x-npy"})
    assert r.status_code == 422 and "pickled" in r.json()["error"]["message"]


def test_unknown_and_malformed_dataset_ids(client):
    r = client.get("/v1/datasets/" + "0" * 32)
    assert r.status_code == 404 and r.json()["error"]["field"] == "dataset_id"
    r = client.post("/v1/spectra", json={"dataset_id": "0" * 32, "model": relu_model(2)})
    assert r.status_code == 404
    r = client.post("/v1/spectra", json={"dataset_id": "nope", "model": relu_model(2)})
    assert r.status_code == 422 and r.json()["error"]["field"] == "dataset_id"


def test_limits_come_from_settings():
    with make_client(max_n=5, max_depth=10, max_body_bytes=2048) as c:
        r = c.post("/v1/datasets", json={"x": np.ones((6, 2)).tolist()})
        assert r.status_code == 422 and "EOC_NTK_MAX_N" in r.json()["error"]["message"]
        r = c.post("/v1/spectra", json={"x": [[1.0], [2.0]], "model": relu_model(11)})
        assert r.status_code == 422 and r.json()["error"]["field"] == "model.depth"
        r = c.post("/v1/datasets", json={"x": np.ones((5, 200)).tolist()})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        def streamed():  # chunked: no Content-Length to refuse up front
            yield b'{"x": [['
            yield b"1.0, " * 1000
            yield b"1.0]], "

        for path in ("/v1/datasets", "/v1/spectra"):
            r = c.post(path, content=streamed(), headers={"Content-Type": "application/json"})
            assert r.status_code == 413 and r.json()["error"]["field"] == "body", r.text


# Kernels

def test_depth1_kernel_is_the_scaled_gram_matrix(client, x):
    model = {"depth": 1, "activation": {"a": 0.3, "b": -0.8}}
    r = client.post("/v1/kernels", json={"x": x.tolist(), "model": model, "kinds": ["ntk", "nngp"]})
    assert r.status_code == 200, r.text
    body = r.json()
    ref = ntk_depth1(x, a=0.3, b=0.8)
    np.testing.assert_allclose(body["ntk"], ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(body["nngp"], ref, rtol=1e-13, atol=1e-15)
    assert body["shape"] == [7, 7] and body["dataset_id"]


def test_depth1_kernel_off_the_edge_of_chaos(client, x):
    model = {"depth": 1, "activation": {"name": "relu"}, "sigma_w": 1.3, "sigma_b": 0.2}
    body = client.post("/v1/kernels", json={"x": x.tolist(), "model": model}).json()
    np.testing.assert_allclose(body["ntk"], ntk_depth1(x, sigma_w=1.3, sigma_b=0.2), rtol=1e-13)


def test_depth2_kernel_matches_the_closed_form(client):
    u = unit_rows(6, 5, seed=3)
    for act, (a, b) in (({"name": "relu"}, (0.5, 0.5)), ({"name": "abs"}, (0.0, 1.0)),
                        ({"a": 0.9, "b": 0.4}, (0.9, 0.4))):
        body = client.post("/v1/kernels", json={"x": u.tolist(), "model": {"depth": 2, "activation": act}}).json()
        np.testing.assert_allclose(body["ntk"], ntk_depth2_unit(u, a, b), rtol=1e-12, atol=1e-14)


def test_relu_reference_value_at_depth_10(client):
    e = np.eye(3)[:2]  # two orthogonal unit vectors in R^3
    body = client.post("/v1/kernels", json={"x": e.tolist(), "model": relu_model(10)}).json()
    q = 1.0 / (0.5 * 3)
    assert body["ntk"][0][1] == pytest.approx(q * 3.1559474, rel=1e-7)  # docs/math.md §6
    assert body["ntk"][0][0] == pytest.approx(q * 10, rel=1e-14)


def test_cross_kernel_and_npy_answer(client, x):
    x2 = x[:3] * 2.0
    r = client.post("/v1/kernels",
                    json={"x": x.tolist(), "x2": x2.tolist(), "model": {"depth": 1, "activation": {"name": "linear"}}})
    body = r.json()
    assert body["shape"] == [7, 3]
    np.testing.assert_allclose(body["ntk"], ntk_depth1(x, x2, a=1.0, b=0.0), rtol=1e-13)
    r = client.post("/v1/kernels", json={"x": x.tolist(), "model": {"depth": 1, "activation": {"name": "linear"}}},
                    headers={"Accept": "application/x-npy"})
    assert r.headers["content-type"] == "application/x-npy"
    k = np.load(io.BytesIO(r.content), allow_pickle=False)
    np.testing.assert_allclose(k, ntk_depth1(x, a=1.0, b=0.0), rtol=1e-13)
    r = client.post("/v1/kernels", json={"x": x.tolist(), "model": relu_model(1), "kinds": ["ntk", "nngp"]},
                    headers={"Accept": "application/x-npy"})
    assert r.status_code == 406


def test_kernel_refusals(client, x):
    r = client.post("/v1/kernels",
                    json={"x": x.tolist(), "model": {"depth": 3, "activation": {"name": "linear"}}, "kinds": ["icd"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "kinds"
    r = client.post("/v1/kernels", json={"x": x.tolist(), "x2": [[1.0, 2.0]], "model": relu_model(2)})
    assert r.status_code == 422 and r.json()["error"]["field"] == "x2"
    r = client.post("/v1/kernels", json={"x": x.tolist(), "model": relu_model(2), "kinds": ["rbf"]})
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("kinds")


# Spectra

def test_spectrum_matches_an_independent_eigensolve(client):
    u = unit_rows(9, 6, seed=11)
    body = client.post("/v1/spectra", json={"x": u.tolist(), "model": relu_model(2)}).json()
    ref = np.linalg.eigvalsh(ntk_depth2_unit(u) / 9)
    np.testing.assert_allclose(body["eigenvalues"], ref, rtol=1e-10)
    assert body["lambda_min"] == pytest.approx(ref[0], rel=1e-10)
    assert body["condition_number"] == pytest.approx(ref[-1] / ref[0], rel=1e-9)
    assert body["singular"] is False and body["n"] == 9 and body["m0"] == 6


def test_spectrum_cache_is_shared_by_equivalent_models(client, x):
    data = client.post("/v1/datasets", json={"x": (x * 3).tolist()}).json()
    first = client.post("/v1/spectra", json={"dataset_id": data["dataset_id"], "model": relu_model(4)}).json()
    assert first["cache"] == "miss" and first["dataset_id"] == data["dataset_id"]
    same = {"depth": 4, "activation": {"a": 0.5, "b": -0.5}, "sigma_w": 1 / math.sqrt(0.5), "sigma_b": 0.0}
    again = client.post("/v1/spectra", json={"x": (x * 3).tolist(), "model": same}).json()
    assert again["cache"] == "hit"
    assert again["eigenvalues"] == first["eigenvalues"]


def test_cached_spectrum_query(client, x):
    data = client.post("/v1/datasets", json={"x": (x - 1).tolist()}).json()
    query = {"dataset_id": data["dataset_id"], "depth": 3, "a": 0.5, "b": 0.5}
    assert client.get("/v1/spectra", params=query).status_code == 404
    computed = client.post("/v1/spectra", json={"dataset_id": data["dataset_id"], "model": relu_model(3)}).json()
    r = client.get("/v1/spectra", params=query)
    assert r.status_code == 200 and r.json()["cache"] == "hit"
    assert r.json()["eigenvalues"] == computed["eigenvalues"]
    assert client.get("/v1/spectra", params={**query, "sigma_b": 0.1}).status_code == 404
    r = client.get("/v1/spectra", params={**query, "depth": 0})
    assert r.status_code == 422 and r.json()["error"]["field"] == "depth"


def test_duplicates_and_zero_rows_are_singular_answers(client, x):
    dup = np.vstack([x, x[:1], np.zeros((1, 4))])
    body = client.post("/v1/spectra", json={"x": dup.tolist(), "model": relu_model(3)}).json()
    assert body["singular"] is True and body["condition_number"] is None
    assert body["lambda_min"] is not None


def test_depth1_with_more_points_than_features_is_singular(client):
    x = np.random.default_rng(2).normal(size=(6, 2))
    body = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(1)}).json()
    assert body["singular"] is True and body["condition_number"] is None
    ref = np.linalg.eigvalsh(ntk_depth1(x) / 6)
    np.testing.assert_allclose(body["eigenvalues"][-2:], ref[-2:], rtol=1e-10)


# Sweeps

def test_sweep_matches_closed_forms_at_depths_1_and_2(client):
    u = unit_rows(5, 8, seed=5)
    r = client.post("/v1/sweeps",
                    json={"x": u.tolist(), "depths": [2, 1], "activations": [{"name": "relu"}, {"a": 0.0, "b": 1.0}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["depths"] == [1, 2] and len(body["results"]) == 2
    for res, (a, b) in zip(body["results"], ((0.5, 0.5), (0.0, 1.0)), strict=True):
        assert res["activation"]["a"] == a and res["activation"]["b"] == b
        for i, k in enumerate((ntk_depth1(u, a=a, b=b), ntk_depth2_unit(u, a, b))):
            ev = np.linalg.eigvalsh(k / 5)
            assert res["lambda_max"][i] == pytest.approx(ev[-1], rel=1e-9)
            assert res["lambda_min"][i] == pytest.approx(ev[0], rel=1e-7)
    assert client.post("/v1/sweeps", json={"x": u.tolist(), "depths": [1, 2],
                                           "activations": [{"name": "relu"}, {"name": "abs"}]}).json()["cache"] == "hit"


def test_sweep_refusals(client):
    r = client.post("/v1/sweeps", json={"x": [[1.0]], "depths": [1, 0], "activations": [{"name": "relu"}]})
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("depths")
    r = client.post("/v1/sweeps", json={"x": [[1.0]], "depths": [1], "activations": [{"a": 0, "b": 0}]})
    assert r.status_code == 422 and "activations.0" in r.json()["error"]["field"]


# Jobs

def test_prefer_async_job_lifecycle(client):
    u = unit_rows(8, 3, seed=9)
    r = client.post("/v1/spectra", json={"x": u.tolist(), "model": relu_model(2)}, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status_url"] == f"/v1/jobs/{accepted['job_id']}"
    assert r.headers["Location"] == accepted["status_url"]
    job = wait_for_job(client, accepted["job_id"])
    assert job["status"] == "finished" and job["progress"] == 1.0
    np.testing.assert_allclose(job["result"]["eigenvalues"], np.linalg.eigvalsh(ntk_depth2_unit(u) / 8), rtol=1e-10)
    assert job["links"] == {"self": accepted["status_url"], "result": f"{accepted['status_url']}/result",
                            "plot": f"{accepted['status_url']}/plot"}
    assert client.get(job["links"]["result"]).json()["eigenvalues"] == job["result"]["eigenvalues"]


def test_prefer_async_on_a_cached_result_is_a_finished_job(client):
    """One shape per request: respond-async answers 202 with the job resource even when the result is
    cached; the job is finished at once and its links lead to the result and the figure."""
    u = unit_rows(7, 3, seed=21)
    body = {"x": u.tolist(), "model": relu_model(2)}
    first = client.post("/v1/spectra", json=body)
    assert first.status_code == 200 and first.json()["cache"] == "miss"
    again = client.post("/v1/spectra", json=body, headers={"Prefer": "respond-async"})
    assert again.status_code == 202, again.text
    job = again.json()
    assert job["status"] == "finished" and job["progress"] == 1.0 and "Retry-After" not in again.headers
    assert again.headers["Location"] == job["links"]["self"] == f"/v1/jobs/{job['job_id']}"
    np.testing.assert_allclose(job["result"]["eigenvalues"], np.linalg.eigvalsh(ntk_depth2_unit(u) / 7),
                               rtol=1e-10)
    assert job["result"]["kind"] == "spectra"
    polled = client.get(job["links"]["self"])
    assert polled.status_code == 200 and polled.json()["result"]["eigenvalues"] == job["result"]["eigenvalues"]
    assert client.get(job["links"]["result"]).json()["eigenvalues"] == job["result"]["eigenvalues"]
    plot = client.get(job["links"]["plot"])
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert client.delete(job["links"]["self"]).status_code == 409  # finished: nothing to cancel
    # Without the header the documented rule stays: the cached result, 200.
    assert client.post("/v1/spectra", json=body).status_code == 200


def test_predicted_seconds_above_async_seconds_make_jobs_and_identical_requests_share_one():
    with make_client(async_seconds=0, workers=1) as c:
        blocker = {"x": unit_rows(150, 4, seed=4).tolist(), "depths": list(range(1, 201)),
                   "activations": [{"name": "relu"}]}
        blocker_id = c.post("/v1/sweeps", json=blocker).json()["job_id"]
        body = {"x": unit_rows(30, 4, seed=1).tolist(), "depths": list(range(1, 41)), "activations": [{"name": "relu"}]}
        first = c.post("/v1/sweeps", json=body)
        second = c.post("/v1/sweeps", json=body)
        assert first.status_code == second.status_code == 202
        assert first.json()["job_id"] == second.json()["job_id"]
        c.delete(f"/v1/jobs/{blocker_id}")
        job = wait_for_job(c, first.json()["job_id"])
        assert job["status"] == "finished" and job["result"]["depths"][-1] == 40


def test_failed_and_canceled_jobs():
    with make_client(workers=1) as c:
        u = unit_rows(40, 4, seed=2).tolist()
        # Off the edge of chaos the kernel grows like chi^depth and overflows: the job fails, saying why.
        bad = {"x": u, "model": {"depth": 1500, "activation": {"name": "relu"}, "sigma_w": 2.0}}
        failed = wait_for_job(c, c.post("/v1/spectra", json=bad, headers={"Prefer": "respond-async"}).json()["job_id"])
        assert failed["status"] == "failed" and "overflow" in failed["error"]["message"]
        # A long sweep occupies the only worker thread; a second job waits behind it.
        long = {"x": unit_rows(150, 4, seed=3).tolist(), "depths": list(range(1, 201)),
                "activations": [{"name": "relu"}, {"name": "abs"}]}
        running = c.post("/v1/sweeps", json=long, headers={"Prefer": "respond-async"}).json()["job_id"]
        queued = c.post("/v1/spectra", json={"x": u, "model": relu_model(3)},
                        headers={"Prefer": "respond-async"}).json()["job_id"]
        wait_for_job(c, running, until=("running",))
        assert c.get(f"/v1/jobs/{queued}").json()["status"] == "queued"
        for job_id in (queued, running):
            r = c.delete(f"/v1/jobs/{job_id}")
            assert r.status_code == 200 and r.json()["status"] == "canceled"
        assert c.get(f"/v1/jobs/{queued}").json()["error"]["code"] == "canceled"
        # Resubmitting a canceled request runs it again.
        again = c.post("/v1/spectra", json={"x": u, "model": relu_model(3)}, headers={"Prefer": "respond-async"}).json()
        assert again["job_id"] == queued
        assert wait_for_job(c, queued)["status"] == "finished"


def test_job_ids_are_checked(client):
    r = client.get("/v1/jobs/not-a-job")
    assert r.status_code == 422 and r.json()["error"]["field"] == "job_id"
    assert client.get("/v1/jobs/spectra-" + "0" * 32).status_code == 404
    assert client.delete("/v1/jobs/spectra-" + "0" * 32).status_code == 404


def test_finished_job_whose_result_was_evicted_is_gone():
    with make_client(cache_bytes=0) as c:  # nothing fits in the cache
        r = c.post("/v1/spectra", json={"x": [[1.0, 0.0], [0.0, 1.0]], "model": relu_model(2)},
                   headers={"Prefer": "respond-async"})
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 30
        while (r := c.get(f"/v1/jobs/{job_id}")).status_code == 200:
            assert time.monotonic() < deadline
        assert r.status_code == 410 and "submit the request again" in r.json()["error"]["message"]


def test_kernels_with_no_answer_are_refused_naming_the_field(client):
    """The core's refusals of ``kernel()`` hold through the service too (its jobs call the core's
    internals): the angle to a zero row is undefined, and a kernel below float64's range is refused."""
    zero_row = [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    r = client.post("/v1/kernels", json={"x": zero_row, "kinds": ["angle"],
                                         "model": {"depth": 3, "activation": {"name": "relu"}}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "x" and "zero input rows" in r.json()["error"]["message"]
    tiny = [[1e-160, 0.0], [0.0, 1e-160]]
    r = client.post("/v1/kernels", json={"x": tiny, "kinds": ["ntk"],
                                         "model": {"depth": 3, "activation": {"name": "relu"}}})
    assert r.status_code == 422, r.text
    assert "below 2.2e-308" in r.json()["error"]["message"]
