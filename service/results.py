"""Stored results to response bodies (JSON with non-finite numbers as null, or raw .npy)."""
from __future__ import annotations

import io

import numpy as np

from eoc_ntk.activations import activation_label
from eoc_ntk.jsonsafe import to_jsonable
from jobs.codec import StoredValue
from jobs.dask_engine import NUMPY

from .errors import NotAcceptable

__all__ = ["result_body", "npy_bytes", "kernel_for_npy", "NPY"]

NPY = "application/x-npy"


def result_body(spec: dict, value: StoredValue, cache: str) -> dict:
    """The JSON answer of ``spec`` (same for a synchronous answer and a finished job)."""
    op = spec["op"]
    if op == "spectra":
        body = {"engine": NUMPY, **value.doc}  # results stored before the engine field were all numpy
    elif op == "kernels":
        shape = next(iter(value.arrays.values())).shape
        body = {"model": spec["model"], "x2_dataset_id": spec.get("x2_id"), "shape": list(shape)}
        body.update({kind: value.arrays[kind] for kind in spec["kinds"]})
    elif op in ("dynamics", "learning_curves"):
        body = dict(value.doc)
    else:
        # Each activation with its one display label (eoc_ntk.activations), as the plots and the page show it.
        results = [{**r, "activation": {**r["activation"], "display_label": activation_label(r["activation"]["a"],
                                                                                             r["activation"]["b"])}}
                   for r in value.doc["results"]]
        body = {"depths": value.doc["depths"], "results": results}
    if spec.get("labels_id"):
        body["labels_id"] = spec["labels_id"]
    body["dataset_id"] = spec["dataset_id"]
    body["cache"] = cache
    return to_jsonable(body)


def kernel_for_npy(spec: dict, value: StoredValue) -> np.ndarray:
    """The single kernel of a kernels result, for ``Accept: application/x-npy``."""
    if spec["op"] != "kernels" or len(spec["kinds"]) != 1:
        raise NotAcceptable("application/x-npy is available for /v1/kernels results with exactly one kind; "
                            "ask for application/json", field="Accept")
    return value.arrays[spec["kinds"][0]]


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()
