"""Hostile payloads against a running API (issue 11), while a second client polls ``/healthz``.

For each payload it prints a markdown row: the status, the time to answer, the longest
``/healthz`` latency meanwhile and the server's RSS growth (peak during the payload minus
before it; needs the server's pid: given with ``--pid``, or known when the script starts the
server itself). Targets of the issue: no 5xx, every answer < 2 s (except the 408 of a body
that never ends, which comes at EOC_NTK_BODY_TIMEOUT by design), ``/healthz`` never slower than
200 ms, RSS growth <= 3 x the body per upload.

    python bench/hostile.py                     # starts `python -m service` (embedded) itself
    python bench/hostile.py --url http://127.0.0.1:8000 --pid 1234 --api-key KEY
    python bench/hostile.py --quick             # small payloads only (the smoke test)
    python bench/hostile.py --issue24           # issue 24's rows 1-5, 7-10 only
    EOC_NTK_MAX_JSON_BYTES=16777216 python bench/hostile.py --json-bodies  # its largest JSON bodies, 16 MiB
    python bench/hostile.py --redis             # Redis mode (private redis-server), plus issue 24's
                                                # worker rows: kill -9 mid-job, SIGTERM idle and busy
    python bench/hostile.py --redis --worker-rows  # those worker rows only

The payloads: every item of issue 11 (hostile CSV, .npy headers, a 64 MiB bool .npy, a large
JSON body with NaN and a valid one, a large JSON upload, invented methods, bodies that never end,
half-sent bodies, a client that hangs up, the misleading-message cases) and the bad-input catalogue of issue 5
(``tests/test_service_bad_input.py``).
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _worker_faults import RedisMode, worker_rows

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npy_header(shape, descr="<f8") -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode("latin-1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


class Target:
    """The server under test: its address, an API key and (when known) its pid."""

    def __init__(self, url: str, api_key: str | None, pid: int | None):
        import httpx

        self.url = url.rstrip("/")
        host, _, port = self.url.split("//", 1)[1].partition(":")
        self.host, self.port = host, int(port or 80)
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.client = httpx.Client(base_url=self.url, timeout=120, headers=self.headers)
        self.pid = pid

    def rss(self) -> int | None:
        if self.pid is None:
            return None
        import psutil

        return psutil.Process(self.pid).memory_info().rss


class Probe:
    """Polls /healthz (its own connection each time) and samples the server's RSS meanwhile."""

    def __init__(self, target: Target):
        import httpx

        self.target, self.worst, self.peak = target, 0.0, target.rss()
        self.base = self.peak
        self._client = httpx.Client(base_url=target.url, timeout=30)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._health, daemon=True),
                         threading.Thread(target=self._memory, daemon=True)]

    def _health(self):
        while not self._stop.is_set():
            t = time.perf_counter()
            try:
                self._client.get("/healthz")
            except Exception:
                pass
            self.worst = max(self.worst, time.perf_counter() - t)
            time.sleep(0.02)

    def _memory(self):
        while not self._stop.is_set() and self.base is not None:
            self.peak = max(self.peak, self.target.rss())
            time.sleep(0.005)

    def __enter__(self):
        for t in self._threads:
            t.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()
        self._client.close()


def _raw(target: Target, request: bytes, hang_up_after: float | None = None) -> int | None:
    """Send raw bytes; the status line's code (None when we hang up first or nothing comes)."""
    with socket.create_connection((target.host, target.port), timeout=120) as sock:
        sock.sendall(request)
        if hang_up_after is not None:
            time.sleep(hang_up_after)
            return None
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None


def _partial(target: Target, path: str, declared: int, sent: bytes) -> bytes:
    key = b"".join(f"{k}: {v}\r\n".encode() for k, v in target.headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {declared}\r\n".encode()
            + key + b"\r\n" + sent)


