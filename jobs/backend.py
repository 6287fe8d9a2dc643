"""The protocol every job executor follows (the in-process pool, the RQ queue).

The API's engine holds exactly one :class:`JobBackend` and never asks which one it is.
Each backend reports every run that ends in this process, once, to the ``on_ended`` callback it
was built with (the engine forwards it to its observers, e.g. the metrics). A run of an RQ
worker is reported by the worker itself, to the shared histogram of :mod:`jobs.durations`.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Protocol

import numpy as np

from .codec import StoredValue
from .states import JobView

__all__ = ["JobBackend", "EndedHook"]

#: Called once with the view of every run that ended (finished, failed or canceled).
EndedHook = Callable[[JobView], None]


class JobBackend(Protocol):
    #: True when a background job reads its data from the store (so they must be stored first).
    needs_stored_data: bool

    def submit(self, spec: dict, key: str, pinned: dict[str, np.ndarray]) -> str:
        """Start ``spec`` in the background (or join the same job in flight); returns its job id."""

    def run(self, spec: dict, key: str, pinned: dict[str, np.ndarray], wait: float | None = None) -> StoredValue:
        """Compute ``spec`` now for a caller that waits at most ``wait`` seconds (single flight with the
        same spec's job); raises the job's exception (:mod:`jobs.errors`, or the core's refusal), or
        :class:`jobs.errors.StillRunning` when it still runs after ``wait`` (it goes on as that job,
        which :meth:`get` and :meth:`cancel` know)."""

    def get(self, job_id: str) -> JobView | None:
        """The job's view, or None when unknown (never submitted, or forgotten)."""

    def cancel(self, job_id: str) -> JobView | None:
        """Cancel a queued or running job (an ended one is left as it is); None when unknown."""

    def admission(self, principal: str) -> AbstractContextManager:
        """A lock serialising "count ``principal``'s jobs, then submit" (across API processes when shared)."""

    def counts(self) -> tuple[int, int] | None:
        """(queued, running) jobs now; None when the queue does not answer."""

    def ready(self) -> bool:
        """True when the backend can take jobs."""

    def shutdown(self) -> None:
        """Stop: cancel what runs here and release connections."""
