"""The one cost model: predicted seconds of a computation of the core on one core.

The service decides from it whether a request is answered now or becomes a job, and whether
a computation may run inline in the API process; ``bench/bench_cost.py`` calibrates the
constants below against measured runs (``bench/README.md`` has its table).

The terms, for ``n`` points of ``m0`` features (docs/math.md §3 for the recursion, §5 for the
spectra):

* **Kernel build** ~ ``n * n2 * (m0 * FEATURE + per_entry)``: the Gram matrix costs ``m0``
  multiply-adds per entry; an entry of the kernel costs :data:`ENTRY` with ``sigma_b = 0``
  (closed forms or depth-independent interpolants, whatever the depth) and
  ``ENTRY + LAYER * depth`` with ``sigma_b != 0`` (the general recursion walks every layer).
  Each extra kernel kind (nngp, icd, angle) adds :data:`EXTRA_KIND` of an entry.
* **Dense eigenvalues** ~ ``EIGH * n^3 + EIGH_ROW * n`` (LAPACK ``syevd``, values only; the
  second term is the per-row cost of its threaded reduction, which dominates for small ``n``).
* **Extremes** (``eigenvalues="extremes"``) ~ ``EXTREMES * n^2`` (a few matrix-vector
  products of a Lanczos iteration), instead of the dense ``n^3``.
* **ICD** (``sigma_b = 0`` and ``Delta > 0``): one more kernel kind, one more dense
  eigenvalue problem and ``ICD_ENTRY * n^2``.
* **Sweeps**: per activation, one pass of the recursion up to the largest depth (linear in
  it with ``sigma_b != 0``) plus, per depth, one kernel from the shared cosines and its
  extremes (``SWEEP_DEPTH_ENTRY * n^2``).

* **Device** (``device="cuda"``, the torch backend on a GPU): a spectrum's kernel build and
  eigenvalues are divided by :data:`GPU_SPEEDUP`. NOT MEASURED: no GPU was available when it was
  set; it is a deliberately modest guess (a GPU's float64 rate is hundreds of times two cores'),
  to be calibrated with ``bench/bench_gpu.py``. ``device="cpu"`` (NumPy, or torch's CPU build,
  whose cost bench/README.md compares) keeps the CPU constants.

"Seconds on one core" are CPU seconds: the bench measures the process's CPU time, which the
load of a shared machine does not inflate; wall time is this divided by the cores the
computation gets (its kernel blocks and BLAS use up to all of them).
"""
from __future__ import annotations

from collections.abc import Iterable

from eoc_ntk.core._numerics.torch_device import check_device
from eoc_ntk.core.errors import InvalidParameterError

__all__ = ["predict_seconds", "OPS"]

OPS = ("spectra", "kernels", "sweeps")

#: Seconds of fixed overhead per call (imports warm, validation, result assembly).
OVERHEAD = 2e-3
#: Seconds per kernel entry and feature (the Gram matrix).
FEATURE = 1e-9
#: Seconds per kernel entry at sigma_b = 0 (closed form / interpolant).
ENTRY = 9e-8
#: Seconds per kernel entry and layer of the general recursion (sigma_b != 0).
LAYER = 2.0e-7
#: Fraction of an entry's cost each additional kernel kind adds.
EXTRA_KIND = 0.5
#: Seconds * n^-3 of a dense symmetric eigenvalue problem (values only).
EIGH = 1.7e-10
#: Seconds per row of a dense eigenvalue problem beyond the flops (LAPACK's tridiagonal
#: reduction makes one BLAS-2 call per row; it dominates for small n).
EIGH_ROW = 1e-5
#: Seconds per matrix entry of the extreme-eigenvalue iteration.
EXTREMES = 7e-8
#: Seconds per matrix entry of the ICD analysis beyond its kernel and dense eigenvalues.
ICD_ENTRY = 1e-7
#: Seconds per matrix entry and depth of a sweep at a given depth: the kernel from the shared
#: cosines plus its warm-started extremes.
SWEEP_DEPTH_ENTRY = 8e-8
#: Factor by which a GPU (``device="cuda"``) divides a spectrum's build and eigenvalue seconds.
#: Not measured (no GPU was available): a modest guess, see the module docstring.
GPU_SPEEDUP = 20.0


