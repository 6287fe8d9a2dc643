"""Progress callbacks: the core's one type and the one way to report part of a computation.

A progress callback is a :data:`ProgressFn`, called with the fraction done in ``[0, 1]``.
A step that is a part of a larger computation reports through :func:`scaled`, which maps its
own ``[0, 1]`` onto ``[start, stop]`` of the caller's callback.

A computation may also name the phase it enters (``"kernel"``, ``"icd"``, ``"eigen"``) with
:func:`phase`: a callback that has a ``phase(name)`` method hears it (a job's progress, which
traces phases), any other ignores it. :func:`scaled` passes phases on.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["ProgressFn", "scaled", "report", "phase"]

#: A progress callback: ``progress(fraction)`` with ``fraction`` in [0, 1].
ProgressFn = Callable[[float], None]


def scaled(progress: ProgressFn | None, start: float, stop: float) -> ProgressFn | None:
    """``progress`` for a sub-step covering ``[start, stop]`` of the whole: ``f -> start + (stop - start) f``.

    ``None`` stays ``None`` (nobody listens), so callers pass the result on without checks.
    """
    if progress is None:
        return None
    return _Scaled(progress, start, stop)


class _Scaled:
    """``progress`` mapped onto ``[start, stop]``; phases go to ``progress`` unchanged."""

    def __init__(self, progress: ProgressFn, start: float, stop: float) -> None:
        self.progress, self.start, self.stop = progress, start, stop

    def __call__(self, fraction: float) -> None:
        self.progress(self.start + (self.stop - self.start) * fraction)

    def phase(self, name: str) -> None:
        phase(self.progress, name)


def report(progress: ProgressFn | None, fraction: float) -> None:
    """``progress(fraction)`` unless ``progress`` is None."""
    if progress is not None:
        progress(fraction)


def phase(progress: ProgressFn | None, name: str) -> None:
    """Tell ``progress`` that the computation enters phase ``name``, if it listens (has a ``phase`` method)."""
    listener = getattr(progress, "phase", None)
    if callable(listener):
        listener(name)
