"""Finite-difference proof of conv2d's three gradients, and the built-in suite that CI runs.

The method (torch.autograd.gradcheck's, with a loss that cannot hide bugs):

- L = Σ (y ⊙ g), y = conv2d(x, w, b) and g a random, non-uniform upstream gradient (seeded), so
  dL/dy = g. An all-ones g hides real bugs (a kernel flip, a one-pixel shift at the border).
- The analytic gradients are ``backward(g, x, w, ...)``; the numeric ones are central
  differences (L(v + eps) − L(v − eps)) / step for each checked coordinate v of x, w and b,
  step being the difference of the two values actually stored (numeric.py).
- An element passes when |analytic − numeric| ≤ atol + rtol·|numeric| (verdicts.py). Per tensor
  the report also gives the max relative error |a − n| / max(1e-12, |a| + |n|).
- Each configuration also checks the adjoint identity ⟨conv2d(x, w), g⟩ = ⟨x, dL/dx⟩ for the
  backward under test, and that the two dL/dx routes of convcli (col2im and the flipped-kernel
  convolution) agree (check.py).

The modules: suite.py (the built-in configurations), numeric.py (coordinates and central
differences), verdicts.py (the rule, Result and Report), check.py (run_suite, check_case),
render.py (the report as rich tables).
"""

from .check import check_case, run_suite
from .numeric import sample_coordinates
from .suite import SUITE, Case
from .verdicts import ADJOINT, DEFAULTS, ROUTES, TENSORS, Report, Result, Worst

__all__ = [
    "ADJOINT",
    "DEFAULTS",
    "ROUTES",
    "SUITE",
    "TENSORS",
    "Case",
    "Report",
    "Result",
    "Worst",
    "check_case",
    "run_suite",
    "sample_coordinates",
]
