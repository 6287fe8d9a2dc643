"""Listings of what a caller has stored: its datasets, a dataset's cached results (and reading one
by its id), its jobs. Paginated newest first with ``limit`` and an opaque ``cursor``."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.concurrency import run_in_threadpool

import eoc_ntk
from eoc_ntk import MAX_DEPTH
from eoc_ntk.core.activations import SmoothActivation, parse_activation
from jobs.answers import RENDERED_OPS
from jobs.specs import model_params
from jobs.states import JobStatus

from ..contract import LOOKUP_ERRORS, operation
from ..deps import EngineDep, PrincipalDep
from ..engine import Answer
from ..errors import NotFound, core_errors
from ..examples import EXAMPLES
from ..listing_schemas import (
    LIMIT_DEFAULT,
    LIMIT_MAX,
    RESULT_ID_PATTERN,
    DatasetPage,
    JobPage,
    ResultKind,
    ResultPage,
)
from ..listings import ResultFilter, cache_key_of, check_depth_range, dataset_page, job_page, result_page
from ..patterns import ACTIVATION_PATTERN
from ..results import answer_response
from ..schemas import DATASET_ID_PATTERN, JobResult
from .common import cached_response

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX, description=f"Most items in the page (1 to {LIMIT_MAX}).")]
Cursor = Annotated[str | None, Query(min_length=1, max_length=1000, description=(
    "The `next_cursor` of the previous page (same filters); omit it for the first page."))]
DatasetId = Annotated[str, Path(pattern=DATASET_ID_PATTERN, description="Id returned by POST /v1/datasets.")]
#: A listing's statuses: its page (422 also for a bad cursor or limit; 503 when the store does not answer).
_LIST_ERRORS = (401, 422, 503)


@router.get("/v1/datasets", response_model=DatasetPage, tags=["datasets"], **operation(*_LIST_ERRORS))
def list_datasets(engine: EngineDep, who: PrincipalDep, limit: Limit = LIMIT_DEFAULT, cursor: Cursor = None):
    """The caller's stored datasets (shape, labels stored with them, when they expire), newest first.

    Without API keys (the default), every dataset this deployment stored and has not expired."""
    return dataset_page(engine, who, limit, cursor)


@router.get("/v1/datasets/{dataset_id}/results", response_model=ResultPage, tags=["datasets"],
            **operation(*LOOKUP_ERRORS))
def list_results(
    dataset_id: DatasetId, engine: EngineDep, who: PrincipalDep, limit: Limit = LIMIT_DEFAULT, cursor: Cursor = None,
    kind: Annotated[ResultKind | None, Query(description="Only results of this operation.")] = None,
    activation: Annotated[str | None, Query(
        min_length=1, max_length=200, pattern=ACTIVATION_PATTERN,
        description="Only results with this activation (for a sweep: among its activations): relu, abs, linear, "
                    "leaky_relu:SLOPE or A,B, compared after canonicalisation (relu is 0.5,0.5).")] = None,
    depth_min: Annotated[int | None, Query(ge=1, le=MAX_DEPTH, description="Only results of depth >= this (a "
                                                                          "sweep: one of its depths).")] = None,
    depth_max: Annotated[int | None, Query(ge=1, le=MAX_DEPTH, description="Only results of depth <= this (a "
                                                                          "sweep: one of its depths).")] = None,
):
    """The caller's cached results of a dataset: kind, canonical model and parameters, when stored, and
    the URL that reads each; newest first (404 if the dataset is unknown, expired or another key's).

    With API keys, a key lists the results it has asked for; without, every result of the dataset."""
    check_depth_range(depth_min, depth_max)
    ab: tuple[float, float] | str | None = None
    if activation is not None:
        with core_errors("activation"):
            act = parse_activation(activation)
            if isinstance(act, SmoothActivation):
                ab = act.key
            else:
                params = model_params(eoc_ntk.Model(1, act.a, act.b))
                ab = (params["a"], params["b"])
    wanted = ResultFilter(kind, ab, depth_min, depth_max)
    return result_page(engine, who, dataset_id, limit, cursor, wanted)


@router.get("/v1/datasets/{dataset_id}/results/{result_id}", response_model=JobResult, tags=["datasets"],
            **operation(*LOOKUP_ERRORS, cacheable=True, conditional=True, ok={
                "description": "The cached answer (`\"cache\": \"hit\"`).",
                "content": {"application/json": {"example": {**EXAMPLES["SpectrumOut"], "cache": "hit"}}}}))
async def get_result(
    dataset_id: DatasetId, engine: EngineDep, who: PrincipalDep,
    result_id: Annotated[str, Path(pattern=RESULT_ID_PATTERN, description="`result_id` of a listed result.")],
    if_none_match: Annotated[str | None, Header(description="An ETag of an earlier answer: 304 (no body) while "
                                                            "the cached result is still that one.")] = None,
):
    """A listed result, as the computation answered it (404 once it expired, or if it is not the caller's).
    The answer carries an ETag (the result's content hash) and `Cache-Control: private, max-age`."""
    missing = (f"no cached result {result_id!r} of dataset {dataset_id!r} (expired, never computed, or not yours); "
               "list them with GET /v1/datasets/{dataset_id}/results")
    key = cache_key_of(result_id)
    spec = await run_in_threadpool(engine.storage.listings.result_spec, dataset_id, key)
    if spec is None or spec.get("dataset_id") != dataset_id:
        raise NotFound(missing, field="result_id")
    if spec["op"] in RENDERED_OPS:
        found = await cached_response(engine, spec, dataset_id, who, if_none_match, required=True)
        if found is None:
            raise NotFound(missing, field="result_id")
        return found
    value = await run_in_threadpool(engine.cached_for, spec, dataset_id, who, required=True)
    if value is None:
        raise NotFound(missing, field="result_id")
    rendered = await run_in_threadpool(engine.rendered, spec, Answer(value, "hit"))
    return answer_response(rendered, "hit", engine.settings, if_none_match)


@router.get("/v1/jobs", response_model=JobPage, tags=["jobs"], **operation(*_LIST_ERRORS))
def list_jobs(engine: EngineDep, who: PrincipalDep, limit: Limit = LIMIT_DEFAULT, cursor: Cursor = None,
              status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None):
    """The caller's jobs (queued, running, and ended ones while they are kept), newest first.

    Without API keys (the default), every job this deployment's callers submitted."""
    return job_page(engine, who, limit, cursor, status)
