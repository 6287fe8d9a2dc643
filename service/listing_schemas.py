"""Answers of the listings (``GET /v1/datasets``, ``GET /v1/datasets/{id}/results``, ``GET /v1/jobs``):
a page of items, newest first, and the cursor of the next page."""
from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from jobs.specs import OPS
from jobs.states import JobStatus

from .schemas import JobLinks

__all__ = ["Page", "DatasetItem", "DatasetPage", "ResultItem", "ResultPage", "JobItem", "JobPage", "LIMIT_DEFAULT",
           "LIMIT_MAX", "RESULT_ID_PATTERN", "LISTING_EXAMPLES", "ResultKind"]

#: Items of a page unless ``limit`` says otherwise, and the most ``limit`` may ask for.
LIMIT_DEFAULT, LIMIT_MAX = 50, 500
#: The operations a result may come from (``kind``).
ResultKind = Literal[OPS]  # type: ignore[valid-type]
#: A cached result's id: its operation, ``-`` and the 64 hex digits of its cache key.
RESULT_ID_PATTERN = rf"^({'|'.join(OPS)})-[0-9a-f]{{64}}$"

_DATASET = "3e0464044cbe5e1f1cb1b47e4a9c05a1"
_RESULT = "spectra-" + "5" * 64
_CURSOR = "MTc2NTEwMDAwMDEyMzQ1Ni4zZTA0NjQwNDRjYmU1ZTFmMWNiMWI0N2U0YTljMDVhMQ.0f3a9c1e5b7d2a4c6e8f0a1b3c5d7e9f"
LISTING_EXAMPLES: dict[str, dict] = {
    "DatasetPage": {"items": [{
        "dataset_id": _DATASET, "n": 3, "m0": 2, "labels": ["d325ba09001f726bc321465e96242f49"],
        "created_at": "2026-01-05T10:00:00.000000Z", "expires_at": "2026-01-12T10:00:00.000000Z",
        "url": f"/v1/datasets/{_DATASET}", "results_url": f"/v1/datasets/{_DATASET}/results"}],
        "next_cursor": _CURSOR},
    "ResultPage": {"items": [{
        "result_id": _RESULT, "kind": "spectra", "dataset_id": _DATASET,
        "model": {"depth": 3, "a": 0.5, "b": 0.5, "sigma_w": 1.4142135623730951, "sigma_b": 0.0},
        "parameters": {}, "created_at": "2026-01-05T10:00:00.000000Z", "expires_at": "2026-01-12T10:00:00.000000Z",
        "url": f"/v1/datasets/{_DATASET}/results/{_RESULT}"}], "next_cursor": None},
    "JobPage": {"items": [{
        "job_id": "spectra-0123456789abcdef0123456789abcdef", "op": "spectra", "status": "running",
        "progress": 0.25, "created_at": "2026-01-05T10:00:00.000000Z",
        "status_url": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef",
        "links": {"self": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef",
                  "result": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef/result",
                  "plot": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef/plot"}}], "next_cursor": None},
}

_NEXT = Field(description="Opaque cursor of the next page (send it back as `cursor`, with the same filters); "
                          "null once the listing has no more items. A page may hold fewer than `limit` items "
                          "(even none) while this is not null.")
ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    """A page of a listing: ``items``, newest first, and ``next_cursor``. Each listing's page is a
    subclass of ``Page[Item]`` with its own name (``DatasetPage``: the document's schema name)."""

    items: list[ItemT]
    next_cursor: str | None = _NEXT


_CREATED = "When it was last stored by (or for) this caller (ISO 8601, UTC); the listing is newest first."


class DatasetItem(BaseModel):
    dataset_id: str
    n: int = Field(description="Number of points.")
    m0: int = Field(description="Number of features of each point.")
    labels: list[str] = Field(description="The labels_id of labels stored with this dataset (POST /v1/datasets "
                                          "with `y` or `label_column`), while they are stored.")
    created_at: str = Field(description=_CREATED)
    expires_at: str = Field(description="When it expires unless stored again (created_at + EOC_NTK_DATASET_TTL).")
    url: str = Field(description="The dataset (GET: its shape).")
    results_url: str = Field(description="The listing of its cached results.")


class DatasetPage(Page[DatasetItem]):
    model_config = ConfigDict(json_schema_extra={"examples": [LISTING_EXAMPLES["DatasetPage"]]})


class ResultItem(BaseModel):
    result_id: str = Field(pattern=RESULT_ID_PATTERN, description="The operation, `-` and the cache key's digest.")
    kind: ResultKind = Field(description="The operation that computed it.")
    dataset_id: str
    model: dict | None = Field(description="The canonical model (depth, a, b, sigma_w, sigma_b: defaults resolved, "
                                           "signs dropped); null for a sweep, whose depths and activations are in "
                                           "`parameters`.")
    parameters: dict = Field(description="The request's other canonical parameters: kernels `kinds` and "
                                         "`x2_dataset_id`; sweeps `depths` and `activations`; dynamics `labels_id`, "
                                         "`steps`, `learning_rate`, `init`; learning curves `labels_id`, `sizes`, "
                                         "`ridge`, `splits`, `seed`; `engine` of a spectrum computed on Dask.")
    created_at: str = Field(description="When the result was stored (ISO 8601, UTC); the listing is newest first.")
    expires_at: str = Field(description="When it expires unless computed again (created_at + EOC_NTK_CACHE_TTL).")
    url: str = Field(description="Reads the result: the answer of the computation, `\"cache\": \"hit\"`.")


class ResultPage(Page[ResultItem]):
    model_config = ConfigDict(json_schema_extra={"examples": [LISTING_EXAMPLES["ResultPage"]]})


class JobItem(BaseModel):
    job_id: str
    op: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    created_at: str = Field(description="When this caller last submitted it (ISO 8601, UTC); the listing is "
                                        "newest first.")
    status_url: str = Field(description="The job resource, with its result or error once it has ended.")
    links: JobLinks


class JobPage(Page[JobItem]):
    model_config = ConfigDict(json_schema_extra={"examples": [LISTING_EXAMPLES["JobPage"]]})