def _entry_seconds(m0: int, depth: int, sigma_b: float, kinds: int) -> float:
    per_entry = ENTRY + (LAYER * depth if sigma_b != 0.0 else 0.0)
    return m0 * FEATURE + per_entry * (1.0 + EXTRA_KIND * (kinds - 1))


def _eigen_seconds(n: int, eigenvalues: str) -> float:
    return _dense_seconds(n) if eigenvalues == "all" else EXTREMES * n * n


def _dense_seconds(n: int) -> float:
    return EIGH * n ** 3 + EIGH_ROW * n


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"{name} must be a positive int, got {value!r}", param=name)
    return value


def predict_seconds(op: str, *, n: int, m0: int, n2: int | None = None, depths: int | Iterable[int] = (1,),
                    activations: int = 1, sigma_b: float = 0.0, eigenvalues: str = "all", kinds: int = 1,
                    icd: bool | None = None, device: str = "cpu") -> float:
    """Predicted seconds of one computation on one core.

    Parameters
    ----------
    op : {"spectra", "kernels", "sweeps"}
    n, m0 : int
        Points and features of ``x`` (shape ``(n, m0)``).
    n2 : int, optional
        Points of ``x2`` for a cross-kernel (``kernels`` only); default ``n``.
    depths : sequence of int
        The depth (one value for ``spectra`` / ``kernels``) or the depths of a sweep.
    activations : int
        Activations of a sweep (each one a full pass).
    sigma_b : float
        Bias variance; ``!= 0`` makes every entry cost linear in depth.
    eigenvalues : {"all", "extremes"}
        Dense spectrum (``n^3``) or the extremes only (``n^2``); sweeps use extremes.
    kinds : int
        Kernel kinds of a ``kernels`` request.
    icd : bool, optional
        Whether ``spectra`` runs the ICD analysis (default: when ``sigma_b == 0``).
    device : {"cpu", "cuda", "cuda:N"}
        Where a ``spectra`` computation runs: on a GPU its build and eigenvalue terms are divided
        by :data:`GPU_SPEEDUP` (not measured; see the module docstring).

    Returns
    -------
    float
        Seconds: ``OVERHEAD + n n2 (m0 FEATURE + ENTRY + [sigma_b != 0] LAYER depth) + eigen``,
        the terms as described in the module docstring.
    """
    if op not in OPS:
        raise InvalidParameterError(f"op must be one of {OPS}, got {op!r}", param="op")
    n, m0 = _positive_int(n, "n"), _positive_int(m0, "m0")
    n2 = n if n2 is None else _positive_int(n2, "n2")
    depths = [_positive_int(int(d), "depths") for d in (depths if isinstance(depths, Iterable) else [depths])]
    if not depths:
        raise InvalidParameterError("depths must hold at least one depth", param="depths")
    if eigenvalues not in ("all", "extremes"):
        raise InvalidParameterError(f"eigenvalues must be 'all' or 'extremes', got {eigenvalues!r}",
                                    param="eigenvalues")
    check_device("torch", device)
    sigma_b = float(sigma_b)
    deepest = max(depths)
    if op == "kernels":
        return OVERHEAD + n * n2 * _entry_seconds(m0, deepest, sigma_b, kinds)
    if op == "spectra":
        with_icd = (sigma_b == 0.0) if icd is None else bool(icd)
        build = n * n * _entry_seconds(m0, deepest, sigma_b, 2 if with_icd else 1)
        eigen = _eigen_seconds(n, eigenvalues) + ((_dense_seconds(n) + ICD_ENTRY * n * n) if with_icd else 0.0)
        return OVERHEAD + (build + eigen) / (GPU_SPEEDUP if device.startswith("cuda") else 1.0)
    # sweeps: the recursion to the deepest layer once, then a kernel and its extremes per depth.
    recursion = n * n * (m0 * FEATURE + (LAYER * deepest if sigma_b != 0.0 else 0.0))
    per_depth = n * n * SWEEP_DEPTH_ENTRY
    return OVERHEAD + _positive_int(activations, "activations") * (recursion + len(depths) * per_depth)
