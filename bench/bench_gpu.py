"""Certified extremes and the kernel alone on a torch device against the CPU (NumPy) path.

Target (issue 29): on one GPU, ``spectrum(eigenvalues="extremes")`` at n = 20,000, 40,000 and
100,000 (m0 = 784, uniform, ReLU depth 10), and the kernel alone; the NumPy path on the CPU at
the sizes it can do (``--cpu-max-n``), with the agreement of the two answers. A size whose
matrices do not fit in the device's memory prints the backend's refusal (it names n and the
memory). Each timing is one run (``--repeat`` for more), after one untimed warm-up on a small n.

    python bench/bench_gpu.py                                   # a GPU: n = 20k, 40k, 100k
    python bench/bench_gpu.py --device cpu --n 2000 --cpu-max-n 2000 --repeat 3   # torch-CPU vs NumPy
    python bench/bench_gpu.py --device cpu --n 300 --cpu-max-n 300 --m0 20        # smoke
"""
from __future__ import annotations

import argparse
import math

from _common import command_line, emit, make_data, timed

import eoc_ntk
from eoc_ntk.core.errors import InvalidParameterError

RELU = dict(a=0.5, b=0.5)


def _torch():
    try:
        import torch  # optional: the [gpu] extra
    except ImportError:
        return None
    return torch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N (the torch backend's device)")
    p.add_argument("--n", type=int, nargs="+", default=[20_000, 40_000, 100_000])
    p.add_argument("--m0", type=int, default=784)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--data", default="uniform")
    p.add_argument("--cpu-max-n", type=int, default=20_000, help="largest n also run on the NumPy path")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--torch-threads", type=int, default=None, help="torch's intra-op CPU threads (default: torch's)")
    args = p.parse_args(argv)
    cmd = command_line()
    torch = _torch()
    if torch is None:
        emit("torch backend", "-", "skipped: torch is not installed (pip install 'eoc-ntk[gpu]')", cmd)
        return
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    where = _device_name(torch, args.device)
    if where is None:
        emit(f"torch backend on {args.device}", "-", "not measured: no such device here", cmd)
        return
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    _run(lambda: eoc_ntk.spectrum(make_data(args.data, 200, args.m0), depth=2, eigenvalues="extremes",
                                  backend="torch", device=args.device, **RELU), sync)  # warm-up
    for n in args.n:
        _one_size(n, args, where, sync, cmd)


def _one_size(n: int, args, where: str, sync, cmd: str) -> None:
    """The rows of one n: torch on the device, and the NumPy path where ``n <= --cpu-max-n``."""
    x = make_data(args.data, n, args.m0)
    case = f"n={n} m0={args.m0} {args.data} depth {args.depth}"
    t_kernel = _best(args.repeat, lambda: _kernel_on(x, args, sync))
    t_ext, spec = _best_result(args.repeat, lambda: _run(lambda: eoc_ntk.spectrum(
        x, depth=args.depth, eigenvalues="extremes", backend="torch", device=args.device, **RELU), sync))
    if isinstance(spec, InvalidParameterError):
        emit(f"{case}: extremes on {where}", "fits, certified", f"refused: {spec}", cmd)
        return
    gpu = f"kernel {_s(t_kernel)}, extremes {t_ext:.2f} s (method {spec.method}, cond {spec.condition_number:.3g})"
    if n > args.cpu_max_n:
        emit(f"{case}: torch on {where}", "-", gpu + "; NumPy path not run (n > --cpu-max-n)", cmd)
        return
    t_np_kernel = _best(args.repeat, lambda: eoc_ntk.kernel(x, depth=args.depth, **RELU))
    t_np, ref = _best_result(args.repeat, lambda: eoc_ntk.spectrum(x, depth=args.depth, eigenvalues="extremes",
                                                                   **RELU))
    err = max(abs(spec.lambda_min - ref.lambda_min) / ref.lambda_min,
              abs(spec.lambda_max - ref.lambda_max) / ref.lambda_max)
    emit(f"{case}: torch on {where} vs NumPy on the CPU, extremes", "agreement <= 1e-10",
         f"{t_np / t_ext:.2f}x ({t_np:.2f} s / {t_ext:.2f} s, best of {args.repeat}); kernel "
         f"{t_np_kernel / t_kernel:.2f}x ({t_np_kernel:.2f} s / {t_kernel:.2f} s); rel. err {err:.1e}; "
         f"methods {ref.method} / {spec.method}", cmd)


def _device_name(torch, device: str) -> str | None:
    if device == "cpu":
        return f"torch-cpu ({torch.get_num_threads()} threads)"
    if not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return None
    return torch.cuda.get_device_name(index)


def _run(fn, sync):
    """``fn()`` then a device synchronisation; a refusal (e.g. the memory plan's) is returned, not raised."""
    try:
        out = fn()
    except InvalidParameterError as exc:
        return exc
    sync()
    return out


def _kernel_on(x, args, sync):
    k = _run(lambda: eoc_ntk.kernel(x, depth=args.depth, backend="torch", device=args.device, **RELU), sync)
    del k


def _best(repeat: int, fn) -> float:
    return _best_result(repeat, fn)[0]


def _best_result(repeat: int, fn):
    best, out = math.inf, None
    for _ in range(repeat):
        t, out = timed(fn)
        best = min(best, t)
    return best, out


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s"


if __name__ == "__main__":
    main()
