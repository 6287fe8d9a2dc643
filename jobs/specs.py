"""A computation as a JSON spec, its cache key, its job id and its estimated cost.

A *spec* is the plain-JSON description of one computation, and the only argument a job
gets (JSON, never pickled)::

    {"op": "spectra", "dataset_id": "...", "model": {"depth", "a", "b", "sigma_w", "sigma_b"},
     "engine": "dask" (only on the Dask cluster)}
    {"op": "kernels", "dataset_id": "...", "x2_id": "..." | None, "model": {...}, "kinds": [...]}
    {"op": "sweeps", "dataset_id": "...", "depths": [...], "activations": [{"a", "b", "sigma_w", "sigma_b"}, ...],
     "labels_id": "..." (only with labels)}
    {"op": "dynamics", "dataset_id": "...", "labels_id": "...", "model": {...}, "learning_rate": float | None,
     "steps": [...], "init": "zero" | "nngp"}
    {"op": "learning_curves", "dataset_id": "...", "labels_id": "...", "model": {...}, "sizes": [...],
     "ridge": float, "splits": int, "seed": int}

Hyperparameters are the core's ``Model.canonical()`` (defaults resolved, signs dropped),
so ``relu`` and ``a = b = 0.5`` give one spec, one :func:`cache_key` and one job id.
"""
from __future__ import annotations

import hashlib
import json
import re

import eoc_ntk
from eoc_ntk.core.cost import predict_seconds

from .dask_engine import DASK, ENGINES, NUMPY
from .device import job_device

__all__ = [
    "OPS", "JOB_ID_PATTERN", "is_job_id", "model_params", "spectra_spec", "kernels_spec", "sweeps_spec",
    "cache_key", "job_id_for", "predicted_seconds", "predicted_for", "dynamics_spec", "learning_curves_spec",
    "LABEL_OPS",
]

#: The operations a job can run.
OPS = ("kernels", "spectra", "sweeps", "dynamics", "learning_curves")
#: The operations whose second array (``labels_id``) is the labels ``y`` (docs/learning.md §1).
LABEL_OPS = ("dynamics", "learning_curves")
#: Every job id: the operation, a dash and 32 hex digits of its cache key.
JOB_ID_PATTERN = rf"^({'|'.join(OPS)})-[0-9a-f]{{32}}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


def is_job_id(text) -> bool:
    """True when ``text`` has the form of a job id (see :data:`JOB_ID_PATTERN`)."""
    return isinstance(text, str) and _JOB_ID.match(text) is not None


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


def spectra_spec(dataset_id: str, model: eoc_ntk.Model, engine: str = NUMPY) -> dict:
    """A spectrum; ``engine`` :data:`jobs.dask_engine.DASK` (from :func:`jobs.dask_engine.engine_for`) runs it
    on the Dask cluster, and only then is it written in the spec (the keys of other spectra are unchanged)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    spec = {"op": "spectra", "dataset_id": dataset_id, "model": model_params(model)}
    if engine == DASK:
        spec["engine"] = DASK
    return spec


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


def dynamics_spec(dataset_id: str, labels_id: str, model: eoc_ntk.Model, learning_rate: float | None,
                  steps, init: str) -> dict:
    """Training dynamics (docs/learning.md §3); ``steps`` sorted and distinct, as the core answers them."""
    return {"op": "dynamics", "dataset_id": dataset_id, "labels_id": labels_id, "model": model_params(model),
            "learning_rate": _plain(None if learning_rate is None else float(learning_rate)),
            "steps": sorted({int(s) for s in steps}), "init": init}


def learning_curves_spec(dataset_id: str, labels_id: str, model: eoc_ntk.Model, sizes, ridge: float,
                         splits: int, seed: int) -> dict:
    """Learning curve (docs/learning.md §5); ``sizes`` sorted and distinct, as the core answers them."""
    return {"op": "learning_curves", "dataset_id": dataset_id, "labels_id": labels_id,
            "model": model_params(model), "sizes": sorted({int(s) for s in sizes}),
            "ridge": _plain(float(ridge)), "splits": int(splits), "seed": int(seed)}


def cache_key(spec: dict) -> str:
    """The one cache key: operation + dataset hash(es) + canonical hyperparameters + algorithm version."""
    doc = json.dumps({"algorithm_version": eoc_ntk.ALGORITHM_VERSION, "spec": spec},
                     sort_keys=True, separators=(",", ":"), allow_nan=False)
    return f"{spec['op']}:{hashlib.sha256(doc.encode()).hexdigest()}"


def job_id_for(key: str) -> str:
    """Job id derived from the cache key, so identical requests share one job (single flight)."""
    op, digest = key.split(":", 1)
    return f"{op}-{digest[:32]}"


def predicted_seconds(spec: dict, x_shape: tuple, x2_shape: tuple | None = None) -> float:
    """Predicted seconds of ``spec`` on one core for data of shape ``x_shape`` (and ``x2_shape``):
    :func:`eoc_ntk.core.cost.predict_seconds` with the spec's depth(s), activations and ``sigma_b``."""
    n, m0 = int(x_shape[0]), int(x_shape[1])
    n2 = None if x2_shape is None else int(x2_shape[0])
    op = spec["op"]
    if op == "sweeps":
        acts = spec["activations"]
        return sum(predict_seconds("sweeps", n=n, m0=m0, depths=spec["depths"], sigma_b=p["sigma_b"],
                                   eigenvalues="extremes") for p in acts)
    model = spec["model"]
    if op == "kernels":
        return predict_seconds("kernels", n=n, m0=m0, n2=n2, depths=(model["depth"],), sigma_b=model["sigma_b"],
                               kinds=len(spec["kinds"]))
    icd = model["sigma_b"] == 0.0 and model.get("b", 0.0) != 0.0 and op == "spectra"
    one = predict_seconds("spectra", n=n, m0=m0, depths=(model["depth"],), sigma_b=model["sigma_b"], icd=icd,
                          device=(job_device() or "cpu") if op == "spectra" else "cpu")
    if op == "learning_curves":
        # One eigen-decomposition for the estimate, then kernel regressions on `splits` subsets of
        # each size: bounded above by one dense solve of all n points per split and size.
        return one * (1 + spec["splits"] * len(spec["sizes"]))
    return one  # spectra, and dynamics (one eigen-decomposition of K/n)


def predicted_for(spec: dict, arrays: dict) -> float | None:
    """:func:`predicted_seconds` of ``spec`` with its data in ``arrays`` (dataset id -> array); None
    when they are not there."""
    x = arrays.get(spec["dataset_id"])
    if x is None:
        return None
    x2 = arrays.get(spec.get("x2_id")) if spec["op"] == "kernels" and spec.get("x2_id") else None
    return predicted_seconds(spec, x.shape, None if x2 is None else x2.shape)
