"""Issue #10 (embedded mode): computations run in child processes that cancel and timeout kill,
and one cost model decides what runs now, what becomes a job and what runs inline.

Real processes are watched with psutil; no assertion on absolute time except the issue's own
figures, stated as its targets (with a looser default and the strict one marked ``slow``).
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import psutil
import pytest

import eoc_ntk
from _service_support import ApiProcess, healthz_seconds, make_client, wait_for_job
from eoc_ntk.core.cost import predict_seconds
from eoc_ntk.core.errors import InvalidParameterError

ASYNC = {"Prefer": "respond-async"}


def points(n: int, m0: int = 5, seed: int = 0) -> list:
    return np.random.default_rng(seed).normal(size=(n, m0)).tolist()


def heavy_body(n: int = 300, depth: int = 2000, seed: int = 1) -> dict:
    """A spectrum with sigma_b != 0: the general recursion, linear in depth (tens of seconds)."""
    return {"x": points(n, seed=seed), "model": {"depth": depth, "activation": {"name": "relu"}, "sigma_b": 0.1}}


def tree_cpu_percent(interval: float = 0.5) -> float:
    """CPU percent of this process's children (the job processes and the fork server) over ``interval``."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(interval)
    total = 0.0
    for child in children:
        try:
            total += child.cpu_percent(None)
        except psutil.Error:
            pass
    return total


def job_processes() -> list[psutil.Process]:
    """The live job processes: the fork server's children (grandchildren of this process)."""
    out = []
    for server in psutil.Process().children():
        try:
            out += [p for p in server.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            pass
    return out


def running(client, job_id, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] != "queued":
            return body
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)


# (e) sigma_b != 0 at large depth is a job, not a synchronous request

def test_sigma_b_deep_request_of_the_issue_becomes_a_job():
    """n = 200, depth 2000, sigma_b = 0.1: the recursion walks every layer, so the cost model predicts a job."""
    with make_client() as c:
        r = c.post("/v1/spectra", json=heavy_body(200))
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert c.delete(f"/v1/jobs/{job_id}").json()["status"] == "canceled"


def test_sync_work_above_the_sync_limit_is_refused_with_advice():
    with make_client(async_seconds=1e9, sync_max_seconds=1.0) as c:
        r = c.post("/v1/spectra", json=heavy_body(200))
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "sync_too_long" and "respond-async" in err["message"]
        # the same request as a job is accepted
        r = c.post("/v1/spectra", json=heavy_body(200), headers=ASYNC)
        assert r.status_code == 202
        c.delete(f"/v1/jobs/{r.json()['job_id']}")


# (b) DELETE kills the computation; (c) the timeout kills it

def test_delete_of_a_running_job_stops_its_cpu_within_a_second_and_a_next_job_runs():
    """Fails today: the canceled thread kept computing until its next progress call."""
    with make_client(workers=1) as c:
        job_id = c.post("/v1/spectra", json=heavy_body(), headers=ASYNC).json()["job_id"]
        assert running(c, job_id)["status"] == "running"
        time.sleep(1.0)
        assert job_processes() != []  # the job has its process
        assert c.delete(f"/v1/jobs/{job_id}").json()["status"] == "canceled"
        time.sleep(1.0)
        assert tree_cpu_percent(0.5) < 5.0  # the issue's figure
        assert job_processes() == []
        small = c.post("/v1/spectra", json={"x": points(20, seed=3), "model": {"depth": 3, "activation": {
            "name": "relu"}}}, headers=ASYNC).json()["job_id"]
        assert wait_for_job(c, small, timeout=60)["status"] == "finished"
        assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "canceled"


def test_a_timed_out_job_is_failed_and_its_process_killed_by_the_parent():
    """The timeout is enforced by the parent's watchdog, not by the job's progress calls."""
    with make_client(workers=1, job_timeout=2) as c:
        job_id = c.post("/v1/spectra", json=heavy_body(seed=5), headers=ASYNC).json()["job_id"]
        body = wait_for_job(c, job_id, timeout=60)
        assert body["status"] == "failed" and body["error"]["code"] == "timeout", body
        time.sleep(0.5)
        assert job_processes() == []
        assert tree_cpu_percent(0.5) < 5.0


def test_computations_do_not_run_in_the_api_process():
    """A synchronous request above the inline limit runs in a child: the API process's CPU time
    grows by much less than the computation's."""
    me = psutil.Process()
    with make_client(inline_max_seconds=0.0) as c:
        c.get("/healthz")
        before = sum(me.cpu_times()[:2])
        r = c.post("/v1/spectra", json={"x": points(40, seed=9), "model": {
            "depth": 400, "activation": {"name": "relu"}, "sigma_b": 0.1}})
        assert r.status_code == 200, r.text
        spent = sum(me.cpu_times()[:2]) - before
    x = np.array(points(40, seed=9))
    start = time.process_time()
    eoc_ntk.analyze(x, eoc_ntk.Model(400, 0.5, 0.5, sigma_b=0.1))
    alone = time.process_time() - start
    assert spent < 0.5 * alone + 0.05, (spent, alone)


# (d) the cost model against measured runs

