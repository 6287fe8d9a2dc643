"""The core: kernels, spectra, depth sweeps, ICD bounds, validation and the cost model.

NumPy and SciPy only; nothing here knows of HTTP, Redis, queues, plots or the other folders
of :mod:`eoc_ntk`. Its private implementation (the recursion, the interpolants, the
diagnosis of singular kernels) lives in :mod:`eoc_ntk.core._numerics` and is imported only
from this package. Users import the public names from :mod:`eoc_ntk`.
"""
