"""Upload parsing: CSV read speed (MB/s) now vs an earlier commit's parser, in the same run.

    python bench/bench_uploads.py                      # 4096 x 4096 one-digit CSV (32 MiB) and float64 text
    python bench/bench_uploads.py --rows 512 --cols 64 --old 40eeda3

Each time is the best of ``--repeat`` runs of ``read_points(data, "csv")`` in this process. The
old parser is ``eoc_ntk/core/csv_points.py`` as of ``--old`` (``git show``), loaded beside the
current one; its row is skipped where git or the commit is missing.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=4096)
    p.add_argument("--old", default=OLD, help="git revision of the parser to compare with")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
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
