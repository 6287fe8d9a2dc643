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


def hold_the_gil(spec: dict) -> dict:
    """One ``eigh`` sized (from a timed small one, cost ~ n^3) to last ``spec["seconds"]``."""
    from rq import get_current_job

    with threadpool_limits(1):
        small = 600
        n = int(small * (spec["seconds"] / max(_eigh_seconds(small), 1e-3)) ** (1 / 3))
        n = min(max(n, small), 6000)
        ticks, stop = [time.monotonic()], threading.Event()

        def tick() -> None:
            while not stop.is_set():
                ticks.append(time.monotonic())
                time.sleep(0.01)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        time.sleep(0.05)
        took = _eigh_seconds(n)
        stop.set()
        thread.join()
    held = float(np.max(np.diff(ticks)))
    job = get_current_job()
    job.meta.update({"gil_held_seconds": held, "n": n, "eigh_seconds": took})
    job.save_meta()
    return {"gil_held_seconds": held}
