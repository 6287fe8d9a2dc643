"""Clients generated from the committed document, with no hand edits, against a live service.

Python: openapi-python-client (pinned in the ``test`` extra), generated into a temporary folder.
TypeScript: openapi-typescript types with openapi-fetch (clients/typescript/, its package-lock.json),
type-checked with ``tsc --noEmit`` and run with Node; skipped, in one line, without node and npm.
Each client drives: a JSON upload, CSV and .npy uploads (the same points: the same content id),
a synchronous spectrum read through its typed fields (against the closed form), an asynchronous
job polled to finished (its result typed by ``kind``), a figure as bytes, a 422 parsed as the
typed error and a cached GET answered 304 to If-None-Match.
"""
from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from _service_support import ROOT, ApiProcess, ntk_depth2_unit, unit_rows
from service.openapi_dump import DEFAULT_PATH

pytestmark = pytest.mark.slow  # generating and running the clients takes ~10 s (CI: its contract step)

GENERATOR_CONFIG = ROOT / "clients" / "python" / "openapi-python-client.yml"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    log_path = tmp_path_factory.mktemp("api") / "service.log"
    with open(log_path, "wb") as log, ApiProcess(env, "--log-level", "warning", log=log) as server:
        yield server


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The package openapi-python-client makes of the committed document, imported."""
    cli = shutil.which("openapi-python-client") or os.environ.get("EOC_NTK_OPENAPI_PYTHON_CLIENT")
    if not cli:
        pytest.skip("openapi-python-client is not installed (pip install -e '.[test]')")
    folder = tmp_path_factory.mktemp("generated")
    run = subprocess.run([cli, "generate", "--path", str(DEFAULT_PATH), "--output-path", str(folder / "eoc_ntk_api"),
                          "--meta", "none", "--config", str(GENERATOR_CONFIG)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Warning" not in run.stdout, run.stdout[-3000:]  # every operation, body and answer generated
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("eoc_ntk_api")
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == "eoc_ntk_api" or m.startswith("eoc_ntk_api.")]:
            del sys.modules[name]


def _module(package, path: str):
    return importlib.import_module(f"{package.__name__}.{path}")


def test_python_client_generated_from_the_document_drives_the_service(generated, api):
    upload = _module(generated, "api.datasets.upload_dataset_v1_datasets_post")
    spectra = _module(generated, "api.compute.spectra_v1_spectra_post")
    cached = _module(generated, "api.compute.cached_spectrum_v1_spectra_get")
    get_job = _module(generated, "api.jobs.get_job_v1_jobs_job_id_get")
    job_plot = _module(generated, "api.plots.job_plot_v1_jobs_job_id_plot_get")
    models = _module(generated, "models")
    types = _module(generated, "types")
    client = generated.Client(base_url=api.url, raise_on_unexpected_status=True)
    x = unit_rows(6, 3, seed=41)

    # JSON, CSV and .npy uploads of the same points: one content id.
    by_json = upload.sync(client=client, body=models.UploadDatasetV1DatasetsPostJsonBody(x=x.tolist()))
    assert isinstance(by_json, models.DatasetWithLabelsOut) and (by_json.n, by_json.m0) == (6, 3)
    csv = "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode()
    by_csv = upload.sync(client=client, body=types.File(payload=io.BytesIO(csv), mime_type="text/csv"))
    assert by_csv.dataset_id == by_json.dataset_id
    npy = io.BytesIO()
    np.save(npy, x)
    # The generator sends every binary body with the last binary type it read (text/csv): the
    # request it builds, with the .npy type.
    kwargs = upload._get_kwargs(body=types.File(payload=io.BytesIO(npy.getvalue())))
    kwargs["headers"]["Content-Type"] = "application/x-npy"
    by_npy = upload._build_response(client=client, response=client.get_httpx_client().request(**kwargs)).parsed
    assert by_npy.dataset_id == by_json.dataset_id

    # A synchronous spectrum, through its typed fields.
    body = models.SpectraIn(dataset_id=by_json.dataset_id, model=models.ModelIn(depth=2, activation="relu"))
    spectrum = spectra.sync(client=client, body=body)
    assert isinstance(spectrum, models.SpectrumOut) and spectrum.kind == "spectra"
    np.testing.assert_allclose(spectrum.eigenvalues, np.linalg.eigvalsh(ntk_depth2_unit(x) / 6), rtol=1e-10)

    # An asynchronous job (a new model), polled to finished; its result typed by kind.
    body = models.SpectraIn(dataset_id=by_json.dataset_id, model=models.ModelIn(depth=3, activation="abs"))
    accepted = spectra.sync_detailed(client=client, body=body, prefer="respond-async")
    assert accepted.status_code == 202 and isinstance(accepted.parsed, models.JobOut)
    job, deadline = accepted.parsed, time.monotonic() + 60
    while job.status not in (models.JobStatus.FINISHED, models.JobStatus.FAILED) and time.monotonic() < deadline:
        time.sleep(0.1)
        job = get_job.sync(job.job_id, client=client)
    assert job.status == models.JobStatus.FINISHED and isinstance(job.result, models.SpectrumOut)
    assert job.result.n == 6 and job.links.plot == f"/v1/jobs/{job.job_id}/plot"

    # A figure as bytes.
    figure = job_plot.sync_detailed(job.job_id, client=client)
    assert figure.status_code == 200 and figure.content.startswith(b"\x89PNG\r\n\x1a\n")

    # A 422, parsed as the typed error.
    bad = models.SpectraIn(dataset_id=by_json.dataset_id, model=models.ModelIn(depth=0, activation="relu"))
    refused = spectra.sync_detailed(client=generated.Client(base_url=api.url), body=bad)
    assert refused.status_code == 422 and isinstance(refused.parsed, models.ErrorOut)
    assert refused.parsed.error.code == models.ErrorDetailCode.INVALID_INPUT
    assert refused.parsed.error.field == "model.depth"

    # A cached GET, then 304 to its ETag.
    first = cached.sync_detailed(client=client, dataset_id=by_json.dataset_id, depth=2, activation="relu")
    assert first.status_code == 200 and first.parsed.eigenvalues == spectrum.eigenvalues
    again = cached.sync_detailed(client=client, dataset_id=by_json.dataset_id, depth=2, activation="relu",
                                 if_none_match=first.headers["etag"])
    assert again.status_code == 304 and again.content == b""


TYPESCRIPT = ROOT / "clients" / "typescript"


def _npm(*args: str, timeout: float = 300) -> None:
    run = subprocess.run([shutil.which("npm") or "npm", *args], cwd=TYPESCRIPT, capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, f"npm {' '.join(args)}: {run.stdout[-3000:]}{run.stderr[-3000:]}"


def test_typescript_client_generated_from_the_document_drives_the_service(api):
    """openapi-typescript types and openapi-fetch calls (clients/typescript/check.ts): type-checked
    with ``tsc --noEmit``, then run with Node against the service, the same steps as the Python client's."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the TypeScript client is not checked")
    if not (TYPESCRIPT / "node_modules").is_dir():
        _npm("ci", "--no-audit", "--no-fund")
    _npm("run", "-s", "generate")
    _npm("exec", "--", "tsc", "--noEmit")
    _npm("exec", "--", "tsc")
    x = np.array([[1, 0], [0.6, 0.8], [0, 1], [-0.6, 0.8], [-1, 0]], float)
    expected = json.dumps(list(np.linalg.eigvalsh(ntk_depth2_unit(x) / len(x))))
    run = subprocess.run([shutil.which("node") or "node", "dist/check.js", api.url, expected], cwd=TYPESCRIPT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "typescript client: ok" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