def _many_half_sent(target: Target, count: int) -> int | None:
    """``count`` connections each sending half a body, all held until the server ends them."""
    socks = []
    for _ in range(count):
        try:
            s = socket.create_connection((target.host, target.port), timeout=120)
            s.sendall(_partial(target, "/v1/datasets", 1000, b"1,2\n"))
            socks.append(s)
        except OSError:
            break
    statuses = {}
    for s in socks:
        try:
            code = s.recv(64).split(b" ", 2)[1]
            statuses[code] = statuses.get(code, 0) + 1
        except (OSError, IndexError):
            statuses[b"closed"] = statuses.get(b"closed", 0) + 1
        s.close()
    print(f"    half-sent bodies: {len(socks)} opened, answers {dict((k.decode(), v) for k, v in statuses.items())}")
    return int(max(statuses, key=statuses.get)) if statuses and max(statuses, key=statuses.get).isdigit() else None


def payloads(target: Target, quick: bool):
    """(name, body bytes (for the RSS bound) or 0, callable returning the status)."""
    c = target.client
    csv, npy, js = {"Content-Type": "text/csv"}, {"Content-Type": "application/x-npy"}, \
        {"Content-Type": "application/json"}

    def post(path, content, headers):
        return lambda: c.post(path, content=content, headers=headers).status_code

    out = [
        ("1. CSV, 12,000-digit cell (the issue's reproducer)", b"1" * 12000 + b"x,0\n", csv),
        ("1. CSV, 1 MB single cell", b"1" * 1_000_000 + b"x,0\n", csv),
        ("2. .npy header of shape (100000, 100000)", _npy_header((100_000, 100_000)), npy),
        ("2. .npy header of 1 MB", b"\x93NUMPY\x02\x00" + struct.pack("<I", MiB) + b" " * MiB, npy),
        ("2. .npy shorter than its header says", _npy(np.ones((100, 10)))[:-80], npy),
        ("10. CSV with nan", b"1,2\n3,nan\n", csv),
        ("10. CSV with semicolons", b"1;2\n3;4\n", csv),
    ]
    rows = [(name, len(body), post("/v1/datasets", body, headers)) for name, body, headers in out]
    model = {"depth": 2, "activation": "relu"}
    for name, body in [
        ("10. 3-D x", json.dumps({"x": [[[1.0], [2.0]], [[3.0], [4.0]]], "model": model}).encode()),
        ("10. activation as a string (accepted: "
         "200)", json.dumps({"x": [[1.0, 0.0], [0.0, 1.0]], "model": model}).encode()),
        ("10. nesting 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
        ("10. bad UTF-8", b'{"x": "\xff\xfe"}'),
    ]:
        rows.append((name, len(body), post("/v1/spectra", body, js)))
    if not quick:
        bool_npy = _npy(np.zeros((8000, 8380), dtype=bool))
        rows.append(("3. .npy bool (8000, 8380), 64 MiB", len(bool_npy), post("/v1/datasets", bool_npy, npy)))
        ok_npy = _npy(np.random.default_rng(0).random((4000, 1000)))
        rows.append(("3. .npy float64 (4000, 1000), 32 MB, accepted", len(ok_npy), post("/v1/datasets", ok_npy, npy)))
        nan_rows = "[" + ",".join(["[NaN, 1.0, 2.0, 3.0]"] + ["[1.0, 2.0, 3.0, 4.0]"] * 1_000_000) + "]"
        nan_body = json.dumps({"model": model})[:-1].encode() + b', "x": ' + nan_rows.encode() + b"}"
        rows.append((f"4. JSON with NaN, {len(nan_body) / 1e6:.0f} "
                     "MB", len(nan_body), post("/v1/spectra", nan_body, js)))
        big_rows = "[" + ",".join(["[0.5, 1.0, 2.0, 3.0]"] * 1_002_000) + "]"
        big_body = json.dumps({"model": model})[:-1].encode() + b', "x": ' + big_rows.encode() + b"}"
        rows.append((f"4. JSON valid, {len(big_body) / 1e6:.0f} MB (n over EOC_NTK_MAX_N, refused once parsed)",
                     len(big_body), post("/v1/spectra", big_body, js)))
        upload = json.dumps({"x": np.round(np.random.default_rng(1).random((4000, 500)), 6).tolist()}).encode()
        rows.append((f"3-4. JSON upload (4000, 500), {len(upload) / 1e6:.0f} MB, accepted", len(upload),
                     post("/v1/datasets", upload, js)))

    def invented_methods():
        before = len(c.get("/metrics").content)
        statuses = {c.request(f"M{i:08d}X", "/healthz").status_code for i in range(500)}
        after = len(c.get("/metrics").content)
        print(f"    /metrics: {before} -> {after} bytes after 500 invented methods")
        return max(statuses)

    rows.append(("5. 500 invented methods (M00000001X /healthz)", 0, invented_methods))
    rows.append(("6. Content-Length 1000, 4 bytes sent (408 at EOC_NTK_BODY_TIMEOUT)", 0,
                 lambda: _raw(target, _partial(target, "/v1/datasets", 1000, b"1,2\n"))))
    rows.append((f"6. {50 if quick else 300} half-sent bodies at once", 0,
                 lambda: _many_half_sent(target, 50 if quick else 300)))
    rows.append(("7. client hangs up mid-body (logged 499)", 0,
                 lambda: _raw(target, _partial(target, "/v1/datasets", 1000, b"1,2\n"), hang_up_after=0.2)
                 or "(hung up)"))
    rows.extend(_catalogue(target))
    rows.extend(third_round(target, quick))
    return rows


#: The second API key of the spawned server (issue 24, row 5: two keys share one computation).
SECOND_KEY = "bench-key-b"


def _busy(cores: int):
    """``cores`` processes spinning until killed (the machine is busy)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]


def _shared_then_detached(target: Target) -> int:
    """Issue 24 row 5: keys A and B submit the same computation, B deletes it; A's job must finish."""
    c, other = target.client, {"X-API-Key": SECOND_KEY}
    x = np.random.default_rng(5).normal(size=(700, 3))
    body = {"x": x.tolist(), "model": {"depth": 2, "activation": "relu"}}
    job_id = c.post("/v1/spectra", json=body, headers={"Prefer": "respond-async"}).json()["job_id"]
    c.post("/v1/spectra", json=body, headers={**other, "Prefer": "respond-async"})
    b_status = c.delete(f"/v1/jobs/{job_id}", headers=other).json().get("status")
    deadline = time.monotonic() + 120
    while (job := c.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    print(f"    B's DELETE: {b_status}; A's job: {job['status']}")
    return 200 if job["status"] == "finished" else 409


def _sync_while_busy(target: Target) -> int:
    """Issue 24 row 10: a sweep predicted at 1.3 s of one core, sent while every core is busy."""
    x = np.random.default_rng(6).normal(size=(400, 4))
    body = {"x": x.tolist(), "depths": "1:100", "activations": ["relu"]}
    hogs = _busy(os.cpu_count() or 1)
    try:
        r = target.client.post("/v1/sweeps", json=body)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print(f"    answered {r.status_code}" + (f", Location {r.headers.get('Location')}" if r.status_code == 202 else ""))
    return r.status_code


def third_round(target: Target, quick: bool):
    """The rows of issue 24 (hostile input and faults, third round) that this script measures."""
    model = {"depth": 2, "activation": "relu"}
    x, y = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, -0.6]], [1.0, -1.0, 0.5, 0.0]
    js = {"Content-Type": "application/json"}
    steps = json.dumps({"x": x, "y": y, "model": model, "steps": ["BIG"]}).replace('"BIG"', "1" + "0" * 400)
    ridge = json.dumps({"x": x, "y": y, "model": model, "sizes": [2], "ridge": 1e308})
    rows = [
        ("24.7 steps [10^400] on /v1/dynamics", len(steps),
         lambda: target.client.post("/v1/dynamics", content=steps, headers=js).status_code),
        ("24.7 ridge 1e308 on /v1/learning-curves", len(ridge),
         lambda: target.client.post("/v1/learning-curves", content=ridge, headers=js).status_code),
    ]
    if not quick:
        rows.append(("24.5 key B joins key A's job (same data), then DELETEs it; A's job finishes", 0,
                     lambda: _shared_then_detached(target)))
        rows.append(("24.10 sweep predicted at 1.3 s, sent while every core is busy (202 after "
                     "EOC_NTK_SYNC_WAIT_SECONDS)", 0, lambda: _sync_while_busy(target)))
    return rows


