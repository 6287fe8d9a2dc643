"""The job-side progress reporter: what a running job hands to the core as its progress callback."""
from __future__ import annotations

import time
from typing import Callable

from eoc_ntk.core.progress import ProgressFn

from .errors import JobCanceled, JobTimedOut

__all__ = ["JobProgress"]


class JobProgress:
    """A :data:`eoc_ntk.core.progress.ProgressFn` for a job.

    Records the fraction done, reports it at most every ``interval`` seconds to ``sink`` (the
    job's record: local memory or RQ's job meta), and stops the computation, by raising
    :class:`JobCanceled` or :class:`JobTimedOut`, once ``canceled()`` turns true or the
    ``deadline`` (``time.monotonic()`` seconds) passes. The phases the core names
    (:func:`eoc_ntk.core.progress.phase`) go to ``on_phase`` (the job's tracing, :mod:`jobs.observe`).
    """

    def __init__(self, sink: ProgressFn | None = None, *, interval: float = 0.25,
                 canceled: Callable[[], bool] | None = None, deadline: float | None = None):
        self.sink = sink
        self.interval = interval
        self.canceled = canceled
        self.deadline = deadline
        self.value = 0.0
        self._last = 0.0
        self.on_phase: Callable[[str], None] | None = None

    def phase(self, name: str) -> None:
        """The computation enters phase ``name`` (``kernel``, ``icd``, ``eigen``)."""
        if self.on_phase is not None:
            self.on_phase(name)

    def __call__(self, fraction: float) -> None:
        self.value = min(1.0, max(self.value, float(fraction)))
        if self.canceled is not None and self.canceled():
            raise JobCanceled("the job was canceled")
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise JobTimedOut("the job ran past its time limit (EOC_NTK_JOB_TIMEOUT)")
        if self.sink is not None and now - self._last >= self.interval:
            self._last = now
            self.sink(self.value)
