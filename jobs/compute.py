"""What a job runs: one spec (see :mod:`jobs.specs`) through the core, to a stored value.

:func:`compute` is shared by every executor (the in-process pool of :mod:`jobs.local` and
the RQ workers of :mod:`jobs.rq_queue`); the data are checked arrays read by dataset id. A spectra
spec with ``"engine": "dask"`` runs on the Dask cluster of the settings (:mod:`jobs.dask_engine`); with
``EOC_NTK_DEVICE`` set, other spectra run on the torch backend on that device (:mod:`jobs.device`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

import eoc_ntk
from eoc_ntk.core.activations import parse_activation
from eoc_ntk.core.backends import analyze
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.jsonsafe import to_jsonable
from eoc_ntk.core.kernels import check_kernel_request, compute_kernels
from eoc_ntk.core.progress import ProgressFn, scaled
from eoc_ntk.core.sweep import activation_sweep

from .codec import StoredValue
from .dask_engine import NUMPY, on_cluster, spectrum_on_cluster
from .device import job_device, job_engine
from .errors import DatasetMissing
from .settings import JobSettings, get_settings
from .store import labels_store_id

__all__ = ["compute", "load_data", "second_data_id"]


def _model(params: dict) -> eoc_ntk.Model:
    """The model of canonical parameters: the family's ``a, b`` or a smooth ``activation`` name.

    A smooth model whose ``sigma_w`` is its edge-of-chaos value is rebuilt at the EOC (so that it
    keeps its ``q*`` and ``chi = 1``); any other ``sigma_w`` is used as given.
    """
    if "activation" not in params:
        return eoc_ntk.Model(params["depth"], params["a"], params["b"], sigma_w=params["sigma_w"],
                             sigma_b=params["sigma_b"])
    return eoc_ntk.Model(params["depth"], activation=params["activation"], sigma_w=_sigma_w(params),
                         sigma_b=params["sigma_b"])


def _sigma_w(params: dict) -> float | None:
    """``sigma_w`` of canonical parameters, None (solve the EOC again, exactly) for a smooth model at its EOC."""
    if "activation" not in params:
        return params["sigma_w"]
    try:
        at_eoc = eoc_ntk.Model(1, activation=params["activation"], sigma_b=params["sigma_b"])
    except InvalidParameterError:
        return params["sigma_w"]
    return None if at_eoc.sigma_w == params["sigma_w"] else params["sigma_w"]


def _activation(params: dict):
    """A spec's activation as the core reads it: ``(a, b)`` or the smooth name."""
    return params["activation"] if "activation" in params else (params["a"], params["b"])


def compute(spec: dict, x: np.ndarray, x2: np.ndarray | None, progress: ProgressFn,
            settings: JobSettings | None = None) -> StoredValue:
    """The result of ``spec`` for checked data ``x`` (and ``x2`` for cross-kernels); ``settings``
    (default: from the environment) name the Dask cluster of a spec that runs there.

    A dataset held as compact integers (read from JSON, :mod:`eoc_ntk.core.compact`) is converted
    to float64 here, where the computation runs (a job's process or worker), exactly."""
    x = np.asarray(x, dtype=np.float64)
    x2 = None if x2 is None else np.asarray(x2, dtype=np.float64)
    op = spec["op"]
    if op == "spectra" and on_cluster(spec):
        return StoredValue(doc=spectrum_on_cluster(x, _model(spec["model"]), settings or get_settings(), progress))
    device = job_device() if op == "spectra" else None
    if device is not None:  # EOC_NTK_DEVICE: spectra on the torch backend on that device
        doc = analyze(x, _model(spec["model"]), progress=progress, backend="torch", device=device)
        return StoredValue(doc={**doc, "engine": job_engine()})
    if op == "spectra":
        return StoredValue(doc={**eoc_ntk.analyze(x, _model(spec["model"]), progress=progress), "engine": NUMPY})
    if op == "kernels":
        kinds, model = tuple(spec["kinds"]), _model(spec["model"])
        check_kernel_request(x, x2, model, kinds)
        out = compute_kernels(x, x2, model, kinds, progress=progress)
        return StoredValue(doc={"kinds": list(kinds)}, arrays=out)
    if op == "dynamics":
        return StoredValue(doc=_with_progress(progress, lambda: eoc_ntk.dynamics(
            x, _labels(x2), **_core_model(spec["model"]), learning_rate=spec["learning_rate"], steps=spec["steps"],
            init=spec["init"]).to_dict()))
    if op == "learning_curves":
        return StoredValue(doc=_with_progress(progress, lambda: eoc_ntk.learning_curve(
            x, _labels(x2), **_core_model(spec["model"]), sizes=spec["sizes"], ridge=spec["ridge"],
            splits=spec["splits"], seed=spec["seed"]).to_dict()))
    if op == "sweeps" and spec.get("labels_id"):
        return StoredValue(doc=_labelled_sweep(spec, x, _labels(x2), progress))
    if op == "sweeps":
        acts = spec["activations"]
        sigma_ws: list[Any] = [_sigma_w(p) for p in acts]  # None: that smooth activation's EOC
        doc = activation_sweep(x, spec["depths"], [_activation(p) for p in acts], sigma_w=sigma_ws,
                               sigma_b=[p["sigma_b"] for p in acts], progress=progress)
        return StoredValue(doc=to_jsonable(doc))  # a smooth activation's Delta is NaN: stored as null
    raise ValueError(f"unknown operation {op!r}")


