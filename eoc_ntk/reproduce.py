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
   the true extremes, with the intervals' widths;
4. the paper's headline as a number: for Delta = 0.25, 0.5, 1 the depth at which the condition
   number is within 10 % of its limit;
5. what the spectrum means for training (docs/learning.md §3, §7): the infinite-width training-loss
   prediction of :func:`eoc_ntk.dynamics` against real full-batch gradient descent of finite
   MLPs (:mod:`eoc_ntk.learning.finite_width`) on two classes of digits, at two widths: the gap shrinks
   as the width grows;
6. activations beyond the family (:mod:`eoc_ntk.reproduce_smooth`): condition number vs depth for
   ReLU, abs, erf, tanh, GELU and SiLU at their edge of chaos, and the depth within 10 % of each limit.

Every claim is stated with its criterion and the numbers behind it (:func:`claim_details`),
and none holds by construction: the linear network is checked on ``n <= m0`` points, where it
is not singular by rank.

:func:`experiments` computes the numbers (used by the tests on a small instance);
:func:`reproduce` writes ``report.md`` and its figures.
"""
from __future__ import annotations

import math
import os
from itertools import pairwise
from typing import Any

import numpy as np

from eoc_ntk import depth_sweep, icd_analysis, kernel, plots, spectrum
from eoc_ntk.core.activations import parse_activation
from eoc_ntk.core.progress import ProgressFn
from eoc_ntk.core.sweep import activation_sweep
from eoc_ntk.learning.finite_width import compare_training
from eoc_ntk.reproduce_smooth import SMOOTH_DEPTHS, SMOOTH_N, smooth_experiment, smooth_lines

__all__ = ["DELTAS", "ICD_DEPTHS", "COND_DEPTHS", "TRAINING", "digits", "binary_digits", "activation_for_delta",
           "experiments", "training_experiment", "training_claims", "claims", "claim_details", "converged_depth",
           "reproduce"]

DELTAS = (0.25, 0.5, 1.0)
ICD_DEPTHS = (2, 3, 5, 10, 20, 50, 100, 200)
COND_DEPTHS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500)
COND_ACTIVATIONS = ("linear", "leaky_relu:0.1", "relu", "abs")
#: The headline: the depth at which the condition number is within this fraction of its limit.
CONVERGENCE_TOLERANCE = 0.1
CONVERGENCE_MAX_DEPTH = 2000
#: The training section: n digits of classes 0 and 1, ReLU at the EOC, the rate 0.9 x max_learning_rate.
TRAINING: dict[str, Any] = {"n": 100, "depth": 3, "widths": (512, 2048), "seeds": 2, "steps": 10, "rate_factor": 0.9}


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


def binary_digits(n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` digits of classes 0 and 1 (pixels / 16, in [0, 1]) and labels ``+1`` (a 0) or ``-1``."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn is the [sklearn] extra

    data = load_digits()
    keep = data.target < 2
    x = data.data[keep][:n] / 16.0
    return x, np.where(data.target[keep][:n] == 0, 1.0, -1.0)


def training_experiment(n: int = TRAINING["n"], *, depth: int = TRAINING["depth"], widths=TRAINING["widths"],
                        seeds: int = TRAINING["seeds"], steps: int = TRAINING["steps"],
                        rate_factor: float = TRAINING["rate_factor"], progress: ProgressFn | None = None) -> dict:
    """:func:`eoc_ntk.learning.finite_width.compare_training` on :func:`binary_digits` with ReLU at the EOC."""
    x, y = binary_digits(n)
    return compare_training(x, y, depth=depth, a=0.5, b=0.5, widths=widths, seeds=seeds, steps=steps,
                            rate_factor=rate_factor, progress=progress)


def training_claims(res: dict) -> list[dict]:
    """The training section's claims, with criterion and numbers: the loss falls at every step at
    ``rate_factor < 1``, and the mean residual gap shrinks from the smallest to the largest width
    (the residual gap, not the loss gap: the loss gap is one projection of the fluctuation and
    needs tens of seeds to order widths, docs/learning.md §7)."""
    gaps = [float(np.mean(g)) for g in res["residual_gap"]]
    falls = all(np.all(np.diff(run) < 0) for runs in res["measured_loss"] for run in runs)
    w = res["widths"]
    return [
        {"claim": f"below the linearised model's largest rate ({res['rate_factor']:g} × max) the measured loss "
                  "falls at every step",
         "criterion": "L_{t+1} < L_t for every network and step", "numbers": f"{len(w)} widths × "
         f"{len(res['measured_loss'][0])} seeds × {len(res['steps']) - 1} steps", "holds": bool(falls)},
        {"claim": "training approaches the infinite-width prediction as the width grows",
         "criterion": f"mean residual gap at width {w[-1]} < at width {w[0]}",
         "numbers": ", "
         "".join(f"{wi}: {g:.3g} (× sqrt(width) = {g * math.sqrt(wi):.2g})" for wi, g in zip(w, gaps, strict=True)),
         "holds": gaps[-1] < gaps[0]},
    ]


def activation_for_delta(delta: float) -> tuple[float, float]:
    """``(a, b)`` with ``a^2 + b^2 = 1`` and ``b^2 / (a^2 + b^2) = delta``."""
    return math.sqrt(1.0 - delta), math.sqrt(delta)


def _offdiag_rel_errors(x: np.ndarray, depth: int, a: float, b: float) -> np.ndarray:
    k = kernel(x, depth=depth, a=a, b=b, kind="ntk")
    approx = kernel(x, depth=depth, a=a, b=b, kind="icd")
    mask = ~np.eye(len(x), dtype=bool)
    return np.abs(k[mask] - approx[mask]) / np.abs(k[mask])


def converged_depth(x: np.ndarray, a: float, b: float, tol: float = CONVERGENCE_TOLERANCE,
                    max_depth: int = CONVERGENCE_MAX_DEPTH) -> tuple[int | None, float, float | None]:
    """The smallest depth ``l <= max_depth`` with ``cond(K_l/n) <= (1 + tol) * limit`` (docs/math.md §5).

    The condition number falls towards its limit with depth (checked on the report's grid),
    so the depth is found by bisection on ``[1, max_depth]``. Returns ``(depth or None, limit,
    condition number at that depth)``; ``None`` when even ``max_depth`` is further than ``tol``.
    """
    limit_cond = depth_sweep(x, depths=[1], a=a, b=b).limit_condition_number
    assert limit_cond is not None  # defined at Delta > 0 without a bias
    limit = float(limit_cond)

    def cond(depth: int) -> float:
        return float(spectrum(x, depth=depth, a=a, b=b).condition_number)

    target = (1.0 + tol) * limit
    if cond(max_depth) > target:
        return None, limit, None
    lo, hi = 0, max_depth  # cond(lo) > target (or lo = 0), cond(hi) <= target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cond(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi, limit, cond(hi)


def experiments(x: np.ndarray, *, icd_depths=ICD_DEPTHS, cond_depths=COND_DEPTHS, deltas=DELTAS,
                cond_activations=COND_ACTIVATIONS, weyl_activations=("relu", "abs"),
                convergence_max_depth: int = CONVERGENCE_MAX_DEPTH, progress: ProgressFn | None = None) -> dict:
    """The numbers of the report for data ``x`` (JSON-shaped; infinities as ``inf``).

    Besides the figures' numbers: ``linear`` (the linear network on the first ``min(n, 2 m0 / 3)``
    points, where it is not singular by rank, so that "constant in depth" can fail) and
    ``convergence`` (per Delta, :func:`converged_depth`).
    """
    steps = (len(deltas) * len(icd_depths) + len(cond_activations) + len(weyl_activations) * len(icd_depths)
             + 1 + len(deltas))
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

    weyl: dict[str, Any] = {"depths": list(icd_depths), "results": []}
    for name in weyl_activations:
        act = parse_activation(name)
        rows: dict[str, Any] = {"activation": act.label, "lambda_min": [], "lambda_max": [], "lambda_min_bounds": [],
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

    n_lin = min(x.shape[0], max(2, 2 * x.shape[1] // 3))  # well below m0: not singular by rank
    lin = activation_sweep(x[:n_lin], list(cond_depths), ["linear"])["results"][0]
    linear = {"n": n_lin, "depths": list(cond_depths),
              "condition_number": [math.inf if c is None else float(c) for c in lin["condition_number"]]}
    tick()

    convergence: dict[str, Any] = {"tolerance": CONVERGENCE_TOLERANCE, "max_depth": convergence_max_depth,
                   "deltas": list(deltas), "depth": [], "limit": [], "condition_number": []}
    for delta in deltas:
        depth, limit, c = converged_depth(x, *activation_for_delta(delta), max_depth=convergence_max_depth)
        convergence["depth"].append(depth)
        convergence["limit"].append(limit)
        convergence["condition_number"].append(c)
        tick()
    return {"n": int(x.shape[0]), "m0": int(x.shape[1]), "icd": icd, "cond": cond, "weyl": weyl,
            "linear": linear, "convergence": convergence}


def _at(depths: list, depth: int) -> int:
    """Index of ``depth`` in ``depths``, or of the nearest depth."""
    return min(range(len(depths)), key=lambda j: abs(depths[j] - depth))


def claim_details(res: dict, depth: int = 100) -> list[dict]:
    """Each of the paper's claims on the numbers of :func:`experiments`: ``{"name", "claim",
    "criterion", "numbers", "holds"}``; every criterion is one the numbers could fail."""
    return [*_icd_claims(res["icd"]), *_condition_claims(res), _weyl_claim(res["weyl"])]


def _icd_claims(icd: dict) -> list[dict]:
    """The ICD error's claims: it falls with depth, and is smaller for larger Delta."""
    out = []
    idepths = icd["depths"]
    shown = sorted({idepths[_at(idepths, d)] for d in (10, 50, 200)})
    med = {delta: icd["median"][i] for i, delta in enumerate(icd["deltas"])}
    falls = all(m[-1] < m[0] and all(b <= a * 1.05 for a, b in pairwise(m)) for m in med.values())
    out.append({
        "name": "icd_error_falls_with_depth", "claim": "the ICD error falls with depth",
        "criterion": "for each Delta the median relative error never rises by more than 5 % from one depth to the "
                     "next, and ends below where it starts",
        "numbers": "; ".join(f"Δ={d:g}: " + ", ".join(f"{_fmt(m[idepths.index(k)])} (l={k})" for k in shown)
                             for d, m in med.items()),
        "holds": falls})
    last = [m[-1] for m in med.values()]
    out.append({
        "name": "icd_error_smaller_for_larger_delta", "claim": "the ICD error is smaller for larger Delta",
        "criterion": f"the median relative error at depth {idepths[-1]} strictly decreases with Delta",
        "numbers": ", ".join(f"Δ={d:g}: {_fmt(v)}" for d, v in zip(med, last, strict=True)),
        "holds": all(a > b for a, b in pairwise(last))})
    return out


