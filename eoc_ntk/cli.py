"""The ``eoc-ntk`` console script.

- ``eoc-ntk serve`` (the API) and ``eoc-ntk worker`` (an RQ worker);
- ``eoc-ntk spectrum FILE --depth L --activation relu``: eigenvalues and condition number of K/n;
- ``eoc-ntk sweep FILE --depths 1:100 --activations relu,abs --plot out.png``: condition
  number vs depth with the depth limit;
- ``eoc-ntk reproduce --out DIR``: the paper-reproduction report on scikit-learn's digits.

``spectrum`` and ``sweep`` compute locally, or on a running service with ``--server URL``
(``--api-key`` or ``EOC_NTK_API_KEY``); both show a progress bar on stderr (``--quiet`` hides
it) and print JSON with ``--json``. The service's dependencies (FastAPI, Redis, RQ) are
imported only inside ``serve`` and ``worker``, so the core stays importable without them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

__all__ = ["main", "ProgressBar"]


class ProgressBar:
    """A one-line progress bar on a stream (``[#####.....]  50%  3.1 s``); silent when disabled."""

    def __init__(self, label: str, stream=None, enabled: bool = True, width: int = 30):
        self.label, self.stream, self.enabled, self.width = label, stream or sys.stderr, enabled, width
        self.start = time.monotonic()
        self.fraction = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if not self.enabled or fraction == self.fraction:
            return
        self.fraction = fraction
        done = int(round(fraction * self.width))
        self.stream.write(f"\r{self.label} [{'#' * done}{'.' * (self.width - done)}] {fraction:4.0%}"
                          f"  {time.monotonic() - self.start:.1f} s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.fraction >= 0:
            self.stream.write("\n")
            self.stream.flush()


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _client(args):
    from .client import Client

    return Client(args.server, api_key=args.api_key or os.environ.get("EOC_NTK_API_KEY") or None,
                  timeout=args.timeout)


def _fmt(v) -> str:
    return "inf" if v is None or (isinstance(v, float) and math.isinf(v)) else f"{float(v):.6g}"


def _spectrum(args) -> int:
    from . import analyze
    from .model import Model
    from .parsing import load_points, parse_activation

    x = load_points(args.file)
    act = parse_activation(args.activation)
    bar = ProgressBar(f"spectrum depth {args.depth}", enabled=not (args.quiet or args.json))
    try:
        if args.server:
            with _client(args) as client:
                result = client.spectrum(x, depth=args.depth, activation=act, sigma_w=args.sigma_w,
                                         sigma_b=args.sigma_b, progress=bar)
        else:
            result = analyze(x, Model(args.depth, act.a, act.b, sigma_w=args.sigma_w, sigma_b=args.sigma_b),
                             progress=bar)
    finally:
        bar.close()
    result = _jsonable(result)
    if args.plot:
        from .plots import plot_spectrum

        plot_spectrum(result, args.plot)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"n = {result['n']}, m0 = {result['m0']}, depth {args.depth}, activation {act.label} "
          f"(a = {act.a:g}, b = {act.b:g}, Delta = {result['model']['delta']:.4g})")
    print(f"lambda_min = {_fmt(result['lambda_min'])}   lambda_max = {_fmt(result['lambda_max'])}   "
          f"condition number = {_fmt(result['condition_number'])}")
    if result["singular"]:
        print(f"singular: {result.get('singular_reason')}")
    icd = result.get("icd")
    if icd:
        print(f"ICD: max relative error {_fmt(icd['max_rel_error'])}; Weyl bounds lambda_min in "
              f"[{_fmt(icd['lambda_min_bounds'][0])}, {_fmt(icd['lambda_min_bounds'][1])}], lambda_max in "
              f"[{_fmt(icd['lambda_max_bounds'][0])}, {_fmt(icd['lambda_max_bounds'][1])}]")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def local_sweep(x, depths, activations, sigma_w=None, sigma_b=0.0, progress=None) -> dict:
    """``{"depths", "results": [{"activation", ...DepthSweep.to_dict()}]}``, as the service's /v1/sweeps."""
    from . import depth_sweep

    results = []
    for i, act in enumerate(activations):
        part = None if progress is None else (lambda f, i=i: progress((i + f) / len(activations)))
        sweep = depth_sweep(x, depths=depths, a=act.a, b=act.b, sigma_w=sigma_w, sigma_b=sigma_b, progress=part)
        results.append({"activation": {"a": act.a, "b": act.b, "label": act.label}, **sweep.to_dict()})
    if progress is not None:
        progress(1.0)
    return {"depths": sorted(set(int(d) for d in depths)), "results": results}


def _sweep(args) -> int:
    from .parsing import load_points, parse_activations, parse_depths

    x = load_points(args.file)
    depths = parse_depths(args.depths)
    acts = parse_activations(args.activations)
    bar = ProgressBar(f"sweep {len(depths)} depths x {len(acts)} activations", enabled=not (args.quiet or args.json))
    try:
        if args.server:
            with _client(args) as client:
                result = client.sweep(x, depths=depths, activations=acts, sigma_w=args.sigma_w,
                                      sigma_b=args.sigma_b, progress=bar)
        else:
            result = local_sweep(x, depths, acts, args.sigma_w, args.sigma_b, progress=bar)
    finally:
        bar.close()
    result = _jsonable(result)
    if args.plot:
        from .plots import plot_sweep

        plot_sweep(result, args.plot)
    if args.json:
        print(json.dumps(result))
        return 0
    labels = [a.label for a in acts]
    width = max(12, *(len(l) + 2 for l in labels))
    print("depth".rjust(6) + "".join(l.rjust(width) for l in labels))
    for i, d in enumerate(result["depths"]):
        print(str(d).rjust(6) + "".join(_fmt(r["condition_number"][i]).rjust(width) for r in result["results"]))
    print("limit".rjust(6) + "".join(("-" if r.get("limit_condition_number") is None and r.get("delta", 1) == 0
                                      else _fmt(r.get("limit_condition_number"))).rjust(width)
                                     for r in result["results"]))
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _reproduce(args) -> int:
    from .reproduce import reproduce

    bar = ProgressBar("reproduce", enabled=not args.quiet)
    try:
        path = reproduce(args.out, n=args.n, seed=args.seed, progress=bar)
    finally:
        bar.close()
    print(f"report written to {path}")
    return 0


def _remote_options(p) -> None:
    p.add_argument("--server", metavar="URL", default=None,
                   help="send the work to a running service (e.g. http://127.0.0.1:8000) instead of computing here")
    p.add_argument("--api-key", default=None, help="API key for --server (default: $EOC_NTK_API_KEY)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for a job on --server")
    p.add_argument("--sigma-w", type=float, default=None, help="weight std (default: the edge of chaos)")
    p.add_argument("--sigma-b", type=float, default=0.0, help="bias std (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (infinities as null)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _serve(args) -> int:
    from service.__main__ import main as serve_main

    serve_main(["--host", args.host, "--port", str(args.port), "--log-level", args.log_level,
                "--log-format", args.log_format])
    return 0


def _worker(args) -> int:
    from workers.worker import run_worker

    run_worker(args.redis_url, burst=args.burst, name=args.name, log_level=args.log_level)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="eoc-ntk", description="Infinite-width NTK spectra at the edge of chaos.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST API (same as python -m service)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--log-format", choices=("json", "text"), default="json",
                       help="json (default): one JSON object per line with the request id")
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run an RQ worker on REDIS_URL")
    worker.add_argument("--redis-url", default=None, help="default: the REDIS_URL environment variable")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument("--name", default=None, help="worker name (default: generated)")
    worker.add_argument("--log-level", default="INFO")
    worker.set_defaults(func=_worker)

    act_help = "relu | abs | linear | leaky_relu[:SLOPE] | A,B for phi(s) = A*s + B*|s|"
    spec = sub.add_parser("spectrum", help="eigenvalues and condition number of K/n for one model")
    spec.add_argument("file", help="data: .npy or CSV (one point per line, no header)")
    spec.add_argument("--depth", type=int, required=True, help="number of weight layers l >= 1")
    spec.add_argument("--activation", default="relu", help=act_help + " (default relu)")
    spec.add_argument("--plot", metavar="OUT", default=None, help="write the sorted eigenvalues to OUT (.png or .svg)")
    _remote_options(spec)
    spec.set_defaults(func=_spectrum)

    sweep = sub.add_parser("sweep", help="condition number of K/n vs depth per activation, with the depth limit")
    sweep.add_argument("file", help="data: .npy or CSV (one point per line, no header)")
    sweep.add_argument("--depths", default="1:100", help="e.g. 1:100, 1:200:10 or 1,2,5,10 (default 1:100)")
    sweep.add_argument("--activations", default="relu,abs",
                       help="comma- or ;-separated list, each " + act_help + " (default relu,abs)")
    sweep.add_argument("--plot", metavar="OUT", default=None, help="write the plot to OUT (.png or .svg)")
    _remote_options(sweep)
    sweep.set_defaults(func=_sweep)

    rep = sub.add_parser("reproduce", help="the paper's claims on scikit-learn's digits: a markdown report with figures")
    rep.add_argument("--out", default="eoc-ntk-report", help="output folder (default ./eoc-ntk-report)")
    rep.add_argument("--n", type=int, default=200, help="number of digits used (default 200)")
    rep.add_argument("--seed", type=int, default=0, help="seed of the subsample (default 0)")
    rep.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    rep.set_defaults(func=_reproduce)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"eoc-ntk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the client's ApiError, JobFailed, JobTimeout
        if type(exc).__module__ == "eoc_ntk.client" or isinstance(exc, TimeoutError):
            print(f"eoc-ntk {args.command}: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