def _stalled_uploads(target: Target, count: int, sent: int, declared: int) -> str:
    """``count`` connections each sending ``sent`` bytes of a declared ``declared``-byte CSV body,
    then stalling; their answers (503 once the bytes in flight pass the budget, else 408 at the
    body timeout)."""
    socks, chunk = [], b"1,2\n" * (1 << 18)  # 1 MiB
    for _ in range(count):
        s = socket.create_connection((target.host, target.port), timeout=120)
        s.sendall(_partial(target, "/v1/datasets", declared, b""))
        socks.append(s)
    for s in socks:
        try:
            for _ in range(sent // len(chunk)):
                s.sendall(chunk)
        except OSError:  # answered and closed while sending (503)
            pass
    statuses: dict[str, int] = {}
    for s in socks:
        try:
            code = s.recv(64).split(b" ", 2)[1].decode()
        except (OSError, IndexError):
            code = "closed"
        statuses[code] = statuses.get(code, 0) + 1
        s.close()
    return " ".join(f"{k} x{v}" for k, v in sorted(statuses.items()))


def _declared_only(target: Target, path: str, declared: int, first: bytes) -> int | None:
    """Send the headers of a ``declared``-byte JSON body and its first bytes; the answer's status."""
    key = b"".join(f"{k}: {v}\r\n".encode() for k, v in target.headers.items())
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n").encode() + key + b"\r\n"
    return _raw(target, head + first)


def issue24_payloads(target: Target):
    """Issue 24's rows 1-4, 8 and 9: (name, body bytes for the RSS ratio, callable -> status)."""
    c = target.client
    js, csv = {"Content-Type": "application/json"}, {"Content-Type": "text/csv"}
    x = np.random.default_rng(2).normal(size=(64, 5)).tolist()
    model = {"depth": 3, "activation": "relu"}
    rows = []

    def post(path, headers, content=None, **kw):
        return lambda: c.post(path, content=content, headers=headers, **kw).status_code

    rows.append(("24.1 plot 50 x 50 in at 600 dpi, 64x5 data (refused)", 0,
                 post("/v1/plots/spectrum?width=50&height=50&dpi=600", js, json.dumps({"x": x, "model": model}))))
    rows.append(("24.1 plot 40 x 40 in at 100 dpi (16 Mpx, the largest), 64x5 data", 0,
                 post("/v1/plots/spectrum?width=40&height=40&dpi=100", js, json.dumps({"x": x, "model": model}))))
    labels = b'{"y": [' + b",".join([b"0.5"] * ((60 << 20) // 4 - 4)) + b"]}"
    rows.append((f"24.2 POST /v1/labels, {len(labels) / MiB:.0f} MiB of JSON", len(labels),
                 post("/v1/labels", js, labels)))
    del labels
    from service.config import Settings  # the spawned server's defaults

    cap = Settings().max_json_bytes
    n = cap // (5 * 20)
    big = json.dumps({"x": np.random.default_rng(3).normal(size=(n, 5)).tolist(), "model": model}).encode()
    while len(big) > cap:
        n -= 50
        big = json.dumps({"x": np.random.default_rng(3).normal(size=(n, 5)).tolist(), "model": model}).encode()
    rows.append((f"24.2 largest JSON body: POST /v1/spectra, x ({n}, 5) of float64 text, {len(big) / MiB:.2f} MiB "
                 "(n over EOC_NTK_MAX_N: refused once parsed)", len(big), post("/v1/spectra", js, big)))
    dense = b'{"model": {"depth": 3, "activation": "relu"}, "x": [' + b",".join([b"[0,1,0,1,0]"] * (cap // 12 - 10))
    dense += b"]}"
    rows.append((f"24.2 largest JSON body, densest numbers (x of 0/1), {len(dense) / MiB:.2f} MiB", len(dense),
                 post("/v1/spectra", js, dense)))
    for kind, last in (("a ragged last row", b"[0,1,0,1]"), ("NaN in the last row", b"[0,1,0,1,NaN]"),
                       ("true in the last row", b"[0,1,0,true,1]")):  # refused before pydantic parses x
        bad = dense[:dense.rindex(b"[")] + last + b"]}"
        rows.append((f"24.2 largest JSON body, densest numbers, {kind} (422 unread), {len(bad) / MiB:.2f} MiB",
                     len(bad), post("/v1/spectra", js, bad)))
    del big, dense
    one_row = b'{"model": {"depth": 3, "activation": "relu"}, "x": [[' + b",".join([b"0"] * (cap // 2 - 40)) + b"]]}"
    rows.append((f"24.2 largest JSON body, one row of 0s (2 bytes a number), {len(one_row) / MiB:.2f} MiB",
                 len(one_row), post("/v1/spectra", js, one_row)))
    y30 = 30_000_000 * 4 + 200  # "0.5," per value: the headers declare it, the first MiB is sent
    rows.append((f"24.3 POST /v1/dynamics, inline y of 30 M values ({y30 / MiB:.0f} MiB declared)", 0,
                 lambda: _declared_only(target, "/v1/dynamics", y30, b'{"y": [' + b"0.5," * (1 << 18))))
    rows.append(("24.4 12 connections send 60 MB of a declared 64 MiB body, then stall", 12 * 60_000_000,
                 lambda: _stalled_uploads(target, 12, 60 << 20, 64 << 20)))
    newlines = b"\n" * (60 << 20)
    rows.append(("24.8 60 MiB of newlines as CSV", len(newlines), post("/v1/datasets", csv, newlines)))
    del newlines
    grid = np.random.default_rng(0).integers(0, 10, (4096, 4096))
    table = ("\n".join(",".join(map(str, r)) for r in grid) + "\n").encode()
    rows.append((f"24.8 valid CSV 4096 x 4096, {len(table) / MiB:.0f} MiB", len(table),
                 post("/v1/datasets", csv, table)))
    depths = ",".join(["1:99999"] * 124)
    rows.append((f"24.9 sweep depths '1:99999' x 124 ({len(depths)} characters)", 0,
                 post("/v1/sweeps", js, json.dumps({"x": x, "depths": depths, "activations": ["relu"]}))))
    return rows


def _catalogue(target: Target):
    """The bad-input catalogue of issue 5, sent over HTTP."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_service_bad_input import CATALOGUE
    except Exception as exc:  # the tests are not shipped with an installed package
        print(f"    (bad-input catalogue not available: {exc})")
        return []
    finally:
        sys.path.remove(str(ROOT / "tests"))
    rows = []
    for kind, method, path, kwargs, status, *_ in CATALOGUE:
        if kwargs is None:
            kwargs = {"json": {"dataset_id": "0" * 32, "depths": [1], "activations": [{"name": "relu"}]}}
        body = kwargs.get("content") or b""
        rows.append((f"catalogue: {kind} (test expects {status} at its small "
                     "limits)", len(body) if isinstance(body, bytes) else 0,
                     lambda m=method, p=path, k=kwargs: target.client.request(m, p, **k).status_code))
    return rows


def run(target: Target, quick: bool, extra=(), issue24: bool = False, json_bodies: bool = False,
        extra_only: bool = False) -> list[dict]:
    results = []
    rows = [*issue24_payloads(target), *third_round(target, False)] if issue24 else [*payloads(target, quick), *extra]
    if json_bodies:
        rows = [r for r in issue24_payloads(target) if "largest JSON body" in r[0]]
    if extra_only:
        rows = list(extra)
    for name, size, send in rows:
        with Probe(target) as probe:
            t = time.perf_counter()
            try:
                status = send()
            except Exception as exc:  # a hung or reset connection is a result too
                status = f"{type(exc).__name__}"
            elapsed = time.perf_counter() - t
        growth = None if probe.base is None else probe.peak - probe.base
        results.append({"payload": name, "status": status, "seconds": elapsed, "healthz_ms": probe.worst * 1000,
                        "rss_growth": growth, "body": size})
        ratio = f" ({growth / size:.1f}x body)" if growth is not None and size >= MiB else ""
        rss = "n/a" if growth is None else f"{growth / MiB:.1f} MiB{ratio}"
        print(f"| {name} | {status} | {elapsed:.3f} | {probe.worst * 1000:.0f} | {rss} |", flush=True)
    return results


def _spawn(env_extra: dict) -> tuple[subprocess.Popen, str]:
    from urllib.request import urlopen

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urlopen(url + "/healthz", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running API (default: start `python -m service` here, embedded mode)")
    parser.add_argument("--pid", type=int, help="the running API's pid, for its RSS")
    parser.add_argument("--api-key", help="API key to send (the spawned server uses bench-key)")
    parser.add_argument("--body-timeout", type=float, default=10.0,
                        help="EOC_NTK_BODY_TIMEOUT of the spawned server (default 10 s, to keep the run short; "
                             "a 64 MiB upload on a loaded machine needs several seconds)")
    parser.add_argument("--quick", action="store_true", help="small payloads only")
    parser.add_argument("--issue24", action="store_true", help="issue 24's rows 1-5, 7-10 only")
    parser.add_argument("--json-bodies", action="store_true",
                        help="issue 24's largest JSON bodies only (sized by EOC_NTK_MAX_JSON_BYTES, which the "
                             "spawned server inherits)")
    parser.add_argument("--redis", action="store_true",
                        help="Redis mode: a private redis-server and RQ workers started here, and the worker rows")
    parser.add_argument("--worker-rows", action="store_true",
                        help="with --redis: the worker rows only (kill -9 mid-job, SIGTERM idle; busy without --quick)")
    args = parser.parse_args(argv)
    if args.redis and args.url is not None:
        parser.error("--redis starts its own API; leave out --url")
    if args.worker_rows and not args.redis:
        parser.error("--worker-rows needs --redis")
    proc, mode = None, RedisMode(Path(tempfile.mkdtemp(prefix="eoc-ntk-hostile-"))) if args.redis else None
    if args.url is None:
        redis_env = {k: v for k, v in mode.env.items() if k.startswith(("REDIS_", "EOC_NTK_"))} if mode else {}
        proc, url = _spawn({"EOC_NTK_BODY_TIMEOUT": str(args.body_timeout),
                            "EOC_NTK_API_KEYS": f"bench-key,{SECOND_KEY}", **redis_env})
        pid, key = proc.pid, "bench-key"
    else:
        url, pid, key = args.url, args.pid, args.api_key
    try:
        import psutil  # noqa: F401
    except ImportError:
        pid = None
    print(f"hostile payloads at {url}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("\n| payload | status | answer s | longest /healthz ms | RSS growth |\n| --- | --- | --- | --- | --- |")
    try:
        target = Target(url, key, pid)
        extra = worker_rows(mode, target.client, args.quick) if mode else []
        results = run(target, args.quick, extra, args.issue24, args.json_bodies, args.worker_rows)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if mode is not None:
            mode.stop()
    told = {name for name, *_ in extra}  # the worker rows answer in words; 24.4's 503s are its budget's
    bad = [r["payload"] for r in results if r["status"] != "(hung up)" and r["payload"] not in told
           and not r["payload"].startswith("24.4")
           and (not isinstance(r["status"], int) or r["status"] >= 500)]
    print(f"\n5xx or no answer: {bad or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
