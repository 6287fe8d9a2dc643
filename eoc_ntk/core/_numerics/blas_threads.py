"""BLAS threads for loops of many small BLAS calls.

OpenBLAS splits even small products (a 2000 x 2000 matrix-vector product, an 8 x 10 by
10 x 32768 product) over all cores; on a shared 2-core machine the thread hand-offs made
such calls 2-6x slower than on one thread, and erratic. A depth sweep is a loop of such
calls around one big factorisation per depth, so it runs them on one thread
(:func:`one_blas_thread`) and gives the factorisations every thread back
(:func:`all_blas_threads`): 10-20 % faster over depths 1..100 at n = 2000
(``bench/bench_sweep.py``).

OpenBLAS has no per-call setting, and once its thread pool runs it ignores changes made
through ``openblas_set_num_threads`` from any thread but the main one (measured with OpenBLAS
0.3.31; its ``openblas_set_num_threads_local`` does work from any thread, but changes the
count of every thread, so a sweep would slow the concurrent requests of the service). So the
limit applies to sweeps running in the main thread (scripts, the CLI, an RQ job) and is a
no-op elsewhere (the embedded service's executor threads), where the sweep is 10-20 %
slower. Nested uses restore the original count when the outermost one ends, also on an
exception.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["one_blas_thread", "all_blas_threads", "factorisation_threads", "THREADED_SYRK_SAFE_ORDER"]

_LOCK = threading.Lock()
_STATE = {"users": 0, "original": None, "controller": None}


def _controller():
    if _STATE["controller"] is None:
        try:
            from threadpoolctl import ThreadpoolController
            _STATE["controller"] = ThreadpoolController()
        except Exception:  # no threadpoolctl, or a BLAS it cannot drive: leave threads alone
            _STATE["controller"] = False
    return _STATE["controller"]


def _blas_libraries() -> list:
    controller = _controller()
    return [lib for lib in controller.lib_controllers if lib.user_api == "blas"] if controller else []


def _set(counts) -> None:
    """Set every BLAS library's thread count: one int for all, or a list as from :func:`_current`."""
    libraries = _blas_libraries()
    if counts is None:
        return
    if isinstance(counts, int):
        counts = [counts] * len(libraries)
    for library, count in zip(libraries, counts):
        library.set_num_threads(count)


def _current() -> list[int]:
    return [library.num_threads for library in _blas_libraries()]


def _effective() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def one_blas_thread():
    """Run the block with BLAS on one thread (main thread only; nested uses allowed)."""
    if not _effective():
        yield
        return
    with _LOCK:
        if _STATE["users"] == 0:
            _STATE["original"] = _current()
            _set(1)
        _STATE["users"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["users"] -= 1
            if _STATE["users"] == 0:
                _set(_STATE["original"])


@contextmanager
def all_blas_threads():
    """Inside :func:`one_blas_thread`: the original thread count for one large call."""
    with _LOCK:
        limited = _effective() and _STATE["users"] > 0
        if limited:
            _set(_STATE["original"])
    try:
        yield
    finally:
        if limited:
            with _LOCK:
                if _STATE["users"] > 0:
                    _set(1)


#: Largest order at which OpenBLAS's threaded ``syrk`` is known to be safe with its AVX-512
#: kernels: with OpenBLAS 0.3.30 (SciPy's wheels) and 0.3.31 (NumPy's) on a SkylakeX CPU, the
#: threaded ``syrk`` inside ``dpotrf`` (and ``u @ u.T`` at m0 = 784) killed the process with a
#: segmentation fault at order 16,000 and passed at 14,000; the same calls passed on one thread,
#: and on two threads with ``OPENBLAS_CORETYPE=Haswell``.
THREADED_SYRK_SAFE_ORDER = 14000
_AVX512_KERNELS = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})


def _avx512_blas() -> bool:
    controller = _controller()
    return bool(controller) and any(getattr(lib, "architecture", None) in _AVX512_KERNELS
                                    for lib in _blas_libraries())


@contextmanager
def factorisation_threads(order: int):
    """BLAS threads for one factorisation of a matrix of ``order`` rows: every thread
    (:func:`all_blas_threads`), except one thread above :data:`THREADED_SYRK_SAFE_ORDER` with
    OpenBLAS's AVX-512 kernels (about 2x slower there, instead of a crashed process). Like
    :func:`one_blas_thread`, the limit holds in the main thread only (job processes, scripts);
    the service's job processes compute in their main thread."""
    if order > THREADED_SYRK_SAFE_ORDER and _avx512_blas():
        with one_blas_thread():
            yield
    else:
        with all_blas_threads():
            yield
