"""Spectra on a Dask cluster: which engine a spectra job runs on, and the job's side of it.

With ``EOC_NTK_DASK_ADDRESS`` set, a spectra request of ``n >= EOC_NTK_DASK_MIN_N`` points gets
``"engine": "dask"`` in its spec (:func:`engine_for`), hence a cache key and a job id of its own
(its answer differs: extreme eigenvalues only, no ICD), and always becomes a job; the family's
activations and the smooth ones (erf, tanh, gelu, silu) alike. The job's
process (an RQ work horse, or a child process of the embedded pool) connects to the scheduler
as a Dask client and runs :func:`eoc_ntk.distributed.spectrum` there (:func:`spectrum_on_cluster`):
the tiles of ``K/n``, the Lanczos products and the tiled factorisations run on the cluster's
workers; the job's process holds vectors of length ``n`` only. Its progress goes through the
job's callback, as every job's does.

Cancel and timeouts stop the job's process as for every job. Before that, the process gets a
SIGTERM (the embedded pool's first signal; the RQ work horse's guard's too, see
:mod:`jobs.horse`), which raises :class:`jobs.errors.JobCanceled` in the
job's main thread; leaving the client then cancels every future it holds (``client.cancel``),
so the cluster drops the job's queued and stored tasks, and the signal is delivered again with
its previous action (the process ends as it would have). A process killed outright (SIGKILL, or
RQ's own timeout) loses its connection to the scheduler, which releases every key of that client:
either way nothing of the job stays queued on the cluster (a task already running on a worker
thread finishes, and its result is dropped).

Dask is imported only when a job runs on the cluster: the module (and ``jobs``) imports without
the ``[distributed]`` extra.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator

import numpy as np

from eoc_ntk import distributed
from eoc_ntk.core.analysis import analysis_document, icd_unavailable_reason
from eoc_ntk.core.model import Model
from eoc_ntk.core.progress import ProgressFn

from .errors import ClusterUnavailable, JobCanceled
from .settings import JobSettings

__all__ = ["ENGINES", "DASK", "NUMPY", "engine_for", "on_cluster", "spectrum_on_cluster", "ICD_ON_CLUSTER"]

#: The engine of a spectrum computed on one machine (NumPy/SciPy, all eigenvalues and the ICD).
NUMPY = "numpy"
#: The engine of a spectrum computed on the Dask cluster (extreme eigenvalues, no ICD).
DASK = "dask"
ENGINES = (NUMPY, DASK)
#: Why a spectrum computed on the cluster has no ICD analysis.
ICD_ON_CLUSTER = ("the ICD analysis needs the whole matrix on one machine; this spectrum ran on the Dask cluster "
                  "(n >= EOC_NTK_DASK_MIN_N), which computes lambda_min and lambda_max only")


def engine_for(settings: JobSettings, op: str, n: int) -> str:
    """:data:`DASK` for a spectra request of ``n >= EOC_NTK_DASK_MIN_N`` points when a scheduler is
    configured, else :data:`NUMPY`."""
    if op == "spectra" and settings.dask_configured and n >= settings.dask_min_n:
        return DASK
    return NUMPY


def on_cluster(spec: dict) -> bool:
    """True when ``spec`` runs on the Dask cluster (such a computation is always a job)."""
    return spec.get("engine") == DASK


def spectrum_on_cluster(x: np.ndarray, model: Model, settings: JobSettings, progress: ProgressFn,
                        name: str = "eoc-ntk-job") -> dict:
    """The spectra document of ``x`` computed on the cluster at ``EOC_NTK_DASK_ADDRESS``.

    Parameters
    ----------
    x : ndarray of shape (n, m0)
        Checked data.
    model : Model
    settings : JobSettings
        ``dask_address``, ``dask_chunks`` and ``dask_connect_timeout`` are read.
    progress : callable
        The job's progress callback (it may raise to stop the job).
    name : str
        The Dask client's name (the job id), as the scheduler lists it.

    Returns
    -------
    dict
        :func:`eoc_ntk.core.analysis.analysis_document` of the certified extremes (``eigenvalues``
        and ``icd`` None, the reason in ``icd_unavailable``), with ``"engine": "dask"``. Smooth
        activations (erf, tanh, gelu, silu) run there too; their ``model`` says which, with
        ``sigma_w``, ``q_star`` and ``chi``, as on one machine.

    Raises
    ------
    ClusterUnavailable
        When the ``[distributed]`` extra is missing or the scheduler does not answer in time.
    JobCanceled
        When the process is sent SIGTERM (cancel or timeout of the job).
    """
    # The family by (a, b); a smooth activation by itself, with the model's resolved sigma_w.
    activation = {"activation": model.activation} if model.is_smooth else {"a": model.a, "b": model.b}
    with _terminate_cancels(), _client(settings, name) as client:
        try:
            result = distributed.spectrum(x, depth=model.depth, **activation, sigma_w=model.sigma_w,
                                          sigma_b=model.sigma_b, client=client, chunks=settings.dask_chunks,
                                          progress=progress)
        except BaseException:
            _cancel_everything(client)
            raise
    # A smooth activation has no ICD on any engine: its reason, not the cluster's.
    doc = analysis_document(result, x.shape[1], model, None, icd_unavailable_reason(model) or ICD_ON_CLUSTER)
    doc["engine"] = DASK
    return doc


@contextlib.contextmanager
def _client(settings: JobSettings, name: str) -> Iterator:
    """A Dask client of the configured scheduler, closed (its keys released) on the way out."""
    try:
        # Optional heavy dependency: imported only when a job runs on the cluster.
        from distributed import Client
    except ImportError as exc:
        raise ClusterUnavailable("EOC_NTK_DASK_ADDRESS is set but this worker lacks Dask: install "
                                 "eoc-ntk[distributed] on every worker, or unset EOC_NTK_DASK_ADDRESS") from exc
    try:
        client = Client(settings.dask_address, timeout=settings.dask_connect_timeout, name=name,
                        set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(f"the Dask scheduler at EOC_NTK_DASK_ADDRESS = {settings.dask_address} did not "
                                 f"answer within {settings.dask_connect_timeout:g} s (EOC_NTK_DASK_CONNECT_TIMEOUT): "
                                 f"{exc}") from exc
    try:
        yield client
    finally:
        client.close()


def _cancel_everything(client) -> None:
    """``client.cancel`` of every future the client holds (the job's tiles, factors, vectors)."""
    from distributed import Future  # the optional dependency, already imported by _client

    keys = list(client.futures)
    if keys:
        with contextlib.suppress(Exception):  # a client that lost the scheduler has nothing to cancel there
            client.cancel([Future(key, client) for key in keys], force=True,
                          reason="the eoc-ntk job was canceled or failed")


@contextlib.contextmanager
def _terminate_cancels() -> Iterator[None]:
    """While inside: SIGTERM raises :class:`JobCanceled` in this (main) thread, so the client can
    cancel its futures before the process ends. Outside the main thread: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received = []

    def stop(signum, frame):
        received.append(signum)
        raise JobCanceled("the job was canceled or ran past its time limit (its process was sent SIGTERM)")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received:  # the futures are cancelled: now end as the signal meant (RQ's horse: its default action)
            os.kill(os.getpid(), signal.SIGTERM)
