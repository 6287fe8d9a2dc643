"""The torch backend (``backend="torch"``) gives the NumPy core's answers: kernels to 1e-13 of the
largest entry, certified extremes to 1e-10, the same singular diagnosis; and its memory plan
refuses, by name, a matrix that does not fit. Runs on torch's CPU build (and on a GPU when one
is present); skipped where torch is not installed.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the [gpu] extra)")

import eoc_ntk  # noqa: E402
from _reference.data import ACTIVATIONS, HYPERS  # noqa: E402
from _reference.mp_kernel import ref_kernel  # noqa: E402
from eoc_ntk.core import backends  # noqa: E402
from eoc_ntk.core._numerics import torch_inplace as inplace  # noqa: E402
from eoc_ntk.core.errors import InvalidParameterError  # noqa: E402

GPU = torch.cuda.is_available()
# Equality, not speed, is tested here: one intra-op thread (torch's OpenMP threads spin-wait and
# crawl when the CPUs are shared with other processes, as in CI).
torch.set_num_threads(1)


def _settings(act, hyper="eoc"):
    a, b = ACTIVATIONS[act]
    sigma_w, sigma_b = HYPERS[hyper](a, b)
    return dict(a=a, b=b, sigma_w=sigma_w, sigma_b=sigma_b)


def _awkward(n=160, m0=6, seed=3):
    """Random rows plus the cases that need care: a duplicate, a scaled copy, an antipodal pair,
    a near-parallel pair (1e-9 apart) and a zero row."""
    x = np.random.default_rng(seed).standard_normal((n, m0))
    x[5] = x[3]
    x[8] = 2.5 * x[4]
    x[9] = -0.5 * x[2]
    x[11] = x[10] + 1e-9 * x[6]
    x[7] = 0.0
    return x


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# The general recursion (sigma_b != 0) walks every layer of every entry: one activation of it in
# the default run, the others with the slow tests.
KERNEL_CASES = [pytest.param(act, hyper, id=f"{act}-{hyper}",
                             marks=[pytest.mark.slow] if hyper == "bias" and act != "relu" else [])
                for act in ("linear", "delta_0.1", "relu", "abs", "flipped_scaled_0.9")
                for hyper in ("eoc", "off_eoc", "bias")]


@pytest.mark.parametrize("act, hyper", KERNEL_CASES)
def test_kernel_matches_numpy_to_1e13(act, hyper):
    s = _settings(act, hyper)
    x = _awkward()
    x2 = np.random.default_rng(9).standard_normal((40, 6))
    kinds = ["ntk", "nngp"] + (["angle"] if s["sigma_b"] == 0.0 else [])
    kinds += ["icd"] if s["b"] and s["sigma_b"] == 0.0 else []
    for depth in (1, 3, 40):
        for kind in kinds:
            if kind == "angle":
                xs = np.delete(x, 7, axis=0)  # the angle to a zero row is refused by name
            else:
                xs = x
            for other in (None, x2):
                want = eoc_ntk.kernel(xs, other, depth=depth, kind=kind, **s)
                got = eoc_ntk.kernel(xs, other, depth=depth, kind=kind, backend="torch", device="cpu", **s)
                assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.device.type == "cpu"
                assert _rel(got.numpy(), want) <= 1e-13, (depth, kind, other is None)
                if other is None:
                    assert torch.equal(got, got.T), "the symmetric kernel is mirrored exactly"


def test_kernel_matches_the_50_digit_reference():
    """Independent of the NumPy core: the mpmath recursion of tests/_reference."""
    x = _awkward(n=14, m0=4, seed=5)
    for act, depth in (("relu", 3), ("abs", 7), ("delta_0.1", 2)):
        s = _settings(act)
        got = eoc_ntk.kernel(x, depth=depth, backend="torch", **s).numpy()
        want = ref_kernel(x, depth=depth, **s)
        assert _rel(got, want) <= 1e-13, act


def test_kernel_scale_free_at_extreme_norms():
    """Entries formed as mantissa x 2^exponent: tiny and huge inputs give the scaled kernel exactly."""
    x = np.random.default_rng(2).standard_normal((30, 4))
    s = _settings("relu")
    base = eoc_ntk.kernel(x, depth=4, backend="torch", **s).numpy()
    for power in (-450, 450):
        scaled = eoc_ntk.kernel(np.ldexp(x, power), depth=4, backend="torch", **s).numpy()
        np.testing.assert_array_equal(np.ldexp(base, 2 * power), scaled)


def _data(n, m0=10, seed=11):
    return np.random.default_rng(seed).standard_normal((n, m0))


@pytest.mark.parametrize("act, hyper, depth", [
    ("relu", "eoc", 4),
    pytest.param("abs", "bias", 3, marks=pytest.mark.slow),
    pytest.param("delta_0.1", "off_eoc", 30, marks=pytest.mark.slow),
])
def test_certified_extremes_match_numpy_to_1e10(act, hyper, depth):
    """n = 1000: the certified fast path on both backends (float32 estimate, float64 certificate)."""
    x = _data(1000)
    s = _settings(act, hyper)
    want = eoc_ntk.spectrum(x, depth=depth, eigenvalues="extremes", **s)
    got = eoc_ntk.spectrum(x, depth=depth, eigenvalues="extremes", backend="torch", device="cpu", **s)
    assert want.method == got.method == "lanczos"
    assert math.isclose(got.lambda_min, want.lambda_min, rel_tol=1e-10)
    assert math.isclose(got.lambda_max, want.lambda_max, rel_tol=1e-10)
    assert math.isclose(got.condition_number, want.condition_number, rel_tol=3e-10)
    assert math.isclose(got.trace, want.trace, rel_tol=1e-13)
    assert got.eigenvalues is None and not got.singular


def test_all_eigenvalues_match_numpy():
    x = _data(300)
    s = _settings("relu")
    want = eoc_ntk.spectrum(x, depth=5, **s)
    got = eoc_ntk.spectrum(x, depth=5, backend="torch", **s)
    assert isinstance(got.eigenvalues, np.ndarray)
    assert np.max(np.abs(got.eigenvalues - want.eigenvalues)) <= 1e-12 * want.lambda_max
    assert got.to_dict().keys() == want.to_dict().keys()


def _base_rows():
    return np.random.default_rng(21).standard_normal((4, 5))


SINGULAR = {
    "duplicates": (lambda b: np.stack([b[0], b[1], b[2], b[0]]), "relu", 5),
    "same_direction": (lambda b: np.stack([b[0], b[1], 3.0 * b[1], b[2]]), "relu", 5),
    "zero_row_and_duplicate": (lambda b: np.stack([np.zeros(5), b[0], b[1], 2.0 * b[0]]), "delta_0.1", 4),
    "abs_antipodal": (lambda b: np.stack([b[0], b[1], -2.0 * b[0], b[2]]), "abs", 3),
}


@pytest.mark.parametrize("name", list(SINGULAR))
def test_same_singular_diagnosis(name):
    build, act, depth = SINGULAR[name]
    x = build(_base_rows())
    s = _settings(act)
    for mode in ("all", "extremes"):
        want = eoc_ntk.spectrum(x, depth=depth, eigenvalues=mode, **s)
        got = eoc_ntk.spectrum(x, depth=depth, eigenvalues=mode, backend="torch", **s)
        assert got.singular and want.singular and got.condition_number == math.inf
        for attr in ("zero_rows", "duplicate_groups", "antipodal_pairs", "singular_reason"):
            assert getattr(got, attr) == getattr(want, attr), attr
    sweep = eoc_ntk.depth_sweep(x, depths=[depth, depth + 1], backend="torch", **s)
    assert sweep.singular.all()
    assert sweep.singular_reason == eoc_ntk.depth_sweep(x, depths=[depth, depth + 1], **s).singular_reason


def test_depth_sweep_matches_numpy():
    x = _data(400, m0=8)
    s = _settings("relu")
    depths = [1, 2, 3, 6, 10, 25]
    want = eoc_ntk.depth_sweep(x, depths=depths, **s)
    got = eoc_ntk.depth_sweep(x, depths=depths, backend="torch", **s)
    np.testing.assert_array_equal(got.depths, want.depths)
    np.testing.assert_allclose(got.lambda_max, want.lambda_max, rtol=1e-10)
    np.testing.assert_allclose(got.lambda_min[1:], want.lambda_min[1:], rtol=1e-10)
    assert got.lambda_min[0] == want.lambda_min[0] == 0.0  # depth 1, n > m0: rank m0
    assert got.limit_condition_number == want.limit_condition_number


@pytest.mark.slow
def test_depth_sweep_extremes_fast_path_matches_numpy():
    x = _data(1000)
    s = _settings("abs")
    depths = [2, 3, 4, 8]
    want = eoc_ntk.depth_sweep(x, depths=depths, **s)
    got = eoc_ntk.depth_sweep(x, depths=depths, backend="torch", **s)
    np.testing.assert_allclose(got.lambda_min, want.lambda_min, rtol=1e-10)
    np.testing.assert_allclose(got.lambda_max, want.lambda_max, rtol=1e-10)


def test_a_matrix_that_does_not_fit_is_refused_by_name(monkeypatch):
    x = _data(500)
    monkeypatch.setenv("EOC_NTK_DEVICE_MEMORY", str(1_000_000))  # 1 MB: the 2 MB matrix cannot fit
    for call in (lambda: eoc_ntk.kernel(x, depth=3, a=0.5, b=0.5, backend="torch"),
                 lambda: eoc_ntk.spectrum(x, depth=3, a=0.5, b=0.5, eigenvalues="extremes", backend="torch"),
                 lambda: eoc_ntk.depth_sweep(x, depths=[2, 3], a=0.5, b=0.5, backend="torch")):
        with pytest.raises(InvalidParameterError) as err:
            call()
        text = str(err.value)
        assert err.value.param == "x"
        assert "n = 500" in text and "0.000931 GiB available" in text and "EOC_NTK_DEVICE_MEMORY" in text, text


def test_a_tight_budget_tiles_the_kernel_into_small_blocks(monkeypatch):
    """The matrix plus a workspace of a few rows: many blocks, the same kernel."""
    x = _awkward(n=300)
    s = _settings("relu")
    want = eoc_ntk.kernel(x, depth=5, **s)
    rows = 3
    monkeypatch.setenv("EOC_NTK_DEVICE_MEMORY", str(300 * 300 * 8 + 24 * 8 * 300 * rows))
    got = eoc_ntk.kernel(x, depth=5, backend="torch", **s).numpy()
    assert _rel(got, want) <= 1e-13
    assert np.array_equal(got, got.T)


@pytest.mark.parametrize("kwargs, param", [
    (dict(backend="jax"), "backend"),
    (dict(backend="torch", device="tpu"), "device"),
    (dict(backend="torch", device="cuda:x"), "device"),
    (dict(backend="numpy", device="cuda"), "device"),
])
def test_bad_backend_or_device_is_refused_by_name(kwargs, param):
    with pytest.raises(InvalidParameterError) as err:
        eoc_ntk.kernel(_data(4), depth=2, a=0.5, b=0.5, **kwargs)
    assert err.value.param == param


@pytest.mark.skipif(GPU, reason="a GPU is present")
def test_cuda_without_a_gpu_is_refused_by_name():
    with pytest.raises(InvalidParameterError) as err:
        eoc_ntk.spectrum(_data(4), depth=2, a=0.5, b=0.5, backend="torch", device="cuda")
    assert err.value.param == "device" and "CUDA device" in str(err.value)


@pytest.mark.skipif(not GPU, reason="no GPU")
def test_on_the_gpu_the_answers_are_the_same():
    x = _awkward(n=1200, m0=10)
    x = np.delete(x, [3, 4, 2, 10, 7], axis=0)  # regular data for the certified path
    s = _settings("relu")
    k = eoc_ntk.kernel(x, depth=6, backend="torch", device="cuda", **s)
    assert k.device.type == "cuda"
    assert _rel(k.cpu().numpy(), eoc_ntk.kernel(x, depth=6, **s)) <= 1e-13
    want = eoc_ntk.spectrum(x, depth=6, eigenvalues="extremes", **s)
    got = eoc_ntk.spectrum(x, depth=6, eigenvalues="extremes", backend="torch", device="cuda", **s)
    assert math.isclose(got.lambda_min, want.lambda_min, rel_tol=1e-10)
    assert math.isclose(got.lambda_max, want.lambda_max, rel_tol=1e-10)


def test_in_place_factorisation_keeps_k_in_the_upper_triangle():
    """The blocked factorisation of the low-memory path against LAPACK's, panel edges included."""
    rng = np.random.default_rng(0)
    n = 150
    a = rng.standard_normal((n, n))
    k = a @ a.T / n + 0.05 * np.eye(n)
    m = torch.from_numpy(k.copy())
    kernel = inplace.InPlaceKernel(m, block=32)
    v = rng.standard_normal(n)
    assert kernel.factor(0.01)
    np.testing.assert_allclose(np.tril(m.numpy()), np.linalg.cholesky(k - 0.01 * np.eye(n)), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(np.triu(m.numpy(), 1), np.triu(k, 1))
    np.testing.assert_allclose(kernel.matvec(v), k @ v, rtol=0, atol=1e-13 * np.abs(k @ v).max())
    want = np.linalg.solve(k - 0.01 * np.eye(n), v)
    np.testing.assert_allclose(kernel.solve(v), want, rtol=0, atol=1e-12 * np.abs(want).max())
    assert not kernel.factor(10.0)  # above lambda_min: not positive definite, refused


@pytest.mark.slow
def test_without_room_for_a_second_matrix_the_extremes_are_certified_in_k_alone(monkeypatch):
    """A budget that holds K (11 MB) but not a second copy: the factors go into K's lower triangle."""
    monkeypatch.setattr(inplace, "BLOCK", 256)
    monkeypatch.setenv("EOC_NTK_DEVICE_MEMORY", str(50_000_000))
    x = _data(1200)
    s = _settings("relu")
    want = eoc_ntk.spectrum(x, depth=4, eigenvalues="extremes", **s)
    got = eoc_ntk.spectrum(x, depth=4, eigenvalues="extremes", backend="torch", **s)
    assert got.method == "lanczos"
    assert math.isclose(got.lambda_min, want.lambda_min, rel_tol=1e-10)
    assert math.isclose(got.lambda_max, want.lambda_max, rel_tol=1e-10)
    # Exactly singular inputs: lambda_min = 0 and the same diagnosis, lambda_max still certified.
    x[5], x[9] = x[7], 0.0
    want = eoc_ntk.spectrum(x, depth=4, eigenvalues="extremes", **s)
    got = eoc_ntk.spectrum(x, depth=4, eigenvalues="extremes", backend="torch", **s)
    assert got.singular and got.lambda_min == 0.0 and got.singular_reason == want.singular_reason
    assert got.duplicate_groups == ((5, 7),) and got.zero_rows == (9,)
    assert math.isclose(got.lambda_max, want.lambda_max, rel_tol=1e-10)


def test_analyze_matches_numpy_with_the_icd_analysis():
    """The service's spectra document (spectrum and ICD analysis) on the device."""
    x = _data(120, m0=6)  # regular data (a near-parallel pair makes the ICD bounds differences of 1e8's)
    model = eoc_ntk.Model(4, 0.5, 0.5)
    want = eoc_ntk.analyze(x, model)
    got = backends.analyze(x, model, backend="torch", device="cpu")
    assert got.keys() == want.keys() and got["icd"].keys() == want["icd"].keys()
    np.testing.assert_allclose(got["eigenvalues"], want["eigenvalues"], rtol=0, atol=1e-12 * want["lambda_max"])
    for key, value in want["icd"].items():  # None (an infinite bound) becomes NaN, equal to NaN
        np.testing.assert_allclose(np.array(got["icd"][key], dtype=float), np.array(value, dtype=float),
                                   rtol=1e-10, err_msg=key)
    for key in ("lambda_min", "lambda_max", "condition_number", "trace", "singular", "method"):
        if isinstance(want[key], float):
            assert got[key] == pytest.approx(want[key], rel=1e-10), key
        else:
            assert got[key] == want[key], key
