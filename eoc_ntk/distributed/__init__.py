"""Kernels and certified extreme eigenvalues on a Dask cluster, beyond one machine's memory.

Optional: needs the ``[distributed]`` extra (``dask[array]`` and ``distributed``);
``import eoc_ntk`` never imports this module.

- :func:`kernel`: the kernel as a lazy ``dask.array.Array`` whose tiles are computed on the
  workers by the core's own kernel code (:func:`eoc_ntk.core.kernels.compute_kernels`) on row and
  column blocks, from the data sent to the cluster once.
- :func:`spectrum`: ``lambda_min``, ``lambda_max`` and the condition number of ``K / n``
  (docs/math.md §5) with the semantics of ``eoc_ntk.spectrum(..., eigenvalues="extremes")``
  and the same certification (:mod:`eoc_ntk.core.eigen`): Lanczos for ``lambda_max`` with
  products against the tiles kept on the workers, a float32 tiled Cholesky for a rough
  ``lambda_min``, then a float64 tiled Cholesky of ``K - sigma I`` that proves no eigenvalue
  lies below ``sigma`` and drives shift-and-invert Lanczos with distributed triangular
  solves. The singular verdict and its reason come from the same code as on one machine
  (:func:`eoc_ntk.core._numerics.diagnosis.diagnose`, which works from the points, never from ``K``).

Smooth activations (``activation="erf"``, ``"tanh"``, ``"gelu"``, ``"silu"``, with ``sigma_b`` for their
edge of chaos) work as on one machine: a worker computes its tile with the core's dispatch
(:func:`eoc_ntk.core.kernels.compute_kernels`, hence :func:`eoc_ntk.core.smooth_kernels.smooth_kernels`)
on its row and column blocks. ``Activation.custom(phi, dphi)`` travels to the workers when it pickles
under cloudpickle, as Dask sends tasks: lambdas and functions of ``__main__`` by value, functions of
a module by name (that module must then be importable on every worker); one that does not pickle is
refused (``InvalidParameterError``, ``param="activation"``) before anything is sent.

Every tile is a Dask task: a worker lost mid-computation is replaced by its nanny and the
scheduler recomputes the tiles it held from the graph, down to the data, which are one
task of the graph rather than scattered (scattered data lost with a worker is gone).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from typing import Any, Callable, cast

import numpy as np

from eoc_ntk.core.angles import unit_rows
from eoc_ntk.core.eigen import (
    DENSE_BELOW,
    RETRY_FRACTIONS,
    certified_lambda_min_from_solver,
    certified_top,
    extreme_eigenvalues,
    lanczos_top,
    rough_lambda_min_from_solver,
)
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.kernels import check_kinds, check_scale, compute_kernels
from eoc_ntk.core.model import Model, model_of
from eoc_ntk.core.spectra import Spectrum, assemble_spectrum, singular_tolerance
from eoc_ntk.core.validation import check_data, check_pair
from eoc_ntk.distributed._tiled import TiledSymmetric, block_edges

__all__ = ["kernel", "spectrum", "DEFAULT_CHUNKS"]

#: Rows (and columns) of one tile: 4096^2 float64 = 128 MiB per tile.
DEFAULT_CHUNKS = 4096
#: The single-machine kernel evaluates all entries exactly below this many entries
#: (``eoc_ntk.core.kernels._choose_interpolant``); tiles make the same choice for the whole matrix.
_EXACT_BELOW_ENTRIES = 4096
#: Share of a ``client=None`` machine's memory given to the local workers (the rest spills).
_LOCAL_MEMORY_SHARE = 0.8
#: Progress fractions at the end of each phase.
_PHASES = {"tiles": 0.3, "lambda_max": 0.4, "rough": 0.55, "factor": 0.9}

ProgressFn = Callable[[float], None]


# ----------------------------------------------------------------- tasks run by the workers

def _kernel_tile(x: np.ndarray, x2: np.ndarray | None, rows: tuple[int, int], cols: tuple[int, int],
                 model: Model, kind: str, method: str, divide_by: int = 1,
                 transpose: bool = False) -> np.ndarray:
    """One tile of the kernel: rows ``rows`` of ``x`` against rows ``cols`` of ``x2`` (or of ``x``).

    A diagonal tile of a symmetric kernel (``x2 is None`` and ``rows == cols``) is computed
    as the core computes the whole matrix: its upper triangle, mirrored, with exact
    ``theta_l(0)`` on the diagonal. Off-diagonal tiles are cross-kernels, whose entries the
    core computes from the same two points in the same way (exact duplicates included:
    their angle is 0 from the difference of unit vectors). For a smooth activation
    ``method`` is not read: the core chooses per tile between its composed-map interpolants
    and the exact recursion, which agree to 1e-13 of the largest entry. ``transpose`` returns the tile's
    transpose, so a lower tile equals the mirror of the upper one bit for bit.
    """
    first = x[rows[0]:rows[1]]
    if x2 is None and rows == cols:
        second = None
    else:
        second = (x if x2 is None else x2)[cols[0]:cols[1]]
    try:
        tile = compute_kernels(first, second, model, (kind,), method=method)[kind]
    except InvalidParameterError as exc:  # its row numbers count from the tile's first row and column
        raise InvalidParameterError(f"{exc} (raised by the tile of rows {rows[0]}:{rows[1]} of x against rows "
                                    f"{cols[0]}:{cols[1]} of {'x' if x2 is None else 'x2'}; its row numbers count "
                                    "within that tile)", param=exc.param) from exc
    if divide_by != 1:
        np.divide(tile, divide_by, out=tile)
    return np.ascontiguousarray(tile.T) if transpose else tile


# ------------------------------------------------------------------------------- helpers

def _check_chunks(chunks) -> int:
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise InvalidParameterError(
            f"chunks must be a positive integer number of rows per tile, got {chunks!r}; "
            f"the default {DEFAULT_CHUNKS} makes 128 MiB tiles",
            param="chunks",
        )
    return int(chunks)


def _check_progress(progress) -> None:
    if progress is not None and not callable(progress):
        raise InvalidParameterError(
            "progress must be a callable taking the completed fraction in [0, 1], or None; got "
            f"{type(progress).__name__}",
            param="progress",
        )


def _model(depth: int, a: float | None, b: float | None, activation: Any, sigma_w: float | None, sigma_b: float,
           where: str) -> Model:
    """The core's model of the arguments (:func:`eoc_ntk.core.model.model_of`), refused
    (``param="activation"``) when a custom activation's functions cannot be sent to the workers."""
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, where=where)
    if model.is_smooth and not model.cacheable:  # Activation.custom: Python callables
        import cloudpickle  # how Dask sends a task's arguments (a dependency of distributed)

        try:
            cloudpickle.dumps(model)
        except Exception as exc:
            raise InvalidParameterError(
                f"custom activation {model.activation.label!r} cannot be sent to the Dask workers: its phi or dphi "
                f"does not pickle ({type(exc).__name__}: {exc}). Give functions without unpicklable state (locks, "
                "open files, C handles): lambdas, functions of __main__ or of a module every worker can import; or "
                "use eoc_ntk.spectrum / eoc_ntk.kernel on one machine", param="activation") from exc
    return model


