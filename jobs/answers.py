"""A result's JSON answer, rendered once.

The body every client gets for a spec is a function of the spec and its stored result only,
apart from the ``cache`` field ("hit" or "miss"). :func:`render` serialises it with orjson,
without that field, when the result is stored (:meth:`jobs.store.Storage.put_result`); a
repeated question is then answered with those bytes as they are, the ``cache`` field spliced
in last (:func:`with_cache`), without decoding, re-validating or re-serialising the result.
The first answer is made by the same two functions, so that every answer of a spec equals
the first byte for byte except in ``cache``.

Kernels are not rendered ahead (:data:`RENDERED_OPS`): their matrices can be hundreds of MB
of JSON, and are often fetched as ``.npy`` instead.
"""
from __future__ import annotations

import hashlib

import orjson

from eoc_ntk.core.activations import activation_label
from eoc_ntk.core.jsonsafe import to_jsonable

from .codec import StoredValue
from .dask_engine import NUMPY

__all__ = ["RENDERED_OPS", "answer_doc", "render", "with_cache", "content_hash"]

#: Operations whose answer is rendered when the result is stored (not kernels: see above).
RENDERED_OPS = frozenset({"spectra", "sweeps", "dynamics", "learning_curves"})


def _display_label(act: dict) -> str:
    """``"ReLU (Δ=0.5)"`` for the family (``a``, ``b``); a smooth activation's name (``"tanh"``)."""
    if "a" in act and "b" in act:
        return activation_label(act["a"], act["b"])
    return str(act.get("activation", act.get("label")))


def answer_doc(spec: dict, value: StoredValue) -> dict:
    """The JSON answer of ``spec`` as plain values, without the ``cache`` field (same for a
    synchronous answer, a cached one and a finished job); ``kind`` names the operation."""
    op = spec["op"]
    if op == "spectra":
        body = {"engine": NUMPY, **value.doc}  # results stored before the engine field were all numpy
    elif op in ("dynamics", "learning_curves"):
        body = dict(value.doc)
    elif op == "kernels":
        shape = next(iter(value.arrays.values())).shape
        body = {"model": spec["model"], "x2_dataset_id": spec.get("x2_id"), "shape": list(shape)}
        body.update({kind: value.arrays[kind] for kind in spec["kinds"]})
    else:
        # Each activation with its one display label (eoc_ntk.core.activations), as the plots and the page show it.
        results = [{**r, "activation": {**r["activation"], "display_label": _display_label(r["activation"])}}
                   for r in value.doc["results"]]
        body = {"depths": value.doc["depths"], "results": results}
    if spec.get("labels_id"):
        body["labels_id"] = spec["labels_id"]
    body["dataset_id"] = spec["dataset_id"]
    body["kind"] = op  # the discriminator of a job's result (the operation that made it)
    body.pop("cache", None)
    return to_jsonable(body)


def render(spec: dict, value: StoredValue) -> bytes:
    """:func:`answer_doc` as compact UTF-8 JSON (orjson), a non-empty object without ``cache``."""
    return orjson.dumps(answer_doc(spec, value))


def with_cache(body: bytes, cache: str) -> bytes:
    """``body`` (from :func:`render`) with ``"cache": cache`` as its last field."""
    if cache not in ("hit", "miss"):
        raise ValueError(f"cache must be 'hit' or 'miss', not {cache!r}")
    return b"".join((body[:-1], b',"cache":"' if len(body) > 2 else b'"cache":"', cache.encode(), b'"}'))


def content_hash(body: bytes) -> str:
    """The content hash of a rendered body (its ETag): 32 hex digits of BLAKE2b."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()
