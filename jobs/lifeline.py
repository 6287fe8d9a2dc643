"""Child processes that end with the API process that started them.

A job's process and a figure's renderer (forked by the API's fork server, :mod:`jobs.local`)
are killed by the API when it cancels or shuts down; but an API killed outright (SIGKILL, out
of memory) cleans up nothing, and its children lived on: a job kept its core busy to the end.
Watching the parent process is not enough: the fork server, a job's parent, stays alive as
long as any of its children holds the end of its "alive" pipe, which every job process does.
:func:`exit_when_ended` watches the API's pid itself from a daemon thread. A child inside one
long LAPACK call (which holds the interpreter lock) ends when that call returns.
"""
from __future__ import annotations

import os
import threading
import time

__all__ = ["exit_when_ended", "running", "CHECK_SECONDS"]

#: How often the API process is checked.
CHECK_SECONDS = 1.0


def exit_when_ended(pid: int, interval: float = CHECK_SECONDS) -> None:
    """End this process (``os._exit(1)``) once process ``pid`` has ended (or is a zombie, dead
    but not yet reaped), checked every ``interval`` seconds from a daemon thread."""

    def watch() -> None:
        while True:
            if not running(pid):
                os._exit(1)
            time.sleep(interval)

    threading.Thread(target=watch, name="eoc-ntk-lifeline", daemon=True).start()


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (Linux: a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc (not Linux): ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
