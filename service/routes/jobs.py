"""Jobs: status, progress, result or error; the bare result; cancel."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from jobs.answers import content_hash, with_cache
from jobs.specs import JOB_ID_PATTERN
from jobs.states import TERMINAL, JobStatus

from ..contract import LOOKUP_ERRORS, operation
from ..deps import EngineDep, PrincipalDep, WantsNpy
from ..engine import Answer
from ..errors import Conflict, error_body
from ..examples import EXAMPLES
from ..jobdoc import job_body, job_timing
from ..results import json_response
from ..schemas import JobOut, JobResult
from .common import result_response

__all__ = ["router", "JobId", "job_timing"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN,
                            description="Id from a 202 answer: the operation, `-` and 32 hex digits.")]
_NPY: dict[str, Any] = {"content": {"application/x-npy": {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON, or the raw .npy kernel of a finished kernels job with `Accept: application/x-npy`."}


@router.get("/{job_id}", response_model=JobOut,
            **operation(*LOOKUP_ERRORS, 406, 410, ok=_NPY, cacheable=True, conditional=True))
def get_job(job_id: JobId, engine: EngineDep, npy: WantsNpy, who: PrincipalDep,
            if_none_match: Annotated[str | None, Header(description="ETag of an earlier answer about a finished job: "
                                                                    "304 (no body) while it is the same.")] = None,
            ) -> Response:
    """Status, progress (0..1) and, once finished, the result (410 if it expired) or the error.

    A finished job's answer never changes: it carries an ETag and `Cache-Control: private, max-age`."""
    view = engine.job(job_id, who)
    if npy and view.status == JobStatus.finished:
        return result_response(engine, view.spec, Answer(engine.job_result(view), "miss"), True)
    body = job_body(engine, view, who)
    if view.status != JobStatus.finished:
        return Response(body, media_type="application/json")
    return json_response(body, content_hash(body), engine.settings.result_ttl, engine.settings, if_none_match)


@router.delete("/{job_id}", response_model=JobOut, **operation(*LOOKUP_ERRORS, 409))
async def cancel_job(job_id: JobId, engine: EngineDep, who: PrincipalDep) -> Response:
    """Cancel a queued or running job; a job that already ended is left as it is and answered 409
    with its state (`error.status`)."""
    before = await run_in_threadpool(engine.job, job_id, who)
    if before.status in TERMINAL:
        return JSONResponse(error_body("conflict", f"job {job_id} already {before.status.value}; nothing to cancel",
                                       "job_id", status=before.status.value), status_code=409)
    view = await run_in_threadpool(engine.cancel, job_id, who)
    return Response(await run_in_threadpool(job_body, engine, view, who), media_type="application/json")


@router.get("/{job_id}/result", response_model=JobResult,
            **operation(*LOOKUP_ERRORS, 406, 409, 410, cacheable=True, conditional=True, ok={
                **_NPY, "content": {**_NPY["content"], "application/json": {"example": EXAMPLES["SpectrumOut"]}}}))
def get_job_result(job_id: JobId, engine: EngineDep, npy: WantsNpy, who: PrincipalDep,
                   if_none_match: Annotated[str | None, Header(description="ETag of an earlier answer: 304 (no body) "
                                                                           "while it is the same.")] = None,
                   ) -> Response:
    """The result of a finished job, as the synchronous request would have answered it (409 while the
    job has not finished, 410 if the result expired)."""
    view = engine.job(job_id, who)
    if view.status != JobStatus.finished:
        raise Conflict(f"job {job_id} is {view.status.value}; its result exists once it has finished", field="job_id")
    if npy:
        return result_response(engine, view.spec, Answer(engine.job_result(view), "miss"), True)
    answer = engine.job_answer(view)
    return json_response(with_cache(answer.body, "miss"), answer.etag, engine.settings.cache_ttl, engine.settings,
                         if_none_match)
