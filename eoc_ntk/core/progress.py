"""Progress callbacks: the core's one type and the one way to report part of a computation.

A progress callback is a :data:`ProgressFn`, called with the fraction done in ``[0, 1]``.
A step that is a part of a larger computation reports through :func:`scaled`, which maps its
own ``[0, 1]`` onto ``[start, stop]`` of the caller's callback.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["ProgressFn", "scaled", "report"]

#: A progress callback: ``progress(fraction)`` with ``fraction`` in [0, 1].
ProgressFn = Callable[[float], None]


def scaled(progress: ProgressFn | None, start: float, stop: float) -> ProgressFn | None:
    """``progress`` for a sub-step covering ``[start, stop]`` of the whole: ``f -> start + (stop - start) f``.

    ``None`` stays ``None`` (nobody listens), so callers pass the result on without checks.
    """
    if progress is None:
        return None
    return lambda fraction: progress(start + (stop - start) * fraction)


def report(progress: ProgressFn | None, fraction: float) -> None:
    """``progress(fraction)`` unless ``progress`` is None."""
    if progress is not None:
        progress(fraction)
