"""One certified spectrum on a local Dask cluster: time per phase and peak summed RSS.

``eoc_ntk.distributed.spectrum`` on a ``LocalCluster`` of ``--workers`` single-threaded
processes (memory limit per worker, spilling to a temporary folder). Phases, timed by
wrapping the tiled operations (``eoc_ntk.distributed._tiled``):

- tiles: the kernel tiles of ``K / n`` computed on the workers (until progress 0.3);
- lanczos: every product ``K v`` (Lanczos for ``lambda_max`` and the residual checks);
- factorisation: every tiled Cholesky (float32 rough, float64 of ``K - sigma I``);
- refinement: every pair of tiled triangular solves (rough and shift-and-invert Lanczos).

Peak RSS is the sum over this process and all its descendants (scheduler thread, nannies,
workers), sampled every 0.2 s with psutil.

    python bench/bench_distributed.py --n 5000 --m0 784 --depth 10 --chunks 1024 --workers 2
    python bench/bench_distributed.py --n 5000 --m0 784 --compare   # also the single-machine path
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time

from _common import make_data


class PeakRss:
    """Peak of the summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.me, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        import psutil

        total = 0
        for proc in [self.me, *self.me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)
        return total

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()


def timing_wrappers(phases: dict):
    """Wrap the tiled operations so that their wall time adds up per phase."""
    from eoc_ntk.distributed import _tiled as _dask_linalg
    def wrap(cls, name, phase):
        original = getattr(cls, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases[phase][0] += time.perf_counter() - t0
                phases[phase][1] += 1

        setattr(cls, name, timed)

    wrap(_dask_linalg.TiledSymmetric, "matvec", "lanczos")
    wrap(_dask_linalg.TiledSymmetric, "cholesky", "factorisation")
    wrap(_dask_linalg.TiledFactor, "solve", "refinement")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--m0", type=int, default=784)
    p.add_argument("--data", default="uniform")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--a", type=float, default=0.5)
    p.add_argument("--b", type=float, default=0.5)
    p.add_argument("--chunks", type=int, default=1024)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="auto", help="per worker, e.g. 8GiB (default: RAM / workers)")
    p.add_argument("--compare", action="store_true", help="also time eoc_ntk.spectrum(..., eigenvalues='extremes')")
    args = p.parse_args(argv)

    from distributed import Client, LocalCluster

    from eoc_ntk import distributed as dist

    x = make_data(args.data, args.n, args.m0)
    phases = {k: [0.0, 0] for k in ("tiles", "lanczos", "factorisation", "refinement")}
    timing_wrappers(phases)
    with tempfile.TemporaryDirectory(prefix="eoc-ntk-bench-") as spill, PeakRss() as rss:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          memory_limit=args.memory_limit, local_directory=spill,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            t0 = time.perf_counter()
            tiles_done = []

            def progress(fraction):
                if not tiles_done and fraction >= dist._PHASES["tiles"]:
                    tiles_done.append(time.perf_counter() - t0)

            s = dist.spectrum(x, depth=args.depth, a=args.a, b=args.b, client=client,
                              chunks=args.chunks, progress=progress)
            total = time.perf_counter() - t0
    phases["tiles"] = [tiles_done[0], 1]
    print(f"n={args.n} m0={args.m0} data={args.data} depth={args.depth} chunks={args.chunks} "
          f"workers={args.workers}")
    print(f"lambda_min={s.lambda_min:.12g} lambda_max={s.lambda_max:.12g} cond={s.condition_number:.6g} "
          f"singular={s.singular} method={s.method}")
    for name, (seconds, calls) in phases.items():
        print(f"  {name:<14} {seconds:8.2f} s  ({calls} calls)")
    print(f"  {'total':<14} {total:8.2f} s")
    print(f"peak summed RSS {rss.peak / 2**30:.2f} GiB")
    if args.compare:
        import eoc_ntk

        t0 = time.perf_counter()
        ref = eoc_ntk.spectrum(x, depth=args.depth, a=args.a, b=args.b, eigenvalues="extremes")
        single = time.perf_counter() - t0
        print(f"single machine: {single:.2f} s (ratio distributed/single {total / single:.2f}); "
              f"lambda_min rel diff {abs(s.lambda_min - ref.lambda_min) / ref.lambda_min:.2e}, "
              f"lambda_max rel diff {abs(s.lambda_max - ref.lambda_max) / ref.lambda_max:.2e}")


if __name__ == "__main__":
    main()