def _condition_claims(res: dict) -> list[dict]:
    """The condition number's claims: the approach to its depth limit, abs against ReLU, the linear network."""
    out = []
    cond = res["cond"]
    depths = cond["depths"]
    j50 = _at(depths, 50)
    named = {r["activation"]["label"]: r for r in cond["results"]}
    gap = {name: named[name]["condition_number"][j50] / named[name]["limit_condition_number"] - 1
           for name in ("leaky_relu:0.1", "relu", "abs") if name in named}
    pairs = [(p, q) for p, q in (("leaky_relu:0.1", "relu"), ("relu", "abs")) if p in gap and q in gap]
    out.append({
        "name": "condition_number_approaches_limit_faster_for_larger_delta",
        "claim": "the condition number approaches its depth limit faster for larger Delta",
        "criterion": f"at depth {depths[j50]}, cond/limit - 1 is positive and strictly smaller for larger Delta "
                     "(leaky ReLU 0.1, Δ=0.401 > ReLU, Δ=0.5 > abs, Δ=1)",
        "numbers": ", ".join(f"{k}: {_fmt(v)}" for k, v in gap.items()),
        "holds": bool(pairs) and all(gap[p] > gap[q] > 0 for p, q in pairs)})

    conv = res.get("convergence")
    if conv:
        ds = [math.inf if d is None else d for d in conv["depth"]]
        out.append({
            "name": "within_10_percent_of_limit_sooner_for_larger_delta",
            "claim": "the depth at which the condition number comes within 10 % of its limit is smaller for "
                     "larger Delta (the paper's headline)",
            "criterion": f"the smallest depth l <= {conv['max_depth']} with cond <= {1 + conv['tolerance']:g} x limit "
                         "does not grow with Delta, and is smaller for the largest Delta than for the smallest",
            "numbers": ", ".join(f"Δ={d:g}: l = {'>' + str(conv['max_depth']) if v is None else v} "
                                 f"(limit {_fmt(lim)})" for d, v, lim in zip(conv["deltas"], conv["depth"],
                                                                             conv["limit"], strict=True)),
            "holds": all(a >= b for a, b in pairwise(ds)) and ds[0] > ds[-1]})

    deep = [j for j, d in enumerate(depths) if d >= 10]
    ratios = [named["relu"]["condition_number"][j] / named["abs"]["condition_number"][j] for j in deep]
    out.append({
        "name": "abs_better_conditioned_than_relu", "claim": "the absolute value is better conditioned than ReLU",
        "criterion": "cond(ReLU) / cond(abs) > 1 at every depth >= 10 of the grid",
        "numbers": f"smallest ratio {_fmt(min(ratios))}, at depth {depths[deep[ratios.index(min(ratios))]]}; "
                   f"at depth {depths[deep[-1]]}: {_fmt(ratios[-1])}" if ratios else "no depth >= 10",
        "holds": bool(ratios) and min(ratios) > 1})

    lin = res.get("linear")
    if lin:
        c = lin["condition_number"]
        finite = all(math.isfinite(v) for v in c)
        spread = max(c) / min(c) - 1 if finite else math.inf
        out.append({
            "name": "linear_condition_number_constant_in_depth",
            "claim": "the linear network's condition number does not change with depth",
            "criterion": f"on the first {lin['n']} points (n <= m0 = {res['m0']}, so not singular by rank), "
                         f"finite at every depth {lin['depths'][0]}..{lin['depths'][-1]} with max/min - 1 <= 1e-6",
            "numbers": f"cond = {_fmt(min(c))} .. {_fmt(max(c))}, max/min - 1 = {spread:.2g}",
            "holds": finite and spread <= 1e-6})
    return out


