"""The in-process backend: bounded slots of child processes, single flight, job records, kill.

Embedded mode runs every job here, and every mode runs the computations a request waits for
here (:meth:`LocalBackend.run`). Each computation runs in a child process of its own, so that
the API process only parses requests and answers (LAPACK and the NumPy recursion hold the
interpreter lock for seconds, so threads would isolate nothing); a computation the cost
model (:func:`eoc_ntk.core.cost.predict_seconds`) puts at or below ``EOC_NTK_INLINE_MAX_SECONDS``
runs inline in a thread instead, where a process start would cost more than the work.

Why one process per job, not ``concurrent.futures.ProcessPoolExecutor`` (or loky): a pool
cannot kill one task without breaking the pool (terminating a worker marks the whole executor
broken), and cancel and timeout must stop the computation itself. Here a job's process is
terminated (SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds) and its slot freed; the
next job simply starts a new process. The processes come from a ``forkserver`` context with
``eoc_ntk`` and ``jobs.compute`` preloaded (:func:`_context`), so a start costs milliseconds
and nothing is ever ``fork``-ed from the threaded server. As with any ``forkserver`` or
``spawn`` start, the fork server imports the program's main module, so a script that builds a
:class:`LocalBackend` must guard its work with ``if __name__ == "__main__":`` (uvicorn, the
``eoc-ntk`` entry points and ``python -m service`` do).

A slot is a thread of a bounded pool (``EOC_NTK_WORKERS`` per pool: one pool for background
jobs, one for computations a request waits for): the thread starts the child, waits for its
answer with the job's deadline (the watchdog: a timeout is enforced here, not by the job's
own progress calls), and stores the result. What crosses the process boundary is plain data:
the JSON spec and the checked arrays (float64, or a dataset's compact integers) as raw bytes,
dtype and shape going in; progress through a shared array (the fraction, when reported); the
result as the bytes of :func:`jobs.codec.encode` (verified by :func:`jobs.codec.decode`) or an
error as a JSON message coming back. Nothing built from a
client's input is pickled.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitTimeout
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eoc_ntk.core.errors import InvalidParameterError

from .backend import EndedHook
from .codec import StoredValue, decode, encode
from .compute import load_data, second_data_id
from .errors import (
    ClusterUnavailable,
    DatasetMissing,
    JobCanceled,
    JobTimedOut,
    StillRunning,
    describe_error,
    describe_timeout,
)
from .lifeline import exit_when_ended
from .logs import LogSetup
from .observe import JobContext, observed_run
from .progress import JobProgress
from .settings import JobSettings
from .specs import job_id_for, predicted_seconds
from .states import IN_FLIGHT, JobStatus, JobView
from .store import Storage
from .tracing import configure as configure_tracing
from .tracing import flush as flush_traces

__all__ = ["LocalBackend", "KILL_GRACE", "call_in_child", "preload"]

#: Seconds between SIGTERM and SIGKILL of a job's process.
KILL_GRACE = 0.5
#: Niceness added to background jobs' processes, so that the requests a client waits for
#: (and the API process) get the cores first.
BACKGROUND_NICE = 10
_CONTEXT_LOCK = threading.Lock()
_CONTEXT: list = []
_PRELOAD = ["eoc_ntk", "jobs.compute", "jobs.local"]


def preload(modules: list[str]) -> None:
    """Have the fork server import ``modules`` too (once, so that no child imports them again).
    Only before the first child starts: the fork server's imports are fixed when it starts."""
    with _CONTEXT_LOCK:
        _PRELOAD.extend(m for m in modules if m not in _PRELOAD)
        if _CONTEXT:
            _CONTEXT[0].set_forkserver_preload(list(_PRELOAD))


def _context():
    """The forkserver context, its server preloaded with the core (started once, on first use)."""
    with _CONTEXT_LOCK:
        if not _CONTEXT:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(_PRELOAD))
            _CONTEXT.append(ctx)
        return _CONTEXT[0]


def _warm_up() -> None:
    _context()
    try:
        from multiprocessing import forkserver
        forkserver.ensure_running()
    except Exception:  # a failed warm-up only costs the first job its start time
        pass


# --- The child's side ------------------------------------------------------------------------

#: The dtypes of the arrays a job's process is given (:func:`_raw`).
_DATA_DTYPES = {d.str: d for d in map(np.dtype, ("<f8", "<i4", "<i2", "<i1"))}


