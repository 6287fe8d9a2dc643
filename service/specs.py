"""From a validated request to a job spec, its cache key and its job id.

A *spec* is the plain-JSON description of one computation, and the only argument a job
gets (JSON, never pickled)::

    {"op": "spectra", "dataset_id": "...", "model": {"depth", "a", "b", "sigma_w", "sigma_b"}}
    {"op": "kernels", "dataset_id": "...", "x2_id": "..." | None, "model": {...}, "kinds": [...]}
    {"op": "sweeps", "dataset_id": "...", "depths": [...], "activations": [{"a", "b", "sigma_w", "sigma_b"}, ...]}

Hyperparameters are the core's ``Model.canonical()`` (defaults resolved, signs dropped),
so ``relu`` and ``a = b = 0.5`` give one spec, one :func:`cache_key` and one job id.
"""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np

import eoc_ntk

from .config import Settings
from .errors import InvalidInput, core_errors
from .schemas import ActivationNamed, ModelIn

__all__ = [
    "OPS", "build_model", "model_params", "spectra_spec", "kernels_spec", "sweeps_spec",
    "cache_key", "job_id_for", "op_of_job", "work_units",
]

OPS = ("kernels", "spectra", "sweeps")
_JOB_ID = re.compile(r"^(kernels|spectra|sweeps)-[0-9a-f]{32}$")


def _activation_ab(act) -> tuple[float, float]:
    if isinstance(act, ActivationNamed):
        return eoc_ntk.activation_coefficients(act.name, act.slope)
    return act.a, act.b


def build_model(depth: int, act, sigma_w: float | None, sigma_b: float, settings: Settings,
                field: str = "model") -> eoc_ntk.Model:
    """An ``eoc_ntk.Model`` from request fields; the core's and the configured checks."""
    if depth > settings.max_depth:
        raise InvalidInput(f"depth {depth} is over the limit {settings.max_depth} (EOC_NTK_MAX_DEPTH)",
                           field=f"{field}.depth" if field == "model" else "depths")
    with core_errors(f"{field}.activation"):
        a, b = _activation_ab(act)
    try:
        return eoc_ntk.Model(depth, a, b, sigma_w=sigma_w, sigma_b=sigma_b)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(str(exc), field=_model_field(str(exc), field)) from exc


def _model_field(message: str, field: str) -> str:
    """The request field a core refusal of ``Model(...)`` is about, from the name its message starts with."""
    first = message.split(" ", 1)[0].rstrip(":,")
    if first in ("sigma_w", "sigma_b"):
        return f"{field}.{first}" if field == "model" else first  # sweeps: one sigma for all activations
    if first in ("a", "b", "a^2", "a=", "phi"):
        return f"{field}.activation" if field == "model" else field
    if first == "depth":
        return f"{field}.depth" if field == "model" else "depths"
    return field


def model_from_request(m: ModelIn, settings: Settings) -> eoc_ntk.Model:
    return build_model(m.depth, m.activation, m.sigma_w, m.sigma_b, settings, "model")


def _plain(value):
    """Floats with -0.0 folded into 0.0, so that equal models serialise equally."""
    if isinstance(value, float):
        return value + 0.0
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def model_params(model: eoc_ntk.Model) -> dict:
    """Canonical hyperparameters of ``model`` (the core's ``canonical()``)."""
    return _plain(dict(model.canonical()))


def spectra_spec(dataset_id: str, model: eoc_ntk.Model) -> dict:
    return {"op": "spectra", "dataset_id": dataset_id, "model": model_params(model)}


def kernels_spec(dataset_id: str, x2_id: str | None, model: eoc_ntk.Model, kinds) -> dict:
    kinds = sorted({getattr(k, "value", k) for k in kinds})
    return {"op": "kernels", "dataset_id": dataset_id, "x2_id": x2_id, "model": model_params(model), "kinds": kinds}


def sweeps_spec(dataset_id: str, depths, models: list[eoc_ntk.Model]) -> dict:
    acts = []
    for m in models:
        params = model_params(m)
        params.pop("depth")
        acts.append(params)
    return {"op": "sweeps", "dataset_id": dataset_id, "depths": sorted(set(depths)), "activations": acts}


def cache_key(spec: dict) -> str:
    """The one cache key: operation + dataset hash(es) + canonical hyperparameters + algorithm version."""
    doc = json.dumps({"algorithm_version": eoc_ntk.ALGORITHM_VERSION, "spec": spec},
                     sort_keys=True, separators=(",", ":"), allow_nan=False)
    return f"{spec['op']}:{hashlib.sha256(doc.encode()).hexdigest()}"


def job_id_for(key: str) -> str:
    """Job id derived from the cache key, so identical requests share one job (single flight)."""
    op, digest = key.split(":", 1)
    return f"{op}-{digest[:32]}"


def op_of_job(job_id: str) -> str:
    """The operation of a job id; :class:`InvalidInput` for a malformed one."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        shown = repr(job_id) if len(str(job_id)) <= 80 else repr(str(job_id)[:80]) + "..."
        raise InvalidInput(f"malformed job id {shown}; job ids look like 'spectra-' followed by 32 hex digits",
                           field="job_id")
    return job_id.split("-", 1)[0]


def work_units(spec: dict, n: int, n2: int | None = None) -> int:
    """Estimated cost of a computation in microseconds of one core, compared with
    ``async_threshold``. Measured on the core: a kernel costs about 0.2 us per entry whatever
    the depth; a depth sweep about 0.2 us per entry and layer up to its largest depth; an
    eigen-solve about ``n^3 / 8000`` us plus 10 ms (``analyze`` does two)."""
    n2 = n if n2 is None else n2
    eigen = n ** 3 // 8000 + 10_000
    op = spec["op"]
    if op == "kernels":
        return n * n2 * len(spec["kinds"]) // 5
    if op == "spectra":
        return n * n // 5 + 2 * eigen
    per_activation = n * n * max(spec["depths"]) // 5 + len(spec["depths"]) * eigen
    return len(spec["activations"]) * per_activation


def check_sweep_size(depths, activations, settings: Settings) -> None:
    if len(set(depths)) > settings.max_sweep_depths:
        raise InvalidInput(f"{len(set(depths))} depths is over the limit {settings.max_sweep_depths} "
                           "(EOC_NTK_MAX_SWEEP_DEPTHS)", field="depths")
    if len(activations) > settings.max_sweep_activations:
        raise InvalidInput(f"{len(activations)} activations is over the limit {settings.max_sweep_activations} "
                           "(EOC_NTK_MAX_SWEEP_ACTIVATIONS)", field="activations")


def check_kernel_kinds(model: eoc_ntk.Model, kinds) -> None:
    """Let the core refuse kind/model combinations (e.g. ``icd`` of a linear network) up front."""
    probe = np.ones((1, 1))
    for kind in {getattr(k, "value", k) for k in kinds}:
        with core_errors("kinds"):
            eoc_ntk.kernel(probe, depth=1, a=model.a, b=model.b, sigma_w=model.sigma_w, sigma_b=model.sigma_b,
                           kind=kind)


def check_kernel_size(n: int, n2: int, settings: Settings) -> None:
    if n * n2 > settings.max_kernel_entries:
        raise InvalidInput(f"the kernel would have {n} x {n2} = {n * n2} entries, over the limit "
                           f"{settings.max_kernel_entries} (EOC_NTK_MAX_KERNEL_ENTRIES)", field="x2" if n2 != n else "x")
