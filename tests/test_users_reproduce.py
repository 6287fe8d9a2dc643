"""``eoc-ntk reproduce``: its numbers against an independent recursion, the paper's claims, the report."""
from __future__ import annotations

import math

import numpy as np
import pytest

from _users_support import cond_of, eoc_angle_ntk
from eoc_ntk.cli import main
from eoc_ntk.learning import finite_width
from eoc_ntk.reproduce import (
    activation_for_delta,
    binary_digits,
    claim_details,
    claims,
    digits,
    experiments,
    training_claims,
    training_experiment,
)

ICD_DEPTHS = (3, 10, 30, 100)
COND_DEPTHS = (2, 5, 10, 30, 100)


@pytest.fixture(scope="module")
def small():
    """40 digits (n < m0 = 61, so even the linear network is non-singular) and the report's numbers."""
    x = digits(40, seed=1)
    return x, experiments(x, icd_depths=ICD_DEPTHS, cond_depths=COND_DEPTHS)


def test_digits_are_a_real_dataset_in_general_position():
    x = digits(40, seed=1)
    assert x.shape == (40, 61)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    off = unit @ unit.T - 2 * np.eye(40)
    assert off.max() < 1 - 1e-9


def test_icd_errors_match_the_independent_recursion(small):
    x, res = small
    for i, delta in enumerate(res["icd"]["deltas"]):
        a, b = activation_for_delta(delta)
        for j, depth in enumerate(ICD_DEPTHS):
            k, alpha = eoc_angle_ntk(x, depth, a, b)
            q = (x ** 2).sum(1) / x.shape[1]
            icd = np.sqrt(np.outer(q, q)) * 3 * math.pi / (8 * delta * alpha + np.eye(len(x)))  # docs/math.md §5
            mask = ~np.eye(len(x), dtype=bool)
            err = np.abs(k - icd)[mask] / np.abs(k[mask])
            assert res["icd"]["median"][i][j] == pytest.approx(np.median(err), rel=1e-6)
            assert res["icd"]["max"][i][j] == pytest.approx(err.max(), rel=1e-6)


def test_condition_numbers_and_weyl_extremes_match_eigvalsh(small):
    x, res = small
    coeffs = {"linear": (1.0, 0.0), "leaky_relu:0.1": (0.55, 0.45), "relu": (0.5, 0.5), "abs": (0.0, 1.0)}
    for r in res["cond"]["results"]:
        a, b = coeffs[r["activation"]["label"]]
        ref = [cond_of(eoc_angle_ntk(x, d, a, b)[0]) for d in COND_DEPTHS]
        np.testing.assert_allclose(r["condition_number"], ref, rtol=1e-7)
    for r, (a, b) in zip(res["weyl"]["results"], ((0.5, 0.5), (0.0, 1.0)), strict=True):
        for j, depth in enumerate(ICD_DEPTHS):
            eig = np.linalg.eigvalsh(eoc_angle_ntk(x, depth, a, b)[0] / len(x))
            assert r["lambda_min"][j] == pytest.approx(eig[0], rel=1e-8)
            assert r["lambda_max"][j] == pytest.approx(eig[-1], rel=1e-9)


def test_the_papers_qualitative_claims_hold_on_a_small_instance(small):
    x, res = small
    assert claims(res) == {
        "icd_error_falls_with_depth": True,
        "icd_error_smaller_for_larger_delta": True,
        "condition_number_approaches_limit_faster_for_larger_delta": True,
        "abs_better_conditioned_than_relu": True,
        "within_10_percent_of_limit_sooner_for_larger_delta": True,
        "linear_condition_number_constant_in_depth": True,
        "weyl_bounds_contain_true_extremes": True,
    }
    # The same claims straight from the independent recursion, at depths 10 and 100.
    gaps = {}
    for delta in (0.25, 0.5, 1.0):
        a, b = activation_for_delta(delta)
        gaps[delta] = [cond_of(eoc_angle_ntk(x, d, a, b)[0]) for d in (10, 100)]
    q = (x ** 2).sum(1)
    lim = np.linalg.eigvalsh(0.75 * np.diag(q) + 0.25 * np.outer(np.sqrt(q), np.sqrt(q)))
    limit = lim[-1] / lim[0]
    for depth_index in (0, 1):
        assert gaps[0.25][depth_index] > gaps[0.5][depth_index] > gaps[1.0][depth_index] > limit


def test_converged_depths_match_the_independent_recursion(small):
    """The headline: the first depth with cond <= 1.1 x limit, checked there and one depth before."""
    x, res = small
    conv = res["convergence"]
    q = (x ** 2).sum(1)
    lim = np.linalg.eigvalsh(0.75 * np.diag(q) + 0.25 * np.outer(np.sqrt(q), np.sqrt(q)))
    limit = lim[-1] / lim[0]
    for delta, depth, got_limit in zip(conv["deltas"], conv["depth"], conv["limit"], strict=True):
        a, b = activation_for_delta(delta)
        assert got_limit == pytest.approx(limit, rel=1e-9)
        assert cond_of(eoc_angle_ntk(x, depth, a, b)[0]) <= 1.1 * limit
        assert cond_of(eoc_angle_ntk(x, depth - 1, a, b)[0]) > 1.1 * limit
    assert conv["depth"][0] > conv["depth"][1] > conv["depth"][2]  # larger Delta: sooner (the paper)


