"""The tiled Cholesky of eoc_ntk.distributed against dask.array.linalg.cholesky, on one LocalCluster.

Both factor the same symmetric positive definite ``K/n - sigma I`` (an NTK of ``--n`` points at
``--depth``, shifted by ``--shift`` times its smallest eigenvalue, as the certificate of
``lambda_min`` does), already on the workers in ``--chunks`` x ``--chunks`` tiles; the time is from
the first task submitted to the factor held on the workers; the memory is what the cluster then
holds (``Client.nbytes``) over the input's size. The error is ``|L L^T - A|_F / |A|_F`` of the
gathered factor. Then the same at a shift above ``lambda_min``,
where the matrix is not positive definite: the certificate needs that answer as a result (the
tiled one returns None), not as a failed graph.

    python bench/bench_dask_linalg.py --n 3000 --chunks 750 --workers 2
"""
from __future__ import annotations

import argparse
import time

from _common import make_data

import numpy as np


def _lower_tiles(client, a: np.ndarray, edges: list[tuple[int, int]]) -> dict:
    return {(i, j): client.scatter(np.ascontiguousarray(a[i0:i1, j0:j1]))
            for i, (i0, i1) in enumerate(edges) for j, (j0, j1) in enumerate(edges) if i >= j}


def _error(factor: np.ndarray, a: np.ndarray) -> float:
    return float(np.linalg.norm(factor @ factor.T - a) / np.linalg.norm(a))


def _held(client) -> int:
    return int(sum(client.nbytes(summary=False).values()))


def _tiled(client, a: np.ndarray, chunks: int) -> tuple[float, float, float | None]:
    from eoc_ntk.distributed._tiled import TiledSymmetric, block_edges

    edges = block_edges(a.shape[0], chunks)
    matrix = TiledSymmetric(client, _lower_tiles(client, a, edges), edges)
    start = time.perf_counter()
    factor = matrix.cholesky(0.0)
    seconds = time.perf_counter() - start
    held = _held(client) / a.nbytes
    if factor is None:
        return seconds, held, None
    low = np.zeros_like(a)
    for (i, j), tile in factor.tiles.items():
        low[edges[i][0]:edges[i][1], edges[j][0]:edges[j][1]] = tile.result()
    return seconds, held, _error(low, a)


def _dask(client, a: np.ndarray, chunks: int) -> tuple[float, float, float | None]:
    import dask.array as da
    from distributed import wait

    matrix = da.from_array(a, chunks=chunks).persist()
    wait(matrix)
    start = time.perf_counter()
    try:
        low = da.linalg.cholesky(matrix, lower=True).persist()
        wait(low)
        seconds, held = time.perf_counter() - start, _held(client) / a.nbytes
        factor = low.compute()  # raises here when a block is not positive definite
    except np.linalg.LinAlgError:
        return time.perf_counter() - start, _held(client) / a.nbytes, None
    return seconds, held, _error(factor, a)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--m0", type=int, default=784)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--chunks", type=int, default=750)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--shift", type=float, default=0.9, help="sigma as a fraction of lambda_min")
    args = p.parse_args(argv)

    from distributed import Client, LocalCluster

    import eoc_ntk

    x = make_data("uniform", args.n, args.m0)
    k = eoc_ntk.kernel(x, depth=args.depth, a=0.5, b=0.5) / args.n
    lmin = float(np.linalg.eigvalsh(k)[0])
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for label, sigma in (("positive definite", args.shift * lmin), ("not positive definite", 1.1 * lmin)):
            a = k - sigma * np.eye(args.n)
            for name, run in (("eoc_ntk tiled", _tiled), ("dask.array.linalg", _dask)):
                seconds, held, error = run(client, a, args.chunks)
                answer = "not positive definite" if error is None else f"|LL^T - A|/|A| = {error:.2e}"
                print(f"{label:22s} {name:18s} {seconds:7.2f} s  held {held:4.2f} x A   {answer}", flush=True)
                deadline = time.monotonic() + 30  # the run's data leaves the workers before the next
                while _held(client) and time.monotonic() < deadline:
                    time.sleep(0.1)


if __name__ == "__main__":
    main()
