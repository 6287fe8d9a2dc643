"""eoc_ntk.distributed (issue #15) on a LocalCluster of 2 worker processes with 1 thread each.

References are independent of the distributed code: the single-machine core
(``eoc_ntk.kernel``, ``eoc_ntk.spectrum(..., eigenvalues="extremes")``, itself checked against
dense ``eigvalsh`` and the mpmath recursion elsewhere), compared entry by entry and value by value.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
from distributed import Client, LocalCluster

import eoc_ntk
from eoc_ntk import distributed as dist
from eoc_ntk.core.activations import Activation
from eoc_ntk.core.eigen import DENSE_BELOW
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


# ------------------------------------------------------------------ smooth activations

SMOOTH = dict(depth=10, activation="tanh", sigma_b=0.1)
#: Smooth kernels of inputs of many distinct norms go pair by pair (cost linear in depth), so the
#: tanh cases use unit rows (one variance group: the core's composed-map interpolants); erf's
#: closed form is fast for any norms.
N_SMOOTH, SMOOTH_CHUNKS = 600, 250


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _smooth_points(name):
    x = _unit(_uniform()[:N_SMOOTH]) if name == "tanh" else _uniform()[:N_SMOOTH]
    x[550] = x[17]  # a duplicate pair in the first and the last tile
    return x


@pytest.mark.parametrize("name, cross", [("tanh", False), ("erf", True),
                                         pytest.param("tanh", True, marks=pytest.mark.slow),
                                         pytest.param("erf", False, marks=pytest.mark.slow)])
def test_smooth_kernel_equals_the_single_machine_kernel(client, name, cross):
    x = _smooth_points(name)
    x2 = (_unit(_gaussian()[:400]) if name == "tanh" else _gaussian()[:400]) if cross else None
    model = dict(depth=10, activation=name, sigma_b=0.1)
    for kind in ("ntk",) if cross else ("ntk", "nngp"):
        got = dist.kernel(x, x2, kind=kind, chunks=SMOOTH_CHUNKS, **model).compute()
        want = eoc_ntk.kernel(x, x2, kind=kind, **model)
        # Off-diagonal tiles are cross-kernels K(rows, cols): equal to the whole matrix's block to
        # rounding (a tile groups variances and picks interpolant or exact recursion on its own).
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * np.abs(want).max())
        if not cross:
            np.testing.assert_array_equal(got, got.T)
            assert got[17, 550] == got[17, 17] == got[550, 550]  # the duplicate pair across two tiles


def _smooth_reference():
    return json.loads((Path(__file__).parent / "_reference" / "smooth_values.json").read_text())


#: Stored inputs ordered so that with 2-row tiles the pairs (x0, x0_near) and (x1, x_small) lie in
#: diagonal tiles and (x0, x1), (x0, x0_opposite) in off-diagonal ones; with 1-row tiles every pair
#: but the diagonal is a cross-kernel tile.
_ORDER = ("x0", "x0_near", "x1", "x_small", "x0_opposite")


@pytest.mark.parametrize("name, label, chunks", [("tanh", "eoc", 1), ("gelu", "off_eoc", 2),
                                                 pytest.param("silu", "eoc", 2, marks=pytest.mark.slow),
                                                 pytest.param("erf", "off_eoc", 1, marks=pytest.mark.slow)])
def test_smooth_kernel_matches_the_60_digit_reference(client, name, label, chunks):
    table = _smooth_reference()
    x = np.array([[float(v) for v in table["inputs"][key]] for key in _ORDER])
    entry = table["activations"][name][label]
    model = dict(activation=name, sigma_w=float(entry["sigma_w"]), sigma_b=float(entry["sigma_b"]))
    for kind, depth in (("ntk", 10), ("ntk", 100), ("nngp", 10)):
        got = dist.kernel(x, kind=kind, depth=depth, chunks=chunks, **model).compute()
        for pair in entry["pairs"].values():
            want = float(pair[kind][str(depth)])
            value = got[_ORDER.index(pair["x"]), _ORDER.index(pair["y"])]
            assert value == pytest.approx(want, rel=1e-12, abs=0), (pair["x"], pair["y"], kind, depth)


@pytest.mark.parametrize("n, duplicate", [(600, True), (1500, False), pytest.param(1500, True, marks=pytest.mark.slow)])
def test_smooth_spectrum_equals_the_single_machine_spectrum(client, n, duplicate):
    x = _unit(_uniform()[:n])
    if duplicate:
        x[n - 100] = x[17]  # in different tiles
    got = dist.spectrum(x, client=client, chunks=SPECTRUM_CHUNKS if n > 1000 else 250, **SMOOTH)
    want = eoc_ntk.spectrum(x, **SMOOTH)  # every eigenvalue, by syevd
    assert got.method == ("dense" if n < DENSE_BELOW else "lanczos")
    assert (got.singular, got.singular_reason, got.duplicate_groups) == \
        (want.singular, want.singular_reason, want.duplicate_groups)
    assert got.singular is duplicate and (not duplicate or got.duplicate_groups == ((17, n - 100),))
    # Gathered below DENSE_BELOW: the single machine's solver on the same matrix (to rounding);
    # above it the tiled path certifies 1e-9 relative, as the single machine's fast path does.
    rtol = 1e-12 if n < DENSE_BELOW else 1e-9
    assert math.isclose(got.trace, want.trace, rel_tol=1e-12)
    assert math.isclose(got.lambda_max, want.lambda_max, rel_tol=rtol)
    if duplicate:
        assert got.condition_number == math.inf and 0.0 <= got.lambda_min <= got.tolerance * got.lambda_max
    else:
        assert math.isclose(got.lambda_min, want.lambda_min, rel_tol=rtol)
        assert math.isclose(got.condition_number, want.condition_number, rel_tol=2 * rtol)


def test_a_custom_activation_that_pickles_runs_on_the_workers(client):
    act = Activation.custom(lambda s: np.sin(s) + 0.1 * s, lambda s: np.cos(s) + 0.1, name="sinlin")
    x = _uniform()[:30]
    got = dist.kernel(x, depth=3, activation=act, sigma_b=0.1, chunks=12).compute()
    np.testing.assert_allclose(got, eoc_ntk.kernel(x, depth=3, activation=act, sigma_b=0.1), rtol=1e-12)


def test_a_custom_activation_that_does_not_pickle_is_refused_by_name():
    class Locked:  # a callable holding a lock: cloudpickle cannot send it
        def __init__(self):
            self.lock = threading.Lock()

        def __call__(self, s):
            return np.sin(s)

    act = Activation.custom(Locked(), np.cos, name="locked")
    for call in (dist.kernel, dist.spectrum):
        with pytest.raises(InvalidParameterError, match="cannot be sent to the Dask workers") as info:
            call(_uniform()[:10], depth=2, activation=act, sigma_b=0.1)
        assert info.value.param == "activation"


@pytest.mark.parametrize("kwargs, param", [
    (dict(activation="tanh", sigma_b=0.1, kind="icd"), "kind"),  # ICD is the family's
    (dict(activation="tanh", a=0.5, sigma_b=0.1), "activation"),  # both activation= and a=
    (dict(activation="mish", sigma_b=0.1), "activation"),
    (dict(activation="tanh"), "sigma_b"),  # no edge of chaos at sigma_b = 0
])
def test_smooth_requests_are_refused_as_by_the_core(kwargs, param):
    with pytest.raises(InvalidParameterError) as info:
        dist.kernel(_uniform()[:10], depth=3, **kwargs)
    assert info.value.param == param


def test_a_refusal_raised_on_a_worker_reaches_the_caller_whole(client):
    x = _uniform()[:10]
    x[7] = 0.0  # a zero row at sigma_b = 0: its angle is undefined, refused by the tile that holds it
    lazy = dist.kernel(x, depth=3, activation="tanh", sigma_w=1.0, sigma_b=0.0, kind="angle", chunks=5)
    with pytest.raises(InvalidParameterError, match="zero input rows") as info:
        lazy.compute()
    assert info.value.param == "x" and "by the tile of rows" in str(info.value)
