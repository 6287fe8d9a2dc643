"""BLAS threads for loops of many small BLAS calls, and for large factorisations.

A depth sweep is a loop of small BLAS calls (matrix-vector products, small GEMMs) around one
large factorisation per depth. OpenBLAS splits even small calls over every core, and the
thread hand-offs cost more than they gain, so the loop runs on one BLAS thread
(:func:`one_blas_thread`) and each factorisation inside it gets the original thread counts
back (:func:`all_blas_threads`). bench/README.md ("How the figures are reached") has the numbers.

Rules:

- Every limit is a :func:`threadpoolctl.threadpool_limits` context: on exit, also on an
  exception, it restores the counts it found on entry, so limits nest. The only thing kept
  here is the counts that the outermost :func:`one_blas_thread` found, in a context variable
  (per thread), which :func:`all_blas_threads` restores for one call.
- OpenBLAS has no per-call setting, and once its pool runs it ignores counts set from any
  thread but the main one (``openblas_set_num_threads_local`` would change the count of every
  thread, slowing the service's concurrent requests). So the limits apply in the main thread
  (scripts, the CLI, an RQ job) and are no-ops elsewhere (the embedded service's threads).
- Without threadpoolctl support for the loaded BLAS, nothing is changed.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from threadpoolctl import ThreadpoolController, threadpool_limits

__all__ = ["one_blas_thread", "all_blas_threads", "factorisation_threads", "THREADED_SYRK_SAFE_ORDER"]

#: The BLAS libraries' ``threadpool_info()`` entries as the outermost :func:`one_blas_thread`
#: found them; None outside it.
_ORIGINAL: ContextVar[list[dict[str, Any]] | None] = ContextVar("eoc_ntk_blas_original", default=None)


@functools.cache
def _controller() -> ThreadpoolController | None:
    """The libraries threadpoolctl can drive, found once; None when it cannot inspect them."""
    try:
        return ThreadpoolController()
    except Exception:  # a BLAS threadpoolctl cannot drive: leave threads alone
        return None


def _blas_libraries() -> list[Any]:
    controller = _controller()
    return [lib for lib in controller.lib_controllers if lib.user_api == "blas"] if controller else []


def _current() -> list[int]:
    """The thread count of every BLAS library, in :func:`_blas_libraries` order."""
    return [library.num_threads for library in _blas_libraries()]


def _effective() -> bool:
    return threading.current_thread() is threading.main_thread() and bool(_blas_libraries())


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with BLAS on one thread (main thread only; nested uses allowed)."""
    if not _effective():
        yield
        return
    outermost = _ORIGINAL.get() is None
    token = _ORIGINAL.set(ThreadpoolController().select(user_api="blas").info()) if outermost else None
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if token is not None:
            _ORIGINAL.reset(token)


@contextmanager
def all_blas_threads() -> Iterator[None]:
    """Inside :func:`one_blas_thread`: the original thread counts for one large call (a no-op outside)."""
    original = _ORIGINAL.get()
    if original is None or not _effective():
        yield
        return
    with threadpool_limits(limits=original):
        yield


#: Largest order at which OpenBLAS's threaded ``syrk`` is known to be safe with its AVX-512
#: kernels (bench/README.md, "A crash this benchmark found"): above it, factorisations run on
#: one thread when those kernels are in use.
THREADED_SYRK_SAFE_ORDER = 14000
_AVX512_KERNELS = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})


def _avx512_blas() -> bool:
    return any(getattr(lib, "architecture", None) in _AVX512_KERNELS for lib in _blas_libraries())


@contextmanager
def factorisation_threads(order: int) -> Iterator[None]:
    """BLAS threads for one factorisation of a matrix of ``order`` rows: every thread
    (:func:`all_blas_threads`), except one thread above :data:`THREADED_SYRK_SAFE_ORDER` with
    OpenBLAS's AVX-512 kernels (about 2x slower there, instead of a crashed process). Like
    :func:`one_blas_thread`, the limit holds in the main thread only (job processes, scripts)."""
    if order > THREADED_SYRK_SAFE_ORDER and _avx512_blas():
        with one_blas_thread():
            yield
    else:
        with all_blas_threads():
            yield
