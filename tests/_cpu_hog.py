"""Keep CPU cores busy (a ``stress``-like load) while fault tests run: ``python tests/_cpu_hog.py N [PARENT]``
spins N processes until killed or until the process that started it (pid PARENT, the optional
second argument) ends. :func:`hogging` does it around a block of a test."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from typing import Iterator


def _spin() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


@contextlib.contextmanager
def hogging(cores: int | None = None) -> Iterator[subprocess.Popen]:
    """Spin ``cores`` (default: all) busy processes, in a session of their own, for the block."""
    cores = cores or os.cpu_count() or 1
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(cores), str(os.getpid())],
                            start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


if __name__ == "__main__":
    # Ends with the process that started it, even when that one is killed without cleaning up
    # (a killed test run once left a hog spinning for 14 minutes).
    parent = int(sys.argv[2]) if len(sys.argv) > 2 else os.getppid()
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(int(sys.argv[1]))]
    for p in spinners:
        p.start()
    while os.getppid() == parent:  # re-parented once the starter is gone
        time.sleep(0.5)
    for p in spinners:
        p.kill()
