"""``eoc-ntk reproduce``: the paper's claims on a real dataset, as a markdown report with figures.

The data are scikit-learn's handwritten digits (shipped inside the package, no download):
``n`` images drawn with a fixed seed, pixels standardised (constant pixels dropped), one
point per image. The report shows, for "MLPs at the EOC: Spectrum of the NTK" (docs/math.md §5):

1. the relative error of the ICD approximation vs depth for Delta in {0.25, 0.5, 1} (median
   and maximum over the off-diagonal entries): it falls with depth, faster for larger Delta;
2. the condition number of K/n vs depth for linear, leaky ReLU (slope 0.1), ReLU and the
   absolute value, each with its depth limit: it approaches the limit faster for larger Delta,
   the absolute value best, and does not move with depth for the linear network;
3. the Weyl bounds that the ICD matrix certifies for lambda_min and lambda_max of K/n, against
   the true extremes.

:func:`experiments` computes the numbers (used by the tests on a small instance);
:func:`reproduce` writes ``report.md`` and its figures.
"""
from __future__ import annotations

import math
import os

import numpy as np

from . import icd_analysis, kernel, plots
from .activations import parse_activation
from .progress import ProgressFn
from .sweep import activation_sweep

__all__ = ["DELTAS", "ICD_DEPTHS", "COND_DEPTHS", "digits", "activation_for_delta", "experiments", "claims",
           "reproduce"]

DELTAS = (0.25, 0.5, 1.0)
ICD_DEPTHS = (2, 3, 5, 10, 20, 50, 100, 200)
COND_DEPTHS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500)
COND_ACTIVATIONS = ("linear", "leaky_relu:0.1", "relu", "abs")


def digits(n: int = 200, seed: int = 0) -> np.ndarray:
    """``n`` standardised digits (8x8 images as rows), pairwise different directions."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn is the [sklearn] extra

    x = load_digits().data.astype(float)
    x = x[:, x.std(axis=0) > 0]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    order = np.random.default_rng(seed).permutation(len(x))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    keep: list[int] = []
    for i in order:  # drop points pointing the same way as one kept (a singular NTK)
        if not keep or np.max(unit[keep] @ unit[i]) < 1 - 1e-9:
            keep.append(int(i))
        if len(keep) == n:
            break
    return x[keep]


def activation_for_delta(delta: float) -> tuple[float, float]:
    """``(a, b)`` with ``a^2 + b^2 = 1`` and ``b^2 / (a^2 + b^2) = delta``."""
    return math.sqrt(1.0 - delta), math.sqrt(delta)


def _offdiag_rel_errors(x: np.ndarray, depth: int, a: float, b: float) -> np.ndarray:
    k = kernel(x, depth=depth, a=a, b=b, kind="ntk")
    approx = kernel(x, depth=depth, a=a, b=b, kind="icd")
    mask = ~np.eye(len(x), dtype=bool)
    return np.abs(k[mask] - approx[mask]) / np.abs(k[mask])


def experiments(x: np.ndarray, *, icd_depths=ICD_DEPTHS, cond_depths=COND_DEPTHS, deltas=DELTAS,
                cond_activations=COND_ACTIVATIONS, weyl_activations=("relu", "abs"),
                progress: ProgressFn | None = None) -> dict:
    """The numbers of the report for data ``x`` (JSON-shaped; infinities as ``inf``)."""
    steps = len(deltas) * len(icd_depths) + len(cond_activations) + len(weyl_activations) * len(icd_depths)
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / steps)

    icd = {"depths": list(icd_depths), "deltas": list(deltas), "median": [], "max": []}
    for delta in deltas:
        a, b = activation_for_delta(delta)
        med, mx = [], []
        for depth in icd_depths:
            err = _offdiag_rel_errors(x, depth, a, b)
            med.append(float(np.median(err)))
            mx.append(float(err.max()))
            tick()
        icd["median"].append(med)
        icd["max"].append(mx)

    cond = activation_sweep(x, list(cond_depths), cond_activations)
    for _ in cond_activations:
        tick()

    weyl = {"depths": list(icd_depths), "results": []}
    for name in weyl_activations:
        act = parse_activation(name)
        rows = {"activation": act.label, "lambda_min": [], "lambda_max": [], "lambda_min_bounds": [],
                "lambda_max_bounds": []}
        for depth in icd_depths:
            res = icd_analysis(x, depth=depth, a=act.a, b=act.b)
            kn = kernel(x, depth=depth, a=act.a, b=act.b) / len(x)
            eig = np.linalg.eigvalsh(kn)
            rows["lambda_min"].append(float(eig[0]))
            rows["lambda_max"].append(float(eig[-1]))
            rows["lambda_min_bounds"].append([float(v) for v in res.lambda_min_bounds])
            rows["lambda_max_bounds"].append([float(v) for v in res.lambda_max_bounds])
            tick()
        weyl["results"].append(rows)
    return {"n": int(x.shape[0]), "m0": int(x.shape[1]), "icd": icd, "cond": cond, "weyl": weyl}


def claims(res: dict, depth: int = 100) -> dict[str, bool]:
    """The paper's qualitative claims, checked on the numbers of :func:`experiments`."""
    icd = res["icd"]
    falls = all(med[-1] < med[0] and all(b <= a * 1.05 for a, b in zip(med, med[1:])) for med in icd["median"])
    by_delta = [med[-1] for med in icd["median"]]
    cond = res["cond"]
    depths = cond["depths"]
    i = depths.index(depth) if depth in depths else len(depths) - 1
    named = {r["activation"]["label"]: r for r in cond["results"]}
    gap = {name: named[name]["condition_number"][i] / named[name]["limit_condition_number"] - 1
           for name in ("leaky_relu:0.1", "relu", "abs") if name in named}
    linear = named.get("linear")
    linear_flat = True
    if linear is not None:
        finite = [c for c in linear["condition_number"] if c is not None and math.isfinite(c)]
        if finite:  # n <= m0: the same condition number at every depth
            linear_flat = len(finite) == len(depths) and max(finite) <= min(finite) * (1 + 1e-6)
        else:  # n > m0: singular (rank <= m0) at every depth
            linear_flat = all(linear["singular"])
    abs_beats = all(named["abs"]["condition_number"][j] < named["relu"]["condition_number"][j]
                    for j, d in enumerate(depths) if d >= 10)
    weyl_ok = all(lo - 1e-12 <= t <= hi + 1e-12 for r in res["weyl"]["results"]
                  for key in ("lambda_min", "lambda_max")
                  for t, (lo, hi) in zip(r[key], r[key + "_bounds"]))
    return {
        "icd_error_falls_with_depth": falls,
        "icd_error_smaller_for_larger_delta": all(a > b for a, b in zip(by_delta, by_delta[1:])),
        "condition_number_approaches_limit_faster_for_larger_delta":
            all(gap[p] > gap[q] > 0 for p, q in (("leaky_relu:0.1", "relu"), ("relu", "abs")) if p in gap and q in gap),
        "abs_better_conditioned_than_relu": abs_beats,
        "linear_condition_number_constant_in_depth": linear_flat,
        "weyl_bounds_contain_true_extremes": weyl_ok,
    }