def test_no_claim_is_vacuous(small):
    """Each claim states a criterion and numbers, and fails when its numbers say otherwise."""
    x, res = small
    details = {c["name"]: c for c in claim_details(res)}
    assert all(c["criterion"] and c["numbers"] for c in details.values())
    lin = res["linear"]
    assert lin["n"] <= x.shape[1] and all(math.isfinite(c) for c in lin["condition_number"])
    assert "uninformative" in details["weyl_bounds_contain_true_extremes"]["numbers"]
    bent = {**res, "linear": {**lin, "condition_number": [c * (1 + 0.01 * i) for i, c in
                                                            enumerate(lin["condition_number"])]}}
    assert claims(bent)["linear_condition_number_constant_in_depth"] is False
    singular = {**res, "linear": {**lin, "condition_number": [math.inf] * len(lin["condition_number"])}}
    assert claims(singular)["linear_condition_number_constant_in_depth"] is False
    slow = {**res, "convergence": {**res["convergence"], "depth": list(reversed(res["convergence"]["depth"]))}}
    assert claims(slow)["within_10_percent_of_limit_sooner_for_larger_delta"] is False


def test_reproduce_writes_a_report_with_figures(tmp_path):
    assert main(["reproduce", "--out", str(tmp_path), "--n", "24", "-q", "--smooth-depths", "1,2"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Activations beyond the family" in report and "gelu: no depth limit at sigma_b = 0.1" in report
    for figure in ("icd_error.png", "condition_number.png", "weyl_bounds.png", "training_loss.png", "smooth.png"):
        assert f"]({figure})" in report
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"
    assert "| the absolute value is better conditioned than ReLU | cond(ReLU) / cond(abs) > 1" in report
    assert "within 10 % of its limit" in report and "max/min - 1" in report
    assert "Δ=0.25 median" in report and "| limit |" in report
    training = report.split("## Training", 1)[1]
    assert "| width 512 (mean) | width 2048 (mean) |" in training and "| 10 | 0.02" in training
    assert training.count("| yes |") == 2 and "**no**" not in training


def test_training_section_against_the_dense_iteration_and_its_own_networks():
    """The prediction against the iterated residual on the reference kernel (an independent
    recursion), the measured losses against the trainer run here, and claims that can fail."""
    res = training_experiment(30, widths=(256, 1024), seeds=2, steps=4)
    x, y = binary_digits(30)
    k = eoc_angle_ntk(x, 3)[0]
    lam_max = np.linalg.eigvalsh(k / 30)[-1]
    assert res["max_learning_rate"] == pytest.approx(2 / lam_max, rel=1e-9)
    assert res["learning_rate"] == pytest.approx(0.9 * 2 / lam_max, rel=1e-9)
    r, expected = -y, []
    for _ in range(5):
        expected.append(float(r @ r) / 60)
        r = r - res["learning_rate"] * (k / 30) @ r
    np.testing.assert_allclose(res["predicted_loss"], expected, rtol=1e-9)
    run = finite_width.train_centred(x, y, width=1024, depth=3, a=0.5, b=0.5, learning_rate=res["learning_rate"],
                                     steps=4, seed=1000 * 1024 + 1)
    np.testing.assert_allclose(res["measured_loss"][1][1], np.sum(run ** 2, axis=1) / 60, rtol=1e-12)
    gap = np.max(np.linalg.norm(run - _residuals(k, y, res["learning_rate"], 4), axis=1))
    assert res["residual_gap"][1][1] == pytest.approx(gap / np.linalg.norm(y), rel=1e-9)
    checks = training_claims(res)
    assert [c["holds"] for c in checks] == [True, True]
    worse = {**res, "residual_gap": res["residual_gap"][::-1]}
    assert training_claims(worse)[1]["holds"] is False
    rising = {**res, "measured_loss": [[run[::-1] for run in runs] for runs in res["measured_loss"]]}
    assert training_claims(rising)[0]["holds"] is False


def _residuals(k, y, eta, steps):
    out = [-y]
    for _ in range(steps):
        out.append(out[-1] - eta * (k / len(y)) @ out[-1])
    return np.array(out)


@pytest.mark.slow
def test_every_claim_holds_in_the_default_report(tmp_path):
    """The full default run (200 digits, depths up to 500): every claim of the report holds."""
    assert main(["reproduce", "--out", str(tmp_path), "-q"]) == 0
    report = (tmp_path / "report.md").read_text()
    claims_table = report.split("## Claims", 1)[1].split("##", 1)[0]
    assert claims_table.count("| yes |") == 7 and "**no**" not in claims_table