def _weyl_claim(weyl: dict) -> dict:
    """The Weyl intervals of the ICD matrix contain the true extreme eigenvalues."""
    margins, zero_lower, widths = [], [], []
    for r in weyl["results"]:
        for key in ("lambda_min", "lambda_max"):
            for t, (lo, hi) in zip(r[key], r[key + "_bounds"], strict=True):
                margins.append(min(t - lo, hi - t) / t)
        zero_lower.append([d for d, (lo, _) in zip(weyl["depths"], r["lambda_min_bounds"], strict=True) if lo <= 0])
        lo, hi = r["lambda_min_bounds"][-1]
        widths.append((r["activation"], (hi - lo) / r["lambda_min"][-1],
                       (r["lambda_max_bounds"][-1][1] - r["lambda_max_bounds"][-1][0]) / r["lambda_max"][-1]))
    return {
        "name": "weyl_bounds_contain_true_extremes",
        "claim": "the Weyl intervals certified by the ICD matrix contain the true extreme eigenvalues",
        "criterion": "lo <= lambda <= hi (to 1e-12) for lambda_min and lambda_max at every depth; the intervals' "
                     "widths say how informative they are",
        "numbers": f"smallest relative margin {min(margins):.3g}; " + "; ".join(
            f"{name}: lambda_min lower bound 0 (uninformative) at "
            f"{'no depth' if not z else 'depths ' + ', '.join(map(str, z))}, width/lambda at depth "
            f"{weyl['depths'][-1]}: lambda_min {_fmt(wmin)}, lambda_max {_fmt(wmax)}"
            for (name, wmin, wmax), z in zip(widths, zero_lower, strict=True)),
        "holds": min(margins) >= -1e-12}


