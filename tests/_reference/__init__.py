"""Test-only references for the numerical core, written from docs/math.md independently of ``eoc_ntk``.

- :mod:`.mp_kernel`: 50-digit mpmath recursion of docs/math.md §2 in rho form (kernels, angles,
  ICD entries, spectra of ``K/n``).
- :mod:`.mp_smooth`: 50-digit references for erf, tanh, GELU and SiLU (EOC solve, Hermite-series and
  whitened-quadrature expectations, the recursion) and the stored table ``smooth_values.json``.
- :mod:`.network`: random finite-width MLPs with explicit Jacobians (empirical NTK).
- :mod:`.data`: the activations, hyperparameters and datasets the tests share.
- :mod:`.checks`: the shared assertions and the error measures they use.
"""
