"""Service overhead: ``POST /v1/spectra`` (embedded mode, in-process TestClient) against
calling the core directly, and a cached repeat against the first request.

Targets (issue 4): n=1000: first POST within 1.3x of ``eoc_ntk.analyze(x, Model(...))``;
a cached repeat >= 50x faster than the first request. The first request is timed with a
fresh app (empty cache) each repeat; data sent inline as JSON (``"x"``, parsing included)
and by a ``dataset_id`` uploaded beforehand (untimed). Cached repeats are timed in both forms.

    python bench/bench_service.py                       # n=1000, m0=784
    python bench/bench_service.py --n 50 --m0 5 --repeat 1   # smoke
"""
from __future__ import annotations

import argparse
import json

from _common import command_line, emit, make_data, timed

from fastapi.testclient import TestClient

import eoc_ntk
from service.app import create_app
from service.config import Settings


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--m0", type=int, default=784)
    p.add_argument("--data", default="uniform")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    cmd = command_line()
    x = make_data(args.data, args.n, args.m0)
    model_json = {"depth": args.depth, "activation": {"name": "relu"}}
    inline_body = json.dumps({"x": x.tolist(), "model": model_json})
    headers = {"Content-Type": "application/json"}

    t_core, t_inline, t_byid, t_hit, t_hit_id = [], [], [], [], []
    for _ in range(args.repeat):
        t, _ = timed(lambda: eoc_ntk.analyze(x, eoc_ntk.Model(args.depth, 0.5, 0.5)))
        t_core.append(t)
        with TestClient(create_app(Settings(redis_url=None, max_json_bytes=64 << 20))) as client:
            ds = client.post("/v1/datasets", content=json.dumps({"x": x.tolist()}), headers=headers).json()
            body = json.dumps({"dataset_id": ds["dataset_id"], "model": model_json})
            t, r = timed(lambda body=body: client.post("/v1/spectra", content=body, headers=headers))
            assert r.status_code == 200 and r.json()["cache"] == "miss", r.text[:300]
            t_byid.append(t)
            for _ in range(args.repeat):
                t, r = timed(lambda body=body: client.post("/v1/spectra", content=body, headers=headers))
                assert r.status_code == 200 and r.json()["cache"] == "hit", r.text[:300]
                t_hit_id.append(t)
        with TestClient(create_app(Settings(redis_url=None, max_json_bytes=64 << 20))) as client:
            t, r = timed(lambda: client.post("/v1/spectra", content=inline_body, headers=headers))
            assert r.status_code == 200 and r.json()["cache"] == "miss", r.text[:300]
            t_inline.append(t)
            for _ in range(args.repeat):
                t, r = timed(lambda: client.post("/v1/spectra", content=inline_body, headers=headers))
                assert r.status_code == 200 and r.json()["cache"] == "hit", r.text[:300]
                t_hit.append(t)
    core, inline, byid, hit, hit_id = min(t_core), min(t_inline), min(t_byid), min(t_hit), min(t_hit_id)
    size = f"n={args.n} m0={args.m0} depth {args.depth}"
    emit(f"POST /v1/spectra ({size}, x inline as JSON, {len(inline_body) / 1e6:.1f} MB) / analyze() direct",
         "<= 1.3", f"{inline / core:.2f} ({inline:.2f} s / {core:.2f} s, best of {args.repeat})", cmd)
    emit(f"POST /v1/spectra ({size}, dataset_id) / analyze() direct",
         "<= 1.3", f"{byid / core:.2f} ({byid:.2f} s / {core:.2f} s, best of {args.repeat})", cmd)
    emit(f"POST /v1/spectra ({size}, x inline): first request / cached repeat",
         ">= 50x", f"{inline / hit:.0f}x ({inline:.2f} s / {hit * 1e3:.0f} ms, best of {args.repeat}; "
         f"the repeat parses and hashes the JSON data again)", cmd)
    emit(f"POST /v1/spectra ({size}, dataset_id): first request / cached repeat",
         ">= 50x", f"{byid / hit_id:.0f}x ({byid:.2f} s / {hit_id * 1e3:.1f} ms, best of {args.repeat})", cmd)


if __name__ == "__main__":
    main()
