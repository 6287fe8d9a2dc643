"""The job resource as JSON: what ``GET /v1/jobs/{job_id}``, every 202 answer and every webhook carry.

Rendered here, in the job layer, so that a webhook delivery (made by the job layer: a worker's
delivery process, or the embedded API's job pool) posts exactly the document the API serves.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson
from redis.exceptions import RedisError

from .answers import RENDERED_OPS, render, with_cache
from .states import TERMINAL, JobStatus, JobView, eta_seconds
from .store import Storage

__all__ = ["job_timing", "job_links", "job_document", "finished_answer", "status_url", "iso_time", "PLOTTED_OPS"]

#: Operations whose results have a figure (``GET /v1/jobs/{job_id}/plot``).
PLOTTED_OPS = ("spectra", "sweeps", "dynamics", "learning_curves")


def status_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def iso_time(seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds (``2026-01-02T03:04:05.678Z``) of a Unix time."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_links(job_id: str, op: str | None) -> dict[str, str]:
    """``self`` (this resource), ``result`` (the bare result) and, for an operation with a figure,
    ``plot``; the last two answer 409 until the job has finished."""
    links = {"self": status_url(job_id), "result": f"{status_url(job_id)}/result"}
    if op in PLOTTED_OPS:
        links["plot"] = f"{status_url(job_id)}/plot"
    return links


def job_timing(view: JobView, now: float | None = None) -> dict:
    """``started_at`` (ISO 8601, UTC), ``elapsed_seconds`` and, while it runs, ``eta_seconds``
    (:func:`jobs.states.eta_seconds`: the cost model's prediction scaled by the observed slowdown)."""
    if view.started_at is None:
        return {}
    now = time.time() if now is None else now
    ended = view.status in TERMINAL
    elapsed = view.seconds if ended and view.seconds is not None else max(now - view.started_at, 0.0)
    out = {"started_at": iso_time(view.started_at), "elapsed_seconds": round(elapsed, 3)}
    eta = eta_seconds(view, now)
    if eta is not None:
        out["eta_seconds"] = round(eta, 3)
    elif ended:
        out["eta_seconds"] = 0.0
    return out


def job_document(view: JobView, result: bytes | None = None, callback: dict | None = None) -> bytes:
    """The job's JSON: its state, links, error (once failed or canceled), timing, ``callback`` (the
    caller's webhook, when one was registered) and, for a finished job, its rendered answer
    ``result`` (see :mod:`jobs.answers`) spliced in last with ``"cache": "miss"``."""
    op = view.spec.get("op")
    doc: dict = {"job_id": view.job_id, **({"op": op} if op is not None else {}), "status": view.status.value,
                 "progress": float(view.progress), "status_url": status_url(view.job_id),
                 "links": job_links(view.job_id, op)}
    if view.error is not None and view.status in (JobStatus.failed, JobStatus.canceled):
        doc["error"] = view.error
    doc.update(job_timing(view))
    if callback is not None:
        doc["callback"] = callback
    out = orjson.dumps(doc)
    if view.status != JobStatus.finished or result is None:
        return out
    return b"".join((out[:-1], b',"result":', with_cache(result, "miss"), b"}"))


def finished_answer(storage: Storage, view: JobView) -> bytes | None:
    """The rendered answer of a finished job (as stored, else rendered from its result); None
    when its result is no longer stored."""
    if view.cache_key and view.spec.get("op") in RENDERED_OPS:
        try:
            found = storage.open_answer(storage.store.fetch(
                storage.answer_query(view.cache_key, None, view.spec.get("dataset_id", ""))))
        except RedisError:
            found = None
        if found is not None:
            return found.body
    value = storage.get_result(view.cache_key) if view.cache_key else None
    return None if value is None else render(view.spec, value)
