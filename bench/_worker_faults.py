"""Issue 24's worker rows for ``bench/hostile.py --redis``: a private redis-server, RQ workers
(``python -m jobs``) started and signalled here, and the Redis-mode API given to hostile.py.

- row 6, ``kill -9`` the worker mid-job: seconds until its work horse is gone, and every state
  the job was reported in afterwards (queued again as attempt 2, which a second worker started
  then runs; it must reach one final state and stay there);
- row 11, SIGTERM to an idle worker: seconds until it exits;
- row 10, SIGTERM to a busy worker whose job outlasts the stop grace (not with ``--quick``):
  seconds until it exits, and the job's state then (handed back: queued as attempt 2).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, free_port, stop_processes

import numpy as np

__all__ = ["RedisMode", "worker_rows"]

#: The heartbeat TTL of the API and workers started here (short, so that row 6 ends soon).
HEARTBEAT = 4
FINAL = ("finished", "failed", "canceled")
# About 6 s of work on 2 idle cores: seven sweeps of 100 depths at n = 400 (tests' SLOW job).
_SWEEP = {"depths": list(range(1, 101)),
          "activations": [{"name": "relu"}, {"name": "abs"}, {"name": "leaky_relu"}, {"a": 0.3, "b": 0.9},
                          {"a": 0.6, "b": 0.2}, {"a": 0.8, "b": 0.5}, {"a": -0.4, "b": 0.7}]}


class RedisMode:
    """A private redis-server on a free port (never 6379) and the environment of a Redis-mode API and
    its workers; :meth:`worker` starts one, :meth:`stop` ends them all."""

    def __init__(self, tmp: Path):
        port = free_port()
        self.redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                    "EOC_NTK_QUEUE_NAME": f"eoc-ntk-hostile-{os.getpid()}",
                    "EOC_NTK_JOB_HEARTBEAT_TTL": str(HEARTBEAT), "EOC_NTK_MAINTENANCE_INTERVAL": "1"}
        self.workers: list[subprocess.Popen] = []
        deadline = time.monotonic() + 20
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise SystemExit(f"the private redis-server on port {port} did not start")
            time.sleep(0.1)
        self.port = port

    def worker(self) -> subprocess.Popen:
        """A new worker, once it is registered (it appears in RQ's worker set, by its name: a killed
        worker's entry may expire meanwhile, so a count of the set would not tell)."""
        name = f"hostile-{os.getpid()}-{len(self.workers)}"
        proc = subprocess.Popen([sys.executable, "-m", "jobs", "--name", name, "--log-level", "WARNING"], cwd=ROOT,
                                env=self.env, stdout=subprocess.DEVNULL, start_new_session=True)
        self.workers.append(proc)
        deadline = time.monotonic() + 120
        while not self._registered(name):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("a worker did not start")
            time.sleep(0.1)
        return proc

    def _registered(self, name: str) -> bool:
        out = subprocess.run(["redis-cli", "-p", str(self.port), "sismember", "rq:workers", f"rq:worker:{name}"],
                             capture_output=True).stdout
        return out.strip() == b"1"

    def stop(self) -> None:
        stop_processes([*self.workers, self.redis])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (FileNotFoundError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _job_state(client, job_id: str) -> str:
    body = client.get(f"/v1/jobs/{job_id}").json()
    code = (body.get("error") or {}).get("code")
    attempt = body.get("attempt", 1)
    return f"{body.get('status')}" + (f" ({code})" if code else "") + (f" [attempt {attempt}]" if attempt > 1 else "")


def _kill_mid_job(mode: RedisMode, client) -> str:
    worker = mode.worker()
    x = np.random.default_rng(int(time.time())).standard_normal((400, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # Two of the seven sweeps (about 2 s idle): the second worker runs the next attempt to the end.
    job_id = client.post("/v1/sweeps", json={"x": x.tolist(), **_SWEEP, "activations": _SWEEP["activations"][:2]},
                         headers={"Prefer": "respond-async"}).json()["job_id"]
    deadline = time.monotonic() + 60
    while not (horses := _children(worker.pid)) or not _job_state(client, job_id).startswith("running"):
        if time.monotonic() > deadline:
            return "no running job to kill"
        time.sleep(0.05)
    time.sleep(1.0)
    watched = [*horses, *(g for h in horses for g in _children(h))]  # the horse and its guard
    os.kill(worker.pid, signal.SIGKILL)
    killed = time.monotonic()
    worker.wait(timeout=10)
    while any(_alive(p) for p in watched) and time.monotonic() - killed < 30:
        time.sleep(0.01)
    gone = time.monotonic() - killed
    seen: list[str] = []
    first_final, second = None, None
    while time.monotonic() < (first_final or killed + 180) + (3 if first_final else 0):
        state = _job_state(client, job_id)
        if not seen or seen[-1] != state:
            seen.append(state)
        if first_final is None and state.split()[0] in FINAL:
            first_final = time.monotonic()
        if state.startswith("queued") and second is None:
            second = mode.worker()  # runs the next attempt
        time.sleep(0.1)
    if second is not None:  # idle now: stopped, so that a later row's job goes to that row's worker
        stop_processes([second])
    return f"horse gone {gone:.2f} s after the kill; then {' -> '.join(seen)}"


def _sigterm_idle(mode: RedisMode) -> str:
    worker = mode.worker()
    time.sleep(1.0)
    worker.send_signal(signal.SIGTERM)
    asked = time.monotonic()
    code = worker.wait(timeout=120)
    return f"exit {code} after {time.monotonic() - asked:.2f} s"


def _sigterm_busy(mode: RedisMode, client) -> str:
    idle = [w for w in mode.workers if w.poll() is None]
    stop_processes(idle)  # the job must go to the worker signalled below
    worker = mode.worker()
    x = np.random.default_rng(int(time.time()) + 1).standard_normal((800, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    body = {"x": x.tolist(), **_SWEEP, "depths": list(range(1, 201))}  # about a minute on 2 idle cores
    job_id = client.post("/v1/sweeps", json=body, headers={"Prefer": "respond-async"}).json()["job_id"]
    deadline = time.monotonic() + 60
    while not _job_state(client, job_id).startswith("running"):
        if time.monotonic() > deadline:
            return "no running job"
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    asked = time.monotonic()
    code = worker.wait(timeout=120)
    took = time.monotonic() - asked
    return f"exit {code} after {took:.1f} s; job {_job_state(client, job_id)}"


def worker_rows(mode: RedisMode, client, quick: bool) -> list:
    """hostile.py's rows (name, body bytes, callable returning the status) of the worker faults."""
    rows = [("24.6 Redis mode: kill -9 the worker mid-job", 0, lambda: _kill_mid_job(mode, client)),
            ("24.11 Redis mode: SIGTERM to an idle worker", 0, lambda: _sigterm_idle(mode))]
    if not quick:
        rows.append(("24.10 Redis mode: SIGTERM to a worker busy past its stop grace (EOC_NTK_WORKER_STOP_GRACE)", 0,
                     lambda: _sigterm_busy(mode, client)))
    return rows
