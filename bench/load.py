"""Load test of the REST service: many concurrent clients mixing cached queries, small
synchronous spectra and async jobs, for a fixed time. Run by hand (not in CI; CI runs a tiny
version through tests/test_bench_load.py).

    # 50 clients for 60 s against an API and 2 workers it starts itself on Redis DB 14:
    python bench/load.py --spawn redis --redis-url redis://127.0.0.1:6379/14 --workers 2
    # or in embedded mode, or against a server already running:
    python bench/load.py --spawn embedded
    python bench/load.py --url http://127.0.0.1:8000 --api-key KEY

Every client loops until the time is up, picking at random (weights ``--mix``):
- ``cached``: ``GET /v1/spectra`` of a spectrum computed during set-up (a cache hit);
- ``sync``: ``POST /v1/spectra`` of fresh small data (n = 8..24), answered at once;
- ``job``: ``POST /v1/spectra`` with ``Prefer: respond-async`` (n = 40..100), then polls the job
  until it ends; the latency recorded is the whole turnaround.
At the end it waits for every job still in flight. It prints per-kind p50/p99 latency and
throughput, writes them as JSON with ``--json``, and exits 1 on any 5xx, transport error,
failed or lost job (a job that is unknown, or not finished within ``--drain`` seconds).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from _common import ROOT, ServiceProcesses

import httpx
import numpy as np

ASYNC = {"Prefer": "respond-async"}


def spawn(mode: str, redis_url: str | None, workers: int, env: dict[str, str]) -> ServiceProcesses:
    """An API process (and workers, in Redis mode) of the load test's own."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    if mode == "redis":
        environ["REDIS_URL"] = redis_url
        environ.setdefault("EOC_NTK_QUEUE_NAME", f"eoc-ntk-load-{os.getpid()}")
    else:
        environ.pop("REDIS_URL", None)
    return ServiceProcesses(environ, api_options=("--log-level", "warning"),
                            workers=workers if mode == "redis" else 0, name="load")


class Stats:
    def __init__(self):
        self.latency = defaultdict(list)  # kind -> seconds of successful answers
        self.status = defaultdict(lambda: defaultdict(int))  # kind -> status -> count
        self.errors = []  # transport errors and 5xx, described
        self.jobs = {}  # job_id -> final status ("lost" if unknown)

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.status[kind][status] += 1
        if status < 400:
            self.latency[kind].append(seconds)


def _data(rng: random.Random, n: int, m0: int = 4) -> list[list[float]]:
    x = np.random.default_rng(rng.getrandbits(63)).normal(size=(n, m0))
    return np.round(x, 6).tolist()


async def _poll_job(client: httpx.AsyncClient, job_id: str, stats: Stats, deadline: float) -> str:
    while True:
        r = await client.get(f"/v1/jobs/{job_id}")
        if r.status_code >= 500:
            stats.errors.append(f"GET job {job_id}: {r.status_code} {r.text[:200]}")
        if r.status_code == 404:
            return "lost"
        if r.status_code == 200 and r.json()["status"] in ("finished", "failed", "canceled"):
            return r.json()["status"]
        if time.monotonic() > deadline:
            return "lost"
        await asyncio.sleep(0.2)


async def _client(i: int, client: httpx.AsyncClient, stats: Stats, cached: list[dict], mix: dict[str, float],
                  end: float, drain: float) -> None:
    rng = random.Random(1000 + i)
    kinds, weights = zip(*mix.items(), strict=True)
    while time.monotonic() < end:
        kind = rng.choices(kinds, weights)[0]
        started = time.monotonic()
        try:
            if kind == "cached":
                r = await client.get("/v1/spectra", params=rng.choice(cached))
                stats.record(kind, r.status_code, time.monotonic() - started)
            elif kind == "sync":
                body = {"x": _data(rng, rng.randint(8, 24)), "model": {"depth": rng.randint(1, 50),
                                                                        "activation": {"name": "relu"}}}
                r = await client.post("/v1/spectra", json=body)
                stats.record(kind, r.status_code, time.monotonic() - started)
            else:
                body = {"x": _data(rng, rng.randint(40, 100)), "model": {"depth": rng.randint(1, 200),
                                                                          "activation": {"name": "abs"}}}
                r = await client.post("/v1/spectra", json=body, headers=ASYNC)
                if r.status_code == 202:
                    job_id = r.json()["job_id"]
                    stats.jobs[job_id] = "submitted"
                    final = await _poll_job(client, job_id, stats, end + drain)
                    stats.jobs[job_id] = final
                    stats.record(kind, 200 if final == "finished" else 599, time.monotonic() - started)
                else:
                    stats.record(kind, r.status_code, time.monotonic() - started)
            if r.status_code >= 500:
                stats.errors.append(f"{kind}: {r.status_code} {r.text[:200]}")
        except httpx.HTTPError as exc:
            stats.record(kind, 0, time.monotonic() - started)
            stats.errors.append(f"{kind}: {type(exc).__name__}: {exc}")


