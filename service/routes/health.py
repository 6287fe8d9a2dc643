"""Liveness and readiness."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import eoc_ntk

from ..deps import EngineDep
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(engine: EngineDep):
    """The process is up (says nothing about Redis)."""
    return Health(status="ok", mode=engine.mode, algorithm_version=eoc_ntk.ALGORITHM_VERSION)


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(engine: EngineDep):
    """Ready to serve: in Redis mode, Redis answers and takes writes (503 otherwise, e.g. out of memory)."""
    ok, detail = engine.ready()
    body = Health(status="ok" if ok else "unavailable", mode=engine.mode,
                  algorithm_version=eoc_ntk.ALGORITHM_VERSION, detail=detail)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"})
