"""Throughput of the answers people repeat, measured by a real load generator (``wrk``) (issue 18).

For each configuration (embedded mode with one API process; Redis mode with 1 and 2 API
processes, on a private ``redis-server`` this script starts on a free port, never 6379), the
script starts the API (``python -m service --workers N``), computes one spectrum and one job
during set-up, then drives ``wrk`` at every route below with 1, 8 and 64 connections and prints
requests/s and p50/p99/p99.9 latency per route:

- ``GET /v1/spectra?dataset_id=...&depth=10&a=0.5&b=0.5`` (a cached spectrum);
- ``POST /v1/spectra`` ``{"dataset_id": ..., "model": ...}`` (the same, asked by POST);
- ``GET /v1/jobs/{id}`` of a finished job;
- ``/healthz``.

    python bench/throughput.py                            # the full grid, 10 s per cell
    python bench/throughput.py --duration 5 --modes redis --processes 2 --connections 64
    python bench/throughput.py --quick                    # a smoke run (tests/test_bench_smoke.py)

The generator runs on the same machine as the server, so the figures are floors. ``wrk``
(Debian package ``wrk``) must be on the PATH; every answer that is not 2xx, or a socket
error, is counted and reported (the exit status is 1 when there was any).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, ServiceProcesses, free_port, stop_processes

import httpx
import numpy as np

ROUTES = ("get_spectra", "post_spectra", "get_job", "healthz")
ROUTE_LABELS = {"get_spectra": "GET /v1/spectra (cached)", "post_spectra": "POST /v1/spectra by dataset_id (cached)",
                "get_job": "GET /v1/jobs/{id} (finished)", "healthz": "GET /healthz"}

# wrk's report, as one JSON line (latencies in microseconds).
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"p50":%f,"p99":%f,"p999":%f,' ..
    '"non2xx":%d,"socket_errors":%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency:percentile(99.9), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def _lua(path: str, method: str = "GET", body: str | None = None) -> str:
    """A wrk script requesting ``path`` (with ``body`` as JSON), reporting through :data:`_DONE`."""
    lines = [f'wrk.method = "{method}"', f"wrk.path = {json.dumps(path)}"]
    if body is not None:
        lines += [f"wrk.body = {json.dumps(body)}", 'wrk.headers["Content-Type"] = "application/json"']
    return "\n".join(lines) + "\n" + _DONE


class Server:
    """The API (and, in Redis mode, a private redis-server and one RQ worker) of one configuration."""

    def __init__(self, mode: str, processes: int, log_level: str, tmp: Path):
        self.mode, self.processes = mode, processes
        self.redis: list[subprocess.Popen] = []
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("REDIS_URL", None)
        if mode == "redis":
            redis_port = free_port()
            self.redis.append(subprocess.Popen(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            env["EOC_NTK_QUEUE_NAME"] = f"eoc-ntk-throughput-{os.getpid()}"
            self._wait_redis(redis_port)
        self.log = open(tmp / f"api-{mode}-{processes}.log", "wb")
        self.service = ServiceProcesses(env, api_options=("--workers", str(processes), "--log-level", log_level),
                                        workers=1 if mode == "redis" else 0, name="throughput", log=self.log)
        self.url = self.service.url

    @staticmethod
    def _wait_redis(port: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"the private redis-server on port {port} did not start")

    def wait_ready(self, timeout: float = 90.0) -> None:
        self.service.wait_ready(timeout)

    def stop(self) -> None:
        """The worker, the API, then redis-server."""
        self.service.stop()
        stop_processes(self.redis)
        self.log.close()


@dataclass
class Targets:
    """The requests of the routes, made during set-up."""

    dataset_id: str
    query: str
    post_body: str
    job_id: str


def set_up(url: str, n: int, depth: int) -> Targets:
    """A dataset, its cached spectrum and a finished job, checked to answer 200 (hit)."""
    x = np.random.default_rng(0).standard_normal((n, 10)).tolist()
    model = {"depth": depth, "activation": {"a": 0.5, "b": 0.5}}
    with httpx.Client(base_url=url, timeout=120) as c:
        ds = c.post("/v1/datasets", json={"x": x}).raise_for_status().json()["dataset_id"]
        post_body = json.dumps({"dataset_id": ds, "model": model})
        c.post("/v1/spectra", content=post_body, headers={"Content-Type": "application/json"}).raise_for_status()
        query = f"/v1/spectra?dataset_id={ds}&depth={depth}&a=0.5&b=0.5"
        hit = c.get(query).raise_for_status().json()
        if hit.get("cache") != "hit":
            raise SystemExit(f"set-up: GET {query} is not a cache hit: {hit.get('cache')}")
        r = c.post("/v1/spectra", json={"dataset_id": ds, "model": {**model, "depth": depth + 1}},
                   headers={"Prefer": "respond-async"}).raise_for_status()
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 120
        while c.get(f"/v1/jobs/{job_id}").json()["status"] != "finished":
            if time.monotonic() > deadline:
                raise SystemExit(f"set-up: job {job_id} did not finish within 120 s")
            time.sleep(0.2)
    return Targets(ds, query, post_body, job_id)


def run_wrk(url: str, script: Path, connections: int, duration: float, threads: int) -> dict:
    cmd = ["wrk", f"-t{max(1, min(threads, connections))}", f"-c{connections}", f"-d{duration:g}s", "--latency",
           "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    r = json.loads(line[len("RESULT "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per cell (default 10)")
    ap.add_argument("--connections", default="1,8,64", help="comma-separated connection counts (default 1,8,64)")
    ap.add_argument("--modes", default="embedded,redis", help="embedded, redis or both (default both)")
    ap.add_argument("--processes", default="1,2", help="API processes in Redis mode (embedded: always 1)")
    ap.add_argument("--routes", default=",".join(ROUTES), help=f"any of {','.join(ROUTES)}")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (at most one per connection; default 2)")
    ap.add_argument("--n", type=int, default=200, help="points of the dataset (default 200)")
    ap.add_argument("--depth", type=int, default=10, help="depth of the cached spectrum (default 10)")
    ap.add_argument("--log-level", default="info", help="the API's log level (default info: one access line "
                                                        "per request, as in production)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--quick", action="store_true", help="smoke run: embedded, 1 connection, 1 s per route")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.connections, args.modes, args.processes, args.n = 1.0, "1", "embedded", "1", 20
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "redis" in modes and shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed: run with --modes embedded, or apt-get install redis-server")
    conns = [int(c) for c in args.connections.split(",")]
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    unknown = set(routes) - set(ROUTES)
    if unknown:
        raise SystemExit(f"unknown routes {sorted(unknown)}; choose from {','.join(ROUTES)}")
    configs = [(m, p) for m in modes for p in ([1] if m == "embedded" else [int(x) for x in args.processes.split(",")])]

    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401
        parser = "httptools"
    except ImportError:
        parser = "h11"
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average at start {_load()}, Python {platform.python_version()}, event loop {loop}, HTTP parser "
          f"{parser}, API log level {args.log_level}, {args.duration:g} s per cell, wrk on the same machine")
    print("| mode | API processes | route | connections | requests/s | p50 ms | p99 ms | p99.9 ms | errors | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows, bad = [], 0
    with tempfile.TemporaryDirectory(prefix="eoc-ntk-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        for mode, processes in configs:
            server = Server(mode, processes, args.log_level, tmp)
            try:
                server.wait_ready()
                t = set_up(server.url, args.n, args.depth)
                scripts = {"get_spectra": _lua(t.query), "post_spectra": _lua("/v1/spectra", "POST", t.post_body),
                           "get_job": _lua(f"/v1/jobs/{t.job_id}"), "healthz": _lua("/healthz")}
                for route in routes:
                    script = tmp / f"{route}.lua"
                    script.write_text(scripts[route])
                    for c in conns:
                        r = run_wrk(server.url, script, c, args.duration, args.threads)
                        errors = r["non2xx"] + r["socket_errors"]
                        bad += errors
                        row = {"mode": mode, "processes": processes, "route": route, "connections": c,
                               "rps": round(r["rps"], 1), "p50_ms": r["p50"] / 1000, "p99_ms": r["p99"] / 1000,
                               "p999_ms": r["p999"] / 1000, "errors": errors, "load": _load()}
                        rows.append(row)
                        print(f"| {mode} | {processes} | {ROUTE_LABELS[route]} | {c} | {row['rps']:.0f} | "
                              f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['p999_ms']:.2f} | {errors} | "
                              f"{row['load']} |", flush=True)
            finally:
                server.stop()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if bad:
        print(f"# {bad} answers were not 2xx or failed at the socket", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
