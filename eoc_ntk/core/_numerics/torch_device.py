"""The torch backend's device: lazy import of torch, device names, and the memory plan.

torch is optional (the ``[gpu]`` extra): it is imported on the first call of :func:`load_torch`,
that is only when a caller asks for ``backend="torch"``; the core imports and computes without it.

Memory plan. A device holds the float64 matrix plus a bounded workspace:

- a kernel: ``n * n2 * 8`` bytes per kind, built in row blocks whose temporaries take at most
  ``WORKSPACE_TEMPS * block_entries * 8`` bytes (``block_entries <= BLOCK_ENTRIES``);
- the extremes of a spectrum: the matrix and one n x n float64 factor buffer (the float32
  factor for the rough estimate, n x n x 4, is freed before the float64 one is made) when they
  fit; otherwise the matrix alone, the factors in its own lower triangle
  (:mod:`eoc_ntk.core._numerics.torch_inplace`), plus a few ``2048 x n`` panels;
- all eigenvalues: the matrix and torch's ``eigvalsh`` workspace, counted as one more n x n.

Before a matrix is allocated :func:`check_fits` compares that plan with the device's memory
(``EOC_NTK_DEVICE_MEMORY`` bytes when set, else the free memory torch reports for a GPU, or
the available memory of the machine for the CPU) and raises :class:`DeviceMemoryError`, naming
n and both sizes, when it does not fit.
"""
from __future__ import annotations

import functools
import importlib
import os
import re
from typing import Any

from eoc_ntk.core.errors import InvalidParameterError

__all__ = ["Tensor", "load_torch", "check_device", "torch_device", "device_memory", "spare_memory", "check_fits",
           "DeviceMemoryError",
           "BLOCK_ENTRIES", "WORKSPACE_TEMPS", "MEMORY_ENV"]

#: Entries of one block of the kernel computed at once on the device (32 MiB per temporary).
BLOCK_ENTRIES = 1 << 22
#: Float64 temporaries of one block's size alive at once while a block is computed.
WORKSPACE_TEMPS = 24
#: Environment variable: the device memory budget in bytes (overrides what the device reports).
MEMORY_ENV = "EOC_NTK_DEVICE_MEMORY"
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
#: A ``torch.Tensor`` (and ``torch.device``): typed as Any, torch being optional and untyped here.
Tensor = Any


class DeviceMemoryError(InvalidParameterError):
    """The matrix and its workspace do not fit in the device's memory (``param="x"``)."""


@functools.lru_cache(maxsize=1)
def load_torch() -> Any:
    """The ``torch`` module, imported on first use (an optional dependency: the ``[gpu]`` extra)."""
    try:
        # Lazy: an optional heavy dependency, imported only for backend="torch".
        torch = importlib.import_module("torch")
    except ImportError as exc:
        raise InvalidParameterError(
            "backend='torch' needs PyTorch, which is not installed: pip install 'eoc-ntk[gpu]' "
            "(or torch>=2.13), or use backend='numpy'", param="backend") from exc
    return torch


def check_device(backend: Any, device: Any) -> str:
    """Validate ``backend`` and ``device``; return the device name (``"cpu"``, ``"cuda"``, ``"cuda:N"``)."""
    if backend not in ("numpy", "torch"):
        raise InvalidParameterError(f"backend must be 'numpy' or 'torch', got {backend!r}", param="backend")
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise InvalidParameterError(f"device must be 'cpu', 'cuda' or 'cuda:N' (N a GPU index), got {device!r}",
                                    param="device")
    if backend == "numpy" and device != "cpu":
        raise InvalidParameterError(f"device={device!r} needs backend='torch' (the NumPy backend runs on the CPU)",
                                    param="device")
    return device


def torch_device(device: str) -> Tensor:
    """The ``torch.device`` for ``device``, refusing a GPU that torch cannot see."""
    torch = load_torch()
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            raise InvalidParameterError(
                f"device={device!r}: torch {torch.__version__} sees {count} CUDA device(s); use device='cpu' "
                "or install a CUDA build of torch on a machine with a GPU", param="device")
    return torch.device(device)


def memory_budget() -> int | None:
    """``EOC_NTK_DEVICE_MEMORY`` in bytes, None when unset or empty (the one reader of the variable)."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if not text:
        return None
    try:
        value = int(float(text))
    except ValueError:
        value = -1
    if value <= 0:
        raise InvalidParameterError(f"{MEMORY_ENV} must be a positive number of bytes, got {text!r}",
                                    param=MEMORY_ENV)
    return value


def device_memory(dev: Tensor) -> int:
    """Bytes available for the backend on ``dev``: ``EOC_NTK_DEVICE_MEMORY`` when set, else the
    GPU's free memory (``torch.cuda.mem_get_info``) or the machine's available memory."""
    budget = memory_budget()
    if budget is not None:
        return budget
    if dev.type == "cuda":
        free, _ = load_torch().cuda.mem_get_info(dev)
        return int(free)
    return _available_host_memory()


def spare_memory(dev: Tensor, held: int) -> int:
    """Bytes still available on ``dev`` beyond the ``held`` bytes the caller has allocated there:
    ``EOC_NTK_DEVICE_MEMORY - held`` when the budget is set, else what the device reports free
    (for a GPU including the blocks torch's caching allocator holds unused)."""
    budget = memory_budget()
    if budget is not None:
        return budget - int(held)
    if dev.type == "cuda":
        cuda = load_torch().cuda
        free, _ = cuda.mem_get_info(dev)
        return int(free + cuda.memory_reserved(dev) - cuda.memory_allocated(dev))
    return _available_host_memory()


def _available_host_memory() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2 ** 30:.3g} GiB"


def check_fits(dev: Tensor, n: int, matrices: float, workspace: int, what: str, n2: int | None = None,
               held: int = 0) -> int:
    """Raise :class:`DeviceMemoryError` unless ``matrices`` more float64 arrays of shape (n, n2) (n2
    defaults to n) plus ``workspace`` bytes fit beside the ``held`` bytes the caller already has on
    the device (:func:`spare_memory`); return the bytes available for them."""
    budget = spare_memory(dev, held)
    n2 = n if n2 is None else n2
    need = int(matrices * n * n2 * 8) + int(workspace)
    if need > budget:
        largest = int(((budget - workspace) / (8 * matrices)) ** 0.5) if budget > workspace else 0
        fits = f"n <= {largest} fits" if n2 == n else f"{max(0, (budget - workspace) // (8 * matrices * n2))} rows fit"
        raise DeviceMemoryError(
            f"{what} of n = {n} points does not fit on {dev}: it needs {_gib(need)} ({matrices:g} float64 "
            f"{n} x {n2} matrices of {_gib(8 * n * n2)} plus a {_gib(workspace)} workspace), the device has "
            f"{_gib(budget)} available (set {MEMORY_ENV} to change the budget); {fits}. Use fewer "
            "points, a device with more memory, or the Dask route (eoc_ntk.distributed) for larger n",
            param="x")
    return budget
