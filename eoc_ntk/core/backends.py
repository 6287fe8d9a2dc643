"""The core's heavy paths on a chosen backend: NumPy on the CPU (default) or torch on a device.

:func:`kernel`, :func:`spectrum` and :func:`depth_sweep` take ``backend="numpy"`` (the default:
exactly :mod:`eoc_ntk.core.kernels`, :mod:`eoc_ntk.core.spectra`, :mod:`eoc_ntk.core.sweep`) or
``backend="torch"`` with ``device="cpu"``, ``"cuda"`` or ``"cuda:N"``. torch (the ``[gpu]`` extra)
is imported only when ``backend="torch"`` is asked for.

On torch the O(n^2) kernel and the O(n^3) factorisations run on the device in float64; the
validation, the scale-free norms, the interpolants' coefficients, the Lanczos bases (vectors of
length n) and the certificates are the NumPy core's. The one reduced-precision step is the
float32 Cholesky factor that proposes the shift for ``lambda_min``; the float64 factorisation of
``K - sigma I`` and the float64 residuals against ``K`` certify, as on NumPy. The kernel is
returned as a float64 tensor on the device; :class:`Spectrum` and :class:`DepthSweep` hold
NumPy arrays and floats. Memory plan: :mod:`eoc_ntk.core._numerics.torch_device`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from eoc_ntk.core import analysis as numpy_analysis
from eoc_ntk.core import kernels as numpy_kernels
from eoc_ntk.core import spectra as numpy_spectra
from eoc_ntk.core import sweep as numpy_sweep
from eoc_ntk.core._numerics.diagnosis import diagnose
from eoc_ntk.core._numerics.near_duplicates import near_duplicate_reason
from eoc_ntk.core._numerics.torch_device import Tensor, check_device, check_fits, torch_device
from eoc_ntk.core._numerics.torch_eigen import (
    UncertifiedInPlace,
    torch_all_eigenvalues,
    torch_extremes,
    torch_largest,
)
from eoc_ntk.core._numerics.torch_icd import torch_analyse_icd
from eoc_ntk.core._numerics.torch_kernels import torch_scaled_kernel
from eoc_ntk.core.alignment import label_fit_by_depth
from eoc_ntk.core.arrays import ArrayLike, FloatArray
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.icd import times_power_of_two
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import Model, model_of
from eoc_ntk.core.progress import ProgressFn, phase, report, scaled
from eoc_ntk.core.spectra import EIGENVALUE_MODES, Spectrum, assemble_spectrum, singular_tolerance
from eoc_ntk.core.sweep import DepthSweep, limit_condition_number
from eoc_ntk.core.validation import check_data, check_pair

__all__ = ["BACKENDS", "kernel", "spectrum", "depth_sweep", "analyze", "engine_name"]

BACKENDS = ("numpy", "torch")


def engine_name(backend: str = "numpy", device: str = "cpu") -> str:
    """``"numpy"``, ``"torch-cpu"`` or ``"torch-cuda"``: the name answers report for a backend and device."""
    check_device(backend, device)
    return "numpy" if backend == "numpy" else f"torch-{device.split(':')[0]}"


def kernel(x: ArrayLike, x2: ArrayLike | None = None, *, depth: int, a: float | None = None, b: float | None = None,
           activation: Any = None, sigma_w: float | None = None,
           sigma_b: float = 0.0, kind: str = "ntk", backend: str = "numpy", device: str = "cpu") -> FloatArray | Tensor:
    """Infinite-width kernel of an MLP with activation ``phi(s) = a*s + b*|s|``, on a chosen backend.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Inputs, one per row; converted to float64.
    x2 : array-like of shape (n2, m0), optional
        Second set of inputs for a cross-kernel ``K(x, x2)``; defaults to ``x``.
    depth : int
        Number of weight layers ``l >= 1``.
    a, b : float
        Activation coefficients (not both 0); or give ``activation`` instead.
    activation : str, dict, (a, b) or Activation, optional
        Any spelling of :func:`eoc_ntk.core.activations.parse_activation` (``"relu"``,
        ``"leaky_relu:0.1"``, ...) instead of ``a`` and ``b``; giving both is an ``InvalidParameterError``.
    sigma_w : float, optional
        Weight standard deviation; default the edge of chaos ``1/sqrt(a^2+b^2)``.
    sigma_b : float
        Bias standard deviation; default 0 (edge of chaos).
    kind : {"ntk", "nngp", "icd", "angle"}
        The NTK ``Theta_l``, the NNGP ``Sigma_l``, the inverse-cosine-distance approximation of
        the NTK, or the last-layer angle ``alpha_l`` (details: :func:`eoc_ntk.core.kernels.kernel`).
    backend : {"numpy", "torch"}
        NumPy/SciPy on the CPU (default), or torch (the ``[gpu]`` extra) on ``device``.
    device : {"cpu", "cuda", "cuda:N"}
        Where the torch backend computes (``"cpu"`` only for NumPy).

    Returns
    -------
    ndarray of shape (n, n2), float64 (NumPy), or torch.Tensor of shape (n, n2), float64, on ``device``
        For ``sigma_b = 0`` the NTK is ``sqrt(q q') chi^(l-1) theta_l(alpha_1)`` with
        ``q = sigma_w^2 |x|^2 / m0``, ``chi = sigma_w^2 (a^2 + b^2)`` (docs/math.md §3); otherwise the
        general recursion of docs/math.md §2. The same entries on both backends (to about 1e-15
        of the largest).

    Raises
    ------
    InvalidParameterError
        As :func:`eoc_ntk.core.kernels.kernel`; also for an unknown backend or device, a GPU torch
        cannot see, torch not installed (``param="backend"``), and ``DeviceMemoryError``
        (``param="x"``) when the n x n2 matrix and its workspace do not fit in the device's memory.
    """
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, where="kernel")
    check_device(backend, device)
    if backend == "numpy":
        return numpy_kernels.kernel(x, x2, depth=depth, a=a, b=b, activation=activation, sigma_w=sigma_w,
                                    sigma_b=sigma_b, kind=kind)
    _refuse_smooth_on_torch(model)
    x, x2 = check_pair(x, x2)
    numpy_kernels.check_kernel_request(x, x2, model, (kind,))
    return torch_scaled_kernel(x, x2, model, kind, torch_device(device), relative=False)[0]


def spectrum(x: ArrayLike, *, depth: int, a: float | None = None, b: float | None = None,
             activation: Any = None, sigma_w: float | None = None, sigma_b: float = 0.0,
             output_dim: int = 1, eigenvalues: str = "all", progress: ProgressFn | None = None,
             backend: str = "numpy", device: str = "cpu") -> Spectrum:
    """Eigenvalues and condition number of the paper's NTK matrix ``K / n``, on a chosen backend.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Inputs, converted to float64.
    depth, a, b, sigma_w, sigma_b, activation : see :func:`kernel`.
    output_dim : int
        Output dimension ``ml``: the multiplicity of every eigenvalue.
    eigenvalues : {"all", "extremes"}
        ``"all"``: the dense symmetric solver; ``"extremes"``: only ``lambda_min`` and
        ``lambda_max``, by the certified fast path (Lanczos, with a float64 Cholesky
        factorisation of ``K - sigma I`` certifying ``lambda_min``; dense below n = 1000 or when
        it cannot certify 1e-9 relative accuracy).
    progress : callable, optional
        Called with the completed fraction in [0, 1].
    backend, device : see :func:`kernel`.

    Returns
    -------
    Spectrum
        NumPy arrays and floats whatever the backend. ``eigenvalues="extremes"`` on torch: the
        certified fast path of :mod:`eoc_ntk.core.eigen` with the products and factorisations on
        the device (falls back to the device's dense ``eigvalsh``).

    Raises
    ------
    InvalidParameterError
        As :func:`eoc_ntk.core.spectra.spectrum` and :func:`kernel`; ``DeviceMemoryError`` when
        ``K`` does not fit in the device's memory (with ``eigenvalues="all"``: ``K`` and one n x n
        float64 copy), or when extremes computed in ``K``'s own memory cannot be certified.
    """
    model = model_of(depth, a, b, activation, sigma_w, sigma_b, output_dim, where="spectrum")
    check_device(backend, device)
    if backend == "numpy":
        return numpy_spectra.spectrum(x, depth=depth, a=a, b=b, activation=activation, sigma_w=sigma_w,
                                      sigma_b=sigma_b, output_dim=output_dim, eigenvalues=eigenvalues,
                                      progress=progress)
    _refuse_smooth_on_torch(model)
    x = check_data(x)
    if eigenvalues not in EIGENVALUE_MODES:
        raise InvalidParameterError(f"eigenvalues must be one of {EIGENVALUE_MODES}, got {eigenvalues!r}",
                                    param="eigenvalues")
    # "all": eigvalsh copies K; "extremes": K alone suffices (factors in its own memory if need be).
    k, shift = torch_scaled_kernel(x, None, model, "ntk", torch_device(device), relative=True,
                                   progress=scaled(progress, 0.0, 0.6),
                                   extra_matrices=1.0 if eigenvalues == "all" else 0.0)
    result = _spectrum_of_device_kernel(k, x, model, eigenvalues, shift)
    report(progress, 1.0)
    return result


def analyze(x: ArrayLike, model: Model, *, eigenvalues: str = "all", progress: ProgressFn | None = None,
            backend: str = "numpy", device: str = "cpu") -> dict[str, Any]:
    """:func:`eoc_ntk.core.analysis.analyze` (spectrum and ICD analysis as a JSON-safe dict) on a chosen
    backend (``backend``, ``device``: see :func:`kernel`). On torch the NTK and the ICD matrix are built
    on the device and both analysed there (peak: three n x n float64 matrices)."""
    check_device(backend, device)
    if backend == "numpy":
        return numpy_analysis.analyze(x, model, eigenvalues=eigenvalues, progress=progress)
    if not isinstance(model, Model):
        raise InvalidParameterError(f"model must be an eoc_ntk.Model, got {type(model).__name__}", param="model")
    _refuse_smooth_on_torch(model)
    x = check_data(x)
    if eigenvalues not in EIGENVALUE_MODES:
        raise InvalidParameterError(f"eigenvalues must be one of {EIGENVALUE_MODES}, got {eigenvalues!r}",
                                    param="eigenvalues")
    dev = torch_device(device)
    why_not = numpy_analysis.icd_unavailable_reason(model)
    phase(progress, "kernel")
    k, shift = torch_scaled_kernel(x, None, model, "ntk", dev, relative=True, extra_matrices=1.0 if why_not else 2.0,
                                   progress=scaled(progress, 0.0, 0.3 if not why_not else 0.5))
    icd = None
    if not why_not:
        phase(progress, "icd")
        a_icd, _ = torch_scaled_kernel(x, None, model, "icd", dev, relative=True, extra_matrices=1.0,
                                       held=8 * k.numel(), progress=scaled(progress, 0.3, 0.5))
        icd = times_power_of_two(torch_analyse_icd(k, a_icd), shift).to_dict()
        del a_icd
        report(progress, 0.7)
    phase(progress, "eigen")
    spec = _spectrum_of_device_kernel(k, x, model, eigenvalues, shift)
    report(progress, 1.0)
    return numpy_analysis.analysis_document(spec, x.shape[1], model, icd, why_not)


def _spectrum_of_device_kernel(k: Tensor, x: np.ndarray, model: Model, eigenvalues: str, shift: int) -> Spectrum:
    """:class:`Spectrum` of ``k / n`` for the scale-free NTK ``k`` on the device (overwritten), as
    :func:`eoc_ntk.core.spectra.spectrum_of_kernel`."""
    n = k.shape[0]
    k.div_(n)
    trace = float(k.trace())
    if eigenvalues == "all":
        eig = np.maximum(torch_all_eigenvalues(k), 0.0)
        lmin, lmax, method = float(eig[0]), float(eig[-1]), "dense"
    else:
        eig = None
        lmin, lmax, method = _extremes_or_structural_zero(k, x, model)
    return assemble_spectrum(lmin, lmax, trace, n, x, model, eig, method, shift)


def _extremes_or_structural_zero(k: Tensor, x: np.ndarray, model: Model) -> tuple[float, float, str]:
    """``(lambda_min, lambda_max, method)`` of ``k`` on the device (negatives clipped to 0). Where only
    ``K``'s own memory was available and the fast path could not certify, inputs that make ``K``
    exactly singular (zero rows, duplicate directions, the abs activation's ``x, -c x``) give
    ``lambda_min = 0`` exactly, with the certified ``lambda_max``; any other such matrix is refused."""
    try:
        lmin, lmax, method, _ = torch_extremes(k)
    except UncertifiedInPlace:
        if diagnose(x, model).reason(x.shape[0]) is None:
            raise
        lmin, lmax, method = 0.0, torch_largest(k, in_place=True), "lanczos"
    return max(lmin, 0.0), max(lmax, 0.0), method


def depth_sweep(x: ArrayLike, *, depths: Iterable[int], a: float | None = None, b: float | None = None,
                activation: Any = None, sigma_w: float | None = None,
                sigma_b: float = 0.0, eigenvalues: str = "extremes", progress: ProgressFn | None = None,
                y: ArrayLike | None = None, backend: str = "numpy", device: str = "cpu") -> DepthSweep:
    """``lambda_min``, ``lambda_max`` and condition number of ``K / n`` for many depths, on a chosen backend.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    depths : iterable of int
        Depths ``l >= 1``; duplicates are merged and the result is sorted.
    a, b, sigma_w, sigma_b, activation : see :func:`kernel`.
    eigenvalues : {"extremes", "all"}
        Solver per depth: the certified fast path (default) or the dense one.
    progress : callable, optional
        Called with the completed fraction in [0, 1].
    y : array-like of shape (n,) or (n, k), optional
        Labels: adds ``alignment`` and ``top_k_fraction`` (:func:`eoc_ntk.core.sweep.depth_sweep`).
    backend, device : see :func:`kernel`.

    Returns
    -------
    DepthSweep

    On torch each depth's matrix is built on the device and its extremes certified there, warm
    started from the previous depth's eigenvectors; the labels' alignment (``y``) and the depth
    limit are computed by the NumPy core.
    """
    check_device(backend, device)
    if backend == "numpy":
        return numpy_sweep.depth_sweep(x, depths=depths, a=a, b=b, activation=activation, sigma_w=sigma_w,
                                       sigma_b=sigma_b, eigenvalues=eigenvalues, progress=progress, y=y)
    depth_list = numpy_sweep.check_depths(depths)
    model = model_of(int(depth_list[-1]), a, b, activation, sigma_w, sigma_b, where="depth_sweep")
    _refuse_smooth_on_torch(model)
    x = check_data(x)
    if eigenvalues not in ("extremes", "all"):
        raise InvalidParameterError(f"eigenvalues must be 'extremes' or 'all', got {eigenvalues!r}",
                                    param="eigenvalues")
    labels = None if y is None else check_labels(y, x.shape[0])
    dev = torch_device(device)
    check_fits(dev, x.shape[0], 2.0 if eigenvalues == "all" else 1.0, 0, "the depth sweep")
    result = _torch_sweep(x, depth_list, model, eigenvalues, dev, progress)
    if labels is None:
        return result
    aligned, top_k = label_fit_by_depth(x, labels.values, depth_list, model)
    return replace(result, alignment=aligned, top_k_fraction=top_k)


def _refuse_smooth_on_torch(model: Model) -> None:
    """The torch backend computes the family's kernels only."""
    if model.is_smooth:
        raise InvalidParameterError(
            f"backend='torch' supports the family phi(s) = a*s + b*|s| only, not activation "
            f"{model.summary()['activation']!r}; use backend='numpy'", param="backend")


def _torch_sweep(x: np.ndarray, depth_list: np.ndarray, model: Model, eigenvalues: str, dev: Tensor,
                 progress: ProgressFn | None) -> DepthSweep:
    n, m0 = x.shape
    scaled_values, lmins, lmaxs = [], [], []
    vectors = None
    for count, depth in enumerate(depth_list, start=1):
        at = Model(int(depth), model.a, model.b, model.sigma_w, model.sigma_b)
        k, shift = torch_scaled_kernel(x, None, at, "ntk", dev, relative=True,
                                       extra_matrices=1.0 if eigenvalues == "all" else 0.0)
        k.div_(n)
        if eigenvalues == "all" or n < 3:
            eig = torch_all_eigenvalues(k)
            lmin, lmax = float(eig[0]), float(eig[-1])
        elif depth == 1 and model.sigma_b == 0.0 and n > m0:
            # (sigma_w^2 / m0) X X^T has rank at most m0 < n: lambda_min is exactly 0.
            lmin, lmax = 0.0, torch_largest(k)
        else:
            try:
                lmin, lmax, _, found = torch_extremes(k, vectors)
            except UncertifiedInPlace:
                lmin, lmax, found = *_extremes_or_structural_zero(k, x, at)[:2], None
            vectors = found if found is not None else vectors
        del k
        scaled_values.append((max(lmin, 0.0), max(lmax, 0.0)))
        lmins.append(math.ldexp(max(lmin, 0.0), shift))
        lmaxs.append(math.ldexp(max(lmax, 0.0), shift))
        report(progress, count / len(depth_list))
    free = np.array(scaled_values).reshape(-1, 2)
    tol = singular_tolerance(n)
    singular = ~((free[:, 1] > 0.0) & (free[:, 0] > tol * free[:, 1]))
    cond = np.full(len(depth_list), math.inf)
    cond[~singular] = free[~singular, 1] / free[~singular, 0]
    lmin_arr, lmax_arr = np.array(lmins), np.array(lmaxs)
    return DepthSweep(
        depths=depth_list, lambda_min=lmin_arr, lambda_max=lmax_arr, condition_number=cond,
        singular=singular, limit_condition_number=_limit(x, model), delta=model.delta,
        singular_reason=_sweep_reason(x, depth_list, model, singular, free, tol),
    )


def _sweep_reason(x: np.ndarray, depth_list: np.ndarray, model: Model, singular: np.ndarray, free: np.ndarray,
                  tol: float) -> str | None:
    """The structural cause at the first singular depth, as the NumPy sweep words it."""
    if not singular.any():
        return None
    n = x.shape[0]
    first = int(depth_list[singular][0])
    at_first = Model(first, model.a, model.b, model.sigma_w, model.sigma_b)
    diag = diagnose(x, at_first)
    reason = near_duplicate_reason(x, at_first, diag, n) or diag.reason(n)
    if reason is None:
        worst = int(np.argmin(np.where(singular, free[:, 0] / np.maximum(free[:, 1], 1e-300), np.inf)))
        reason = (f"numerically singular at depths {[int(d) for d in depth_list[singular][:10]]}: "
                  f"lambda_min <= {tol:.2g} * lambda_max (at depth {int(depth_list[worst])})")
    return reason


def _limit(x: np.ndarray, model: Model) -> float | None:
    if model.delta == 0.0 or model.sigma_b != 0.0:
        return None
    return limit_condition_number(x, a=model.a, b=model.b, sigma_w=model.sigma_w)
