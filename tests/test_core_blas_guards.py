"""Guards against OpenBLAS: its threaded ``syrk`` crash with AVX-512 kernels (eoc_ntk.core._numerics.blas_threads),
and results that change with its thread setting (eoc_ntk.core._numerics.interp).

On this project's CI machine (SkylakeX; OpenBLAS 0.3.30 in SciPy's wheel, 0.3.31 in NumPy's),
``u @ u.T`` of shape 16000 x 784 and ``dpotrf`` of order 16,000 killed the process with a
segmentation fault on two threads. The core forms Gram matrices by GEMM blocks
(:func:`eoc_ntk.core.angles.gram`) and factorises orders above 14,000 on one thread there
(:func:`eoc_ntk.core._numerics.blas_threads.factorisation_threads`).
"""
from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

from eoc_ntk.core._numerics import blas_threads as _blas_threads
from eoc_ntk.core.angles import gram


@pytest.mark.parametrize("n, block_rows", [(7, 3), (9, 9), (10, 4), (1, 5)])
def test_gram_by_blocks_equals_the_sum_of_products(n, block_rows):
    rng = np.random.default_rng(n)
    u = rng.normal(size=(n, 5))
    reference = np.einsum("ik,jk->ij", u, u)
    np.testing.assert_allclose(gram(u, block_rows=block_rows), reference, rtol=1e-13, atol=1e-13)
    out = np.full((n, n), np.nan)
    gram(u, out=out, upper=True, block_rows=block_rows)
    for i0 in range(0, n, block_rows):  # each block's rows, from the block's first column on
        i1 = min(n, i0 + block_rows)
        np.testing.assert_allclose(out[i0:i1, i0:], reference[i0:i1, i0:], rtol=1e-13, atol=1e-13)
    v = rng.normal(size=(4, 5))
    np.testing.assert_allclose(gram(u, v), np.einsum("ik,jk->ij", u, v), rtol=1e-13, atol=1e-13)


def test_large_factorisations_run_on_one_thread_with_avx512_kernels(monkeypatch):
    controller = _blas_threads._controller()
    if not controller or not _blas_threads._blas_libraries():
        pytest.skip("threadpoolctl cannot drive this BLAS")
    assert threading.current_thread() is threading.main_thread()
    before = _blas_threads._current()
    monkeypatch.setattr(_blas_threads, "_avx512_blas", lambda: True)
    with _blas_threads.factorisation_threads(_blas_threads.THREADED_SYRK_SAFE_ORDER + 1):
        assert _blas_threads._current() == [1] * len(before)
    assert _blas_threads._current() == before
    with _blas_threads.factorisation_threads(_blas_threads.THREADED_SYRK_SAFE_ORDER):
        assert _blas_threads._current() == before
    monkeypatch.setattr(_blas_threads, "_avx512_blas", lambda: False)
    with _blas_threads.factorisation_threads(10 * _blas_threads.THREADED_SYRK_SAFE_ORDER):
        assert _blas_threads._current() == before


_FACTORISE_16000 = """
import numpy as np
from eoc_ntk.core import angles as _angles
from eoc_ntk.core import eigen as _eigen
rng = np.random.default_rng(0)
u = rng.normal(size=(16000, 784))
u /= np.linalg.norm(u, axis=1, keepdims=True)
k = _angles.gram(u)                       # was u @ u.T: a segmentation fault here
k.flat[:: k.shape[0] + 1] += 1.0
assert np.allclose(k[:3, :3], np.einsum("ik,jk->ij", u[:3], u[:3]) + np.eye(3))
lam, vec = _eigen._shifted_lambda_min(k, np.empty_like(k), 0.5, rng.normal(size=16000), lambda v: k @ v) or (None, None)
print("lambda_min", lam)
"""


@pytest.mark.slow
def test_order_16000_gram_and_factorisation_do_not_crash():
    """The crashing sizes themselves, in a child process (a crash is its exit status)."""
    proc = subprocess.run([sys.executable, "-c", _FACTORISE_16000], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    lam = float(proc.stdout.split()[-1])
    assert 1.0 - 1e-9 < lam < 1.0 + 1e-3  # K = G + I with a PSD G of rank 784 < n: lambda_min = 1


_COEFFICIENTS = """
import sys
import numpy as np
from eoc_ntk.core._numerics.interp import AngleInterpolant
interp = AngleInterpolant(10, 0.5)
interp.ensure(np.arange(40, 120))
sys.stdout.write(interp.coefficients().tobytes().hex())
"""


def test_interpolant_coefficients_do_not_depend_on_blas_threads():
    """A Dask worker starts OpenBLAS on one thread (OPENBLAS_NUM_THREADS=1), the client on all
    cores: the interpolant fitted in each must be the same to the last bit (a LAPACK inverse and a
    BLAS product made them differ, and the kernels by 5e-14: tests/test_core_distributed.py)."""
    import os

    runs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        proc = subprocess.run([sys.executable, "-c", _COEFFICIENTS], capture_output=True, text=True, timeout=120,
                              env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(proc.stdout)
    assert runs[0] == runs[1] and len(runs[0]) > 1000