def _check_request(x: np.ndarray, x2: np.ndarray | None, model: Model, kind: str) -> None:
    """Refuse, before anything reaches the cluster, what the core refuses for the whole matrix.

    Every kind must be defined for the model (the core refuses ``"icd"`` for a smooth
    activation by name). The family: the core's overflow bound on the norms. A smooth
    activation: its kernel's refusals (variances that overflow or defeat the quadrature over
    ``depth`` layers) depend on each input's own variance, so the core's kernel of the two
    non-zero rows of smallest and largest norm raises them (zero rows at ``sigma_b = 0`` are
    refused by the tiles that hold them, as on one machine).
    """
    check_kinds((kind,), model)
    norms = unit_rows(x)[1] if x2 is None else np.concatenate([unit_rows(x)[1], unit_rows(x2)[1]])
    if not model.is_smooth:
        check_scale(model, norms, x.shape[1])
        return
    rows = x if x2 is None else np.concatenate([x, x2])
    nonzero = np.flatnonzero(np.any(rows != 0.0, axis=1))
    if nonzero.size:
        probe = nonzero[np.unique([np.argmin(norms[nonzero]), np.argmax(norms[nonzero])])]
        compute_kernels(rows[probe], None, model, (kind,))


def _method(n: int, n2: int) -> str:
    """The core's interpolant choice for the whole ``n x n2`` matrix (tiles must not each choose)."""
    return "exact" if n * n2 < _EXACT_BELOW_ENTRIES else "interpolated"


def _data(arr: np.ndarray) -> np.ndarray:
    return arr


def _place(arr: np.ndarray | None):
    """``arr`` as one key of the graph that every tile reads (sent to the cluster once).

    Not ``Client.scatter``: scattered data cannot be recomputed, so tiles lost with a worker
    that held its only replica (Dask's active memory manager drops extra replicas) could
    not be recomputed either. A key of the graph can.
    """
    if arr is None:
        return None
    import dask
    return dask.delayed(_data, pure=True)(arr)


