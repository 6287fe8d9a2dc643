"""Liveness and readiness."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import eoc_ntk

from ..contract import RETRY_AFTER, operation
from ..deps import EngineDep
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, **operation(secured=False))
async def healthz(engine: EngineDep):
    """The process is up (says nothing about Redis)."""
    return Health(status="ok", mode=engine.mode, algorithm_version=eoc_ntk.ALGORITHM_VERSION)


@router.get("/readyz", response_model=Health, **operation(secured=False, more={503: {
    "model": Health, "description": "Not ready (Redis does not answer or refuses writes).",
    "headers": {"Retry-After": {**RETRY_AFTER, "required": True}}}}))
def readyz(engine: EngineDep):
    """Ready to serve: in Redis mode, Redis answers and takes writes (503 otherwise, e.g. out of memory)."""
    ok, detail = engine.ready()
    body = Health(status="ok" if ok else "unavailable", mode=engine.mode,
                  algorithm_version=eoc_ntk.ALGORITHM_VERSION, detail=detail)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"})
