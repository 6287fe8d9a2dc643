"""The job resource: what ``GET /v1/jobs/{job_id}`` and every 202 answer carry about one job."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson

from jobs.answers import with_cache
from jobs.states import TERMINAL, JobStatus, JobView, eta_seconds

from .engine import Engine
from .schemas import JobOut

__all__ = ["job_timing", "job_links", "job_body", "status_url", "PLOTTED_OPS"]

#: Operations whose results have a figure (``GET /v1/jobs/{job_id}/plot``).
PLOTTED_OPS = ("spectra", "sweeps", "dynamics", "learning_curves")


def status_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


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
    out = {"started_at": datetime.fromtimestamp(view.started_at, timezone.utc).isoformat(timespec="milliseconds")
           .replace("+00:00", "Z"), "elapsed_seconds": round(elapsed, 3)}
    eta = eta_seconds(view, now)
    if eta is not None:
        out["eta_seconds"] = round(eta, 3)
    elif ended:
        out["eta_seconds"] = 0.0
    return out


def job_body(engine: Engine, view: JobView) -> bytes:
    """The job's JSON; a finished job's result is its rendered answer as stored (see
    :mod:`jobs.answers`), spliced in last, with ``"cache": "miss"``."""
    op = view.spec.get("op")
    ended_badly = view.error is not None and view.status in (JobStatus.failed, JobStatus.canceled)
    body = JobOut(job_id=view.job_id, op=op, status=view.status, progress=view.progress, attempt=view.attempt,
                  status_url=status_url(view.job_id), links=job_links(view.job_id, op),
                  **({"error": view.error} if ended_badly else {}), **job_timing(view))
    out = orjson.dumps(body.model_dump(mode="json", exclude_none=True))
    if view.status != JobStatus.finished:
        return out
    return b"".join((out[:-1], b',"result":', with_cache(engine.job_answer(view).body, "miss"), b"}"))
