"""The states of a job, what the API tells about one, and the one map from a queue's record to a state."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["JobStatus", "JobView", "IN_FLIGHT", "TERMINAL", "state_of", "eta_seconds", "next_attempt"]


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"
    canceled = "canceled"


IN_FLIGHT = (JobStatus.queued, JobStatus.running)
TERMINAL = (JobStatus.finished, JobStatus.failed, JobStatus.canceled)

# RQ's states, in ours.
_RQ_STATES = {
    "created": JobStatus.queued, "queued": JobStatus.queued, "deferred": JobStatus.queued,
    "scheduled": JobStatus.queued, "ready_to_enqueue": JobStatus.queued, "rate_limited": JobStatus.queued,
    "started": JobStatus.running, "finished": JobStatus.finished, "failed": JobStatus.failed,
    "stopped": JobStatus.canceled, "canceled": JobStatus.canceled,
}


def state_of(record_status) -> JobStatus:
    """Our state of a queue record's status (RQ's ``JobStatus`` enum or its string); unknown ones are failed."""
    return _RQ_STATES.get(str(getattr(record_status, "value", record_status)), JobStatus.failed)


@dataclass
class JobView:
    """What the API tells about a job (``seconds``: how long it ran, once it ended, when known;
    ``started_at``: when it started running, seconds since the epoch, None while queued;
    ``predicted_seconds``: the cost model's prediction, when known; ``progress_at``: when the
    current ``progress`` was reported, seconds since the epoch; ``attempt``: which run of the job
    this is, from 1, see :func:`next_attempt`)."""

    job_id: str
    spec: dict
    cache_key: str
    status: JobStatus
    progress: float = 0.0
    error: dict | None = None
    seconds: float | None = None
    started_at: float | None = None
    predicted_seconds: float | None = None
    progress_at: float | None = None
    attempt: int = 1


def next_attempt(meta: dict, max_attempts: int) -> bool:
    """Turn a queue record's ``meta`` into that of the job's next attempt, if it may have one.

    A job whose process was stopped with its worker (handed back) or lost with it (its worker
    killed) runs again as a new attempt while ``attempt < max_attempts``
    (``EOC_NTK_JOB_MAX_ATTEMPTS``): ``attempt`` goes up by one, the progress starts again at 0 and
    the earlier run's start and error are dropped. Returns False (and leaves ``meta`` alone) once
    the job has had its attempts; its caller then fails it."""
    attempt = int(meta.get("attempt", 1))
    if attempt >= max_attempts:
        return False
    meta.update(attempt=attempt + 1, progress=0.0)
    for stale in ("started_at", "progress_at", "error"):
        meta.pop(stale, None)
    return True


def eta_seconds(view: JobView, now: float) -> float | None:
    """Seconds a running job still needs: the cost model's prediction of the rest, scaled by the
    slowdown observed when the current progress was reached.

    With ``P`` the predicted seconds, ``p`` the progress reached ``t_p`` seconds after the start
    and ``t`` the seconds run so far, the slowdown is ``s = t_p / (P p)`` and the job is expected
    to end at ``t_p + s P (1 - p)``: ``eta = max(t_p + s P (1 - p) - t, 0)``. Before any progress,
    ``s = 1`` (``eta = max(P - t, 0)``). A progress that stalls therefore lowers the estimate as
    time passes, where a straight line through the progress (``t (1 - p) / p``) would grow it.
    None when the job does not run or its prediction is unknown.
    """
    if view.status != JobStatus.running or view.started_at is None or not view.predicted_seconds:
        return None
    predicted, p = float(view.predicted_seconds), min(max(float(view.progress), 0.0), 1.0)
    elapsed = max(now - view.started_at, 0.0)
    if p <= 0.0 or view.progress_at is None:
        return max(predicted - elapsed, 0.0)
    reached = min(max(view.progress_at - view.started_at, 0.0), elapsed)
    slowdown = reached / (predicted * p)
    return max(reached + slowdown * predicted * (1.0 - p) - elapsed, 0.0)