async def _setup(client: httpx.AsyncClient, count: int = 8) -> list[dict]:
    """Spectra computed once, for the cached queries."""
    rng = random.Random(7)
    queries = []
    for k in range(count):
        r = await client.post("/v1/datasets", json={"x": _data(rng, 20 + k)})
        r.raise_for_status()
        dataset_id = r.json()["dataset_id"]
        depth = 2 + k
        r = await client.post("/v1/spectra", json={"dataset_id": dataset_id,
                                                   "model": {"depth": depth, "activation": {"name": "relu"}}})
        r.raise_for_status()
        queries.append({"dataset_id": dataset_id, "depth": depth, "a": 0.5, "b": 0.5})
    return queries


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) * 1000 if values else None


async def run(url: str, clients: int, duration: float, mix: dict[str, float], drain: float,
              api_key: str | None) -> dict:
    headers = {"X-API-Key": api_key} if api_key else {}
    # Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s), so that a
    # request is never sent on a connection the server is closing at that moment.
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
        cached = await _setup(client)
        stats = Stats()
        started = time.monotonic()
        end = started + duration
        await asyncio.gather(*(_client(i, client, stats, cached, mix, end, drain) for i in range(clients)))
        elapsed = time.monotonic() - started
    kinds = {}
    for kind in mix:
        lat = stats.latency[kind]
        kinds[kind] = {"requests": sum(stats.status[kind].values()), "ok": len(lat),
                       "statuses": dict(stats.status[kind]), "p50_ms": _percentile(lat, 50),
                       "p99_ms": _percentile(lat, 99), "per_s": len(lat) / duration}
    jobs = defaultdict(int)
    for final in stats.jobs.values():
        jobs[final] += 1
    total_ok = sum(len(v) for v in stats.latency.values())
    server_errors = sum(c for st in stats.status.values() for s, c in st.items() if s >= 500 or s == 0)
    return {"url": url, "clients": clients, "duration_s": duration, "elapsed_s": round(elapsed, 1),
            "throughput_per_s": total_ok / duration, "kinds": kinds, "jobs": dict(jobs),
            "server_errors": server_errors, "errors": stats.errors[:20]}


def report(result: dict) -> str:
    lines = [f"{result['clients']} clients, {result['duration_s']:g} s ({result['elapsed_s']} s with the drain), "
             f"{result['throughput_per_s']:.1f} answers/s, {result['server_errors']} 5xx or transport errors, "
             f"jobs: {result['jobs']}", "",
             "| kind | requests | ok | p50 (ms) | p99 (ms) | ok/s | statuses "
             "|", "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind, k in result["kinds"].items():
        p50 = "-" if k["p50_ms"] is None else f"{k['p50_ms']:.0f}"
        p99 = "-" if k["p99_ms"] is None else f"{k['p99_ms']:.0f}"
        lines.append(f"| {kind} | {k['requests']} | {k['ok']} | {p50} | {p99} | {k['per_s']:.1f} | {k['statuses']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running API")
    where.add_argument("--spawn", choices=["embedded", "redis"], help="start an API (and workers) of its own")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="for --spawn redis (flushed first)")
    parser.add_argument("--workers", type=int, default=2, help="RQ workers for --spawn redis")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for jobs after the load")
    parser.add_argument("--mix", default="cached=0.5,sync=0.35,job=0.15", help="weights of the request kinds")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}

    spawned = None
    if args.spawn:
        if args.spawn == "redis":
            import redis

            redis.Redis.from_url(args.redis_url).flushdb()
        # Enough job slots for every client, and a job limit that never bites a test of throughput.
        spawned = spawn(args.spawn, args.redis_url, args.workers, {"EOC_NTK_WORKERS": "4"})
        spawned.wait_ready(timeout=60.0)
    try:
        result = asyncio.run(run(spawned.url if spawned else args.url, args.clients, args.duration, mix, args.drain,
                                 args.api_key))
    finally:
        if spawned:
            spawned.stop()
    result["mode"] = args.spawn or "external"
    print(report(result))
    for line in result["errors"]:
        print("error:", line, file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    bad_jobs = sum(n for status, n in result["jobs"].items() if status != "finished")
    return 1 if result["server_errors"] or bad_jobs else 0


if __name__ == "__main__":
    sys.exit(main())