def _fmt(v) -> str:
    return "∞" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _figures(res: dict, out: str) -> dict[str, str]:
    names = {}
    icd = res["icd"]
    fig = plots.new_figure()
    ax = fig.add_subplot()
    for i, delta in enumerate(icd["deltas"]):
        ax.loglog(icd["depths"], icd["median"][i], "o-", color=f"C{i}", label=f"Δ={delta:g} median")
        ax.loglog(icd["depths"], icd["max"][i], "s--", color=f"C{i}", alpha=0.6, label=f"Δ={delta:g} max")
    ax.set_xlabel("depth l")
    ax.set_ylabel("relative error |K - A| / |K| (off-diagonal)")
    ax.set_title("ICD approximation error vs depth", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    names["icd"] = plots.save(fig, os.path.join(out, "icd_error.png"))

    names["cond"] = plots.save(plots.sweep_figure(res["cond"]), os.path.join(out, "condition_number.png"))

    weyl = res["weyl"]
    fig = plots.new_figure(9.6, 4.2)
    for col, key in enumerate(("lambda_min", "lambda_max")):
        ax = fig.add_subplot(1, 2, col + 1)
        values = [v for r in weyl["results"] for v in r[key] + [b for bs in r[key + "_bounds"] for b in bs]
                  if v > 0 and math.isfinite(v)]
        bottom = min(values) / 3
        for i, r in enumerate(weyl["results"]):
            lo = np.array([b[0] for b in r[key + "_bounds"]])
            hi = np.array([b[1] for b in r[key + "_bounds"]])
            # A lower bound of 0 says nothing: its shading runs to the bottom of the axes.
            ax.fill_between(weyl["depths"], np.maximum(lo, bottom), hi,
                            color=f"C{i}", alpha=0.2, label=f"{r['activation']} Weyl bounds")
            ax.plot(weyl["depths"], r[key], "o-", color=f"C{i}", label=f"{r['activation']} true")
        ax.set_ylim(bottom=bottom)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("depth l")
        ax.set_title(f"{key} of K/n", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    names["weyl"] = plots.save(fig, os.path.join(out, "weyl_bounds.png"))
    return {k: os.path.basename(v) for k, v in names.items()}


def reproduce(out: str = "eoc-ntk-report", *, n: int = 200, seed: int = 0,
              progress: ProgressFn | None = None, **kw) -> str:
    """Write ``out/report.md`` with its figures for ``n`` digits; returns the report's path."""
    os.makedirs(out, exist_ok=True)
    x = digits(n, seed)
    res = experiments(x, progress=progress, **kw)
    figs = _figures(res, out)
    checks = claims(res)
    icd, cond, weyl = res["icd"], res["cond"], res["weyl"]
    lines = [
        "# MLPs at the EOC: the NTK's spectrum on handwritten digits",
        "",
        f"Data: {res['n']} images of scikit-learn's digits (seed {seed}), {res['m0']} standardised pixels each. "
        "The matrix is the paper's `K/n`, with `K` the infinite-width NTK at the edge of chaos "
        "(arXiv:2501.13225; docs/math.md of this project). Produced by `eoc-ntk reproduce`.",
        "",
        "## Claims",
        "",
        "| claim | holds here |",
        "| --- | --- |",
    ]
    lines += [f"| {name.replace('_', ' ')} | {'yes' if ok else '**no**'} |" for name, ok in checks.items()]
    lines += ["", "## ICD relative error vs depth", "",
              "Median (and maximum) over the off-diagonal entries of `|K - A| / |K|`, with `A` the inverse-cosine-"
              "distance approximation, for activations with `Delta = b^2/(a^2+b^2)` in {0.25, 0.5, 1}.", "",
              f"![ICD error]({figs['icd']})", "",
              "| depth | " + " | ".join(f"Δ={d:g} median | Δ={d:g} max" for d in icd["deltas"]) + " |",
              "| --- |" + " --- | --- |" * len(icd["deltas"])]
    for j, depth in enumerate(icd["depths"]):
        lines.append(f"| {depth} | " + " | ".join(f"{_fmt(icd['median'][i][j])} | {_fmt(icd['max'][i][j])}"
                                                   for i in range(len(icd["deltas"]))) + " |")
    labels = [r["activation"]["label"] for r in cond["results"]]
    lines += ["", "## Condition number vs depth", "",
              "Dashed: the depth limit `cond((3/4) diag(q) + (1/4) s s^T)` (none for the linear network, whose "
              "condition number does not depend on depth; it is singular, ∞, when n > m0 since its rank is at "
              "most m0).", "",
              f"![condition number]({figs['cond']})", "",
              "| depth | " + " | ".join(labels) + " |", "| --- |" + " --- |" * len(labels)]
    for j, depth in enumerate(cond["depths"]):
        lines.append(f"| {depth} | " + " | ".join(_fmt(r["condition_number"][j] if r["condition_number"][j] is not None
                                                       else math.inf) for r in cond["results"]) + " |")
    lines.append("| limit | " + " | ".join(_fmt(r["limit_condition_number"]) if r["limit_condition_number"] is not None
                                           else "–" for r in cond["results"]) + " |")
    lines += ["", "## Weyl bounds against the true extremes", "",
              "`|lambda_i(K) - lambda_i(A)| <= ||K - A||_2`: intervals certified by the ICD matrix (shaded) and the "
              "true extreme eigenvalues of `K/n` (dots). Where the lower bound of `lambda_min` is 0 (the error "
              "bound exceeds the ICD matrix's smallest eigenvalue), its shading runs to the bottom of the axes.", "", f"![Weyl bounds]({figs['weyl']})", ""]
    for r in weyl["results"]:
        lines += [f"**{r['activation']}**", "", "| depth | lambda_min | bounds | lambda_max | bounds |",
                  "| --- | --- | --- | --- | --- |"]
        for j, depth in enumerate(weyl["depths"]):
            lo, hi = r["lambda_min_bounds"][j]
            lo2, hi2 = r["lambda_max_bounds"][j]
            lines.append(f"| {depth} | {_fmt(r['lambda_min'][j])} | [{_fmt(lo)}, {_fmt(hi)}] | "
                         f"{_fmt(r['lambda_max'][j])} | [{_fmt(lo2)}, {_fmt(hi2)}] |")
        lines.append("")
    path = os.path.join(out, "report.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
