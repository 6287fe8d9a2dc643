"""Array types of the core's signatures: what goes in (``ArrayLike``) and what comes out."""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ArrayLike", "FloatArray", "IntArray", "BoolArray"]

#: Anything ``np.asarray`` reads: arrays, nested lists, scalars.
ArrayLike = npt.ArrayLike
#: A float64 array (kernels, eigenvalues, inputs once checked).
FloatArray = npt.NDArray[np.float64]
#: An integer array (indices, depths).
IntArray = npt.NDArray[np.int64]
#: A boolean array (masks).
BoolArray = npt.NDArray[np.bool_]
