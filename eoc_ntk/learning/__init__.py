"""What the spectrum means for training on labels (docs/learning.md): gradient-descent
dynamics, kernel regression and learning curves, and finite-width networks to check them.

Built on :mod:`eoc_ntk.core` only; users import the public names from :mod:`eoc_ntk`.
"""
