"""Why a job stopped before its result: the exceptions a job raises, and their codes for clients."""
from __future__ import annotations

__all__ = ["JobCanceled", "JobTimedOut", "DatasetMissing", "ClusterUnavailable", "StillRunning", "describe_error",
           "describe_timeout"]


class JobCanceled(Exception):
    """Raised from the progress callback when a client canceled the job."""


class JobTimedOut(Exception):
    """Raised from the progress callback past the job's deadline."""


class StillRunning(Exception):
    """A computation a request waited for is still running after the request's wait: it goes on as the
    job ``job_id`` (the caller answers 202 with it)."""

    def __init__(self, job_id: str):
        super().__init__(f"job {job_id} is still running")
        self.job_id = job_id


class DatasetMissing(LookupError):
    """A job's dataset is no longer in the store (expired or evicted)."""


class ClusterUnavailable(RuntimeError):
    """The Dask cluster of ``EOC_NTK_DASK_ADDRESS`` cannot be used (no answer, or Dask not installed)."""


def describe_timeout(seconds) -> dict:
    """The error of a job whose process was killed past its time limit."""
    return {"code": "timeout", "message": f"the job ran past its time limit of {seconds} s (EOC_NTK_JOB_TIMEOUT); "
                                          f"its process was stopped"}


def describe_error(exc: BaseException) -> dict:
    """``{"code", "message"}`` of a failed job, for clients."""
    if isinstance(exc, JobTimedOut):
        return {"code": "timeout", "message": str(exc)}
    if isinstance(exc, JobCanceled):
        return {"code": "canceled", "message": str(exc)}
    if isinstance(exc, DatasetMissing):
        return {"code": "dataset_missing", "message": str(exc)}
    if isinstance(exc, ClusterUnavailable):
        return {"code": "dask_unavailable", "message": str(exc)}
    if isinstance(exc, (ValueError, TypeError)):
        return {"code": "invalid_input", "message": str(exc)}
    if type(exc).__name__ == "JobTimeoutException":  # RQ's own death penalty
        return {"code": "timeout", "message": f"the job ran past its time limit (EOC_NTK_JOB_TIMEOUT): {exc}"}
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
