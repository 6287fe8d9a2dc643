"""Datasets: upload once, refer to them by content hash."""
from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query, Request

from ..contract import LOOKUP_ERRORS, UPLOAD_ERRORS, operation
from ..datasets import parse_upload
from ..deps import EngineDep, PrincipalDep
from ..engine import Engine
from ..jsonbody import read_body
from ..labels import check_labels, labels_id_of
from ..schema_rules import DATA_NUMBER, ROWS_SCHEMA
from ..schemas import DATASET_ID_PATTERN, DatasetOut, DatasetWithLabelsOut

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

_LABELS = {"anyOf": [{"type": "array", "minItems": 1, "items": DATA_NUMBER}, ROWS_SCHEMA],
           "description": "Optional labels, one row per point: shape (n,) or (n, k); the answer has their labels_id."}
_UPLOAD_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["x"], "properties": {"x": ROWS_SCHEMA, "y": _LABELS},
                                    "additionalProperties": False},
                         "example": {"x": [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], "y": [1.0, -0.5, 0.25]}},
    "application/x-npy": {"schema": {"type": "string", "format": "binary",
                                     "description": "numpy.save(f, x): a float matrix of shape (n, m0)."}},
    "text/csv": {"schema": {"type": "string", "format": "binary",
                            "description": "One point per line, comma-separated numbers, no header."},
                 "example": "1.0,0.0\n0.6,0.8\n0.0,1.0\n"},
    "application/x-npz": {"schema": {"type": "string", "format": "binary", "description":
                                     "numpy.savez(f, x=x, y=y): the points x and, optionally, their labels y."}},
}}


LabelColumn = Annotated[int | None, Query(
    description="The column of the points holding the labels (counted from 0, -1 the last; CSV has no header "
                "line, so a column is chosen by index), for every format: a CSV or .npy matrix, JSON x or the .npz "
                "member x, when no y is sent (422 when y is sent too). It is taken out of the points and stored as "
                "labels of shape (n,); the answer has their labels_id.")]


@router.post("", status_code=201, response_model=DatasetWithLabelsOut, response_model_exclude_none=True,
             **operation(*UPLOAD_ERRORS, ok_status=201, request_body=_UPLOAD_BODY))
async def upload_dataset(request: Request, engine: EngineDep, who: PrincipalDep, label_column: LabelColumn = None):
    """Store a dataset (JSON, .npy, CSV or .npz); the id is a hash of its float64 content and shape.

    Labels may come with the points: `y` next to `x` in JSON, an array `y` next to `x` in an .npz
    archive, or `?label_column=`: a column of the points of any format (when no `y` is sent). They
    are stored too and the answer has their `labels_id` (as from POST /v1/labels)."""
    body = await read_body(request)
    content_type = request.headers.get("content-type")
    # Parsing and storing run in a worker thread, at most EOC_NTK_UPLOAD_CONCURRENCY at once (their
    # memory is bounded: see _parse_and_store).
    return await anyio.to_thread.run_sync(_parse_and_store, engine, content_type, body, who, label_column,
                                          limiter=request.app.state.upload_slots)


def _parse_and_store(engine: Engine, content_type: str | None, body: bytearray, who: str | None,
                     label_column: int | None):
    """Parse, hash and store an upload, its body released as soon as the points are read.

    Peak memory of a float64 ``.npy`` upload of B bytes: the body and check_data's one float64
    copy (2 B) while parsing; the array and its one stored encoding (2 B) while storing; plus
    boolean temporaries of the checks (B/8 each). Hashing reads the array in place."""
    x, raw_y = parse_upload(content_type, body, engine.settings, label_column)
    try:
        body.clear()  # the caller's reference stays, the bytes go: parsing is over
    except BufferError:  # a view on the body still alive (never expected): keep it, correct but larger
        pass
    y = None if raw_y is None else check_labels(raw_y, engine.settings, "y", x.shape[0])
    data = engine.store_dataset(x, principal=who)
    labels_id = None
    if y is not None:
        labels_id = labels_id_of(y)
        engine.storage.put_labels(labels_id, y, owner=who)
        engine.storage.listings.dataset_stored(data.dataset_id, x.shape, who, labels_id)  # listed with them
    return DatasetWithLabelsOut(dataset_id=data.dataset_id, n=x.shape[0], m0=x.shape[1], labels_id=labels_id)


@router.get("/{dataset_id}", response_model=DatasetOut, **operation(*LOOKUP_ERRORS))
def get_dataset(dataset_id: Annotated[str, Path(pattern=DATASET_ID_PATTERN)], engine: EngineDep, who: PrincipalDep):
    """Shape of a stored dataset (404 if unknown, expired or another API key's)."""
    x = engine.dataset(dataset_id, who)
    return DatasetOut(dataset_id=dataset_id, n=x.shape[0], m0=x.shape[1])