def claims(res: dict, depth: int = 100) -> dict[str, bool]:
    """Whether each of the paper's claims holds (:func:`claim_details` without the numbers)."""
    return {c["name"]: c["holds"] for c in claim_details(res, depth)}


def _fmt(v) -> str:
    return "∞" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _figures(res: dict, out: str) -> dict[str, str]:
    names = {}
    icd = res["icd"]
    fig = plots.icd_error_figure({"depths": icd["depths"], "results": [
        {"activation": f"Δ={delta:g}", "median": icd["median"][i], "max": icd["max"][i]}
        for i, delta in enumerate(icd["deltas"])]})
    names["icd"] = plots.save(fig, os.path.join(out, "icd_error.png"))

    names["cond"] = plots.save(plots.sweep_figure(res["cond"]), os.path.join(out, "condition_number.png"))

    fig = plots.weyl_figure(res["weyl"])
    names["weyl"] = plots.save(fig, os.path.join(out, "weyl_bounds.png"))
    return {k: os.path.basename(v) for k, v in names.items()}


def _training_lines(res: dict, out: str) -> list[str]:
    """The training section of the report: figure, claims, loss table and gaps."""
    steps = res["steps"]
    name = os.path.basename(plots.save(plots.training_figure(res), os.path.join(out, "training_loss.png")))
    l0 = res["predicted_loss"][0]
    lines = ["", "## Training: the predicted loss against finite-width networks", "",
             f"{res['n']} digits of classes 0 and 1 (pixels / 16) with labels ±1, an MLP of depth {res['depth']} "
             f"with ReLU at the EOC in NTK parameterisation, trained by full-batch gradient descent on "
             f"`L = (1/2n) Σ (f(x_i) - y_i)²` at {res['rate_factor']:g} × the largest rate at which the "
             f"linearised, infinite-width model converges, `2 / λ_max(K/n)` = {_fmt(res['max_learning_rate'])} "
             f"(η = {_fmt(res['learning_rate'])}). "
             "The networks are trained centred (`f - f_0`, zero initial outputs, as in the prediction; "
             "`eoc_ntk.learning.finite_width`); the prediction is `eoc_ntk.dynamics` (docs/learning.md §3). Gaps are "
             "relative: residual `max_t |r̂_t - r_t| / |y|`, loss `max_t |L̂_t - L_t| / L_0`; both scale as "
             "`1/sqrt(width)` (docs/learning.md §7, where more seeds and the unstable rate are measured).", "",
             "![training "
             f"loss]({name})", "", "| claim | criterion | numbers | holds here |", "| --- | --- | --- | --- |"]
    lines += [f"| {c['claim']} | {c['criterion']} | {c['numbers']} | {'yes' if c['holds'] else '**no**'} |"
              for c in training_claims(res)]
    lines += ["", "| step | predicted L_t/L_0 | " + " | ".join(f"width {w} (mean)" for w in res["widths"]) + " |",
              "| --- | --- |" + " --- |" * len(res["widths"])]
    means = [np.mean(np.array(runs), axis=0) for runs in res["measured_loss"]]
    for t in steps:
        lines.append(f"| {t} | {res['predicted_loss'][t] / l0:.4f} | "
                     + " | ".join(f"{m[t] / l0:.4f}" for m in means) + " |")
    lines += ["", "| width | residual gap per seed | loss gap per seed |", "| --- | --- | --- |"]
    for w, rg, lg in zip(res["widths"], res["residual_gap"], res["loss_gap"], strict=True):
        lines.append(f"| {w} | {' '.join(f'{g:.3f}' for g in rg)} | {' '.join(f'{g:.3f}' for g in lg)} |")
    return lines


