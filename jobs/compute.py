"""What a job runs: one spec (see :mod:`jobs.specs`) through the core, to a stored value.

:func:`compute` is shared by every executor (the in-process pool of :mod:`jobs.local` and
the RQ workers of :mod:`jobs.rq_queue`); the data are checked arrays read by dataset id.
"""
from __future__ import annotations

import numpy as np

import eoc_ntk
from eoc_ntk.kernels import compute_kernels
from eoc_ntk.progress import ProgressFn
from eoc_ntk.sweep import activation_sweep

from .codec import StoredValue
from .errors import DatasetMissing

__all__ = ["compute", "load_data"]


def _model(params: dict) -> eoc_ntk.Model:
    return eoc_ntk.Model(params["depth"], params["a"], params["b"], sigma_w=params["sigma_w"],
                         sigma_b=params["sigma_b"])


def compute(spec: dict, x: np.ndarray, x2: np.ndarray | None, progress: ProgressFn) -> StoredValue:
    """The result of ``spec`` for checked data ``x`` (and ``x2`` for cross-kernels)."""
    op = spec["op"]
    if op == "spectra":
        return StoredValue(doc=eoc_ntk.analyze(x, _model(spec["model"]), progress=progress))
    if op == "kernels":
        kinds = tuple(spec["kinds"])
        out = compute_kernels(x, x2, _model(spec["model"]), kinds, progress=progress)
        return StoredValue(doc={"kinds": list(kinds)}, arrays=out)
    if op == "sweeps":
        acts = spec["activations"]
        doc = activation_sweep(x, spec["depths"], [(p["a"], p["b"]) for p in acts],
                               sigma_w=[p["sigma_w"] for p in acts], sigma_b=[p["sigma_b"] for p in acts],
                               progress=progress)
        return StoredValue(doc=doc)
    raise ValueError(f"unknown operation {op!r}")


def load_data(spec: dict, fetch) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, x2)`` of ``spec`` from ``fetch(dataset_id) -> ndarray | None``; :class:`DatasetMissing` if gone."""
    x = fetch(spec["dataset_id"])
    x2 = fetch(spec["x2_id"]) if spec.get("x2_id") else None
    if x is None or (spec.get("x2_id") and x2 is None):
        raise DatasetMissing("the job's dataset expired from the store before the job ran; upload it again")
    return x, x2