@pytest.mark.parametrize("op, n, depth, sigma_b", [
    ("spectra", 300, 5, 0.0), ("spectra", 150, 60, 0.1), ("kernels", 400, 10, 0.0), ("kernels", 200, 30, 0.1),
])
def test_cost_model_predicts_within_a_loose_factor_of_a_measured_run(op, n, depth, sigma_b):
    """Loose [0.25, 4] (BLAS threads and a loaded machine); the strict [0.5, 2] table is bench/bench_cost.py."""
    x = np.random.default_rng(n).normal(size=(n, 8))
    model = eoc_ntk.Model(depth, 0.5, 0.5, sigma_b=sigma_b)
    run = (lambda: eoc_ntk.analyze(x, model)) if op == "spectra" else (lambda: eoc_ntk.kernel(x, depth=depth, a=0.5,
                                                                                              b=0.5, sigma_b=sigma_b))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # the model's "seconds on one core"; idle BLAS threads spin and count too
        run()
        best = min(_timed(run) for _ in range(3))
    predicted = predict_seconds(op, n=n, m0=8, depths=(depth,), sigma_b=sigma_b)
    assert 0.25 <= predicted / best <= 4.0, (predicted, best)


def _timed(fn) -> float:
    """CPU seconds of this process during ``fn()`` (the model's "seconds on one core")."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def test_cost_model_terms_scale_as_documented():
    """Linear in depth only with sigma_b != 0; cubic in n for the dense spectrum; refusals name the argument."""
    flat = [predict_seconds("kernels", n=500, m0=4, depths=(d,)) for d in (10, 1000)]
    assert flat[0] == flat[1]
    deep = [predict_seconds("kernels", n=500, m0=4, depths=(d,), sigma_b=0.1) for d in (100, 1000)]
    assert 8 < deep[1] / deep[0] < 11
    big = predict_seconds("spectra", n=4000, m0=4, depths=(3,)) / predict_seconds("spectra", n=2000, m0=4, depths=(3,))
    assert 6 < big < 8.5
    with pytest.raises(InvalidParameterError) as info:
        predict_seconds("spectra", n=0, m0=4)
    assert info.value.param == "n"
    with pytest.raises(InvalidParameterError) as info:
        predict_seconds("fit", n=3, m0=4)
    assert info.value.param == "op"


# (a) the API answers while two large computations run (a real uvicorn server)

@pytest.fixture
def server():
    env = {**os.environ, "EOC_NTK_WORKERS": "2"}
    env.pop("REDIS_URL", None)
    with ApiProcess(env, "--log-level", "warning", probe="/healthz", timeout=60) as api:
        yield api.url


def _responsiveness(url: str, n: int) -> tuple[float, float]:
    """(p99 of 100 GET /healthz, seconds of a 2-point synchronous spectra) while 2 jobs of ``n`` run."""
    import httpx
    with httpx.Client(base_url=url, timeout=60) as c:
        for seed in (11, 12):
            r = c.post("/v1/spectra", json={"x": points(n, m0=4, seed=seed), "model": {
                "depth": 3, "activation": {"name": "relu"}}}, headers=ASYNC)
            assert r.status_code == 202, r.text
        time.sleep(2.0)
        times = healthz_seconds(c)
        start = time.perf_counter()
        r = c.post("/v1/spectra", json={"x": [[1.0, 0.0], [0.6, 0.8]], "model": {
            "depth": 2, "activation": {"name": "relu"}}})
        small = time.perf_counter() - start
        assert r.status_code == 200, r.text
    return float(np.percentile(times, 99)), small


def test_the_api_answers_while_two_large_jobs_run(server):
    """Loose default (shared 2-core machine): p99 <= 1 s, small request <= 3 s. Fails today (25 s stalls)."""
    p99, small = _responsiveness(server, 2000)
    assert p99 <= 1.0 and small <= 3.0, (p99, small)


@pytest.mark.slow
def test_the_api_answers_while_two_n4000_jobs_run_issue_figures(server):
    """The issue's targets: n = 4000, p99 of /healthz <= 100 ms, 2-point spectra <= 300 ms."""
    p99, small = _responsiveness(server, 4000)
    assert p99 <= 0.1 and small <= 0.3, (p99, small)


# (f) An API killed outright leaves no process behind

def test_an_api_killed_with_sigkill_leaves_no_job_or_parser_process_behind():
    """SIGKILL of the API (nothing cleaned up): its running job's process and its idle JSON
    parsers end by themselves (jobs.lifeline) within a few seconds; before, they were re-parented
    and lived on: the job computing to its end, the parsers forever."""
    import httpx

    env = {**os.environ, "EOC_NTK_WORKERS": "1"}
    env.pop("REDIS_URL", None)
    with ApiProcess(env, "--log-level", "warning", probe="/healthz", timeout=60) as api:
        with httpx.Client(base_url=api.url, timeout=60) as c:
            job_id = c.post("/v1/spectra", json=heavy_body(seed=7), headers=ASYNC).json()["job_id"]
            deadline = time.monotonic() + 60
            while c.get(f"/v1/jobs/{job_id}").json()["status"] == "queued":
                assert time.monotonic() < deadline, "the job never started"
                time.sleep(0.05)
        root = psutil.Process(api.proc.pid)
        deadline = time.monotonic() + 30  # the parsers start with the API, in the background
        while len(root.children(recursive=True)) < 3:  # fork server + job + parser(s)
            assert time.monotonic() < deadline, root.children(recursive=True)
            time.sleep(0.1)
        descendants = root.children(recursive=True)
        os.kill(api.proc.pid, signal.SIGKILL)
        api.proc.wait(timeout=10)
        gone, alive = psutil.wait_procs(descendants, timeout=20)
        assert alive == [], [(p.pid, p.cmdline()[-1][:60]) for p in alive]