def _child_main(conn, spec: dict, arrays: dict, progress_value, nice: int, settings: JobSettings,
                api_pid: int | None = None, job_id: str = "", context: dict | None = None,
                logs: LogSetup | None = None) -> None:
    """Entry point of a job's process: rebuild the arrays, compute, send the encoded value back.
    It logs as the API does (``logs``), with the submitting request's id (``context``)."""
    if api_pid is not None:
        exit_when_ended(api_pid)  # no job outlives its API, even one killed outright
    (logs or LogSetup()).apply()
    configure_tracing("eoc-ntk-api")
    try:
        if nice:
            os.nice(nice)
        data = {key: np.frombuffer(raw, dtype=_DATA_DTYPES[dtype]).reshape(shape)
                for key, (raw, dtype, shape) in arrays.items()}

        def report(fraction: float) -> None:
            progress_value[1] = time.time()
            progress_value[0] = fraction

        with observed_run(job_id, spec, JobContext.from_dict(context)) as run:
            x, x2 = run.load(spec, data.get)
            value = run.compute(spec, x, x2, JobProgress(report, interval=0.05), settings)
        message = b"V" + encode(value)
    except BaseException as exc:  # every failure goes back as a message; the parent decides
        message = b"E" + json.dumps(_error_message(exc)).encode()
    flush_traces()  # before the answer: the parent ends this process as soon as it has it
    try:
        conn.send_bytes(message)
    finally:
        conn.close()


def _raw(x: np.ndarray) -> tuple[bytes, str, tuple[int, ...]]:
    """``(bytes, dtype, shape)`` of a checked array for a job's process: float64, or a compact integer
    array as it is (the job converts it to float64, see :func:`jobs.compute.compute`)."""
    dtype = x.dtype.newbyteorder("<") if x.dtype.kind == "i" and x.dtype.itemsize <= 4 else np.dtype("<f8")
    return np.ascontiguousarray(x, dtype=dtype).tobytes(), dtype.str, x.shape


def _call_main(conn, target, args: tuple, api_pid: int) -> None:
    """Entry point of :func:`call_in_child`'s process: ``target(*args)``, its bytes or its error sent back."""
    exit_when_ended(api_pid)
    try:
        conn.send_bytes(b"V" + target(*args))
    except BaseException as exc:
        conn.send_bytes(b"E" + json.dumps(_error_message(exc)).encode())
    finally:
        conn.close()


def call_in_child(target, args: tuple, timeout: float) -> bytes:
    """``target(*args)`` (bytes) in a new child process of the jobs' fork server, so that neither the
    interpreter lock nor the memory of this process is held by it; waits at most ``timeout`` seconds.

    ``target`` is a module-level function (sent by name) and ``args`` plain data. Its refusal
    (:class:`InvalidParameterError` with its ``param``, a ``ValueError``) is raised here.

    Raises
    ------
    JobTimedOut
        Not done within ``timeout`` seconds (the child is killed).
    RuntimeError
        The child ended without an answer (out of memory) or failed unexpectedly.
    """
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_call_main, name="eoc-ntk-call", daemon=True,
                          args=(sender, target, args, os.getpid()))
    process.start()
    sender.close()
    message, timed_out = None, False
    try:
        timed_out = not receiver.poll(timeout)
        if not timed_out:
            try:
                message = receiver.recv_bytes()
            except EOFError:  # the child died without a word
                pass
    finally:
        receiver.close()
        _kill(process)
    if timed_out:
        raise JobTimedOut(f"the call did not end within {timeout:g} s")
    if message is None:
        raise RuntimeError(f"the child process ended without an answer (exit code {process.exitcode}); "
                           "it may have run out of memory")
    if message[:1] == b"V":
        return message[1:]
    raise _error_from_message(json.loads(message[1:]))


def _error_message(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": str(exc), "param": getattr(exc, "param", None),
            "invalid": isinstance(exc, (ValueError, TypeError))}


def _error_from_message(msg: dict) -> Exception:
    """The parent's exception for a child's error message (the core's refusal keeps its ``param``)."""
    kind, text = msg.get("type"), str(msg.get("message"))
    if kind == "InvalidParameterError" and msg.get("param"):
        return InvalidParameterError(text, param=str(msg["param"]))
    for cls in (DatasetMissing, JobCanceled, JobTimedOut, ClusterUnavailable):
        if kind == cls.__name__:
            return cls(text)
    if msg.get("invalid"):
        return ValueError(text)
    return RuntimeError(f"{kind}: {text}")


# --- The parent's side -----------------------------------------------------------------------

