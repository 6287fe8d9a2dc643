"""Job durations by operation and final state, as a Prometheus histogram kept in Redis.

In Redis mode jobs end in worker processes that serve no ``/metrics``: each run's duration is
added to one Redis hash (:func:`jobs.keys.job_durations_key`) by the process that ran it (the
work horse, the worker when its horse was ended, the API process for a computation it ran
itself), and every API process exposes that hash at scrape time as
``eoc_ntk_job_duration_seconds{op, status}`` (:mod:`service.metrics`). The histogram is then the
deployment's, the same from every API process, and survives their restarts (it lives as long
as Redis's data). Embedded mode keeps it in the API process's memory.

The hash holds, per ``op|status``, the count of each bucket (``op|status|<i>``: runs of at most
``BUCKETS[i]`` seconds and more than ``BUCKETS[i-1]``; ``i = len(BUCKETS)`` for longer ones),
``op|status|count`` and ``op|status|sum`` (seconds).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from . import keys

__all__ = ["BUCKETS", "RedisDurations", "DurationRow"]

#: Upper bounds (seconds) of the histogram's buckets, as in Prometheus (``le``), ``+Inf`` left out.
BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


@dataclass(frozen=True)
class DurationRow:
    """The histogram of one (op, status): ``cumulative[i]`` runs of at most ``BUCKETS[i]`` seconds (the
    last entry, ``cumulative[len(BUCKETS)]``, counts every run), and their total seconds ``sum``."""

    op: str
    status: str
    cumulative: tuple[int, ...]
    sum: float


class RedisDurations:
    """The job-duration histogram in Redis (``conn``: a Redis client or a pipeline's owner)."""

    def __init__(self, conn):
        self.conn = conn

    def observe(self, op: str, status: str, seconds: float) -> None:
        """Add one run of ``op`` that ended ``status`` after ``seconds`` (one round trip)."""
        label = f"{op}|{status}"
        bucket = bisect.bisect_left(BUCKETS, seconds)
        pipe = self.conn.pipeline(transaction=True)
        pipe.hincrby(keys.job_durations_key(), f"{label}|{bucket}", 1)
        pipe.hincrby(keys.job_durations_key(), f"{label}|count", 1)
        pipe.hincrbyfloat(keys.job_durations_key(), f"{label}|sum", float(seconds))
        pipe.execute()

    def read(self) -> list[DurationRow]:
        """Every (op, status) recorded, sorted; raises Redis's errors."""
        fields: dict[tuple[str, str], dict[str, str]] = {}
        for raw_field, raw_value in self.conn.hgetall(keys.job_durations_key()).items():
            text = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
            op, status, part = text.rsplit("|", 2)
            value = raw_value.decode() if isinstance(raw_value, bytes) else str(raw_value)
            fields.setdefault((op, status), {})[part] = value
        rows = []
        for (op, status), parts in sorted(fields.items()):
            counts = [int(parts.get(str(i), 0)) for i in range(len(BUCKETS) + 1)]
            cumulative = tuple(sum(counts[: i + 1]) for i in range(len(counts)))
            rows.append(DurationRow(op, status, cumulative, float(parts.get("sum", 0.0))))
        return rows
