"""Child processes that end with the process that started them.

A job's process (a child of the embedded API's fork server, :mod:`jobs.local`) and a JSON
parser (a child of the API, :mod:`service.jsonchild`) are killed by the API when it cancels or
shuts down; but an API killed outright (SIGKILL, out of memory) cleans up nothing, and its
children were re-parented and lived on: a job kept its core busy to the end, the idle parsers
forever (seen in the tests: parsers of API processes killed an hour before). The fork server
itself ends when the API does (it watches a pipe from it), so in both cases the child's parent
process changes; :func:`exit_with_parent` watches for that from a daemon thread and ends the
child. A child inside one long LAPACK call (which holds the interpreter lock) ends when that
call returns.
"""
from __future__ import annotations

import os
import threading
import time

__all__ = ["exit_with_parent", "CHECK_SECONDS"]

#: How often the parent is checked.
CHECK_SECONDS = 1.0


def exit_with_parent(parent: int | None = None, interval: float = CHECK_SECONDS) -> None:
    """End this process (``os._exit(1)``) once its parent process has ended, checked every
    ``interval`` seconds from a daemon thread.

    ``parent``: the pid the parent had when it started this process (pass it when this process
    starts slowly, e.g. ``spawn``-ed, so that a parent that died before this call is noticed
    too); default: the parent now."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:  # re-parented: the parent is gone
                os._exit(1)

    threading.Thread(target=watch, name="eoc-ntk-lifeline", daemon=True).start()
