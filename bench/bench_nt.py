"""eoc-ntk against neural-tangents: the depth-l NTK of n points in R^m0.

Target (issue 4): >= 10x faster than neural-tangents at depth 50 and >= 50x at depth 200
(float64; NT jitted and warm, its compile time reported separately). neural-tangents runs
in a subprocess of the interpreter given by ``--nt-python`` (default: ``$EOC_NTK_NT_PYTHON``,
else ``/tmp/ntvenv/bin/python``, else this interpreter if it imports neural_tangents, i.e.
``pip install -e '.[nt]'``); without one the benchmark prints a "skipped" row and exits 0.
Before timing, both kernels are compared on a small input (max |dK| / sqrt(K_ii K_jj)).

eoc-ntk is timed cold (interpolant cache cleared: the build is included) and warm.

    python bench/bench_nt.py                                  # n=4000, m0=784, depths 3 10 50 200
    python bench/bench_nt.py --n 200 --depths 3 10 --repeat 1 # small
    python bench/bench_nt.py --activation erf --depths 1 3 10 50   # erf / gelu: NNGP and NTK agreement only

With ``--activation erf`` or ``gelu`` (NT's ``Erf(a=1, b=1, c=0)`` and ``Gelu(approximate=False)``) only
the agreement is measured, at the EOC ``sigma_w`` eoc-ntk solves for ``--sigma-b``, on ``--check-n``
Gaussian points whose norms run from 0.25 to 2 times ``sqrt(m0)``: per kernel, the largest
``|dK| / |K|`` over all entries and the largest ``|dK| / sqrt(K_ii K_jj)``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import best_of, command_line, emit, make_data

import numpy as np

from eoc_ntk import Model, check_data, kernel
from eoc_ntk.core._numerics import interp as _interp
from eoc_ntk.core.kernels import compute_kernels

WORKER = Path(__file__).with_name("_nt_worker.py")
DEFAULT_VENV = "/tmp/ntvenv/bin/python"


def find_nt_python(given: str | None) -> str | None:
    """An interpreter that imports neural_tangents, or None."""
    candidates = [given] if given else [os.environ.get("EOC_NTK_NT_PYTHON"), DEFAULT_VENV, sys.executable]
    for python in filter(None, candidates):
        if not Path(python).exists():
            continue
        ok = subprocess.run([python, "-c", "import neural_tangents, jax"], capture_output=True).returncode == 0
        if ok:
            return python
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--m0", type=int, default=784)
    p.add_argument("--data", default="uniform")
    p.add_argument("--depths", type=int, nargs="+", default=(3, 10, 50, 200))
    p.add_argument("--a", type=float, default=0.5)
    p.add_argument("--b", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--nt-repeat", type=int, default=None, help="warm NT runs per depth (default --repeat)")
    p.add_argument("--check-n", type=int, default=20)
    p.add_argument("--nt-python", default=None)
    p.add_argument("--activation", choices=("abrelu", "erf", "gelu"), default="abrelu",
                   help="abrelu: the family (--a, --b), timed; erf, gelu: kernel agreement only")
    p.add_argument("--sigma-b", type=float, default=0.1, help="erf, gelu: the bias std of the EOC")
    args = p.parse_args(argv)
    cmd = command_line()
    python = find_nt_python(args.nt_python)
    if python is None:
        emit("eoc-ntk vs neural-tangents", ">= 10x at l=50, >= 50x at l=200",
             "skipped: no interpreter with neural-tangents (install the `nt` extra or a venv, see "
             "bench/README.md)", cmd)
        return
    if args.activation != "abrelu":
        smooth_agreement(python, args, cmd)
        return

    x = make_data(args.data, args.n, args.m0)
    xs = make_data(args.data, args.check_n, args.m0, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        np.save(f"{tmp}/xs.npy", xs)
        proc = subprocess.run(
            [python, str(WORKER), f"{tmp}/x.npy", "--depths", *map(str, args.depths), "--a", str(args.a),
             "--b", str(args.b), "--repeat", str(args.nt_repeat or args.repeat),
             "--check", f"{tmp}/xs.npy", f"{tmp}/ks.npz"],
            capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"neural-tangents worker failed:\n{proc.stderr[-3000:]}")
        nt = {r["depth"]: r for r in map(json.loads, proc.stdout.strip().splitlines())}
        ks = dict(np.load(f"{tmp}/ks.npz"))

    # Off-diagonal entries and the diagonal separately: NT evaluates the diagonal through
    # arccos of a correlation that rounds to 1 - O(eps), which costs it ~sqrt(eps) there,
    # while docs/math.md's diagonal is exactly theta_l(0) q = l q.
    off, diag, exact_diag = [], [], []
    mask = ~np.eye(args.check_n, dtype=bool)
    q = np.einsum("ij,ij->i", xs, xs) / ((args.a ** 2 + args.b ** 2) * args.m0)
    for d in args.depths:
        ours, theirs = kernel(xs, depth=d, a=args.a, b=args.b), ks[str(d)]
        dk = np.sqrt(np.diag(ours))
        rel = np.abs(ours - theirs) / np.outer(dk, dk)
        off.append(float(rel[mask].max()))
        diag.append(float(np.diag(rel).max()))
        exact_diag.append(float(np.max(np.abs(np.diag(ours) - d * q) / (d * q))))
    where = f"n={args.check_n} m0={args.m0} {args.data}, depths {list(args.depths)}"
    emit(f"eoc-ntk vs neural-tangents {nt[args.depths[0]]['jax']}, {where}: off-diagonal max abs(dK) / sqrt(K_ii K_jj)",
         "~1e-10", f"{max(off):.1e} ({', '.join(f'{e:.0e}' for e in off)})", cmd)
    emit(f"eoc-ntk vs neural-tangents, {where}: diagonal max abs(dK) / K_ii",
         "(NT's own error)", f"{max(diag):.1e} ({', '.join(f'{e:.0e}' for e in diag)}); eoc-ntk diagonal vs "
         f"exact l*q: {max(exact_diag):.0e}", cmd)

    xc = check_data(x)
    for d in args.depths:
        def run(d=d):
            return compute_kernels(xc, None, Model(d, args.a, args.b), ("ntk",))["ntk"]

        cold, _ = best_of(run, args.repeat, setup=_interp.eoc_interpolant.cache_clear)
        warm, _ = best_of(run, args.repeat)
        r = nt[d]
        target = {50: ">= 10x", 200: ">= 50x"}.get(d, "(none)")
        emit(f"NTK n={args.n} m0={args.m0} {args.data} depth {d}: neural-tangents warm / eoc-ntk", target,
             f"{r['warm'] / cold:.1f}x cold, {r['warm'] / warm:.1f}x warm (NT {r['warm']:.2f} s best of {r['runs']}, "
             f"NT first call incl. compile {r['first']:.1f} s; eoc-ntk cold {cold:.2f} s, warm {warm:.2f} s, "
             f"best of {args.repeat})", cmd)


def _rel(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """``(max |dK| / |K|, max |dK| / sqrt(K_ii K_jj))`` over every entry."""
    d = np.sqrt(np.abs(np.diag(ours)))
    diff = np.abs(ours - theirs)
    return float(np.max(diff / np.abs(ours))), float(np.max(diff / np.outer(d, d)))


def smooth_agreement(python: str, args, cmd: str) -> None:
    """NNGP and NTK of eoc-ntk and neural-tangents for erf / gelu at the EOC of ``--sigma-b``."""
    model = Model(1, activation=args.activation, sigma_b=args.sigma_b)
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((args.check_n, args.m0))
    xs *= (np.linspace(0.25, 2.0, args.check_n) * np.sqrt(args.m0) / np.linalg.norm(xs, axis=1))[:, None]
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/xs.npy", xs)
        proc = subprocess.run(
            [python, str(WORKER), f"{tmp}/xs.npy", "--depths", *map(str, args.depths), "--activation",
             args.activation, "--sigma-w", repr(model.sigma_w), "--sigma-b", repr(args.sigma_b),
             "--check", f"{tmp}/xs.npy", f"{tmp}/ks.npz"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"neural-tangents worker failed:\n{proc.stderr[-3000:]}")
        jax_version = json.loads(proc.stdout.strip().splitlines()[-1])["jax"]
        ks = dict(np.load(f"{tmp}/ks.npz"))
    where = (f"{args.activation} sigma_b={args.sigma_b:g} sigma_w={model.sigma_w:.6g} (EOC, q*={model.q_star:.4g}), "
             f"n={args.check_n} m0={args.m0}, norms 0.25-2 sqrt(m0)")
    for kind in ("nngp", "ntk"):
        per_depth = []
        for d in args.depths:
            ours = kernel(xs, depth=d, activation=args.activation, sigma_b=args.sigma_b, kind=kind)
            per_depth.append((d, *_rel(ours, ks[f"{kind}_{d}"])))
        emit(f"eoc-ntk vs neural-tangents (jax {jax_version}) {kind.upper()}, {where}: max |dK|/|K|; "
             "max |dK|/sqrt(K_ii K_jj)", "~1e-12",
             f"{max(r[1] for r in per_depth):.1e}; {max(r[2] for r in per_depth):.1e} (depth "
             + ", ".join(f"{d}: {a:.0e}/{b:.0e}" for d, a, b in per_depth) + ")", cmd)


if __name__ == "__main__":
    main()
