"""One call that answers the service's spectrum question: spectrum, ICD errors and bounds.

The NTK and the ICD matrix come from one recursion pass; everything returned is JSON-safe.
"""
from __future__ import annotations

from typing import Any

from eoc_ntk.core.arrays import ArrayLike
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.icd import analyse_icd, times_power_of_two
from eoc_ntk.core.kernels import compute_scaled_kernels
from eoc_ntk.core.model import Model
from eoc_ntk.core.progress import ProgressFn, phase, report, scaled
from eoc_ntk.core.spectra import EIGENVALUE_MODES, Spectrum, spectrum_of_kernel
from eoc_ntk.core.validation import check_data

__all__ = ["analyze", "analysis_document", "icd_unavailable_reason"]


def icd_unavailable_reason(model: Model) -> str | None:
    """Why the ICD analysis does not apply to ``model``, or None when it does."""
    if model.is_smooth:
        return (f"the ICD approximation and the paper's bounds are specific to the family phi(s) = a*s + b*|s|, "
                f"not activation {model.summary()['activation']!r}")
    if model.delta == 0.0:
        return "the ICD approximation needs Delta = b^2/(a^2+b^2) > 0 (undefined for a linear activation)"
    if model.sigma_b != 0.0:
        return "the ICD approximation is defined for sigma_b = 0 only"
    return None


def analyze(x: ArrayLike, model: Model, *, eigenvalues: str = "all",
            progress: ProgressFn | None = None) -> dict[str, Any]:
    """Spectrum of ``K / n`` with the ICD analysis, as a JSON-safe dict.

    Parameters
    ----------
    x : array-like of shape (n, m0)
    model : Model
    eigenvalues : {"all", "extremes"}
    progress : callable, optional
        Called with the completed fraction in [0, 1].

    Returns
    -------
    dict
        ``Spectrum.to_dict()`` plus ``"m0"``, ``"model"`` (``model.summary()``: ``canonical()``
        with ``"delta"``, or for a smooth activation its name, ``"q_star"`` and ``"chi"``; with
        ``"output_dim"``), ``"icd"`` (``IcdAnalysis.to_dict()`` or None) and
        ``"icd_unavailable"`` (the reason when ``"icd"`` is None). Non-finite numbers are None.
        ``"lambda_min_error"`` is the relative forward error estimate of ``lambda_min``
        (:attr:`eoc_ntk.Spectrum.lambda_min_error`). Computed scale-free, as :func:`eoc_ntk.spectrum`.
    """
    if not isinstance(model, Model):
        raise InvalidParameterError(f"model must be an eoc_ntk.Model, got {type(model).__name__}", param="model")
    x = check_data(x)
    if eigenvalues not in EIGENVALUE_MODES:
        raise InvalidParameterError(f"eigenvalues must be one of {EIGENVALUE_MODES}, got "
                                    f"{eigenvalues!r}", param="eigenvalues")
    why_not = icd_unavailable_reason(model)
    kinds = ("ntk",) if why_not else ("ntk", "icd")

    phase(progress, "kernel")
    kernels, shift = compute_scaled_kernels(x, None, model, kinds, scaled(progress, 0.0, 0.5))
    icd = None
    if not why_not:
        phase(progress, "icd")
        icd = times_power_of_two(analyse_icd(kernels["ntk"], kernels.pop("icd")), shift).to_dict()
        report(progress, 0.7)
    phase(progress, "eigen")
    spec = spectrum_of_kernel(kernels.pop("ntk"), x, model, eigenvalues, overwrite=True, shift=shift)
    report(progress, 1.0)
    return analysis_document(spec, x.shape[1], model, icd, why_not)


def analysis_document(spectrum: Spectrum, m0: int, model: Model, icd: dict[str, Any] | None,
                      icd_unavailable: str | None) -> dict[str, Any]:
    """The dict :func:`analyze` returns, for a spectrum computed elsewhere (e.g. by :mod:`eoc_ntk.distributed`).

    Parameters
    ----------
    spectrum : Spectrum
        The spectrum of ``K / n`` of ``n`` points of width ``m0`` under ``model``.
    m0 : int
    model : Model
    icd : dict or None
        ``IcdAnalysis.to_dict()``, or None with the reason in ``icd_unavailable``.
    icd_unavailable : str or None
    """
    out = spectrum.to_dict()
    out["m0"] = int(m0)
    out["model"] = {**model.summary(), "output_dim": model.output_dim}
    out["icd"] = icd
    out["icd_unavailable"] = icd_unavailable
    return out
