"""neural-tangents side of ``bench_nt.py``; runs in the interpreter that has neural-tangents
(the ``nt`` extra, or a separate venv) and prints one JSON line per depth.

Not imported by eoc-ntk: it needs only numpy, jax and neural-tangents.

    python bench/_nt_worker.py X.npy --depths 3 10 --a 0.5 --b 0.5 --repeat 3 [--check XS.npy OUT.npz]
    python bench/_nt_worker.py XS.npy --depths 1 3 --activation erf --sigma-w 1.06 --sigma-b 0.1 \
        --check XS.npy OUT.npz --repeat 0         # smooth activations: kernels only, no timing
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def nt_kernel_fn(depth: int, a: float, b: float):
    """The EOC MLP of docs/math.md in neural-tangents: ``depth`` Dense layers (``W_std = sigma_w``,
    ``b_std = 0``), an activation between consecutive ones. docs/math.md's ``phi(s) = a s + b |s|``
    is ``(a - b) min(s, 0) + (a + b) max(s, 0)``, i.e. NT's ``ABRelu(a - b, a + b)``."""
    from neural_tangents import stax

    sigma_w = 1.0 / np.sqrt(a * a + b * b)
    layers = [stax.Dense(1, W_std=sigma_w, b_std=0.0)]
    for _ in range(depth - 1):
        layers += [stax.ABRelu(a - b, a + b), stax.Dense(1, W_std=sigma_w, b_std=0.0)]
    return stax.serial(*layers)[2]


def nt_smooth_kernel_fn(depth: int, activation: str, sigma_w: float, sigma_b: float):
    """The smooth MLP of docs/math.md §9 in neural-tangents: ``depth`` Dense layers in NTK
    parameterisation (``W_std = sigma_w``, ``b_std = sigma_b``: ``Sigma_1 = sigma_w^2 <x, x'> / m0 +
    sigma_b^2``, ``Theta_1 = Sigma_1``) with ``phi`` between consecutive ones: ``erf(x)`` is NT's
    ``Erf(a=1, b=1, c=0)`` (``a erf(b x) + c``), ``x Phi(x)`` its ``Gelu(approximate=False)``."""
    from neural_tangents import stax

    phi = {"erf": lambda: stax.Erf(a=1.0, b=1.0, c=0.0), "gelu": lambda: stax.Gelu(approximate=False)}[activation]
    layers = [stax.Dense(1, W_std=sigma_w, b_std=sigma_b)]
    for _ in range(depth - 1):
        layers += [phi(), stax.Dense(1, W_std=sigma_w, b_std=sigma_b)]
    return stax.serial(*layers)[2]


def main(argv=None):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    p = argparse.ArgumentParser()
    p.add_argument("x")
    p.add_argument("--depths", type=int, nargs="+", required=True)
    p.add_argument("--a", type=float, default=0.5)
    p.add_argument("--b", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--activation", choices=("abrelu", "erf", "gelu"), default="abrelu",
                   help="erf, gelu: the kernels of --check only (keys ntk_D, nngp_D), no timing")
    p.add_argument("--sigma-w", type=float, default=None, help="erf, gelu: the weight std (eoc-ntk's EOC value)")
    p.add_argument("--sigma-b", type=float, default=0.0)
    p.add_argument("--check", nargs=2, metavar=("XS", "OUT"), help="also write NT kernels of XS to OUT (.npz)")
    args = p.parse_args(argv)

    if args.activation != "abrelu":
        xs = jnp.asarray(np.load(args.check[0]))
        ks = {}
        for d in args.depths:
            nngp, ntk = nt_smooth_kernel_fn(d, args.activation, args.sigma_w, args.sigma_b)(xs, None, ("nngp", "ntk"))
            ks[f"nngp_{d}"], ks[f"ntk_{d}"] = np.asarray(nngp), np.asarray(ntk)
        np.savez(args.check[1], **ks)
        print(json.dumps({"jax": jax.__version__}), flush=True)
        return 0
    if args.check:
        xs = jnp.asarray(np.load(args.check[0]))
        ks = {str(d): np.asarray(nt_kernel_fn(d, args.a, args.b)(xs, None, "ntk")) for d in args.depths}
        np.savez(args.check[1], **ks)

    x = jnp.asarray(np.load(args.x))
    for depth in args.depths:
        fn = jax.jit(nt_kernel_fn(depth, args.a, args.b), static_argnames="get")
        t0 = time.perf_counter()
        fn(x, None, get="ntk").block_until_ready()
        first = time.perf_counter() - t0
        warm = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn(x, None, get="ntk").block_until_ready()
            warm.append(time.perf_counter() - t0)
        print(json.dumps({"depth": depth, "first": first, "warm": min(warm), "runs": len(warm),
                          "jax": jax.__version__}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
