"""A job that holds the interpreter lock in one LAPACK call (``scipy.linalg.eigh``) for a given time.

Enqueued by its dotted name (``_gil_job.hold_the_gil``) on a real worker whose ``PYTHONPATH``
includes ``tests/``: the heartbeat tests need a work horse that cannot run any Python thread
for longer than the heartbeat TTL. The job measures that it did: a ticking thread records the
longest gap between its ticks, stored in the job's meta as ``gil_held_seconds``.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits


def _eigh_seconds(n: int) -> float:
    a = np.random.default_rng(n).standard_normal((n, n))
    start = time.monotonic()
    scipy.linalg.eigh(a + a.T)
    return time.monotonic() - start


def _held_during(call) -> tuple[float, float]:
    """(longest gap between a thread's 10 ms ticks, seconds) while ``call()`` runs."""
    ticks, stop = [time.monotonic()], threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    time.sleep(0.05)
    start = time.monotonic()
    call()
    took = time.monotonic() - start
    stop.set()
    thread.join()
    return float(np.max(np.diff(ticks))), took


def hold_the_gil(spec: dict) -> dict:
    """``eigh`` calls, each sized (cost ~ n^3) to last ``spec["seconds"]``, until one of them kept
    the ticking thread out for that long (a loaded machine makes the first estimate unreliable);
    ``spec["n"]``: one call of that size instead."""
    from rq import get_current_job

    job = get_current_job()
    with threadpool_limits(1):
        if "n" in spec:
            n = int(spec["n"])
            held, took = _held_during(lambda: _eigh_seconds(n))
        else:
            target, n, held, took = float(spec["seconds"]), 600, 0.0, _eigh_seconds(600)
            while held < target and n < 8000:
                n = min(8000, int(n * (1.3 * target / max(took, 1e-3)) ** (1 / 3)))
                held, took = _held_during(lambda n=n: _eigh_seconds(n))
    job.meta.update({"gil_held_seconds": held, "n": n, "eigh_seconds": took})
    job.save_meta()
    return {"gil_held_seconds": held}
