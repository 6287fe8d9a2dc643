"""The ``eoc-ntk`` CLI: argument spellings, local and --server results against independent references."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _users_support import cond_of, eoc_angle_ntk, small_data
from eoc_ntk.cli import main
from eoc_ntk.core.activations import parse_activation, parse_activations
from eoc_ntk.core.point_files import load_points
from eoc_ntk.core.validation import parse_depths


@pytest.mark.parametrize("text, ab", [
    ("relu", (0.5, 0.5)), ("abs", (0.0, 1.0)), ("linear", (1.0, 0.0)), ("leaky_relu", (0.505, 0.495)),
    ("leaky_relu:0.2", (0.6, 0.4)), ("0.3,0.7", (0.3, 0.7)), (" ReLU ", (0.5, 0.5)), ((1, 2), (1.0, 2.0)),
])
def test_activation_spellings(text, ab):
    assert parse_activation(text) == pytest.approx(ab)


@pytest.mark.parametrize("bad", ["sigmoid", "tanh:0.1", "relu:0.1", "leaky_relu:x", "1,2,3", "a,b"])
def test_bad_activations_say_what_is_accepted(bad):
    with pytest.raises(ValueError, match="activation"):
        parse_activation(bad)


def test_activation_lists_and_depth_ranges():
    assert [a.label for a in parse_activations("relu,abs")] == ["relu", "abs"]
    assert [tuple(a) for a in parse_activations("relu;0.3,0.7")] == [(0.5, 0.5), (0.3, 0.7)]
    assert [tuple(a) for a in parse_activations("0.3,0.7")] == [(0.3, 0.7)]
    assert parse_depths("1:5") == [1, 2, 3, 4, 5]
    assert parse_depths("1:10:4") == [1, 5, 9, 10]
    assert parse_depths("3,1,2,2") == [1, 2, 3]
    for bad in ("0", "5:1", "x", "1:2:3:4"):
        with pytest.raises(ValueError, match="depths"):
            parse_depths(bad)


def test_points_from_csv_and_npy_are_the_same(tmp_path):
    x = small_data(5, 3)
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    (tmp_path / "x.txt").write_text("# comment\n" + "\n".join(" ".join(repr(float(v)) for v in row) for row in x))
    for name in ("x.npy", "x.csv", "x.txt"):
        np.testing.assert_array_equal(load_points(tmp_path / name), x)


def _run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_spectrum_json_matches_eigvalsh_of_the_reference(tmp_path, capsys):
    x = small_data()
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    for act, (a, b) in (("relu", (0.5, 0.5)), ("abs", (0.0, 1.0)), ("leaky_relu:0.1", (0.55, 0.45))):
        res = _run_json(capsys, ["spectrum", str(tmp_path / "x.csv"), "--depth", "6", "--activation", act, "--json"])
        k, _ = eoc_angle_ntk(x, 6, a, b)
        ref = np.linalg.eigvalsh(k / len(x))
        np.testing.assert_allclose(res["eigenvalues"], ref, rtol=1e-9, atol=1e-12 * ref[-1])
        assert res["condition_number"] == pytest.approx(ref[-1] / ref[0], rel=1e-8)


def test_sweep_json_and_plot(tmp_path, capsys):
    x = small_data()
    np.save(tmp_path / "x.npy", x)
    res = _run_json(capsys, ["sweep", str(tmp_path / "x.npy"), "--depths", "1:4,20", "--activations",
                             "relu,abs,linear", "--json", "--plot", str(tmp_path / "s.png")])
    assert res["depths"] == [1, 2, 3, 4, 20]
    for r, (a, b) in zip(res["results"], ((0.5, 0.5), (0.0, 1.0), (1.0, 0.0)), strict=True):
        ref = [cond_of(eoc_angle_ntk(x, d, a, b)[0]) for d in res["depths"]]
        np.testing.assert_allclose(r["condition_number"], ref, rtol=1e-7)
    # Linear: K = l <x, x'> / m0, the condition number of the Gram matrix at every depth, no limit.
    gram = np.linalg.eigvalsh(x @ x.T)
    np.testing.assert_allclose(res["results"][2]["condition_number"], gram[-1] / gram[0], rtol=1e-8)
    assert res["results"][2]["limit_condition_number"] is None
    # Equal norms would give (n+3)/3; here: the condition number of (3/4) diag(q) + (1/4) s s^T.
    q = (x ** 2).sum(1)
    lim = np.linalg.eigvalsh(0.75 * np.diag(q) + 0.25 * np.outer(np.sqrt(q), np.sqrt(q)))
    assert res["results"][0]["limit_condition_number"] == pytest.approx(lim[-1] / lim[0], rel=1e-9)
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_human_output_and_progress_bar(tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", small_data())
    assert main(["sweep", str(tmp_path / "x.npy"), "--depths", "2,3", "--activations", "relu"]) == 0
    assert capsys.readouterr().err == ""  # captured stderr is no terminal: no bar
    monkeypatch.setattr("eoc_ntk.cli._is_terminal", lambda stream: True)
    assert main(["sweep", str(tmp_path / "x.npy"), "--depths", "2,3", "--activations", "relu",
                 "--plot", str(tmp_path / "s.svg")]) == 0
    cap = capsys.readouterr()
    assert "limit" in cap.out and "relu" in cap.out
    assert "100%" in cap.err and "[#" in cap.err and "elapsed" in cap.err
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")


def test_errors_are_one_line_with_a_nonzero_status(tmp_path, capsys):
    np.save(tmp_path / "x.npy", small_data())
    assert main(["spectrum", str(tmp_path / "x.npy"), "--depth", "3", "--activation", "sigmoid"]) == 2
    assert "unknown activation" in capsys.readouterr().err
    assert main(["spectrum", str(tmp_path / "missing.npy"), "--depth", "3"]) == 2


def test_server_mode_gives_the_local_numbers(tmp_path, capsys, live_server, monkeypatch):
    x = small_data()
    np.save(tmp_path / "x.npy", x)
    remote = _run_json(capsys, ["sweep", str(tmp_path / "x.npy"), "--depths", "2,5", "--activations", "abs",
                                "--server", live_server.url, "--json"])
    local = _run_json(capsys, ["sweep", str(tmp_path / "x.npy"), "--depths", "2,5", "--activations", "abs", "--json"])
    np.testing.assert_allclose(remote["results"][0]["condition_number"], local["results"][0]["condition_number"],
                               rtol=1e-12)
    monkeypatch.setattr("eoc_ntk.cli._is_terminal", lambda stream: True)  # the bar, as on a terminal
    assert main(["spectrum", str(tmp_path / "x.npy"), "--depth", "4", "--server", live_server.url]) == 0
    cap = capsys.readouterr()
    k, _ = eoc_angle_ntk(x, 4)
    assert f"condition number = {cond_of(k):.6g}" in cap.out
    assert "100%" in cap.err
    assert main(["spectrum", str(tmp_path / "x.npy"), "--depth", "0", "--server", live_server.url]) == 1
    assert "422" in capsys.readouterr().err


def test_users_modules_keep_the_core_free_of_service_and_heavy_imports():
    import subprocess
    import sys

    # eoc_ntk.sklearn_kernel subclasses scikit-learn's Kernel and estimators: it needs the sklearn extra.
    code = ("import sys, eoc_ntk.cli, eoc_ntk.client, eoc_ntk.plots, eoc_ntk.reproduce\n"
            "bad = [m for m in ('fastapi', 'redis', 'rq', 'service', 'jobs', 'matplotlib', 'sklearn', 'httpx') "
            "if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_plot_size_option(tmp_path, capsys):
    import struct

    np.save(tmp_path / "x.npy", small_data())
    assert main(["sweep", str(tmp_path / "x.npy"), "--depths", "2,3", "--plot", str(tmp_path / "s.png"),
                 "--size", "3x2", "--dpi", "60", "-q"]) == 0
    assert struct.unpack(">II", (tmp_path / "s.png").read_bytes()[16:24]) == (180, 120)
    with pytest.raises(SystemExit):
        main(["sweep", str(tmp_path / "x.npy"), "--size", "big"])


def test_predict_command_is_ntk_regression_on_the_reference_kernel(tmp_path, capsys):
    """``eoc-ntk predict TRAIN --labels Y --test X_TEST``: ``K(x_test, X) (K + n ridge I)^-1 y``."""
    rng = np.random.default_rng(4)
    x, xt = rng.standard_normal((30, 3)), rng.standard_normal((5, 3))
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], axis=1)
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    np.savetxt(tmp_path / "test.csv", xt, delimiter=",")
    k, _ = eoc_angle_ntk(x, 3, 0.0, 1.0)
    k_test, _ = eoc_angle_ntk(xt, 3, 0.0, 1.0, x2=x)
    ref = k_test @ np.linalg.solve(k + 30 * 1e-3 * np.eye(30), y)
    argv = ["predict", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.csv"), "--test",
            str(tmp_path / "test.csv"),
            "--depth", "3", "--activation", "abs", "--ridge", "1e-3"]
    np.testing.assert_allclose(_run_json(capsys, [*argv, "--json"]), ref, rtol=1e-7, atol=1e-9)
    assert main(argv) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    np.testing.assert_allclose(np.array([[float(v) for v in r.split(",")] for r in rows]), ref, rtol=1e-7, atol=1e-9)


def test_predict_command_refuses_mismatched_test_width(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((6, 3)))
    np.save(tmp_path / "y.npy", np.arange(6.0))
    np.save(tmp_path / "t.npy", np.ones((2, 4)))
    code = main(["predict", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--test",
                 str(tmp_path / "t.npy"), "--depth", "2"])
    assert code != 0 and "x_test" in capsys.readouterr().err


@pytest.mark.parametrize("ext, magic", [("pdf", b"%PDF-"), ("eps", b"%!PS"), ("svg", b"<?xml")])
def test_plot_option_writes_pdf_eps_and_svg_with_text(tmp_path, ext, magic):
    np.save(tmp_path / "x.npy", small_data())
    out = tmp_path / f"s.{ext}"
    assert main(["sweep", str(tmp_path / "x.npy"), "--depths", "2,3", "--plot", str(out), "--dpi", "40", "-q"]) == 0
    assert out.read_bytes().startswith(magic)
    if ext == "svg":
        assert "<text" in out.read_text()
