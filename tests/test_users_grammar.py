"""One grammar everywhere (issue #14): string depths and case-insensitive / text activations in the
API body and query string, the cached-sweep query, DELETE of an ended job, job timing fields.

Numbers are checked against the independent angle recursion of ``tests/_users_support.py``.
"""
from __future__ import annotations

import pytest

from _service_support import wait_for_job
from _users_support import cond_of, eoc_angle_ntk, small_data


def _ref_cond(x, depth, a, b):
    return cond_of(eoc_angle_ntk(x, depth, a, b)[0])


def test_sweep_takes_depths_as_text_and_activations_in_any_spelling(client):
    x = small_data(seed=21)
    r = client.post("/v1/sweeps", json={"x": x.tolist(), "depths": "1:7:3",
                                         "activations": ["ReLU", {"name": "ABS"}, "leaky_relu:0.1", "0.3,0.7"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["depths"] == [1, 4, 7]  # the end is always included
    coeffs = [(0.5, 0.5), (0.0, 1.0), (0.55, 0.45), (0.3, 0.7)]
    for res, (a, b) in zip(body["results"], coeffs, strict=True):
        for i, d in enumerate(body["depths"]):
            assert res["condition_number"][i] == pytest.approx(_ref_cond(x, d, a, b), rel=1e-8)
    r = client.post("/v1/sweeps", json={"x": x.tolist(), "depths": "2,5", "activations": [{"name": "Leaky-ReLU",
                                                                                            "slope": 0.2}]})
    assert r.status_code == 200 and r.json()["depths"] == [2, 5]
    assert r.json()["results"][0]["condition_number"][1] == pytest.approx(_ref_cond(x, 5, 0.6, 0.4), rel=1e-8)


@pytest.mark.parametrize("depths", ["0:3", "3:1", "a:b", "1:10000000000000", "", "1:5:0"])
def test_bad_depth_text_is_422_naming_depths(client, depths):
    r = client.post("/v1/sweeps", json={"x": small_data().tolist(), "depths": depths, "activations": ["relu"]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].startswith("depths")


def test_bad_activation_text_is_422(client):
    r = client.post("/v1/spectra", json={"x": small_data().tolist(), "model": {"depth": 2, "activation": "mish"}})
    assert r.status_code == 422 and "activation" in r.json()["error"]["field"]
    r = client.post("/v1/spectra", json={"x": small_data().tolist(),
                                         "model": {"depth": 2, "activation": {"name": "Mish"}}})
    assert r.status_code == 422


def test_spectrum_query_by_activation_name(client):
    x = small_data(seed=22)
    r = client.post("/v1/spectra", json={"x": x.tolist(), "model": {"depth": 3, "activation": "RELU"}})
    assert r.status_code == 200, r.text
    ds = r.json()["dataset_id"]
    assert r.json()["condition_number"] == pytest.approx(_ref_cond(x, 3, 0.5, 0.5), rel=1e-8)
    for params in ({"activation": "relu"}, {"activation": "ReLU"}, {"activation": "0.5,0.5"}, {"a": 0.5, "b": 0.5}):
        g = client.get("/v1/spectra", params={"dataset_id": ds, "depth": 3, **params})
        assert g.status_code == 200, (params, g.text)
        assert g.json()["cache"] == "hit"
    assert client.get("/v1/spectra", params={"dataset_id": ds, "depth": 3, "activation": "abs"}).status_code == 404
    both = client.get("/v1/spectra", params={"dataset_id": ds, "depth": 3, "activation": "relu", "a": 0.5, "b": 0.5})
    assert both.status_code == 422 and both.json()["error"]["field"] == "activation"
    neither = client.get("/v1/spectra", params={"dataset_id": ds, "depth": 3, "a": 0.5})
    assert neither.status_code == 422 and neither.json()["error"]["field"] == "b"


def test_cached_sweep_query_never_computes(client):
    x = small_data(seed=23)
    up = client.post("/v1/datasets", json={"x": x.tolist()}).json()["dataset_id"]
    q = {"dataset_id": up, "depths": "1:3", "activations": "relu,abs"}
    assert client.get("/v1/sweeps", params=q).status_code == 404  # not computed yet: never computes
    assert client.get("/v1/sweeps", params=q).status_code == 404
    r = client.post("/v1/sweeps", json={"dataset_id": up, "depths": [1, 2, 3],
                                         "activations": [{"name": "relu"}, {"a": 0, "b": 1}]})
    assert r.status_code == 200 and r.json()["cache"] == "miss"
    g = client.get("/v1/sweeps", params={**q, "activations": "ReLU;abs"})
    assert g.status_code == 200, g.text
    body = g.json()
    assert body["cache"] == "hit" and body["depths"] == [1, 2, 3]
    assert body["results"][1]["condition_number"][2] == pytest.approx(_ref_cond(x, 3, 0.0, 1.0), rel=1e-8)
    assert client.get("/v1/sweeps", params={**q, "depths": "1:4"}).status_code == 404
    assert client.get("/v1/sweeps", params={**q, "depths": "x"}).status_code == 422
    assert client.get("/v1/sweeps", params={**q, "activations": "mish"}).status_code == 422


def test_delete_of_an_ended_job_is_409_with_its_state(client):
    x = small_data(seed=24)
    r = client.post("/v1/spectra", headers={"Prefer": "respond-async"},
                    json={"x": x.tolist(), "model": {"depth": 2, "activation": "abs"}})
    job_id = r.json()["job_id"]
    done = wait_for_job(client, job_id)
    assert done["status"] == "finished"
    assert done["elapsed_seconds"] >= 0 and done["eta_seconds"] == 0
    assert done["started_at"].endswith("Z")
    d = client.delete(f"/v1/jobs/{job_id}")
    assert d.status_code == 409, d.text
    assert d.json()["error"]["status"] == "finished"
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "finished"


def test_running_job_reports_started_at_elapsed_and_eta():
    """A job predicted at 8 s that reached half its work 6 s after it started runs 1.5 times slower than
    predicted: the rest takes 1.5 * 4 s = 6 s, so 10 s after the start 2 s are left. The estimate
    comes from the cost model, not from a straight line through the progress (10 s * 0.5 / 0.5 = 10 s),
    and a progress that stalls does not make it grow. (Computations run in child processes, so the
    timing rule is checked on a job view.)"""
    from jobs.states import JobStatus, JobView
    from service.routes.jobs import job_timing

    start = 1_700_000_000.0

    def view(progress, reached=None):
        return JobView("sweeps-x", {}, "", JobStatus.running, progress, None, None, start, predicted_seconds=8.0,
                       progress_at=None if reached is None else start + reached)

    body = job_timing(view(0.5, 6.0), now=start + 10.0)
    assert body["elapsed_seconds"] == pytest.approx(10.0) and body["eta_seconds"] == pytest.approx(2.0)
    assert body["started_at"] == "2023-11-14T22:13:20.000Z"
    stalled = [job_timing(view(0.5, 6.0), now=start + t)["eta_seconds"] for t in (7.0, 9.0, 11.0, 30.0)]
    assert stalled == pytest.approx([5.0, 3.0, 1.0, 0.0])  # the straight line gave 7, 9, 11, 30: growing
    assert job_timing(view(0.0), now=start + 3.0)["eta_seconds"] == pytest.approx(5.0)  # no progress: predicted
    assert job_timing(view(0.25, 1.0), now=start + 2.0)["eta_seconds"] == pytest.approx(0.5 * 6.0 + 1.0 - 2.0)


def test_finished_job_reports_its_start_and_no_time_left(client):
    r = client.post("/v1/sweeps", headers={"Prefer": "respond-async"},
                    json={"x": small_data(seed=25).tolist(), "depths": "1:2", "activations": ["relu"]})
    body = wait_for_job(client, r.json()["job_id"])
    assert body["status"] == "finished" and body["started_at"].endswith("Z")
    assert body["elapsed_seconds"] >= 0 and body["eta_seconds"] == 0.0
