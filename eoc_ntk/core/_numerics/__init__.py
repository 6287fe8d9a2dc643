"""The core's private numerics: the layer recursion, its depth-independent interpolants, the
all-depth kernels of a sweep, the singular diagnosis and BLAS thread guards.

Imported only by :mod:`eoc_ntk.core`; callers check their arguments before they get here.
"""
