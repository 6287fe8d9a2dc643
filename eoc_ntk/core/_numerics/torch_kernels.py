"""Kernels on a torch device, built in row blocks: the matrix plus a bounded workspace.

The same computation as :func:`eoc_ntk.core.kernels.compute_scaled_kernels`, step for step:
unit rows and norms scale-free on the host (O(n m0)), then on the device per block of rows the
cosines (one GEMM), ``u = 2 log tan(alpha/2)`` (near-parallel pairs recomputed from differences
of unit vectors), ``theta_l`` and ``u_l`` from the cached interpolants' coefficients (or the exact
recursion where they do not apply) and the prefactor ``M m_i m_j 2^(E + e_i + e_j)``.

Symmetric kernels: block ``i0:i1`` computes columns ``i0:`` only and mirrors them into the lower
triangle, so the matrix is exactly symmetric. With an interpolant the first pass stores ``u`` in
the output (it needs the set of intervals before the interpolant is built) and the second pass
overwrites it block by block. Peak device memory: the n x n2 output plus
``WORKSPACE_TEMPS`` temporaries of one block (:mod:`eoc_ntk.core._numerics.torch_device`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from eoc_ntk.core._numerics.interp import DEGREE, INTERVALS, U_MAX, WIDTH, AngleInterpolant, eoc_interpolant
from eoc_ntk.core._numerics.torch_device import (
    BLOCK_ENTRIES,
    WORKSPACE_TEMPS,
    Tensor,
    check_fits,
    load_torch,
)
from eoc_ntk.core._numerics.torch_recursion import (
    angles_to_u,
    eoc_recursion,
    general_recursion,
    ldexp,
    u_to_angles,
)
from eoc_ntk.core.kernels import scaled_rows
from eoc_ntk.core.model import Model
from eoc_ntk.core.progress import ProgressFn

__all__ = ["torch_scaled_kernel"]

# Pairs with 1 - |cos| below this are recomputed from differences of unit vectors (as on NumPy).
_NEAR_PARALLEL = 1e-3


def torch_scaled_kernel(x: np.ndarray, x2: np.ndarray | None, model: Model, kind: str, dev: Tensor, *,
                        relative: bool, progress: ProgressFn | None = None, extra_matrices: float = 0.0,
                        held: int = 0) -> tuple[Tensor, int]:
    """``(K, shift)``: the kernel ``kind`` of checked float64 inputs as a float64 tensor on ``dev``.

    ``K * 2^shift`` is the kernel; ``shift`` is 0 unless ``relative`` (at ``sigma_b = 0`` the
    largest entries are then O(depth)), as in :func:`eoc_ntk.core.kernels.compute_scaled_kernels`.
    ``extra_matrices``: further n x n2 float64 arrays the caller will allocate afterwards, ``held``:
    bytes it already holds on the device (both counted in the memory check). Raises
    ``DeviceMemoryError`` when the plan does not fit.
    """
    torch = load_torch()
    u, v, weights, shift = scaled_rows(x, x2, model, relative)
    n, n2 = u.shape[0], v.shape[0]
    symmetric = x2 is None
    budget = check_fits(dev, n, 1.0 + extra_matrices, WORKSPACE_TEMPS * 8 * n2, "the kernel", n2, held)
    spare = budget - int((1.0 + extra_matrices) * n * n2 * 8)
    rows = int(max(1, min(n, min(BLOCK_ENTRIES, spare // (8 * WORKSPACE_TEMPS)) // max(n2, 1))))
    job = _Blocks(torch, dev, u, v, weights, model, kind, symmetric, progress)
    out = torch.empty((n, n2), dtype=torch.float64, device=dev)
    blocks = [(i0, min(n, i0 + rows)) for i0 in range(0, n, rows)]
    interp = _interpolant(model, n * n2)
    if interp is not None:
        counts = torch.zeros(INTERVALS, dtype=torch.int64, device=dev)
        for i0, i1 in blocks:
            counts += job.store_u(out, i0, i1)
        interp.ensure(np.flatnonzero(counts.cpu().numpy()))
        job.use(interp)
    for i0, i1 in blocks:
        job.fill(out, i0, i1, from_u=interp is not None)
    return out, shift


def _interpolant(model: Model, entries: int) -> AngleInterpolant | None:
    """The interpolant of ``(depth, Delta)`` where the NumPy core's ``method="auto"`` uses one."""
    usable = model.sigma_b == 0.0 and model.depth >= 2 and model.delta > 0.0
    return eoc_interpolant(model.depth, model.delta) if usable and entries >= 4096 else None


