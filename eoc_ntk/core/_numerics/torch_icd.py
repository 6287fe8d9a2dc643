"""The ICD analysis (:func:`eoc_ntk.core.icd.analyse_icd`) of kernels held on a torch device.

The same quantities from the unnormalised NTK ``K`` and ICD matrix ``A`` (both n x n on the
device): the entrywise errors of ``(K - A) / n`` off the diagonal, the bound
``min(max row sum, Frobenius norm)`` of ``|K - A| / n``, the Gershgorin interval of ``K / n``,
all by row blocks (workspace of a few blocks), and the eigenvalues of ``A / n`` by the device's
``eigvalsh``. ``A`` is divided by n in place.
"""
from __future__ import annotations

import math

from eoc_ntk.core._numerics.torch_device import BLOCK_ENTRIES, Tensor, load_torch
from eoc_ntk.core.icd import IcdAnalysis

__all__ = ["torch_analyse_icd"]


def torch_analyse_icd(k: Tensor, a: Tensor) -> IcdAnalysis:
    """:class:`IcdAnalysis` of ``K`` (not modified) and ``A`` (overwritten by ``A / n``)."""
    torch = load_torch()
    n = k.shape[0]
    rows = max(1, BLOCK_ENTRIES // n)
    max_abs, max_rel, row_max, squares = 0.0, 0.0, 0.0, 0.0
    g_low, g_high = math.inf, -math.inf
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        kb = k[i0:i1]
        off = torch.ones_like(kb, dtype=torch.bool)
        off[:, i0:i1].fill_diagonal_(False)  # the diagonal of A is exact
        abs_err = torch.where(off, ((kb - a[i0:i1]) / n).abs(), 0.0)
        kn_abs = kb.abs() / n
        max_abs = max(max_abs, float(abs_err.max()))
        mask = off & (kn_abs > 0.0)
        if bool(mask.any()):
            max_rel = max(max_rel, float((abs_err[mask] / kn_abs[mask]).max()))
        row_max = max(row_max, float(abs_err.sum(dim=1).max()))
        squares += float((abs_err * abs_err).sum())
        diag = kb[:, i0:i1].diagonal() / n
        radius = kn_abs.sum(dim=1) - diag.abs()
        g_low = min(g_low, float((diag - radius).min()))
        g_high = max(g_high, float((diag + radius).max()))
    bound = min(row_max, math.sqrt(squares))
    eig_a = torch.linalg.eigvalsh(a.div_(n)).cpu().numpy()
    amin, amax = float(eig_a[0]), float(eig_a[-1])
    lmin_lo, lmin_hi = max(amin - bound, 0.0), max(amin + bound, 0.0)
    lmax_lo, lmax_hi = max(amax - bound, 0.0), amax + bound
    return IcdAnalysis(
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        error_norm_bound=bound,
        lambda_min_bounds=(lmin_lo, lmin_hi),
        lambda_max_bounds=(lmax_lo, lmax_hi),
        condition_number_bounds=(max(1.0, lmax_lo / lmin_hi) if lmin_hi > 0.0 else math.inf,
                                 lmax_hi / lmin_lo if lmin_lo > 0.0 else math.inf),
        icd_lambda_min=amin,
        icd_lambda_max=amax,
        gershgorin=(g_low, g_high),
    )
