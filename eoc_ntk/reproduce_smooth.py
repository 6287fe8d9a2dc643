"""The report's section on activations beyond the family (``eoc-ntk reproduce``; docs/math.md §9).

Condition number of ``K/n`` vs depth for ReLU, abs, erf, tanh, GELU and SiLU, each at its edge of
chaos on the same data (the family at ``sigma_b = 0``, the smooth ones at ``sigma_b = 0.1``, the
EOC being a curve for them), with each depth limit and the first depth of the grid from which the
condition number stays within 10 % of its limit.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from eoc_ntk import plots
from eoc_ntk.core.progress import ProgressFn
from eoc_ntk.core.sweep import activation_sweep

__all__ = ["SMOOTH_ACTIVATIONS", "SMOOTH_SIGMA_B", "SMOOTH_DEPTHS", "SMOOTH_N", "within_depth", "smooth_experiment",
           "smooth_lines"]

#: The section's activations, in the order of the table.
SMOOTH_ACTIVATIONS = ("relu", "abs", "erf", "tanh", "gelu", "silu")
#: ``sigma_b`` of the smooth activations' edge of chaos (the family's is at ``sigma_b = 0``).
SMOOTH_SIGMA_B = 0.1
SMOOTH_DEPTHS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)
#: Points of the section (the first images of the report's data).
SMOOTH_N = 16
_SMOOTH = frozenset(("erf", "tanh", "gelu", "silu"))


def within_depth(depths: list[int], cond: list[float | None], limit: float | None, tol: float = 0.1) -> int | None:
    """First depth of ``depths`` from which ``|cond - limit| <= tol * limit`` holds at every later depth.

    None when the limit is unknown or infinite, or when the last depth is not yet within it.
    """
    if limit is None or not math.isfinite(limit):
        return None
    found = None
    for depth, c in zip(depths, cond, strict=True):
        ok = c is not None and math.isfinite(c) and abs(c - limit) <= tol * limit
        if ok and found is None:
            found = depth
        elif not ok:
            found = None
    return found


def smooth_experiment(x: np.ndarray, *, depths=SMOOTH_DEPTHS, activations=SMOOTH_ACTIVATIONS,
                      sigma_b: float = SMOOTH_SIGMA_B, tol: float = 0.1,
                      progress: ProgressFn | None = None) -> dict[str, Any]:
    """The section's numbers: the sweep (``activation_sweep``'s document) and, per activation,
    ``sigma_w``, ``sigma_b``, ``variance_slope`` (None for the family), the limit, the depth within ``tol``
    of it (:func:`within_depth`) and ``note``: why the limit is missing, where it is (the sweep's
    ``limit_note``)."""
    sigma_bs = [sigma_b if a in _SMOOTH else 0.0 for a in activations]
    sweep = activation_sweep(x, list(depths), list(activations), sigma_b=sigma_bs, progress=progress)
    rows = []
    for name, res in zip(activations, sweep["results"], strict=True):
        limit = res.get("limit_condition_number")
        limit = None if limit is None or (isinstance(limit, float) and math.isnan(limit)) else float(limit)
        slope = res["activation"].get("variance_slope")
        rows.append({"activation": name, "sigma_w": float(res["activation"]["sigma_w"]),
                     "variance_slope": None if slope is None or math.isnan(slope) else float(slope),
                     "sigma_b": float(res["activation"]["sigma_b"]), "limit": limit,
                     "within": within_depth(sweep["depths"], res["condition_number"], limit, tol),
                     "note": res.get("limit_note")})
    return {"tolerance": tol, "sweep": sweep, "rows": rows}


def _fmt(v: Any) -> str:
    return "∞" if v is None or (isinstance(v, float) and math.isinf(v)) else f"{float(v):.4g}"


def smooth_lines(res: dict[str, Any], out: str) -> list[str]:
    """The markdown of the section, with its figure written into ``out``."""
    plots.plot_sweep(res["sweep"], os.path.join(out, "smooth.png"))
    sweep, rows = res["sweep"], res["rows"]
    names = [r["activation"] for r in rows]
    lines = ["", "## Activations beyond the family", "",
             "Condition number of `K/n` vs depth on the same data, each activation at its edge of chaos: ReLU "
             f"and abs at `sigma_b = 0`, erf, tanh, GELU and SiLU at `sigma_b = {_fmt(SMOOTH_SIGMA_B)}` with "
             "`sigma_w` solving the EOC conditions (docs/math.md §9). The last columns: the depth limit and the "
             f"first depth of the grid from which the condition number stays within {res['tolerance']:.0%} "
             "of it; the limit needs the variance fixed point q* to attract (a slope below 1).", "",
             "![smooth activations](smooth.png)", "",
             "| activation | sigma_w | sigma_b | variance-map slope at q* | limit | within 10 % from depth |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['activation']} | {_fmt(r['sigma_w'])} | {_fmt(r['sigma_b'])} | "
              f"{'–' if r['variance_slope'] is None else _fmt(r['variance_slope'])} | "
              f"{'n/a' if r.get('note') else _fmt(r['limit'])} | {'–' if r['within'] is None else r['within']} |"
              for r in rows]
    notes = [f"- {r['activation']}: {r['note']}" for r in rows if r.get("note")]
    lines += ["", "Limits marked n/a:", "", *notes] if notes else []
    lines += ["", "| depth | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for j, depth in enumerate(sweep["depths"]):
        lines.append(f"| {depth} | " + " | ".join(_fmt(r["condition_number"][j]) for r in sweep["results"]) + " |")
    return lines
