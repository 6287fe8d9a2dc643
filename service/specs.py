"""From a validated request to the core's model and the job's spec, with the configured limits.

Refusals of the core arrive typed (:class:`eoc_ntk.core.errors.InvalidParameterError` with
``.param``); :func:`build_model` says which request field each parameter came from.
"""
from __future__ import annotations

import eoc_ntk
from eoc_ntk.core.activations import parse_activation
from jobs.specs import is_job_id

from .config import Settings
from .errors import InvalidInput, core_errors
from .schemas import ModelIn

__all__ = ["build_model", "model_from_request", "op_of_job", "check_sweep_size", "check_kernel_kinds",
           "check_kernel_size"]


def _model_fields(field: str) -> dict[str, str]:
    """Core parameter -> request field, for a model at ``field`` ("model", or "activations.<i>" of a sweep)."""
    if field == "model":
        activation = "model.activation"
        return {"depth": "model.depth", "sigma_w": "model.sigma_w", "sigma_b": "model.sigma_b",
                "a": activation, "b": activation, "activation": activation,
                "name": f"{activation}.name", "slope": f"{activation}.slope"}
    # A sweep: one sigma_w, sigma_b for every activation, and the depths in one list.
    return {"depth": "depths", "sigma_w": "sigma_w", "sigma_b": "sigma_b", "a": field, "b": field,
            "activation": field, "name": f"{field}.name", "slope": f"{field}.slope"}


def build_model(depth: int, act, sigma_w: float | None, sigma_b: float, settings: Settings,
                field: str = "model") -> eoc_ntk.Model:
    """An ``eoc_ntk.Model`` from request fields; the core's and the configured checks.

    ``act`` is a request's activation object, its text form (``"relu"``, ``"0.3,0.7"``) or a
    parsed :class:`eoc_ntk.core.activations.Activation`.
    """
    fields = _model_fields(field)
    if depth > settings.max_depth:
        raise InvalidInput(f"depth {depth} is over the limit {settings.max_depth} (EOC_NTK_MAX_DEPTH)",
                           field=fields["depth"])
    with core_errors(field, fields):
        activation = parse_activation(act if isinstance(act, (str, tuple)) else act.model_dump(exclude_none=True))
        return eoc_ntk.Model(depth, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b)


def model_from_request(m: ModelIn, settings: Settings) -> eoc_ntk.Model:
    return build_model(m.depth, m.activation, m.sigma_w, m.sigma_b, settings, "model")


def op_of_job(job_id: str) -> str:
    """The operation of a job id; :class:`InvalidInput` for a malformed one."""
    if not is_job_id(job_id):
        shown = repr(job_id) if len(str(job_id)) <= 80 else repr(str(job_id)[:80]) + "..."
        raise InvalidInput(f"malformed job id {shown}; job ids look like 'spectra-' followed by 32 hex digits",
                           field="job_id")
    return job_id.split("-", 1)[0]


def check_sweep_size(depths, activations, settings: Settings) -> None:
    if len(depths) > settings.max_sweep_depths:
        raise InvalidInput(f"{len(depths)} depths is over the limit {settings.max_sweep_depths} "
                           "(EOC_NTK_MAX_SWEEP_DEPTHS)", field="depths")
    if len(activations) > settings.max_sweep_activations:
        raise InvalidInput(f"{len(activations)} activations is over the limit {settings.max_sweep_activations} "
                           "(EOC_NTK_MAX_SWEEP_ACTIVATIONS)", field="activations")


def check_kernel_kinds(model: eoc_ntk.Model, kinds) -> None:
    """Let the core refuse kind/model combinations (e.g. ``icd`` of a linear network) up front."""
    with core_errors("kinds"):
        eoc_ntk.check_kinds([getattr(k, "value", k) for k in kinds], model)


def check_kernel_size(n: int, n2: int, settings: Settings) -> None:
    if n * n2 > settings.max_kernel_entries:
        raise InvalidInput(f"the kernel would have {n} x {n2} = {n * n2} entries, over the limit "
                           f"{settings.max_kernel_entries} (EOC_NTK_MAX_KERNEL_ENTRIES)",
                           field="x2" if n2 != n else "x")
