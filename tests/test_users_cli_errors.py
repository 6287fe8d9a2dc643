"""The CLI as a process (issue #14): every error one line (``--debug`` for the traceback), a closed
pipe ends it quietly, and the progress bar draws ``\\r`` frames only on a terminal."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

CLI = [sys.executable, "-m", "eoc_ntk.cli"]


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "x.npy"
    np.save(path, np.random.default_rng(5).normal(size=(30, 6)))
    return str(path)


def _closed_port() -> int:
    """A port on which nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args, **kw):
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=120, **kw)


def test_unreachable_server_is_one_line_and_debug_shows_the_traceback(points):
    url = f"http://127.0.0.1:{_closed_port()}"
    r = _run(["sweep", points, "--depths", "1:5", "--server", url])
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("eoc-ntk sweep: error: cannot talk to the service at " + url)
    assert "Traceback" not in r.stderr
    d = _run(["sweep", points, "--depths", "1:5", "--server", url, "--debug"])
    assert d.returncode != 0 and "Traceback" in d.stderr


def test_bad_file_and_bad_depths_are_one_line_with_status_2(points, tmp_path):
    for args in (["spectrum", str(tmp_path / "missing.npy"), "--depth", "3"],
                 ["sweep", points, "--depths", "5:1"]):
        r = _run(args)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_json_into_a_closed_pipe_exits_quietly(points):
    """``eoc-ntk sweep --json | head -c 1``: the reader is gone before the JSON is written."""
    proc = subprocess.Popen(CLI + ["sweep", points, "--depths", "1:200", "--activations", "relu,abs", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away at once; the CLI is still importing
    _, err = proc.communicate(timeout=120)
    assert err.decode() == ""
    assert proc.returncode == 0


def test_progress_bar_only_on_a_terminal(points):
    r = _run(["sweep", points, "--depths", "1:40"])
    assert r.returncode == 0 and "\r" not in r.stderr and r.stderr == ""
    if not hasattr(os, "openpty"):
        pytest.skip("no pseudo-terminal on this platform")
    master, slave = os.openpty()
    try:
        t = subprocess.run(CLI + ["sweep", points, "--depths", "1:40"], stdout=subprocess.PIPE, stderr=slave,
                           timeout=120)
        os.close(slave)
        slave = None
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert t.returncode == 0
    assert b"\r" in seen and b"elapsed" in seen  # on a terminal the bar is drawn
