"""eoc_ntk: infinite-width NTK spectra of MLPs at the edge of chaos.

Pure NumPy/SciPy (no HTTP, Redis or queues). The specification is docs/math.md, the model of
"MLPs at the EOC: Spectrum of the NTK" (arXiv:2501.13225). Every array is float64.

Main entry points: :func:`kernel`, :func:`spectrum`, :func:`icd_analysis`,
:func:`depth_sweep`, :func:`analyze`; with labels: :func:`dynamics`, :func:`predict`,
:func:`learning_curve`, :func:`alignment` (docs/learning.md).
"""
from eoc_ntk.core.activations import SMOOTH_NAMES, Activation
from eoc_ntk.core.alignment import alignment
from eoc_ntk.core.analysis import analyze
from eoc_ntk.core.backends import BACKENDS, depth_sweep, kernel, spectrum
from eoc_ntk.core.icd import IcdAnalysis, gershgorin_bounds, icd_analysis
from eoc_ntk.core.kernels import KINDS, check_kinds
from eoc_ntk.core.labels import check_labels
from eoc_ntk.core.model import ACTIVATION_NAMES, Model, activation_coefficients
from eoc_ntk.core.spectra import Spectrum, singular_tolerance
from eoc_ntk.core.sweep import DepthSweep, depth_limit_matrix, limit_condition_number
from eoc_ntk.core.validation import MAX_ABS_VALUE, MAX_DEPTH, check_data
from eoc_ntk.learning.dynamics import Dynamics, dynamics
from eoc_ntk.learning.regression import LearningCurve, learning_curve, predict

#: Changes whenever a result could change: part of every cache key.
ALGORITHM_VERSION = "2"

__all__ = [
    "ALGORITHM_VERSION", "ACTIVATION_NAMES", "SMOOTH_NAMES", "Activation", "BACKENDS", "KINDS", "MAX_ABS_VALUE",
    "MAX_DEPTH",
    "Model", "Spectrum", "IcdAnalysis", "DepthSweep", "Dynamics", "LearningCurve",
    "alignment", "check_labels", "dynamics", "learning_curve", "predict",
    "activation_coefficients", "analyze", "check_data", "check_kinds", "depth_limit_matrix", "depth_sweep",
    "gershgorin_bounds", "icd_analysis", "kernel", "limit_condition_number",
    "singular_tolerance", "spectrum",
]
