"""Upload parsing: CSV read speed (MB/s) now vs an earlier commit's parser, in the same run; with
``--json``, JSON bodies: the one JSON path (``service.jsonbody.validate_json``) vs pydantic alone.

    python bench/bench_uploads.py                      # 4096 x 4096 one-digit CSV (32 MiB) and float64 text
    python bench/bench_uploads.py --rows 512 --cols 64 --old 40eeda3
    python bench/bench_uploads.py --json --sizes 524288 16777216

JSON rows (``SpectraIn`` bodies of float64 text, one row of ``0``s, rows ``[0,1,0,1,0]``, rows of
four one-digit integers and one float64 number, rows ``[0,1,0,1,0]`` whose last number is ``0.5``): each
parse runs in a fresh child process that reads the body from a file, so its peak RSS growth
(``ru_maxrss`` after minus before) counts every allocation, pydantic's own included; a thread
ticking every millisecond beside it gives the longest pause of other threads (what an event
loop, hence ``/healthz``, waits), and tracemalloc's peak (a second parse) the traced memory.

Each time is the best of ``--repeat`` runs of ``read_points(data, "csv")`` in this process. The
old parser is ``eoc_ntk/core/csv_points.py`` as of ``--old`` (``git show``), loaded beside the
current one; its row is skipped where git or the commit is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eoc_ntk.core.csv_points import read_csv  # noqa: E402

OLD = "40eeda3"  # the last commit before the short-decimal reader


def _old_reader(rev: str):
    try:
        src = subprocess.run(["git", "show", f"{rev}:eoc_ntk/core/csv_points.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    mod = types.ModuleType(f"csv_points_{rev}")
    exec(compile(src, f"{rev}:csv_points.py", "exec"), mod.__dict__)
    return mod.read_csv


def _best(read, data: bytes, repeat: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = read(data)
        best = min(best, time.perf_counter() - t)
    return best, np.asarray(out)


def _tables(rows: int, cols: int) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 10, (rows, cols))
    normal = rng.standard_normal((max(1, rows // 8), cols))
    return {f"{rows} x {cols} one-digit cells": ("\n".join(",".join(map(str, r)) for r in digits) + "\n").encode(),
            f"{normal.shape[0]} x {cols} float64 text (repr)":
                ("\n".join(",".join(map(repr, map(float, r))) for r in normal) + "\n").encode()}


_CHILD = r"""
import resource, sys, threading, time, tracemalloc
from service.jsonbody import validate_json
from service.schemas import SpectraIn
body = open(sys.argv[1], "rb").read()
parse = (lambda: validate_json(SpectraIn, body, 1 << 40)) if sys.argv[2] == "now" else \
    (lambda: SpectraIn.model_validate_json(body))
validate_json(SpectraIn, b'{"x": [[1]], "model": {"depth": 1, "activation": "relu"}}', 1 << 20)  # imports
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
base = rss()
ticks, peaks, stop = [], [base], threading.Event()
def tick():
    while not stop.is_set():
        ticks.append(time.perf_counter()); peaks.append(rss()); time.sleep(0.001)
t = threading.Thread(target=tick); t.start(); time.sleep(0.02)
t0 = time.perf_counter(); parsed = parse(); seconds = time.perf_counter() - t0
peaks.append(rss()); stop.set(); t.join()
grown = max(peaks) - base
pause = max(b - a for a, b in zip(ticks, ticks[1:]))
del parsed
tracemalloc.start(); parse(); traced = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
print(seconds, pause, grown, traced)
"""


def _json_bodies(size: int) -> dict[str, bytes]:
    model = b'"model": {"depth": 3, "activation": "relu"}'
    x = np.random.default_rng(3).standard_normal((max(1, size // 100), 5))
    return {"float64 text": b"{" + model + b', "x": ' + json.dumps(x.tolist()).encode() + b"}",
            "one row of 0": b"{" + model + b', "x": [[' + b",".join([b"0"] * (size // 2)) + b"]]}",
            "rows [0,1,0,1,0]": b"{" + model + b', "x": [' + b",".join([b"[0,1,0,1,0]"] * (size // 12)) + b"]}",
            "mixed rows [0,1,0,1,float64]": b"{" + model + b', "x": [' + b",".join(
                b"[0,1,0,1,%r]" % v for v in x[:, 0].tolist() * 20)[:size].rsplit(b"],", 1)[0] + b"]]}",
            "rows [0,1,0,1,0], the last 0.5": b"{" + model + b', "x": [' + b",".join(
                [b"[0,1,0,1,0]"] * (size // 12 - 1) + [b"[0,1,0,1,0.5]"]) + b"]}"}


def json_rows(sizes: list[int], now_only: bool = False) -> None:
    """Markdown rows: parse seconds, longest pause of a ticking thread, RSS and traced peaks / body."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print("| JSON body | MiB | parser | parse s | longest pause of another thread ms | peak RSS growth / body "
          "| tracemalloc peak / body | run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for name, body in _json_bodies(size).items():
                path = Path(tmp) / "body.json"
                path.write_bytes(body)
                for which in ("now",) if now_only else ("now", "pydantic"):
                    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), which], env=env, check=True,
                                         capture_output=True, text=True).stdout.split()
                    seconds, pause, grown, traced = map(float, out)
                    label = "one JSON path (narrowest exact dtype)" if which == "now" else "pydantic alone"
                    print(f"| {name} | {len(body) / 2**20:.2f} | {label} | {seconds:.3f} | {pause * 1e3:.0f} | "
                          f"{grown / len(body):.1f}x | {traced / len(body):.1f}x | {when}, load "
                          f"{os.getloadavg()[0]:.1f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=4096)
    p.add_argument("--old", default=OLD, help="git revision of the parser to compare with")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true", help="JSON bodies instead of CSV")
    p.add_argument("--sizes", type=int, nargs="+", default=[512 * 1024, 16 << 20], help="JSON body sizes, bytes")
    p.add_argument("--no-pydantic", action="store_true", help="JSON: the one JSON path only, not pydantic alone")
    args = p.parse_args(argv)
    if args.json:
        json_rows(args.sizes, args.no_pydantic)
        return
    old = _old_reader(args.old)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = "%.1f" % os.getloadavg()[0]
    print("| CSV | MiB | now s | now MB/s | old s | old MB/s | speed-up | run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, data in _tables(args.rows, args.cols).items():
        now, got = _best(read_csv, data, args.repeat)
        cells = [f"{now:.3f}", f"{len(data) / now / 1e6:.1f}"]
        if old is None:
            cells += ["-", "-", "-"]
        else:
            then, want = _best(old, data, args.repeat)
            assert np.array_equal(got, want), "the parsers disagree"
            cells += [f"{then:.3f}", f"{len(data) / then / 1e6:.1f}", f"{then / now:.1f}x"]
        print(f"| {name} | {len(data) / 2**20:.1f} | {' | '.join(cells)} | {when}, load {load}, "
              f"`python bench/bench_uploads.py --rows {args.rows} --cols {args.cols} --old {args.old}` |")


if __name__ == "__main__":
    main()
