"""Datasets: upload once, refer to them by content hash."""
from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from ..datasets import parse_upload
from ..deps import EngineDep, PrincipalDep
from ..schemas import DATASET_ID_PATTERN, DatasetOut
from .common import ERRORS

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=ERRORS)

_MATRIX = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["x"], "properties": {"x": _MATRIX},
                                            "additionalProperties": False}},
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string", "description": "One point per line, comma-separated numbers, no header."}},
        },
    }
}


@router.post("", status_code=201, response_model=DatasetOut, openapi_extra=_UPLOAD_BODY)
async def upload_dataset(request: Request, engine: EngineDep, who: PrincipalDep):
    """Store a dataset (JSON, .npy or CSV); the id is a hash of its float64 content and shape."""
    body = await request.body()
    # Parsing runs in a worker thread, at most EOC_NTK_UPLOAD_CONCURRENCY at once (its memory is bounded).
    x = await anyio.to_thread.run_sync(parse_upload, request.headers.get("content-type"), body, engine.settings,
                                       limiter=request.app.state.upload_slots)
    del body
    data = await run_in_threadpool(lambda: engine.store_dataset(x, principal=who))
    return DatasetOut(dataset_id=data.dataset_id, n=x.shape[0], m0=x.shape[1])


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: Annotated[str, Path(pattern=DATASET_ID_PATTERN)], engine: EngineDep, who: PrincipalDep):
    """Shape of a stored dataset (404 if unknown, expired or another API key's)."""
    x = engine.dataset(dataset_id, who)
    return DatasetOut(dataset_id=dataset_id, n=x.shape[0], m0=x.shape[1])