class _Blocks:
    """The per-block steps of one kernel on one device."""

    def __init__(self, torch: Any, dev: Tensor, u: np.ndarray, v: np.ndarray, weights: tuple[Any, Any], model: Model,
                 kind: str, symmetric: bool, progress: ProgressFn | None):
        self.torch, self.dev, self.model, self.kind = torch, dev, model, kind
        self.symmetric, self.progress = symmetric, progress
        self.u = torch.from_numpy(np.ascontiguousarray(u)).to(dev)
        self.v = self.u if symmetric else torch.from_numpy(np.ascontiguousarray(v)).to(dev)
        self.zero_u = ~torch.any(self.u != 0.0, dim=1)
        self.zero_v = ~torch.any(self.v != 0.0, dim=1)
        self.n, self.n2 = self.u.shape[0], self.v.shape[0]
        self.homogeneous = model.sigma_b == 0.0
        self.w: tuple[Any, Any]
        if self.homogeneous:
            pairs = [(torch.from_numpy(np.asarray(m, dtype=np.float64)).to(dev),
                      torch.from_numpy(np.asarray(e, dtype=np.int64)).to(dev)) for m, e in weights]
            self.w = (pairs[0], pairs[1])
        else:
            rows, cols = (torch.from_numpy(np.asarray(r, dtype=np.float64)).to(dev) for r in weights)
            self.w = (rows, cols)
        self.coef: dict[str, Tensor] | None = None
        self.state: Tensor = None
        self.done = 0.0

    def use(self, interp: AngleInterpolant) -> None:
        """Move the interpolant's coefficients and interval states to the device."""
        t = self.torch
        self.coef = {which: t.from_numpy(np.array(interp.coefficients(which))).to(self.dev)
                     for which in ("theta", "u_last")}
        self.state = t.from_numpy(np.asarray(interp.state == 1)).to(self.dev)

    def _columns(self, i0: int) -> int:
        return i0 if self.symmetric else 0

    def _u(self, i0: int, i1: int) -> Tensor:
        """``u`` of rows ``i0:i1`` against columns ``j0:`` (docs/math.md §4)."""
        t = self.torch
        j0 = self._columns(i0)
        ub, vb = self.u[i0:i1], self.v[j0:]
        cos = (ub @ vb.T).clamp_(-1.0, 1.0)
        near = cos.abs() > 1.0 - _NEAR_PARALLEL
        out = t.atanh(cos).mul_(-2.0)  # log((1 - c)/(1 + c)) = -2 atanh(c)
        zu, zv = self.zero_u[i0:i1], self.zero_v[j0:]
        near[zu, :] = False
        near[:, zv] = False
        if self.symmetric:
            near.diagonal().fill_(False)
        rows, cols = near.nonzero(as_tuple=True)
        del near
        chunk = max(1, BLOCK_ENTRIES // max(ub.shape[1], 1))
        for s in range(0, rows.numel(), chunk):
            i, j = rows[s:s + chunk], cols[s:s + chunk]
            a, b = ub[i], vb[j]
            diff = t.linalg.vector_norm(a - b, dim=1)
            summ = t.linalg.vector_norm(a + b, dim=1)
            out[i, j] = 2.0 * (t.log(diff) - t.log(summ))
        if self.symmetric:
            out.diagonal().fill_(-float("inf"))
        out[zu, :] = 0.0
        out[:, zv] = 0.0
        return out

    def store_u(self, out: Tensor, i0: int, i1: int) -> Tensor:
        """Write ``u`` of the block into ``out``; return the interval counts of its entries."""
        t = self.torch
        region = self._u(i0, i1)
        out[i0:i1, self._columns(i0):] = region
        inside = region[region.abs() <= U_MAX]
        idx = ((inside + U_MAX) * (1.0 / WIDTH)).to(t.int64).clamp_(0, INTERVALS - 1)
        self._report(0.3 * region.numel())
        return t.bincount(idx, minlength=INTERVALS)

    def fill(self, out: Tensor, i0: int, i1: int, from_u: bool) -> None:
        """Overwrite the block of ``out`` with the kernel (and mirror it when symmetric)."""
        j0 = self._columns(i0)
        uu = out[i0:i1, j0:].clone() if from_u else self._u(i0, i1)
        values = self._kernel(uu, i0, i1, j0)
        del uu
        out[i0:i1, j0:] = values
        if self.symmetric:
            out[i1:, i0:i1] = values[:, i1 - i0:].T
            square = out[i0:i1, i0:i1]
            lower = self.torch.tril_indices(i1 - i0, i1 - i0, -1, device=self.dev)
            square[lower[0], lower[1]] = square.T[lower[0], lower[1]]
        self._report((0.7 if from_u else 1.0) * values.numel())

    def _kernel(self, uu: Tensor, i0: int, i1: int, j0: int) -> Tensor:
        t, model, kind = self.torch, self.model, self.kind
        if not self.homogeneous:
            alpha, beta = u_to_angles(uu)
            ntk, nngp, angle = general_recursion(self.w[0][i0:i1, None], self.w[1][None, j0:], alpha, beta,
                                                 self.u.shape[1], model.depth, model.delta,
                                                 model.a ** 2 + model.b ** 2, model.sigma_w2, model.sigma_b)
            return {"ntk": ntk, "nngp": nngp, "angle": angle}.get(kind, ntk)
        theta, u_last = self._normalised(uu, kind == "ntk", kind != "ntk")
        (m_i, e_i), (m_j, e_j) = self.w
        mantissas = t.outer(m_i[i0:i1], m_j[j0:])
        exponents = e_i[i0:i1, None] + e_j[None, j0:]
        if kind == "ntk":
            return ldexp(mantissas * theta, exponents)
        if kind == "nngp":
            return ldexp(mantissas * -t.tanh(0.5 * u_last), exponents)
        alpha_last = u_to_angles(u_last)[0]
        if kind == "angle":
            return alpha_last
        collapsed = alpha_last == 0.0
        approx = 3.0 * np.pi / (8.0 * model.delta * t.where(collapsed, 1.0, alpha_last))
        approx[collapsed] = float(model.depth)
        return ldexp(mantissas * approx, exponents)

    def _normalised(self, uu: Tensor, need_theta: bool, need_angle: bool) -> tuple[Tensor, Tensor]:
        """``theta_l`` and ``u_l`` of a block, as :func:`eoc_ntk.core.kernels.normalised_kernels`."""
        t, depth, delta = self.torch, self.model.depth, self.model.delta
        if depth == 1:
            return (-t.tanh(0.5 * uu) if need_theta else None), (uu if need_angle else None)
        same = uu == -float("inf")
        theta: Tensor = t.empty_like(uu) if need_theta else None
        u_last: Tensor = t.empty_like(uu) if need_angle else None
        if self.coef is None:
            exact = ~same
        else:
            fast = uu.abs() <= U_MAX
            f = (t.where(fast, uu, 0.0) + U_MAX) * (1.0 / WIDTH)
            idx = f.to(t.int64).clamp_(0, INTERVALS - 1)
            tt = (f - idx) * 2.0 - 1.0
            del f
            if need_theta:
                theta = _horner(self.coef["theta"], idx, tt)
            if need_angle:
                u_last = _horner(self.coef["u_last"], idx, tt)
            exact = ~((fast & self.state[idx]) | same)
            del idx, tt, fast
        if need_theta:
            theta[same] = float(depth)
        if need_angle:
            u_last[same] = -float("inf")
        if bool(exact.any()):
            alpha, beta = u_to_angles(uu[exact])
            th, alpha_l, beta_l = eoc_recursion(alpha, beta, depth, delta)
            if need_theta:
                theta[exact] = th
            if need_angle:
                u_last[exact] = angles_to_u(alpha_l, beta_l)
        return theta, u_last

    def _report(self, units: float) -> None:
        if self.progress is None:
            return
        self.done += units
        total = self.n * self.n2 / (2.0 if self.symmetric else 1.0)
        self.progress(min(1.0, self.done / max(total, 1.0)))


def _horner(coef: Tensor, idx: Tensor, tt: Tensor) -> Tensor:
    """``sum_k coef[k, idx] tt^k`` by Horner's rule, in the NumPy interpolant's order of operations."""
    acc = coef[DEGREE][idx]
    for j in range(DEGREE - 1, -1, -1):
        acc = acc * tt
        acc += coef[j][idx]
    return acc
