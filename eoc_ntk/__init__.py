"""eoc_ntk: infinite-width NTK spectra of MLPs at the edge of chaos.

Pure NumPy/SciPy. The specification is MATH.md (model of arXiv:2501.13225). All arrays
are float64.
"""
from .kernels import KINDS, kernel
from .model import ACTIVATION_NAMES, Model, activation_coefficients

__all__ = ["kernel", "KINDS", "Model", "activation_coefficients", "ACTIVATION_NAMES"]
