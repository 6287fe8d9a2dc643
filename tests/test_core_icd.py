"""eoc_ntk.icd_analysis: ICD errors and certified bounds against the 50-digit reference (docs/math.md §5)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import eoc_ntk
from _reference.checks import check_finite_tree
from _reference.data import ACTIVATIONS, dataset
from _reference.mp_kernel import MP, ref_eigenvalues, ref_kernel_mp

ICD_CASES = [(act, ds) for act in ("relu", "abs", "delta_0.1", "flipped_scaled_0.9")
             for ds in ("random", "orthogonal", "near_parallel_1e-3", "norms")]
ICD_DEPTHS = (2, 10, 50, 200)


def _reference_analysis(x, depth, a, b):
    """Everything icd_analysis reports, from the reference (mp) matrices K/n and A/n."""
    n = x.shape[0]
    k = ref_kernel_mp(x, depth=depth, a=a, b=b)
    icd = ref_kernel_mp(x, depth=depth, a=a, b=b, kind="icd")
    kn = [[v / n for v in row] for row in k]
    an = [[v / n for v in row] for row in icd]
    err = [[(kn[i][j] - an[i][j]) if i != j else MP.mpf(0) for j in range(n)] for i in range(n)]
    abs_err = [abs(e) for row in err for e in row]
    rel_err = [abs(err[i][j]) / abs(kn[i][j]) for i in range(n) for j in range(n) if i != j and kn[i][j] != 0]
    e_eigs = ref_eigenvalues(err)
    k_eigs = ref_eigenvalues(kn)
    radius = [sum(abs(kn[i][j]) for j in range(n) if j != i) for i in range(n)]
    return dict(
        max_abs_error=float(max(abs_err)),
        max_rel_error=float(max(rel_err)),
        err_norm=float(max(abs(e_eigs[0]), abs(e_eigs[-1]))),
        max_row_sum=float(max(sum(abs(v) for v in row) for row in err)),
        frobenius=float(MP.sqrt(sum(v * v for v in abs_err))),
        lambda_min=float(k_eigs[0]), lambda_max=float(k_eigs[-1]),
        cond=float(k_eigs[-1] / k_eigs[0]),
        gershgorin=(float(min(kn[i][i] - radius[i] for i in range(n))),
                    float(max(kn[i][i] + radius[i] for i in range(n)))),
    )


def _contains(interval, value, rtol=1e-12):
    lo, hi = interval
    slack = rtol * max(abs(value), abs(lo), abs(hi))
    return lo - slack <= value <= hi + slack


@pytest.mark.parametrize("act, ds", ICD_CASES, ids=[f"{a}-{d}" for a, d in ICD_CASES])
@pytest.mark.parametrize("depth", ICD_DEPTHS)
def test_icd_analysis_matches_reference(act, ds, depth):
    a, b = ACTIVATIONS[act]
    x = dataset(ds)
    res = eoc_ntk.icd_analysis(x, depth=depth, a=a, b=b)
    ref = _reference_analysis(x, depth, a, b)
    check_finite_tree(res)
    json.dumps(res.to_dict(), allow_nan=False)
    # Entrywise errors: differences of two entries each accurate to ~1e-12 of their scale.
    assert math.isclose(res.max_abs_error, ref["max_abs_error"], rel_tol=1e-8), (res.max_abs_error,
                                                                                 ref["max_abs_error"])
    assert math.isclose(res.max_rel_error, ref["max_rel_error"], rel_tol=1e-8), (res.max_rel_error,
                                                                                 ref["max_rel_error"])
    # ||E||_2 <= bound <= max row sum of |E| (docs/math.md §5): valid, and no looser than documented.
    assert res.error_norm_bound >= ref["err_norm"] * (1 - 1e-9)
    assert res.error_norm_bound <= ref["max_row_sum"] * (1 + 1e-9)
    # Weyl intervals contain the true extreme eigenvalues and condition number of K/n.
    assert _contains(res.lambda_min_bounds, ref["lambda_min"]), (res.lambda_min_bounds, ref["lambda_min"])
    assert _contains(res.lambda_max_bounds, ref["lambda_max"]), (res.lambda_max_bounds, ref["lambda_max"])
    assert _contains(res.condition_number_bounds, ref["cond"]), (res.condition_number_bounds, ref["cond"])
    assert res.lambda_min_bounds[0] >= 0.0
    assert res.condition_number_bounds[0] >= 1.0
    # Gershgorin interval of K/n: contains the spectrum, and is the one of the reference matrix.
    lo, hi = res.gershgorin
    assert lo <= ref["lambda_min"] * (1 + 1e-12) and ref["lambda_max"] <= hi * (1 + 1e-12)
    scale = ref["gershgorin"][1]
    assert abs(lo - ref["gershgorin"][0]) <= 1e-12 * scale and abs(hi - ref["gershgorin"][1]) <= 1e-12 * scale


# docs/math.md §5, measured: relative error of theta_l against 3 pi / (8 Delta alpha_l) at 90 degrees.
MEASURED = [("relu", 10, 0.37), ("relu", 50, 0.034), ("relu", 200, 0.0044),
            ("abs", 10, 0.13), ("abs", 50, 0.016), ("abs", 200, 0.0029)]


@pytest.mark.parametrize("act, depth, printed", MEASURED)
def test_measured_icd_errors(act, depth, printed):
    a, b = ACTIVATIONS[act]
    x = np.eye(2) * np.array([[1.0], [3.0]])        # orthogonal, different norms: same relative error
    res = eoc_ntk.icd_analysis(x, depth=depth, a=a, b=b)
    assert float(f"{res.max_rel_error:.2g}") == printed, res.max_rel_error
    ref = _reference_analysis(x, depth, a, b)
    assert float(f"{ref['max_rel_error']:.2g}") == printed
    assert math.isclose(res.max_rel_error, ref["max_rel_error"], rel_tol=1e-9)


def test_icd_relative_error_falls_with_depth():
    """Absolute error O(1) while theta_l grows like l/4: the relative error falls (docs/math.md §5)."""
    x = dataset("random")
    for act in ("relu", "abs", "delta_0.1"):
        a, b = ACTIVATIONS[act]
        errs = [eoc_ntk.icd_analysis(x, depth=d, a=a, b=b).max_rel_error for d in (10, 50, 200)]
        assert errs[0] > errs[1] > errs[2], (act, errs)


@pytest.mark.parametrize("a, b, sigma_w", [(1.0, 0.0, None), (-2.0, 0.0, 0.5)])
def test_icd_needs_positive_delta(a, b, sigma_w):
    x = dataset("random")
    with pytest.raises(ValueError, match="Delta"):
        eoc_ntk.icd_analysis(x, depth=3, a=a, b=b, sigma_w=sigma_w)
    with pytest.raises(ValueError, match="icd"):
        eoc_ntk.kernel(x, depth=3, a=a, b=b, sigma_w=sigma_w, kind="icd")


def test_icd_kernel_needs_zero_bias():
    with pytest.raises(ValueError, match="sigma_b"):
        eoc_ntk.kernel(dataset("random"), depth=3, a=0.5, b=0.5, sigma_b=0.1, kind="icd")


def test_icd_off_eoc_matches_reference():
    """sigma_b = 0 off the EOC: the ICD entries carry chi^(l-1) like the kernel."""
    x = dataset("random")
    sw = 1.05 / math.hypot(0.5, 0.5)
    res = eoc_ntk.icd_analysis(x, depth=50, a=0.5, b=0.5, sigma_w=sw)
    k = ref_kernel_mp(x, depth=50, a=0.5, b=0.5, sigma_w=sw)
    icd = ref_kernel_mp(x, depth=50, a=0.5, b=0.5, sigma_w=sw, kind="icd")
    n = x.shape[0]
    rel = max(abs(k[i][j] - icd[i][j]) / abs(k[i][j]) for i in range(n) for j in range(n) if i != j)
    assert math.isclose(res.max_rel_error, float(rel), rel_tol=1e-8)


@pytest.mark.parametrize("act, sigma_b", [("relu", 0.0), ("abs", 0.0), ("linear", 0.0), ("relu", 0.2)])
def test_analyze_combines_spectrum_and_icd(act, sigma_b):
    a, b = ACTIVATIONS[act]
    x = dataset("random")
    model = eoc_ntk.Model(20, a, b, sigma_b=sigma_b, output_dim=2)
    out = eoc_ntk.analyze(x, model)
    json.dumps(out, allow_nan=False)
    spec = eoc_ntk.spectrum(x, depth=20, a=a, b=b, sigma_b=sigma_b, output_dim=2).to_dict()
    for key in ("lambda_min", "lambda_max", "condition_number", "trace", "singular", "multiplicity"):
        assert out[key] == pytest.approx(spec[key], rel=1e-12), key
    assert out["m0"] == x.shape[1]
    if b == 0.0 or sigma_b != 0.0:
        assert out["icd"] is None and isinstance(out["icd_unavailable"], str)
    else:
        icd = eoc_ntk.icd_analysis(x, depth=20, a=a, b=b).to_dict()
        assert out["icd"]["max_rel_error"] == pytest.approx(icd["max_rel_error"], rel=1e-12)
        # JSON-safe bounds hold None where a bound does not exist: compare entry by entry
        # (pytest >= 9.2 refuses approx() of a sequence holding None).
        got, want = out["icd"]["condition_number_bounds"], icd["condition_number_bounds"]
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g is None and w is None or g == pytest.approx(w, rel=1e-12), (got, want)