@dataclass
class _LocalJob:
    job_id: str
    spec: dict
    cache_key: str
    status: JobStatus = JobStatus.queued
    progress: float = 0.0
    error: dict | None = None
    future: Future | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    process: multiprocessing.process.BaseProcess | None = None
    progress_value: Any = None  # the child's multiprocessing.Array('d', 2): [fraction, time.time() reported]
    progress_at: float | None = None
    predicted: float | None = None
    started: float | None = None
    ended: float | None = None
    started_at: float | None = None  # wall clock (time.time()) of ``started``, for the API's started_at
    context: JobContext = field(default_factory=JobContext)  # the request that started it

    def view(self) -> JobView:
        seconds = None if self.started is None or self.ended is None else self.ended - self.started
        progress, progress_at = self.progress, self.progress_at
        if self.status == JobStatus.running and self.progress_value is not None \
                and float(self.progress_value[0]) > progress:
            progress, progress_at = float(self.progress_value[0]), float(self.progress_value[1])
        return JobView(self.job_id, self.spec, self.cache_key, self.status, progress, self.error, seconds,
                       self.started_at, self.predicted, progress_at)


def _kill(process) -> None:
    """SIGTERM ``process``, then SIGKILL after :data:`KILL_GRACE` seconds; reap it."""
    if process is None:
        return
    if process.is_alive():
        process.terminate()
        process.join(KILL_GRACE)
        if process.is_alive():
            process.kill()
    process.join(5.0)


