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
  backward under test and, for convcli's own backward, that its two dL/dx routes (col2im and
  the flipped-kernel convolution) agree (routes.py).
- The implementation under test may be anyone's (calling.py states the convention); whatever it
  raises or returns becomes a verdict, never a crash. A NotImplementedError skips the case.

The modules: suite.py (the built-in configurations), data.py (one configuration's arrays),
calling.py (calling and vetting user code), numeric.py (coordinates and central differences),
routes.py (convcli's own routes check), verdicts.py (the rule, Result and Report), work.py
(progress in units of work), check.py (run_suite, check_case), answers.py (the files of the
language-agnostic mode), render.py (the report as tables and text).
"""

from .calling import load_function
from .check import check_case, grade_answers, run_suite, write_suite_cases
from .numeric import sample_coordinates
from .suite import SUITE, Case, select
from .verdicts import ADJOINT, DEFAULTS, OUTPUT, ROUTES, TENSORS, Report, Result, Worst

__all__ = [
    "ADJOINT",
    "DEFAULTS",
    "OUTPUT",
    "ROUTES",
    "SUITE",
    "TENSORS",
    "Case",
    "Report",
    "Result",
    "Worst",
    "check_case",
    "grade_answers",
    "load_function",
    "run_suite",
    "sample_coordinates",
    "select",
    "write_suite_cases",
]
