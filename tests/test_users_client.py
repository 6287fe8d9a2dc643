"""``eoc_ntk.client.Client`` against a live embedded-mode server: every endpoint, jobs, NumPy arrays.

Numbers are checked against the independent angle recursion of docs/math.md §3 and numpy's eigvalsh.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from _users_support import cond_of, eoc_angle_ntk, small_data
from eoc_ntk.client import ApiError, Client, JobTimeout


@pytest.fixture
def client(live_server):
    with Client(live_server.url, timeout=60, poll_interval=0.05) as c:
        yield c


def test_upload_and_dataset(client):
    x = small_data(4, 3)
    ds = client.upload(x)
    assert client.upload(x.tolist()) == ds  # a content hash
    assert client.dataset(ds) == {"dataset_id": ds, "n": 4, "m0": 3}
    with pytest.raises(ApiError) as err:
        client.dataset("0" * 32)
    assert err.value.status == 404 and err.value.code == "not_found"


def test_kernels_come_back_as_arrays(client):
    x, x2 = small_data(6, 5, seed=1), small_data(4, 5, seed=2)
    k = client.kernel(x, x2, depth=5, activation="abs")
    ref, alpha = eoc_angle_ntk(x, 5, 0.0, 1.0, x2=x2)
    assert isinstance(k, np.ndarray) and k.shape == (6, 4)
    np.testing.assert_allclose(k, ref, rtol=1e-9, atol=1e-12)
    seen = []
    as_job = client.kernel(x, depth=6, activation="relu", progress=seen.append)  # a job, then its .npy
    np.testing.assert_allclose(as_job, eoc_angle_ntk(x, 6)[0], rtol=1e-9, atol=1e-12)
    assert seen[-1] == 1.0
    both = client.kernels(x, depth=5, activation="0.3,0.7", kinds=["ntk", "angle"])
    ref, alpha = eoc_angle_ntk(x, 5, 0.3, 0.7)
    np.testing.assert_allclose(both["ntk"], ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(both["angle"], alpha, atol=1e-7)


def test_spectrum_sync_and_as_a_job_with_progress(client):
    x = small_data()
    k, _ = eoc_angle_ntk(x, 8, 0.55, 0.45)
    ref = np.linalg.eigvalsh(k / len(x))
    s = client.spectrum(x, depth=8, activation="leaky_relu:0.1")
    np.testing.assert_allclose(s["eigenvalues"], ref, rtol=1e-9, atol=1e-12 * ref[-1])
    assert s["condition_number"] == pytest.approx(ref[-1] / ref[0], rel=1e-8)
    assert isinstance(s["icd"]["lambda_min_bounds"], np.ndarray)
    seen = []
    s2 = client.spectrum(x, depth=9, activation="relu", progress=seen.append)  # Prefer: respond-async
    assert seen and seen[-1] == 1.0
    assert s2["condition_number"] == pytest.approx(cond_of(eoc_angle_ntk(x, 9)[0]), rel=1e-8)
    cached = client.cached_spectrum(s2["dataset_id"], depth=9, activation="relu")
    np.testing.assert_array_equal(cached["eigenvalues"], s2["eigenvalues"])
    with pytest.raises(ApiError) as err:
        client.cached_spectrum(s2["dataset_id"], depth=10, activation="relu")
    assert err.value.status == 404


def test_singular_answers_carry_infinity_not_none(client):
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # x and 2x: rows proportional
    s = client.spectrum(x, depth=3, activation="relu")
    assert s["singular"] and s["condition_number"] == math.inf


def test_sweep_arrays_and_limit(client):
    x = small_data()
    sw = client.sweep(x, depths="2:4", activations="relu,abs")
    assert sw["depths"].tolist() == [2, 3, 4]
    for r, (a, b) in zip(sw["results"], ((0.5, 0.5), (0.0, 1.0)), strict=True):
        np.testing.assert_allclose(r["condition_number"], [cond_of(eoc_angle_ntk(x, d, a, b)[0]) for d in (2, 3, 4)],
                                   rtol=1e-7)
        assert math.isfinite(r["limit_condition_number"])


def test_jobs_wait_cancel_and_timeout(client, live_server):
    x = small_data(150, 20, seed=5)
    r = client._http.post("/v1/sweeps", headers={"Prefer": "respond-async"},
                          json={"x": x.tolist(), "depths": list(range(1, 201)),
                                "activations": [{"name": n} for n in ("relu", "abs", "linear", "leaky_relu")]})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    with pytest.raises(JobTimeout) as err:
        client.wait(job_id, timeout=0.0)
    assert err.value.job_id == job_id
    assert client.cancel(job_id)["status"] in ("canceled", "finished")
    body = {"x": small_data(5, 6).tolist(), "model": {"depth": 2, "activation": {"name": "abs"}}}
    small = client._http.post("/v1/spectra", headers={"Prefer": "respond-async"}, json=body)
    result = client.wait(small.json()["job_id"], timeout=30)
    k, _ = eoc_angle_ntk(small_data(5, 6), 2, 0.0, 1.0)
    np.testing.assert_allclose(result["eigenvalues"], np.linalg.eigvalsh(k / 5), rtol=1e-9, atol=1e-13)
    assert client.job(small.json()["job_id"])["status"] == "finished"


def test_plots_health_documents_and_errors(client):
    x = small_data()
    png = client.plot_sweep(x, depths=[2, 5], activations="relu,abs", fmt="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = client.plot_spectrum(x, depth=3, fmt="svg", progress=lambda f: None)
    assert b"<svg" in svg[:400]
    assert client.health()["status"] == "ok" and client.ready()
    assert "/v1/plots/sweep" in client.openapi()["paths"]
    assert "eoc_ntk_http_request_duration_seconds" in client.metrics()
    with pytest.raises(ApiError) as err:
        client.spectrum(x, depth=0)
    assert err.value.status == 422


def test_the_api_key_is_sent():
    from _users_support import LiveServer
    from service.config import Settings

    with LiveServer(Settings(redis_url=None, api_keys="secret-1")) as server:
        with pytest.raises(ApiError) as err:
            Client(server.url).upload(small_data(3, 2))
        assert err.value.status == 401
        with Client(server.url, api_key="secret-1") as c:
            s = c.spectrum(small_data(4, 5), depth=2, activation="relu", progress=lambda f: None)
            assert c.dataset(s["dataset_id"])["n"] == 4


def test_cached_sweep_and_cancel_of_an_ended_job(client):
    """The client's GET /v1/sweeps in its own spellings; a DELETE of a finished job is ApiError 409."""
    x = small_data(seed=31)
    ds = client.upload(x)
    with pytest.raises(ApiError) as missing:
        client.cached_sweep(ds, depths="2:3", activations="RELU,abs")
    assert missing.value.status == 404
    client.sweep(ds, depths=[2, 3], activations=[(0.5, 0.5), "Abs"])
    got = client.cached_sweep(ds, depths="2:3", activations="ReLU;abs")
    assert got["cache"] == "hit"
    assert got["results"][0]["condition_number"][1] == pytest.approx(cond_of(eoc_angle_ntk(x, 3)[0]), rel=1e-8)
    job = client._request("POST", "/v1/spectra", headers={"Prefer": "respond-async"},
                          json={"dataset_id": ds, "model": {"depth": 2, "activation": "relu"}}).json()["job_id"]
    client.wait(job)
    with pytest.raises(ApiError) as ended:
        client.cancel(job)
    assert ended.value.status == 409 and ended.value.job_status == "finished"


def test_eigenvalue_plot_of_one_depth_and_plot_sizes_through_jobs(client):
    import struct

    x = small_data(seed=44)
    seen = []
    svg = client.plot_eigenvalues(x, depth=4, activations="ReLU;leaky_relu:0.1", fmt="svg", progress=seen.append)
    text = svg.decode()
    assert "eigenvalues of K/n at depth 4" in text and "ReLU (Δ=0.5)" in text and "leaky ReLU 0.1" in text
    assert seen == sorted(seen) and seen[-1] == 1.0
    png = client.plot_eigenvalues(x, depth=4, activations="relu", width=4, height=2, dpi=50)
    assert struct.unpack(">II", png[16:24]) == (200, 100)
    # A plot asked with a progress callback goes through a job: its size still applies.
    png = client.plot_sweep(x, depths="2:3", activations="abs", width=3, height=2, dpi=40, progress=lambda f: None)
    assert struct.unpack(">II", png[16:24]) == (120, 80)
    png = client.plot_spectrum(x, depth=2, width=3, height=2, dpi=40, progress=lambda f: None)
    assert struct.unpack(">II", png[16:24]) == (120, 80)
