"""EOC_NTK_DEVICE: the service's spectra on the torch backend (torch's CPU build here; a GPU worker
runs the same code with EOC_NTK_DEVICE=cuda). The answer names the engine and holds the NumPy
core's values; the job process of the embedded pool inherits the setting; the cost model counts
the device. Skipped where torch is not installed."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (the [gpu] extra)")

import eoc_ntk
from _service_support import make_client, relu_model, wait_for_job
from eoc_ntk.core.cost import GPU_SPEEDUP, OVERHEAD, predict_seconds
from jobs.device import job_device, job_engine
from jobs.worker import main as worker_main

ASYNC = {"Prefer": "respond-async"}


@pytest.mark.slow  # starts the embedded pool's job process, which imports torch (~20 s on 2 shared cores)
def test_spectra_run_on_the_device_of_eoc_ntk_device_inline_and_in_a_job_process(monkeypatch):
    monkeypatch.setenv("EOC_NTK_DEVICE", "cpu")
    x = np.random.default_rng(4).standard_normal((60, 5))
    want = eoc_ntk.spectrum(x, depth=3, a=0.5, b=0.5)
    # inline_max_seconds=0: the job runs in a process of the embedded pool, which inherits the variable.
    with make_client(inline_max_seconds=0.0) as c:
        now = c.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(3)})
        assert now.status_code == 200, now.text
        job = c.post("/v1/spectra", json={"x": (2 * x).tolist(), "model": relu_model(3)}, headers=ASYNC)
        assert job.status_code == 202, job.text
        done = wait_for_job(c, job.json()["job_id"])
        assert done["status"] == "finished", done
        body = done["result"]
    for answer, scale in ((now.json(), 1.0), (body, 4.0)):
        assert answer["engine"] == "torch-cpu"
        np.testing.assert_allclose(answer["eigenvalues"], scale * want.eigenvalues, rtol=0,
                                   atol=1e-12 * scale * want.lambda_max)
        assert answer["icd"] is not None and answer["icd_unavailable"] is None


def test_unset_means_numpy_and_a_bad_value_is_refused_by_name(monkeypatch):
    monkeypatch.delenv("EOC_NTK_DEVICE", raising=False)
    assert job_device() is None and job_engine() == "numpy"
    monkeypatch.setenv("EOC_NTK_DEVICE", "cuda:1")
    assert job_device() == "cuda:1" and job_engine() == "torch-cuda"
    monkeypatch.setenv("EOC_NTK_DEVICE", "gpu")
    with pytest.raises(ValueError, match="EOC_NTK_DEVICE"):
        job_device()


def test_a_worker_refuses_to_start_with_a_malformed_device(monkeypatch, capsys):
    monkeypatch.setenv("EOC_NTK_DEVICE", "gpu0")
    assert worker_main(["--redis-url", "redis://127.0.0.1:1/0"]) == 2  # before any connection
    assert "EOC_NTK_DEVICE" in capsys.readouterr().err


def test_the_cost_model_counts_the_device():
    cpu = predict_seconds("spectra", n=2000, m0=10)
    gpu = predict_seconds("spectra", n=2000, m0=10, device="cuda")
    overhead = predict_seconds("spectra", n=1, m0=1) - predict_seconds("spectra", n=1, m0=1, device="cuda")
    assert overhead < 1e-4
    assert gpu < cpu and abs((cpu - OVERHEAD) / (gpu - OVERHEAD) - GPU_SPEEDUP) < 1e-6 * GPU_SPEEDUP
    assert predict_seconds("kernels", n=2000, m0=10, device="cuda") == predict_seconds("kernels", n=2000, m0=10)
    with pytest.raises(ValueError):
        predict_seconds("spectra", n=10, m0=2, device="tpu")
