"""eoc_ntk.distributed (issue #15) on a LocalCluster of 2 worker processes with 1 thread each.

References are independent of the distributed code: the single-machine core
(``eoc_ntk.kernel``, ``eoc_ntk.spectrum(..., eigenvalues="extremes")``, itself checked against
dense ``eigvalsh`` and the mpmath recursion elsewhere), compared entry by entry and value by value.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")
from distributed import Client, LocalCluster

import eoc_ntk
from eoc_ntk import distributed as dist
from eoc_ntk.core.errors import InvalidParameterError

N, M0, CHUNKS = 1500, 10, 400
#: 2 x 2 tiles for the spectra: fewer, larger tasks per triangular solve keep the file fast;
#: the duplicate pair (rows 17 and 1234) still straddles two tiles.
SPECTRUM_CHUNKS = 750
MODEL = dict(depth=10, a=0.5, b=0.5)


def _uniform():
    return np.random.default_rng(15).uniform(-1.0, 1.0, (N, M0))


def _gaussian():
    return np.random.default_rng(16).standard_normal((N, M0))


def _duplicate_row():
    x = _uniform()
    x[1234] = x[17]  # rows in different tiles (17 in the first, 1234 in the fourth)
    return x


DATASETS = {"uniform": _uniform, "gaussian": _gaussian, "duplicate_row": _duplicate_row}
_REFERENCE = {}


def reference_spectrum(name):
    if name not in _REFERENCE:
        _REFERENCE[name] = eoc_ntk.spectrum(DATASETS[name](), eigenvalues="extremes", **MODEL)
    return _REFERENCE[name]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def test_the_core_imports_without_dask():
    code = "import sys, eoc_ntk; sys.exit(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("chunks", [0, -3, 2.5, True, "400"])
def test_chunks_is_refused_by_name(chunks):
    with pytest.raises(InvalidParameterError) as info:
        dist.kernel(_uniform()[:10], chunks=chunks, **MODEL)
    assert info.value.param == "chunks"


@pytest.mark.parametrize("kind, cross", [("ntk", False), ("nngp", False), ("ntk", True)])
def test_kernel_equals_the_single_machine_kernel(client, kind, cross):
    x = _duplicate_row()  # also checks the duplicate pair that straddles two tiles
    x2 = _gaussian()[:700] if cross else None
    lazy = dist.kernel(x, x2, kind=kind, chunks=CHUNKS, **MODEL)
    assert lazy.chunks[0] == (400, 400, 400, 300)
    got = lazy.compute()
    want = eoc_ntk.kernel(x, x2, kind=kind, **MODEL)
    # Workers start OpenBLAS on one thread (Dask sets OPENBLAS_NUM_THREADS=1), the client on two;
    # the interpolant's coefficients are fitted without BLAS (eoc_ntk.core._numerics.interp), else they differed
    # in the last bits and the kernels by 5e-14 (NumPy 1.26's OpenBLAS on a SkylakeX CPU).
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14 * np.abs(want).max())
    if not cross:
        np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("name", list(DATASETS))
def test_spectrum_equals_the_single_machine_extremes(client, name):
    fractions = []
    got = dist.spectrum(DATASETS[name](), client=client, chunks=SPECTRUM_CHUNKS, progress=fractions.append, **MODEL)
    want = reference_spectrum(name)
    assert got.singular == want.singular
    assert got.singular_reason == want.singular_reason
    assert got.duplicate_groups == want.duplicate_groups
    assert math.isclose(got.lambda_max, want.lambda_max, rel_tol=1e-9)
    assert math.isclose(got.trace, want.trace, rel_tol=1e-12)
    if want.singular:
        assert got.condition_number == want.condition_number == math.inf
        assert 0.0 <= got.lambda_min <= got.tolerance * got.lambda_max
    else:
        assert math.isclose(got.lambda_min, want.lambda_min, rel_tol=1e-9)
        assert math.isclose(got.condition_number, want.condition_number, rel_tol=1e-9)
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] == 1.0


def test_spectrum_survives_a_worker_killed_during_the_factorisation(client):
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed_at = []

    def progress(fraction):
        # Past the float32 rough factorisation, inside the float64 factorisation of K - sigma I.
        if not killed_at and dist._PHASES["rough"] < fraction < dist._PHASES["factor"]:
            os.kill(victim, signal.SIGKILL)
            killed_at.append(fraction)

    got = dist.spectrum(_uniform(), client=client, chunks=SPECTRUM_CHUNKS, progress=progress, **MODEL)
    want = reference_spectrum("uniform")
    assert killed_at and killed_at[0] < dist._PHASES["factor"]
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    assert not got.singular
    assert math.isclose(got.lambda_min, want.lambda_min, rel_tol=1e-9)
    assert math.isclose(got.lambda_max, want.lambda_max, rel_tol=1e-9)
    client.wait_for_workers(2, timeout=120)  # the nanny has restarted the killed worker
