"""Shared fixtures for the whole test suite.

The numerical core's tests import their references from ``tests/_reference`` (a plain
package next to this file: pytest puts this directory on ``sys.path`` for rootdir-less
test modules, and the insert below keeps that true whatever the import mode).
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed: tests stay deterministic."""
    return np.random.default_rng(12345)
