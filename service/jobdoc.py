"""The job resource: what ``GET /v1/jobs/{job_id}`` and every 202 answer carry about one job
(rendered by :func:`jobs.resource.job_document`, which webhooks post too)."""
from __future__ import annotations

from jobs.resource import PLOTTED_OPS, job_document, job_links, job_timing, status_url
from jobs.states import JobStatus, JobView

from .engine import Engine

__all__ = ["job_timing", "job_links", "job_body", "status_url", "PLOTTED_OPS"]


def job_body(engine: Engine, view: JobView, principal: str | None = None) -> bytes:
    """The job's JSON (:class:`service.schemas.JobOut`): with the webhook ``principal`` registered for
    it, if any; a finished job's result is its rendered answer as stored (see :mod:`jobs.answers`),
    spliced in last, with ``"cache": "miss"``."""
    result = engine.job_answer(view).body if view.status == JobStatus.finished else None
    return job_document(view, result, engine.callback_of(view.job_id, principal))