def load_data(spec: dict, fetch) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, x2)`` of ``spec`` from ``fetch(dataset_id) -> ndarray | None``; :class:`DatasetMissing` if gone.

    For a spec with labels (``labels_id``: dynamics, learning curves, labelled sweeps) the second
    array is the labels ``y``, stored under :func:`jobs.store.labels_store_id`."""
    second = second_data_id(spec)
    x = fetch(spec["dataset_id"])
    x2 = fetch(second) if second else None
    if x is None or (second and x2 is None):
        what = "labels" if spec.get("labels_id") else "dataset"
        raise DatasetMissing(f"the job's {what} expired from the store before the job ran; upload them again")
    return x, x2


def second_data_id(spec: dict) -> str | None:
    """The store id of a spec's second array: its labels (``labels_id``) or ``x2`` (``x2_id``), or None."""
    return labels_store_id(spec["labels_id"]) if spec.get("labels_id") else spec.get("x2_id")


def _core_model(params: dict) -> dict:
    """A spec's model as the keyword arguments of the core's label functions."""
    keys = ("depth", "activation", "sigma_w", "sigma_b") if "activation" in params else \
        ("depth", "a", "b", "sigma_w", "sigma_b")
    return {**{k: params[k] for k in keys}, "sigma_w": _sigma_w(params)}


def _with_progress(progress: ProgressFn, run):
    """``run()`` between progress reports 0 and 1 (the core's label functions report no progress of their own)."""
    progress(0.0)
    out = run()
    progress(1.0)
    return out


def _labels(y: np.ndarray | None) -> np.ndarray:
    """The labels a labelled operation loaded as its second array."""
    if y is None:
        raise ValueError("this operation needs labels (its spec names labels_id)")
    return y


def _labelled_sweep(spec: dict, x: np.ndarray, y: np.ndarray, progress: ProgressFn) -> dict:
    """A sweep with, per activation, ``alignment`` and ``top_k_fraction`` per depth (docs/learning.md §6)."""
    acts = spec["activations"]
    results = []
    for i, p in enumerate(acts):
        act = parse_activation(_activation(p))
        sweep = eoc_ntk.depth_sweep(x, depths=spec["depths"], activation=act, sigma_w=_sigma_w(p),
                                    sigma_b=p["sigma_b"], y=y,
                                    progress=scaled(progress, i / len(acts), (i + 1) / len(acts)))
        # labelled as eoc_ntk.core.sweep.activation_sweep labels it
        results.append({"activation": {**p, "label": act.label}, **sweep.to_dict()})
    progress(1.0)
    return to_jsonable({"depths": spec["depths"], "results": results})
