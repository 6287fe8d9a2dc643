"""The lint of .ci/run's newest step, as tests: ``ruff check .`` and ``mypy`` with the settings in
pyproject.toml pass on the tree, and those settings do catch what they are meant to catch.

Skipped where the linters are not installed (the ``lint`` extra: ``pip install -e '.[all,lint]'``).
The mypy run takes tens of seconds, so it is a slow test; CI runs mypy itself in any case.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[all,lint]')")


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, input=stdin, capture_output=True, text=True,
                          timeout=600)


def test_ruff_passes_on_the_tree():
    _tool("ruff")
    proc = _run("ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_settings_catch_long_lines_unused_imports_and_bugbear():
    _tool("ruff")
    source = ("import os\n\n\n"
              f"def f(items=[]):\n    return {'1 + ' * 40}1\n")
    proc = _run("ruff", "check", "--no-cache", "--output-format", "concise",
                "--stdin-filename", "eoc_ntk/core/lint_probe.py", "-", stdin=source)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for code in ("F401", "E501", "B006"):
        assert code in proc.stdout, (code, proc.stdout)


@pytest.mark.slow
def test_mypy_passes():
    _tool("mypy")
    proc = _run("mypy")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
