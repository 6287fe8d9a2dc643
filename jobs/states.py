"""The states of a job, what the API tells about one, and the one map from a queue's record to a state."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["JobStatus", "JobView", "IN_FLIGHT", "TERMINAL", "state_of"]


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
    ``started_at``: when it started running, seconds since the epoch, None while queued)."""

    job_id: str
    spec: dict
    cache_key: str
    status: JobStatus
    progress: float = 0.0
    error: dict | None = None
    seconds: float | None = None
    started_at: float | None = None