class LocalBackend:
    """Jobs as child processes of this one: ``settings.workers`` slots for background jobs and as
    many for computations a request waits for, so that long jobs never hold up small requests.

    Cancel and timeout terminate the job's process (see the module docstring)."""

    needs_stored_data = False

    def __init__(self, settings: JobSettings, storage: Storage, on_ended: EndedHook | None = None):
        self.settings = settings
        self.storage = storage
        self.on_ended = on_ended
        self.pools = {
            background: ThreadPoolExecutor(settings.workers, thread_name_prefix=f"eoc-ntk-{name}")
            for background, name in ((True, "job"), (False, "sync"))
        }
        self._jobs: OrderedDict[str, _LocalJob] = OrderedDict()
        self._lock = threading.Lock()
        self._admission_lock = threading.Lock()
        # Start the fork server now (it imports the core once), not on the first request.
        threading.Thread(target=_warm_up, name="eoc-ntk-forkserver", daemon=True).start()

    def submit(self, spec: dict, key: str, pinned: dict[str, np.ndarray]) -> str:
        return self._start(spec, key, pinned, background=True)[0]

    def run(self, spec: dict, key: str, pinned: dict[str, np.ndarray], wait: float | None = None) -> StoredValue:
        """Compute ``spec`` for a caller that waits at most ``wait`` seconds (None: until it ends);
        :class:`StillRunning` when it has not ended by then (it goes on as that job)."""
        job_id, future = self._start(spec, key, pinned, background=False)
        try:
            return future.result(timeout=wait)
        except WaitTimeout:
            raise StillRunning(job_id) from None
        except CancelledError as exc:
            raise JobCanceled("the job was canceled") from exc

    def _start(self, spec: dict, key: str, pinned: dict[str, np.ndarray], *,
               background: bool) -> tuple[str, Future]:
        """Start ``spec`` (or join the same one in flight); returns the job id and its future."""
        job_id = job_id_for(key)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.status in IN_FLIGHT and job.future is not None:
                return job_id, job.future
            job = _LocalJob(job_id, spec, key, context=JobContext.capture())
            self._jobs[job_id] = job
            self._jobs.move_to_end(job_id)
            self._prune()
            job.future = self.pools[background].submit(self._run, job, dict(pinned), background)
            return job_id, job.future

    def _inline(self, job: _LocalJob, background: bool) -> bool:
        """True when ``job`` is predicted cheap enough to compute in this process."""
        return not background and job.predicted is not None and job.predicted <= self.settings.inline_max_seconds

    def _run(self, job: _LocalJob, pinned: dict[str, np.ndarray], background: bool) -> StoredValue:
        with self._lock:
            if job.cancel.is_set():
                job.future, job.ended = None, time.monotonic()
                raise JobCanceled("the job was canceled")
            job.status, job.started, job.started_at = JobStatus.running, time.monotonic(), time.time()
        deadline = job.started + self.settings.job_timeout
        try:
            x, x2 = load_data(job.spec, lambda dataset_id: pinned.get(dataset_id)
                              if dataset_id in pinned else self.storage.get_dataset(dataset_id))
            job.predicted = predicted_seconds(job.spec, x.shape, None if x2 is None else x2.shape)
            if self._inline(job, background):
                def report(fraction: float) -> None:
                    job.progress, job.progress_at = fraction, time.time()
                with observed_run(job.job_id, job.spec, job.context) as run:
                    value = run.compute(job.spec, x, x2, JobProgress(report, interval=0.0, canceled=job.cancel.is_set,
                                                                     deadline=deadline), self.settings)
            else:
                value = self._in_child(job, x, x2, deadline, background)
            self.storage.put_result(job.cache_key, value, spec=job.spec)
        except BaseException as exc:
            self._end(job, JobStatus.failed, describe_error(exc))
            raise
        self._end(job, JobStatus.finished, None)
        return value

    def _in_child(self, job: _LocalJob, x: np.ndarray, x2: np.ndarray | None, deadline: float,
                  background: bool) -> StoredValue:
        """Compute ``job`` in a new child process, watching its deadline and cancel."""
        ctx = _context()
        arrays = {job.spec["dataset_id"]: _raw(x)}
        if x2 is not None:
            arrays[second_data_id(job.spec)] = _raw(x2)
        receiver, sender = ctx.Pipe(duplex=False)
        progress_value = ctx.Array("d", 2, lock=False)
        process = ctx.Process(target=_child_main, name=f"eoc-ntk-{job.job_id}", daemon=True,
                              args=(sender, job.spec, arrays, progress_value, BACKGROUND_NICE if background else 0,
                                    self.settings, os.getpid(), job.job_id, job.context.to_dict(),
                                    LogSetup.of_this_process()))
        with self._lock:
            if job.cancel.is_set():
                raise JobCanceled("the job was canceled")
            job.process, job.progress_value = process, progress_value
            process.start()
        sender.close()
        try:
            message = self._wait(job, process, receiver, deadline)
        finally:
            receiver.close()
            _kill(process)
            with self._lock:
                if float(progress_value[0]) > job.progress:
                    job.progress, job.progress_at = float(progress_value[0]), float(progress_value[1])
                job.process = None
        if message[:1] == b"V":
            return decode(message[1:])
        raise _error_from_message(json.loads(message[1:]))

    def _wait(self, job: _LocalJob, process, receiver, deadline: float) -> bytes:
        """The child's message; kills it and raises on cancel, timeout or an early death (the watchdog)."""
        while True:
            if job.cancel.is_set():
                _kill(process)
                raise JobCanceled("the job was canceled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(process)
                raise JobTimedOut(describe_timeout(self.settings.job_timeout)["message"])
            if receiver.poll(min(remaining, 0.1)):
                try:
                    return receiver.recv_bytes()
                except EOFError:
                    pass
            if not process.is_alive() and not receiver.poll(0):
                code = process.exitcode
                if job.cancel.is_set():
                    raise JobCanceled("the job was canceled")
                raise RuntimeError(f"the job's process ended without an answer (exit code {code}); "
                                   "it may have run out of memory")

    def _end(self, job: _LocalJob, status: JobStatus, error: dict | None) -> None:
        with self._lock:
            if not job.cancel.is_set():
                job.status, job.error = status, error
                if status == JobStatus.finished:
                    job.progress = 1.0
            job.future, job.ended = None, time.monotonic()
            view = job.view()
        if self.on_ended is not None:
            self.on_ended(view)

    def _prune(self) -> None:
        """Forget ended jobs past the result TTL, and the oldest ended ones beyond ``max_jobs``."""
        horizon = time.monotonic() - self.settings.result_ttl
        for job_id in [j.job_id for j in self._jobs.values() if j.ended is not None and j.ended < horizon]:
            del self._jobs[job_id]
        ended = (j.job_id for j in list(self._jobs.values()) if j.ended is not None)
        while len(self._jobs) > self.settings.max_jobs:
            victim = next(ended, None)
            if victim is None:
                break
            del self._jobs[victim]

    def __len__(self) -> int:
        """How many job records this pool holds (queued, running and remembered ended ones)."""
        with self._lock:
            return len(self._jobs)

    def get(self, job_id: str) -> JobView | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.view()

    def cancel(self, job_id: str) -> JobView | None:
        """Cancel a queued or running job (its process is terminated); an ended job is left as it is."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            process = None
            if job.status in IN_FLIGHT:
                job.cancel.set()
                job.status, job.error = JobStatus.canceled, {"code": "canceled", "message": "canceled by a client"}
                if job.future is not None and job.future.cancel():
                    job.future, job.ended = None, time.monotonic()
                process = job.process
            view = job.view()
        if process is not None and process.is_alive():
            process.terminate()  # the slot's thread reaps it (and SIGKILLs it after the grace)
        return view

    def admission(self, principal: str) -> AbstractContextManager:
        return self._admission_lock

    def counts(self) -> tuple[int, int]:
        with self._lock:
            states = [j.status for j in self._jobs.values()]
        return states.count(JobStatus.queued), states.count(JobStatus.running)

    def ready(self) -> bool:
        return True

    def shutdown(self) -> None:
        with self._lock:
            processes = [j.process for j in self._jobs.values() if j.process is not None]
            for job in self._jobs.values():
                job.cancel.set()
        for process in processes:
            _kill(process)
        for pool in self.pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
