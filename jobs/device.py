"""Which device a job's spectra run on: ``EOC_NTK_DEVICE`` (unset: NumPy on the CPU).

``EOC_NTK_DEVICE=cuda`` (or ``cuda:N``, or ``cpu`` for torch's CPU build) makes every process
that computes (RQ workers, the embedded pool's job processes, and the API process for what it
answers inline) run spectra with the core's torch backend on that device; the answer's
``"engine"`` is then ``"torch-cuda"`` (or ``"torch-cpu"``) instead of ``"numpy"``, and the cost
model (:func:`eoc_ntk.core.cost.predict_seconds`) counts the device. Read from the environment
of the process that computes, so a GPU worker and a CPU API process can share one Redis. torch
(the ``[gpu]`` extra) must be installed where it is set.
"""
from __future__ import annotations

import os

from eoc_ntk.core.backends import engine_name
from eoc_ntk.core.errors import InvalidParameterError

__all__ = ["DEVICE_ENV", "job_device", "job_engine"]

DEVICE_ENV = "EOC_NTK_DEVICE"


def job_device() -> str | None:
    """The torch device of ``EOC_NTK_DEVICE`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``), or None when unset
    or empty (NumPy). Raises ValueError naming the variable for any other value."""
    value = os.environ.get(DEVICE_ENV, "").strip()
    if not value:
        return None
    try:
        engine_name("torch", value)
    except InvalidParameterError:
        raise ValueError(f"{DEVICE_ENV} must be unset (NumPy), 'cpu', 'cuda' or 'cuda:N', got {value!r}") from None
    return value


def job_engine() -> str:
    """The answer's ``"engine"`` for a spectrum computed here: ``"numpy"``, ``"torch-cpu"`` or ``"torch-cuda"``."""
    device = job_device()
    return "numpy" if device is None else engine_name("torch", device)
