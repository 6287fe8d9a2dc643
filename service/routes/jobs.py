"""Jobs: status, progress, result or error; cancel."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Path, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from jobs.answers import content_hash, with_cache
from jobs.states import TERMINAL, JobStatus, JobView, eta_seconds

from ..deps import EngineDep, PrincipalDep, WantsNpy
from ..engine import Answer, Engine
from ..errors import error_body
from ..results import json_response
from ..schemas import JobOut
from .common import ERRORS, Responses, result_response

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)
JobId = Annotated[str, Path(description="Id from a 202 answer, e.g. `spectra-` and 32 hex digits.")]
_NPY: Responses = {200: {"content": {"application/x-npy": {"schema": {"type": "string", "format": "binary"}}}}}


def job_timing(view: JobView, now: float | None = None) -> dict:
    """``started_at`` (ISO 8601, UTC), ``elapsed_seconds`` and, while it runs, ``eta_seconds``
    (:func:`jobs.states.eta_seconds`: the cost model's prediction scaled by the observed slowdown)."""
    if view.started_at is None:
        return {}
    now = time.time() if now is None else now
    ended = view.status in TERMINAL
    elapsed = view.seconds if ended and view.seconds is not None else max(now - view.started_at, 0.0)
    out = {"started_at": datetime.fromtimestamp(view.started_at, timezone.utc).isoformat(timespec="milliseconds")
           .replace("+00:00", "Z"), "elapsed_seconds": round(elapsed, 3)}
    eta = eta_seconds(view, now)
    if eta is not None:
        out["eta_seconds"] = round(eta, 3)
    elif ended:
        out["eta_seconds"] = 0.0
    return out


def _job_body(engine: Engine, view: JobView) -> bytes:
    """The job's JSON; a finished job's result is its rendered answer as stored (see
    :mod:`jobs.answers`), spliced in last, with ``"cache": "miss"``."""
    body = JobOut(job_id=view.job_id, op=view.spec.get("op"), status=view.status, progress=view.progress,
                  error=view.error if view.status in (JobStatus.failed, JobStatus.canceled) else None,
                  **job_timing(view))
    out = orjson.dumps(body.model_dump(mode="json", exclude_none=True))
    if view.status != JobStatus.finished:
        return out
    return b"".join((out[:-1], b',"result":', with_cache(engine.job_answer(view).body, "miss"), b"}"))


@router.get("/{job_id}", response_model=JobOut,
            responses={**_NPY, 304: {"description": "Not modified (If-None-Match)."}})
def get_job(job_id: JobId, engine: EngineDep, npy: WantsNpy, who: PrincipalDep,
            if_none_match: Annotated[str | None, Header(description="ETag of an earlier answer about a finished job: "
                                                                    "304 (no body) while it is the same.")] = None,
            ) -> Response:
    """Status, progress (0..1) and, once finished, the result (410 if it expired) or the error.

    A finished job's answer never changes: it carries an ETag and `Cache-Control: private, max-age`."""
    view = engine.job(job_id, who)
    if npy and view.status == JobStatus.finished:
        return result_response(engine, view.spec, Answer(engine.job_result(view), "miss"), True)
    body = _job_body(engine, view)
    if view.status != JobStatus.finished:
        return Response(body, media_type="application/json")
    return json_response(body, content_hash(body), engine.settings.result_ttl, engine.settings, if_none_match)


@router.delete("/{job_id}", response_model=JobOut)
async def cancel_job(job_id: JobId, engine: EngineDep, who: PrincipalDep) -> Response:
    """Cancel a queued or running job; a job that already ended is left as it is and answered 409
    with its state (`error.status`)."""
    before = await run_in_threadpool(engine.job, job_id, who)
    if before.status in TERMINAL:
        return JSONResponse(error_body("conflict", f"job {job_id} already {before.status.value}; nothing to cancel",
                                       "job_id", status=before.status.value), status_code=409)
    view = await run_in_threadpool(engine.cancel, job_id, who)
    return Response(await run_in_threadpool(_job_body, engine, view), media_type="application/json")
