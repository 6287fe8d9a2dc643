"""The benchmark scripts of ``bench/`` at tiny sizes, so that they do not rot.

Each script's ``main`` runs its full code path once and must print markdown table rows;
nothing here is timed or compared with a target (that is what ``bench/README.md`` is for).
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module", autouse=True)
def bench_on_path():
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


def run(module: str, argv: list[str], capsys) -> list[str]:
    mod = importlib.import_module(module)
    mod.main(argv)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows, f"{module} printed no table row"
    for line in rows:
        assert line.endswith(" |") and line.count(" | ") >= 3, line
    return rows


def test_smooth_kernel_depth(capsys):
    run("bench_smooth", ["--n", "40", "--m0", "4", "--repeat", "1"], capsys)


def test_kernel_depth(capsys):
    rows = run("bench_kernel_depth", ["--n", "120", "--m0", "8", "--depths", "2", "30", "--repeat", "1",
                                      "--acc-n", "70", "--acc-depths", "2", "30"], capsys)
    assert len(rows) == 4


def test_extremes(capsys):
    # Small: the fast path may run (above eoc_ntk.core.eigen.DENSE_BELOW) or fall back to dense.
    rows = run("bench_extremes", ["--n", "820", "--cases", "gaussian:5:3", "--repeat", "1"], capsys)
    assert "method lanczos" in rows[0] or "method dense" in rows[0]


def test_sweep(capsys):
    run("bench_sweep", ["--n", "80", "--m0", "6", "--max-depth", "4", "--sample", "1", "4"], capsys)


def test_service(capsys):
    rows = run("bench_service", ["--n", "20", "--m0", "4", "--depth", "3", "--repeat", "1"], capsys)
    assert len(rows) == 4


@pytest.mark.slow  # starts a server / times 14 cases: seconds, not milliseconds
def test_cost(capsys):
    rows = run("bench_cost", ["--scale", "0.03", "--repeat", "1"], capsys)
    assert len(rows) == 2 + 14


def test_large_in_a_child_process(capsys):
    rows = run("bench_large", ["--n", "90", "--m0", "5", "--depth", "3"], capsys)
    assert "peak RSS" in rows[1]


def test_nt_skips_cleanly_without_neural_tangents(capsys):
    rows = run("bench_nt", ["--n", "10", "--depths", "3", "--nt-python", "/nonexistent/python"], capsys)
    assert rows == [rows[0]] and "skipped" in rows[0]


@pytest.mark.slow  # imports torch and runs both backends (seconds on a shared machine)
def test_gpu_bench_on_the_cpu(capsys):
    pytest.importorskip("torch", reason="torch is not installed (the [gpu] extra)")
    rows = run("bench_gpu", ["--device", "cpu", "--n", "120", "--cpu-max-n", "120", "--m0", "6", "--depth", "3",
                             "--torch-threads", "1"], capsys)
    assert "vs NumPy" in rows[0] and "rel. err" in rows[0], rows


def test_common_data_kinds():
    common = importlib.import_module("_common")
    for kind in common.DATASETS:
        x = common.make_data(kind, 5, 7)
        assert x.shape == (5, 7) and (x != 0).any(axis=1).all()
    with pytest.raises(ValueError, match="unknown data kind"):
        common.make_data("nope", 2, 2)


@pytest.mark.slow  # starts a server / times 14 cases: seconds, not milliseconds
def test_hostile_quick_against_a_server_of_its_own(capsys):
    rows = run("hostile", ["--quick", "--body-timeout", "1"], capsys)
    assert any("1 MB single cell" in row for row in rows)
    statuses = [row.split(" | ")[1] for row in rows if not row.startswith("| payload") and "---" not in row]
    assert not [s for s in statuses if s.isdigit() and int(s) >= 500], rows


@pytest.mark.slow  # a redis-server, an API and four workers: about 30 s
def test_hostile_worker_rows_in_redis_mode(capsys):
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    rows = run("hostile", ["--quick", "--redis", "--body-timeout", "1"], capsys)
    killed = next(row for row in rows if row.startswith("| 24.6 "))
    states = killed.split("; then ")[1].split(" |")[0].split(" -> ")
    assert "queued [attempt 2]" in states and states[-1] == "finished [attempt 2]", killed  # run again, once
    assert not [s for s in states[:-1] if s.split()[0] in ("finished", "failed", "canceled")], killed
    assert float(killed.split("horse gone ")[1].split(" s")[0]) <= 2.0, killed
    idle = next(row for row in rows if row.startswith("| 24.11 "))
    assert "exit 0 after" in idle and float(idle.split("exit 0 after ")[1].split(" s")[0]) <= 5.0, idle


def test_training(capsys, tmp_path):
    rows = run("bench_training", ["--n", "40", "--widths", "64", "256", "--seeds", "1", "--steps", "3",
                                  "--figure", str(tmp_path / "t.png")], capsys)
    assert len(rows) == 2 and (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_training_regimes(capsys):
    rows = run("bench_training", ["--regimes", "0.5", "1", "8", "--n", "20", "--widths", "32", "--seeds", "1",
                                  "--steps", "4"], capsys)
    assert rows[0] == "| width | 0.5x | 1x | 8x |", rows
    cells = rows[1].strip("| ").split(" | ")
    assert cells[0] == "32" and all(c.split(" (")[0] in ("con", "cat", "div", "slo") for c in cells[1:]), rows
    assert cells[3].startswith("div"), rows  # 8x the linearised model's largest rate diverges at width 32


@pytest.mark.slow  # the digits kernel and its eigen-decomposition: seconds
def test_learning_curve(capsys):
    rows = run("bench_learning_curve", ["--sizes", "50", "--splits", "2"], capsys)
    assert len(rows) == 1 + 4, rows  # the header, one-hot and even/odd at ridge 0 and 1e-3


@pytest.mark.slow  # starts a server and runs wrk
def test_throughput_quick(capsys):
    import shutil

    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    rows = run("throughput", ["--quick"], capsys)
    body = [row for row in rows if not row.startswith("| mode") and "---" not in row]
    assert {row.split(" | "
                      "")[2] for row in body} == {"GET /v1/spectra (cached)", "POST /v1/spectra by dataset_id (cached)",
                                                     "GET /v1/jobs/{id} (finished)", "GET /healthz"}, rows
    assert all(row.split(" | ")[8] == "0" for row in body), rows  # every answer 2xx


def test_uploads(capsys):
    rows = run("bench_uploads", ["--rows", "16", "--cols", "8", "--repeat", "1"], capsys)
    assert len(rows) == 4


def test_json_refusals(capsys):
    rows = run("bench_json_refusals", ["ragged", "--rows", "20000"], capsys)
    assert "row 20000 has 4 values" in rows[0]


@pytest.mark.slow  # six child processes, each importing the service
def test_uploads_json(capsys):
    rows = run("bench_uploads", ["--json", "--sizes", "4000"], capsys)
    assert len(rows) == 2 + 6