def _send_once(client, arr: np.ndarray):
    """``arr`` on the cluster as the result of one task (recomputable, unlike scattered data),
    the future held by the caller for as long as tiles may need recomputing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="(Large object|Sending large graph)", category=UserWarning)
        return client.submit(_data, arr, pure=False)


class _Progress:
    """Monotone progress through the phases of :func:`spectrum`."""

    def __init__(self, callback: ProgressFn | None):
        self.callback, self.done = callback, 0.0

    def report(self, fraction: float) -> None:
        if self.callback is not None and fraction > self.done:
            self.done = min(1.0, fraction)
            self.callback(self.done)

    def between(self, start: float, stop: float) -> ProgressFn:
        return lambda f: self.report(start + (stop - start) * f)


@contextlib.contextmanager
def _client_or_local(client):
    """The caller's client, or a ``LocalCluster`` of one single-threaded worker process per
    core with a memory limit each and spilling to a temporary folder (closed afterwards)."""
    from distributed import Client, LocalCluster

    if client is not None:
        if not isinstance(client, Client):
            raise InvalidParameterError(
                f"client must be a distributed.Client or None (a local cluster), got {type(client).__name__}",
                param="client",
            )
        yield client
        return
    import psutil

    workers = max(1, os.cpu_count() or 1)
    limit = int(_LOCAL_MEMORY_SHARE * psutil.virtual_memory().total / workers)
    with tempfile.TemporaryDirectory(prefix="eoc-ntk-dask-") as spill, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=limit,
                         local_directory=spill, dashboard_address=None) as cluster, \
            Client(cluster) as local:
        yield local


# ------------------------------------------------------------------------------- kernel

def kernel(x, x2=None, *, depth, a=None, b=None, activation=None, sigma_w=None, sigma_b=0.0, kind="ntk",
           chunks=DEFAULT_CHUNKS):
    """The infinite-width kernel as a lazy Dask array computed tile by tile on the workers.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    x2 : array-like of shape (n2, m0), optional
        Second set of inputs for a cross-kernel ``K(x, x2)``; defaults to ``x``.
    depth, a, b, activation, sigma_w, sigma_b, kind : see :func:`eoc_ntk.kernel`.
        ``activation`` takes every spelling the core takes, smooth activations included
        (kinds ``"ntk"``, ``"nngp"``, ``"angle"``), ``Activation.custom`` when it pickles.
    chunks : int
        Rows and columns of one tile.

    Returns
    -------
    dask.array.Array of shape (n, n2), float64, chunks (chunks, chunks)
        Equal to ``eoc_ntk.kernel(x, x2, ...)`` (docs/math.md §3) up to rounding in the
        Gram products; for ``x2=None`` exactly symmetric (lower tiles are the transposed
        upper ones). The data go to the cluster once, as one key of the graph that
        every tile reads.

    Raises
    ------
    InvalidParameterError, ValueError, TypeError
        As :func:`eoc_ntk.kernel`, and for ``chunks`` not a positive integer.
    """
    import dask
    import dask.array as da

    model = _model(depth, a, b, activation, sigma_w, sigma_b, "distributed.kernel")
    x, x2 = check_pair(x, x2)
    chunks = _check_chunks(chunks)
    _check_request(x, x2, model, kind)
    n, n2 = x.shape[0], (x.shape[0] if x2 is None else x2.shape[0])
    method = _method(n, n2)
    x_on, x2_on = _place(x), _place(x2)
    tile = dask.delayed(_kernel_tile, pure=True)
    grid: list[list] = []
    for i, (i0, i1) in enumerate(block_edges(n, chunks)):
        row = []
        for j, (j0, j1) in enumerate(block_edges(n2, chunks)):
            if x2 is None and i > j:
                row.append(grid[j][i].T)
            else:
                lazy = tile(x_on, x2_on, (i0, i1), (j0, j1), model, kind, method)
                row.append(da.from_delayed(lazy, shape=(i1 - i0, j1 - j0), dtype=np.float64,
                                           meta=np.empty((0, 0))))
        grid.append(row)
    return da.block(grid)


# ----------------------------------------------------------------------------- spectrum

def spectrum(x, *, depth, a=None, b=None, activation=None, sigma_w=None, sigma_b=0.0, client=None,
             chunks=DEFAULT_CHUNKS, progress: ProgressFn | None = None) -> Spectrum:
    """Certified ``lambda_min``, ``lambda_max`` and condition number of ``K / n`` on a Dask cluster.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    depth, a, b, activation, sigma_w, sigma_b : see :func:`eoc_ntk.kernel` (smooth activations
        and ``Activation.custom`` as in :func:`kernel`).
    client : distributed.Client, optional
        The cluster to use; None starts a ``LocalCluster`` of one single-threaded worker
        process per core, each limited to 80 % of the memory divided by the workers,
        spilling to a temporary folder, and closes it afterwards.
    chunks : int
        Rows of one tile (the tiles of ``K`` and of its Cholesky factors).
    progress : callable, optional
        Called with the completed fraction in [0, 1] (tiles, then each factorisation).

    Returns
    -------
    Spectrum
        As ``eoc_ntk.spectrum(x, ..., eigenvalues="extremes")``: ``eigenvalues`` None,
        ``lambda_min`` and ``lambda_max`` certified to 1e-9 relative (a successful Cholesky
        of ``K/n - sigma I`` proves every eigenvalue exceeds ``sigma``, docs/math.md §5), the
        same ``singular`` verdict and reason. When no certified ``lambda_min`` above
        ``singular_tolerance(n) * lambda_max`` exists, a failed Cholesky at that shift proves
        the matrix singular and ``lambda_min`` is a shift-and-invert estimate below it
        (rounding noise, as the dense solver's). Below ``eoc_ntk.core.eigen.DENSE_BELOW`` points
        the (at most 8 MB) matrix is gathered and solved as on one machine. Like the single
        machine's, it holds no hyperparameters: ``Model(depth, activation=..., sigma_b=...).summary()``
        names the activation with ``sigma_w``, ``q_star`` and ``chi`` (the service's answer
        carries it, :func:`eoc_ntk.core.analysis.analysis_document`).

    Raises
    ------
    InvalidParameterError, ValueError, TypeError
        On invalid arguments, as :func:`eoc_ntk.spectrum`.
    numpy.linalg.LinAlgError
        When ``lambda_max`` or a proven non-zero ``lambda_min`` cannot be certified.
    """
    model = _model(depth, a, b, activation, sigma_w, sigma_b, "distributed.spectrum")
    x = check_data(x)
    chunks = _check_chunks(chunks)
    _check_progress(progress)
    _check_request(x, None, model, "ntk")
    tracker = _Progress(progress)
    with _client_or_local(client) as active:
        result = _spectrum_on(active, x, model, chunks, tracker)
    tracker.report(1.0)
    return result


def _kernel_tiles(client, x_on, x: np.ndarray, model: Model, edges, tracker: _Progress) -> dict:
    """Lower tiles of ``K / n`` computed and kept on the workers, from ``x_on`` (``x`` on the cluster)."""
    from distributed import as_completed

    n = x.shape[0]
    method = _method(n, n)
    tiles = {}
    for i in range(len(edges)):
        for j in range(i + 1):
            # The lower tile (i, j) is the transposed upper tile, as in the core's kernel.
            tiles[i, j] = client.submit(_kernel_tile, x_on, None, edges[j], edges[i], model, "ntk",
                                        method, n, i != j, pure=False)
    report = tracker.between(0.0, _PHASES["tiles"])
    # The client's own loop: as_completed would otherwise look for a default client, which the
    # caller's client need not be (a job process connects with set_as_default=False).
    for done, future in enumerate(as_completed(list(tiles.values()), loop=client.loop), start=1):
        if future.status == "error":
            raise future.exception()
        report(done / len(tiles))
    return tiles


def _spectrum_on(client, x: np.ndarray, model: Model, chunks: int, tracker: _Progress) -> Spectrum:
    n = x.shape[0]
    edges = block_edges(n, min(chunks, n))
    x_on = _send_once(client, x)
    matrix = TiledSymmetric(client, _kernel_tiles(client, x_on, x, model, edges, tracker), edges)
    trace = matrix.trace()
    if n < DENSE_BELOW:
        kn = np.zeros((n, n))
        for ((i, j), tile) in zip(matrix.tiles, client.gather(list(matrix.tiles.values())), strict=True):
            kn[edges[i][0]:edges[i][1], edges[j][0]:edges[j][1]] = tile
            kn[edges[j][0]:edges[j][1], edges[i][0]:edges[i][1]] = tile.T
        lmin, lmax, method, _ = extreme_eigenvalues(kn)
    else:
        lmin, lmax = _certified_extremes(matrix, tracker)
        method = "lanczos"
    del matrix, x_on
    return assemble_spectrum(max(lmin, 0.0), max(lmax, 0.0), trace, n, x, model, None, method)


def _certified_extremes(matrix: TiledSymmetric, tracker: _Progress) -> tuple[float, float]:
    """``(lambda_min, lambda_max)`` by the steps of ``eoc_ntk.core.eigen._certified_extremes``."""
    n = matrix.n
    rng = np.random.default_rng(20250122)  # the same start vectors as on one machine
    start_min, start_max = rng.standard_normal(n), rng.standard_normal(n)
    lmax, _ = certified_top(matrix.matvec, start_max)
    if lmax is None:
        raise np.linalg.LinAlgError(f"lambda_max of the {n} x {n} kernel could not be certified to 1e-9 by Lanczos")
    tracker.report(_PHASES["lambda_max"])
    return _certified_lambda_min(matrix, lmax, start_min, tracker), lmax


def _certified_lambda_min(matrix: TiledSymmetric, lmax: float, start: np.ndarray, tracker: _Progress) -> float:
    """Certified ``lambda_min``, or the proof that it lies below ``s = singular_tolerance(n) * lambda_max``.

    As on one machine: a rough estimate from a float32 factor, then shifts a little below
    it. Where one machine falls back to the dense solver (no certified shift), a failed
    Cholesky of ``K/n - s I`` proves the matrix singular (:func:`_singular_lambda_min`); a
    successful one proves ``lambda_min > s``, certified by shift-and-invert from ``s``.
    The singular check comes right after the first failed shift, so a singular matrix
    costs four factorisations, not six.
    """
    s = singular_tolerance(matrix.n) * lmax
    rough_factor = matrix.cholesky(0.0, "float32", tracker.between(_PHASES["lambda_max"], _PHASES["rough"]))
    rough = margin = None
    if rough_factor is not None:
        rough, margin, v_rough = rough_lambda_min_from_solver(rough_factor.solve, start)
        rough_factor.release()
        del rough_factor
        if v_rough is not None:
            start = v_rough
    above_s = None  # unknown until K/n - s I is factorised
    for fraction in ((1.0 - cast(float, margin), *RETRY_FRACTIONS) if rough is not None else ()):
        sigma = fraction * cast(float, rough)
        if sigma <= s:
            break
        value, factored = _shifted_lambda_min(matrix, sigma, start, tracker)
        if value is not None:
            return value
        if not factored and above_s is None:  # an eigenvalue below sigma: is one below s?
            above_s = _factorises(matrix, s, tracker)
            if not above_s:
                return _singular_lambda_min(matrix, s, start, tracker)
    if above_s is None:
        above_s = _factorises(matrix, s, tracker)
    if not above_s:
        return _singular_lambda_min(matrix, s, start, tracker)
    value, _ = _shifted_lambda_min(matrix, s, start, tracker)
    if value is None:
        raise np.linalg.LinAlgError(f"lambda_min of K/n is proven above {s:.3g} but could not be certified to 1e-9")
    return value


def _factor_progress(tracker: _Progress) -> ProgressFn:
    return tracker.between(_PHASES["rough"], _PHASES["factor"])


def _factorises(matrix: TiledSymmetric, sigma: float, tracker: _Progress) -> bool:
    """Whether ``K/n - sigma I`` is positive definite (every eigenvalue above ``sigma``)."""
    factor = matrix.cholesky(sigma, "float64", _factor_progress(tracker))
    if factor is None:
        return False
    factor.release()
    return True


def _shifted_lambda_min(matrix: TiledSymmetric, sigma: float, start: np.ndarray, tracker: _Progress):
    """``(lambda_min or None, factored)``: certified by shift-and-invert from a tiled Cholesky
    of ``K/n - sigma I``; ``factored`` False when that is not positive definite."""
    factor = matrix.cholesky(sigma, "float64", _factor_progress(tracker))
    if factor is None:
        return None, False
    try:
        found = certified_lambda_min_from_solver(factor.solve, sigma, start, matrix.matvec)
    finally:
        factor.release()
    return (None if found is None else found[0]), True


def _singular_lambda_min(matrix: TiledSymmetric, s: float, start: np.ndarray, tracker: _Progress) -> float:
    """``lambda_min`` of a matrix proven to have an eigenvalue below ``s``: rounding noise,
    estimated by Lanczos through a factor of ``K/n + s I`` and kept in ``[0, s]``."""
    factor = matrix.cholesky(-s, "float64", _factor_progress(tracker))
    if factor is None:
        return 0.0  # an eigenvalue below -s: only rounding of a singular matrix can do that
    try:
        mu, _, _, _ = lanczos_top(factor.solve, start, 20, lambda mu, y, est: est <= 1e-3 * mu)
    finally:
        factor.release()
    return min(s, max(0.0, 1.0 / mu - s))