def reproduce(out: str = "eoc-ntk-report", *, n: int = 200, seed: int = 0,
              progress: ProgressFn | None = None, training: dict | None = None,
              smooth_depths=SMOOTH_DEPTHS, **kw) -> str:
    """Write ``out/report.md`` with its figures for ``n`` digits; returns the report's path.

    ``training``: arguments of :func:`training_experiment` (default :data:`TRAINING`); ``smooth_depths``:
    the depths of the section on activations beyond the family (:mod:`eoc_ntk.reproduce_smooth`, on the first
    :data:`~eoc_ntk.reproduce_smooth.SMOOTH_N` images; default :data:`~eoc_ntk.reproduce_smooth.SMOOTH_DEPTHS`,
    ``()`` leaves the section out)."""
    os.makedirs(out, exist_ok=True)
    x = digits(n, seed)
    share = 0.8  # of the progress bar for the spectra, the rest for the training section
    res = experiments(x, progress=None if progress is None else (lambda p: progress(share * p)), **kw)
    train = training_experiment(**(training or {}),
                                progress=None if progress is None else (lambda p: progress(share + (1 - share) * p)))
    figs = _figures(res, out)
    checks = claim_details(res)
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
        "| claim | criterion | numbers | holds here |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {c['claim']} | {c['criterion']} | {c['numbers']} | {'yes' if c['holds'] else '**no**'} |"
              for c in checks]
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
              "bound exceeds the ICD matrix's smallest eigenvalue), its shading runs to the bottom of the "
              "axes.", "", f"![Weyl bounds]({figs['weyl']})", ""]
    for r in weyl["results"]:
        lines += [f"**{r['activation']}**", "", "| depth | lambda_min | bounds | lambda_max | bounds |",
                  "| --- | --- | --- | --- | --- |"]
        for j, depth in enumerate(weyl["depths"]):
            lo, hi = r["lambda_min_bounds"][j]
            lo2, hi2 = r["lambda_max_bounds"][j]
            lines.append(f"| {depth} | {_fmt(r['lambda_min'][j])} | [{_fmt(lo)}, {_fmt(hi)}] | "
                         f"{_fmt(r['lambda_max'][j])} | [{_fmt(lo2)}, {_fmt(hi2)}] |")
        lines.append("")
    if smooth_depths:
        lines += smooth_lines(smooth_experiment(x[:SMOOTH_N], depths=smooth_depths), out)
    lines += _training_lines(train, out)
    path = os.path.join(out, "report.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
