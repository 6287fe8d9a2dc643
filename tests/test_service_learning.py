"""Labels and the label endpoints of the service (issue #16 point 5, docs/learning.md).

References are independent of the service: the depth-1 and depth-2 NTK closed forms
(``_service_support``), gradient descent iterated by hand on them, dense ``eigvalsh``/``eigh``,
scikit-learn's ``KernelRidge``, and, for the eigenlearning estimate only, the core's public
``eoc_ntk.learning_curve`` called here on the same arrays.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient

import eoc_ntk
from _service_support import make_client, ntk_depth1, ntk_depth2_unit, relu_model, unit_rows, wait_for_job
from _upload_support import npy_bytes
from service.app import create_app
from service.config import Settings

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module")
def x():
    return unit_rows(12, 5, seed=3)


@pytest.fixture(scope="module")
def y(x):
    return np.sign(x[:, 0] + 0.3 * x[:, 1]) + 0.1 * x[:, 2]


def _gd_losses(k, y, eta, steps):
    """Training loss of r <- (I - eta K/n) r from r_0 = -y, iterated step by step (docs/learning.md §3)."""
    n = k.shape[0]
    r = -np.asarray(y, float).reshape(n, -1)
    out, t = [], 0
    for target in steps:
        while t < target:
            r = r - eta * (k / n) @ r
            t += 1
        out.append(float(np.sum(r * r)) / (2 * n))
    return np.array(out)


# Labels

def test_labels_upload_json_npy_and_with_the_dataset_share_one_id(client, x, y):
    r_json = client.post("/v1/labels", json={"y": y.tolist()})
    assert r_json.status_code == 201, r_json.text
    assert r_json.json()["n"] == 12 and r_json.json()["shape"] == [12]
    r_npy = client.post("/v1/labels", content=npy_bytes(y), headers={"Content-Type": "application/x-npy"})
    assert r_npy.status_code == 201, r_npy.text
    r_data = client.post("/v1/datasets", json={"x": x.tolist(), "y": y.tolist()})
    assert r_data.status_code == 201, r_data.text
    assert r_data.json()["n"] == 12 and r_data.json()["m0"] == 5
    assert r_json.json()["labels_id"] == r_npy.json()["labels_id"] == r_data.json()["labels_id"]
    # The dataset's id is the one of the points alone; other labels get another id.
    assert r_data.json()["dataset_id"] == client.post("/v1/datasets", json={"x": x.tolist()}).json()["dataset_id"]
    assert "labels_id" not in client.post("/v1/datasets", json={"x": x.tolist()}).json()
    other = client.post("/v1/labels", json={"y": (-y).tolist()}).json()["labels_id"]
    assert other != r_json.json()["labels_id"]
    # (n, 1) labels are not (n,) labels: the shape is part of the id.
    column = client.post("/v1/labels", json={"y": y[:, None].tolist()}).json()
    assert column["shape"] == [12, 1] and column["labels_id"] != r_json.json()["labels_id"]


@pytest.mark.parametrize("body, field", [
    ({"y": []}, "y"),
    ({"y": [[1.0, 2.0], [3.0]]}, "y"),
    ({"y": ["a", "b"]}, "y.0"),
    ({"y": [[1.0], 2.0]}, "y.1"),
    ({"y": "12"}, "y"),
    ({"y": [1.0], "x": [[1.0]]}, "x"),
    ({}, "y"),
])
def test_labels_refused_with_the_field(client, body, field):
    r = client.post("/v1/labels", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_labels_bad_bodies(client):
    assert client.post("/v1/labels", content=b"not "
                       b"npy", headers={"Content-Type": "application/x-npy"}).status_code == 400
    assert client.post("/v1/labels", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/v1/labels", content=b"1,2", headers={"Content-Type": "text/csv"}).status_code == 415
    r = client.post("/v1/labels", content=npy_bytes(np.zeros((2, 2, 2))), headers={"Content-Type": "application/x-npy"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "y"
    r = client.post("/v1/labels", content=npy_bytes(np.array([1.0, np.nan])),
                    headers={"Content-Type": "application/x-npy"})
    assert r.status_code == 422 and "finite" in r.json()["error"]["message"]


def test_dataset_labels_must_have_n_rows(client, x):
    r = client.post("/v1/datasets", json={"x": x.tolist(), "y": [1.0, 2.0]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "y" and "12" in r.json()["error"]["message"]


# Dynamics

def test_dynamics_against_gradient_descent_on_the_closed_form(client, x, y):
    steps = [0, 1, 2, 5, 20, 100]
    r = client.post("/v1/dynamics", json={"x": x.tolist(), "y": y.tolist(), "model": relu_model(2), "steps": steps})
    assert r.status_code == 200, r.text
    body = r.json()
    k = ntk_depth2_unit(x)
    lam_max = np.linalg.eigvalsh(k / len(x))[-1]
    assert body["max_learning_rate"] == pytest.approx(2 / lam_max, rel=1e-10)
    assert body["learning_rate"] == pytest.approx(1 / lam_max, rel=1e-10)
    assert body["steps"] == steps
    np.testing.assert_allclose(body["train_loss"], _gd_losses(k, y, 1 / lam_max, steps), rtol=1e-9, atol=1e-300)
    assert body["initial_loss"] == pytest.approx(float(y @ y) / (2 * len(y)), rel=1e-12)
    assert body["cache"] == "miss" and body["labels_id"] and body["dataset_id"]


def test_dynamics_by_ids_and_with_a_rate_two_outputs(client, x, y):
    y2 = np.stack([y, x[:, 3]], axis=1)
    data = client.post("/v1/datasets", json={"x": x.tolist(), "y": y2.tolist()}).json()
    eta = 0.9 * 2 / np.linalg.eigvalsh(ntk_depth1(x) / len(x))[-1]
    body = {"dataset_id": data["dataset_id"], "labels_id": data["labels_id"], "model": relu_model(1),
            "learning_rate": eta, "steps": [0, 3, 7]}
    r = client.post("/v1/dynamics", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["outputs"] == 2
    np.testing.assert_allclose(got["train_loss"], _gd_losses(ntk_depth1(x), y2, eta, [0, 3, 7]), rtol=1e-9)
    # Depth 1 with n = 12 > m0 = 5: the kernel has rank 5, the rest of |y|^2 is never fitted.
    v = np.linalg.eigh(ntk_depth1(x))[1][:, :-5]
    null_share = float(np.sum((v.T @ y2) ** 2) / np.sum(y2 ** 2))
    assert got["unreachable_fraction"] == pytest.approx(null_share, rel=1e-8)
    assert client.post("/v1/dynamics", json=body).json()["cache"] == "hit"


def test_dynamics_cache_shared_by_equal_requests_and_split_by_labels(client, x, y):
    base = {"x": x.tolist(), "model": relu_model(3), "steps": [0, 10]}
    first = client.post("/v1/dynamics", json={**base, "y": y.tolist()}).json()
    labels_id = client.post("/v1/labels", json={"y": y.tolist()}).json()["labels_id"]
    named_ab = {**base, "model": {"depth": 3, "activation": {"a": 0.5, "b": 0.5}}, "labels_id": labels_id}
    again = client.post("/v1/dynamics", json=named_ab).json()
    assert first["cache"] == "miss" and again["cache"] == "hit"
    assert again["train_loss"] == first["train_loss"]
    other = client.post("/v1/dynamics", json={**base, "y": (2 * y).tolist()}).json()
    assert other["cache"] == "miss"
    # Twice the labels, four times the loss at every step (the dynamics are linear in y).
    np.testing.assert_allclose(other["train_loss"], 4 * np.array(first["train_loss"]), rtol=1e-12)


def test_dynamics_as_a_job_matches_the_synchronous_answer(client, x, y):
    body = {"x": (2 * x).tolist(), "y": y.tolist(), "model": relu_model(4), "steps": [0, 1, 50], "init": "nngp"}
    r = client.post("/v1/dynamics", json=body, headers=ASYNC)
    assert r.status_code == 202, r.text
    assert r.json()["job_id"].startswith("dynamics-")
    job = wait_for_job(client, r.json()["job_id"])
    assert job["status"] == "finished" and job["progress"] == 1.0 and job["op"] == "dynamics"
    sync = client.post("/v1/dynamics", json=body).json()
    assert sync["cache"] == "hit"
    assert job["result"]["train_loss"] == sync["train_loss"]
    assert len(sync["expected_train_loss"]) == 3
    k = eoc_ntk.kernel(2 * x, depth=4, a=0.5, b=0.5)
    np.testing.assert_allclose(sync["train_loss"], _gd_losses(k, y, sync["learning_rate"], [0, 1, 50]), rtol=1e-9)


@pytest.mark.parametrize("change, field", [
    ({"y": [1.0, 2.0]}, "y"),
    ({"labels_id": "0" * 32, "y": None}, "labels_id"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"steps": [-1]}, "steps.0"),
    ({"steps": []}, "steps"),
    ({"init": "random"}, "init"),
    ({"labels_id": "0" * 32}, None),  # both y and labels_id
    ({"y": None}, None),  # neither
])
def test_dynamics_refusals_name_the_field(client, x, y, change, field):
    body = {"x": x.tolist(), "y": y.tolist(), "model": relu_model(2), **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = client.post("/v1/dynamics", json=body)
    assert r.status_code == (404 if field == "labels_id" else 422), r.text
    if field is not None:
        assert r.json()["error"]["field"] == field


# Learning curves

def test_learning_curve_measured_against_sklearn_and_estimate_against_the_core(client):
    pytest.importorskip("sklearn")
    from sklearn.kernel_ridge import KernelRidge

    x = unit_rows(30, 4, seed=5)
    y = np.stack([x[:, 0] * x[:, 1], np.sign(x[:, 2])], axis=1)
    sizes, ridge, splits, seed = [5, 12, 20], 1e-3, 3, 11
    r = client.post("/v1/learning-curves", json={"x": x.tolist(), "y": y.tolist(), "model": relu_model(2),
                                                 "sizes": [20, 5, 12, 5], "ridge": ridge, "splits": splits,
                                                 "seed": seed})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sizes"] == sizes and body["n"] == 30
    k = ntk_depth2_unit(x)
    rng = np.random.default_rng(seed)  # the subsets of docs/learning.md §5
    for i, m in enumerate(sizes):
        errors = []
        for _ in range(splits):
            order = rng.permutation(30)
            train, test = order[:m], order[m:]
            model = KernelRidge(kernel="precomputed", alpha=m * ridge).fit(k[np.ix_(train, train)], y[train])
            residual = model.predict(k[np.ix_(test, train)]) - y[test]
            errors.append(np.mean(np.sum(residual ** 2, axis=1)))
        assert body["measured_test_mse"][i] == pytest.approx(np.mean(errors), rel=1e-8)
        assert body["measured_std"][i] == pytest.approx(np.std(errors, ddof=1), rel=1e-6)
    core = eoc_ntk.learning_curve(x, y, depth=2, a=0.5, b=0.5, sizes=sizes, ridge=ridge, splits=splits, seed=seed)
    np.testing.assert_allclose(body["predicted_test_mse"], core.predicted_test_mse, rtol=1e-10)


def test_learning_curve_refusals(client, x, y):
    base = {"x": x.tolist(), "y": y.tolist(), "model": relu_model(2)}
    for change, field in [({"sizes": [12]}, "sizes"), ({"sizes": [0]}, "sizes.0"), ({"sizes": []}, "sizes"),
                          ({"sizes": [3], "ridge": -1.0}, "ridge"), ({"sizes": [3], "splits": 0}, "splits")]:
        r = client.post("/v1/learning-curves", json={**base, **change})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field, (change, r.text)


def test_learning_curve_job(client, x, y):
    body = {"x": x.tolist(), "y": y.tolist(), "model": relu_model(2), "sizes": [4, 8], "splits": 2}
    r = client.post("/v1/learning-curves", json=body, headers=ASYNC)
    assert r.status_code == 202 and r.json()["job_id"].startswith("learning_curves-")
    job = wait_for_job(client, r.json()["job_id"])
    assert job["status"] == "finished", job
    assert job["result"]["measured_test_mse"] == client.post("/v1/learning-curves",
                                                             json=body).json()["measured_test_mse"]


# Sweeps with labels

def test_sweep_with_labels_adds_alignment_and_top_k(client, x, y):
    plain = {"x": x.tolist(), "depths": [2, 1], "activations": [{"name": "relu"}]}
    without = client.post("/v1/sweeps", json=plain).json()
    assert "alignment" not in without["results"][0] and "labels_id" not in without
    r = client.post("/v1/sweeps", json={**plain, "y": y.tolist()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cache"] == "miss" and body["labels_id"]
    result = body["results"][0]
    assert result["condition_number"] == without["results"][0]["condition_number"]
    for i, k in enumerate([ntk_depth1(x), ntk_depth2_unit(x)]):
        expected = float(y @ k @ y) / (np.linalg.norm(k) * float(y @ y))
        assert result["alignment"][i] == pytest.approx(expected, rel=1e-10)
    vecs = np.linalg.eigh(ntk_depth2_unit(x))[1]
    assert result["top_k_fraction"]["1"][1] == pytest.approx(float(vecs[:, -1] @ y) ** 2 / float(y @ y), rel=1e-8)
    assert result["top_k_fraction"]["10"][1] == pytest.approx(
        float(np.sum((vecs[:, -10:].T @ y) ** 2)) / float(y @ y), rel=1e-8)
    assert result["top_k_fraction"]["100"][1] == pytest.approx(1.0, rel=1e-12)


def test_sweep_labels_by_id_and_refusals(client, x, y):
    labels_id = client.post("/v1/labels", json={"y": y.tolist()}).json()["labels_id"]
    body = {"x": x.tolist(), "depths": [3], "activations": [{"name": "abs"}], "labels_id": labels_id}
    r = client.post("/v1/sweeps", json=body, headers=ASYNC)
    assert r.status_code == 202, r.text
    job = wait_for_job(client, r.json()["job_id"])
    assert job["status"] == "finished" and job["result"]["labels_id"] == labels_id
    assert len(job["result"]["results"][0]["alignment"]) == 1
    short = client.post("/v1/labels", json={"y": [1.0, 2.0]}).json()["labels_id"]
    r = client.post("/v1/sweeps", json={**body, "labels_id": short})
    assert r.status_code == 422 and r.json()["error"]["field"] == "labels_id"
    r = client.post("/v1/sweeps", json={**body, "y": y.tolist()})
    assert r.status_code == 422


# Access

def test_labels_belong_to_the_key_that_sent_them(x, y):
    with make_client(api_keys="alice-key-123456,bob-key-1234567") as c:
        alice, bob = {"X-API-Key": "alice-key-123456"}, {"X-API-Key": "bob-key-1234567"}
        assert c.post("/v1/labels", json={"y": y.tolist()}).status_code == 401
        labels_id = c.post("/v1/labels", json={"y": y.tolist()}, headers=alice).json()["labels_id"]
        body = {"x": x.tolist(), "labels_id": labels_id, "model": relu_model(2), "steps": [0, 1]}
        assert c.post("/v1/dynamics", json=body, headers=alice).status_code == 200
        r = c.post("/v1/dynamics", json=body, headers=bob)
        assert r.status_code == 404 and r.json()["error"]["field"] == "labels_id"
        # Sending the labels proves Bob has them.
        c.post("/v1/labels", json={"y": y.tolist()}, headers=bob)
        assert c.post("/v1/dynamics", json=body, headers=bob).status_code == 200


# Redis mode: a real worker reads the labels from Redis

@pytest.mark.redis
def test_dynamics_job_on_a_redis_worker(redis_test_url, x, y):
    from _private_redis import redis_or_skip
    from _worker_process import start_worker, stop_worker, wait_registered

    conn = redis_or_skip(redis_test_url)
    conn.flushdb()
    queue = f"eoc-ntk-test-learning-{os.getpid()}"
    proc = start_worker(redis_test_url, queue, queue)
    try:
        wait_registered(conn, proc, queue)
        with TestClient(create_app(Settings(redis_url=redis_test_url, queue_name=queue))) as c:
            data = c.post("/v1/datasets", json={"x": x.tolist(), "y": y.tolist()}).json()
            body = {"dataset_id": data["dataset_id"], "labels_id": data["labels_id"], "model": relu_model(2),
                    "steps": [0, 4, 30]}
            r = c.post("/v1/dynamics", json=body, headers=ASYNC)
            assert r.status_code == 202, r.text
            job = wait_for_job(c, r.json()["job_id"])
            assert job["status"] == "finished", job
            k = ntk_depth2_unit(x)
            eta = 1 / np.linalg.eigvalsh(k / len(x))[-1]
            np.testing.assert_allclose(job["result"]["train_loss"], _gd_losses(k, y, eta, [0, 4, 30]), rtol=1e-9)
            lc = {"x": x.tolist(), "y": y.tolist(), "model": relu_model(2), "sizes": [6], "splits": 2}
            r = c.post("/v1/learning-curves", json=lc, headers=ASYNC)
            assert r.status_code == 202, r.text
            assert wait_for_job(c, r.json()["job_id"])["status"] == "finished"
    finally:
        stop_worker(proc)
        conn.flushdb()
        conn.close()


# Client and CLI (local and --server)

def _run_json(capsys, argv):
    from eoc_ntk.cli import main

    assert main(argv) == 0, capsys.readouterr().err
    import json
    return json.loads(capsys.readouterr().out)


def test_client_dynamics_and_learning_curve_against_references(x, y):
    from _users_support import LiveServer
    from eoc_ntk.client import Client

    with LiveServer() as server, Client(server.url) as c:
        labels_id = c.upload_labels(y)
        assert labels_id == c.upload_labels(list(y))  # content hash
        steps = [0, 2, 9]
        seen = []
        got = c.dynamics(x, labels_id, depth=2, activation="relu", steps=steps, progress=seen.append)
        k = ntk_depth2_unit(x)
        eta = 1 / np.linalg.eigvalsh(k / len(x))[-1]
        np.testing.assert_allclose(got["train_loss"], _gd_losses(k, y, eta, steps), rtol=1e-9)
        assert isinstance(got["train_loss"], np.ndarray) and seen[-1] == 1.0
        # Depth 1, n > m0: the null space is never fitted, so some steps_to are never: inf, not None.
        flat = c.dynamics(x, y, depth=1, activation="relu", steps=[0, 1])
        assert flat["unreachable_fraction"] > 0.1 and math.isinf(flat["steps_to"]["1000"])
        assert np.isinf(flat["fit_steps"]).sum() == 12 - 5
        curve = c.learning_curve(x, y, depth=2, sizes=[4, 8], splits=2, seed=1)
        core = eoc_ntk.learning_curve(x, y, depth=2, a=0.5, b=0.5, sizes=[4, 8], splits=2, seed=1)
        np.testing.assert_allclose(curve["measured_test_mse"], core.measured_test_mse, rtol=1e-10)
        np.testing.assert_allclose(curve["predicted_test_mse"], core.predicted_test_mse, rtol=1e-10)
        # At 1e-300 the loss is the unscaled one; the rates and eigenvalues are None, never inf or NaN.
        tiny = c.dynamics(x * 1e-300, y, depth=2, activation="relu", steps=steps)
        np.testing.assert_allclose(tiny["train_loss"], _gd_losses(k, y, eta, steps), rtol=1e-9)
        assert tiny["max_learning_rate"] is None and tiny["eigenvalues"] is None and tiny["scaled"]["exponent"] < 0
        tiny_curve = c.learning_curve(x * 1e-300, y, depth=2, sizes=[4, 8], splits=2, seed=1)
        np.testing.assert_allclose(tiny_curve["measured_test_mse"], core.measured_test_mse, rtol=1e-10)
        assert tiny_curve["effective_ridge"] is None


def test_cli_dynamics_and_learning_curve_local_and_server(tmp_path, capsys, x, y):
    from _users_support import LiveServer
    from eoc_ntk.cli import main

    np.savetxt(tmp_path / "xy.csv", np.column_stack([y, x]), delimiter=",")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    k = ntk_depth2_unit(x)
    eta = 1 / np.linalg.eigvalsh(k / len(x))[-1]
    by_column = _run_json(capsys, ["dynamics", str(tmp_path / "xy.csv"), "--label-column", "0", "--depth", "2",
                                   "--steps", "0,3,10", "--json"])
    np.testing.assert_allclose(by_column["train_loss"], _gd_losses(k, y, eta, [0, 3, 10]), rtol=1e-9)
    with LiveServer() as server:
        remote = _run_json(capsys, ["dynamics", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                                    "--depth", "2", "--steps", "0,3,10", "--server", server.url, "--json"])
        assert remote["train_loss"] == pytest.approx(by_column["train_loss"], rel=1e-12)
        lc = ["learning-curve", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--depth", "2",
              "--sizes", "4,8", "--splits", "2", "--json"]
        local = _run_json(capsys, lc)
        served = _run_json(capsys, [*lc, "--server", server.url])
        assert served["measured_test_mse"] == pytest.approx(local["measured_test_mse"], rel=1e-12)
        assert main(["learning-curve", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--depth", "2",
                     "--sizes", "12", "--server", server.url]) == 1
        assert "422" in capsys.readouterr().err
    # Human output, and one-line errors with a non-zero status.
    assert main(["dynamics", str(tmp_path / "xy.csv"), "--label-column", "0", "--depth", "2", "-q"]) == 0
    assert "largest rate at which the linearised, infinite-width model converges" in capsys.readouterr().out
    assert main(["dynamics", str(tmp_path / "x.npy"), "--depth", "2"]) == 2
    assert "exactly one of --labels" in capsys.readouterr().err
    assert main(["dynamics", str(tmp_path / "x.npy"), "--label-column", "9", "--depth", "2"]) == 2
    err = capsys.readouterr().err
    assert "--label-column = 9 is outside the 5 columns" in err and err.count("\n") == 1


def test_cli_reads_npz_data_files_with_or_without_y(tmp_path, capsys, x, y):
    from eoc_ntk.cli import main

    np.savez(tmp_path / "xy.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "x_only.npz", x=x)
    np.save(tmp_path / "y.npy", y)
    k = ntk_depth2_unit(x)
    eta = 1 / np.linalg.eigvalsh(k / len(x))[-1]
    expected = _gd_losses(k, y, eta, [0, 3, 10])
    dyn = ["--depth", "2", "--steps", "0,3,10", "--json"]
    by_member = _run_json(capsys, ["dynamics", str(tmp_path / "xy.npz"), *dyn])
    np.testing.assert_allclose(by_member["train_loss"], expected, rtol=1e-9)
    by_file = _run_json(capsys, ["dynamics", str(tmp_path / "x_only.npz"), "--labels", str(tmp_path / "y.npy"), *dyn])
    np.testing.assert_allclose(by_file["train_loss"], expected, rtol=1e-9)
    # spectrum reads the x of an .npz (its y unused): eigenvalues of K/n.
    spec = _run_json(capsys, ["spectrum", str(tmp_path / "xy.npz"), "--depth", "2", "--json"])
    np.testing.assert_allclose(spec["eigenvalues"], np.linalg.eigvalsh(k / len(x)), rtol=1e-9, atol=1e-12)
    # Labels given twice, a label column of an .npz, a damaged archive: one line, status 2.
    for argv, says in (
        (["dynamics", str(tmp_path / "xy.npz"), "--labels", str(tmp_path / "y.npy")], "drop --labels"),
        (["dynamics", str(tmp_path / "xy.npz"), "--label-column", "0"], "drop --label-column"),
        (["dynamics", str(tmp_path / "x_only.npz"), "--label-column", "0"], "--label-column applies to a CSV"),
        (["dynamics", str(tmp_path / "x_only.npz")], "exactly one of --labels"),
    ):
        assert main([*argv, "--depth", "2", "-q"]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
    (tmp_path / "bad.npz").write_bytes((tmp_path / "xy.npz").read_bytes()[:60])
    assert main(["spectrum", str(tmp_path / "bad.npz"), "--depth", "2"]) == 2
    assert "not a readable .npz" in capsys.readouterr().err


# Every input scale (docs/learning.md §2): the answers of the unscaled data, the rate with its power of two

@pytest.mark.parametrize("scale", [1e-300, 1e-155, 1e120])
def test_dynamics_learning_curve_and_label_sweep_are_scale_free(client, x, y, scale):
    pytest.importorskip("sklearn")
    from sklearn.kernel_ridge import KernelRidge

    k = ntk_depth2_unit(x)  # the kernel of x; that of scale * x is scale^2 k
    lam_max = np.linalg.eigvalsh(k / len(x))[-1]
    steps = [0, 1, 10, 100]
    r = client.post("/v1/dynamics", json={"x": (x * scale).tolist(), "y": y.tolist(), "model": relu_model(2),
                                           "steps": steps})
    assert r.status_code == 200, r.text
    body = r.json()
    np.testing.assert_allclose(body["train_loss"], _gd_losses(k, y, 1 / lam_max, steps), rtol=1e-9)
    if body["scaled"] is None:
        assert body["max_learning_rate"] == pytest.approx(2 / lam_max / scale ** 2, rel=1e-10)
    else:
        assert body["max_learning_rate"] is None and body["learning_rate"] is None
        log2_rate = math.log2(body["scaled"]["max_learning_rate"]) - body["scaled"]["exponent"]
        assert log2_rate == pytest.approx(math.log2(2 / lam_max) - 2 * math.log2(scale), rel=1e-12)

    sizes, splits, seed = [4, 8], 3, 2
    r = client.post("/v1/learning-curves", json={"x": (x * scale).tolist(), "y": y.tolist(), "model": relu_model(2),
                                                 "sizes": sizes, "splits": splits, "seed": seed})
    assert r.status_code == 200, r.text
    rng = np.random.default_rng(seed)
    for i, m in enumerate(sizes):
        errors = []
        for _ in range(splits):
            order = rng.permutation(len(x))
            train, test = order[:m], order[m:]
            fit = KernelRidge(kernel="precomputed", alpha=1e-13).fit(k[np.ix_(train, train)], y[train])
            errors.append(np.mean((fit.predict(k[np.ix_(test, train)]) - y[test]) ** 2))
        assert r.json()["measured_test_mse"][i] == pytest.approx(np.mean(errors), rel=1e-6)

    r = client.post("/v1/sweeps", json={"x": (x * scale).tolist(), "depths": [2], "activations": [{"name": "relu"}],
                                        "y": y.tolist()})
    assert r.status_code == 200, r.text
    expected = float(y @ k @ y) / (np.linalg.norm(k) * float(y @ y))
    assert r.json()["results"][0]["alignment"][0] == pytest.approx(expected, rel=1e-10)
