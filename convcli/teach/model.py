"""The walkthrough as data: its tables (Grid), its checked claims (Check, CLAIMS, verify), its
steps and the Walkthrough that holds them. Nothing here computes a convolution or prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..geometry import Geometry

MAX_CHANNEL_GRIDS = 4                                  # channels drawn per array; --json has all

# (step index, claim, computed, expected[, "differ"]): each claim compares two arrays of
# ``arrays``; "differ" claims that they are not equal.
CLAIMS: tuple[tuple[Any, ...], ...] = (
    (0, "sliding the window by hand gives conv2d's y", "y_sliding", "y"),
    (0, ("the textbook convolution x * w (which turns w 180°) is not y: deep learning's "
         "\"convolution\" is a cross-correlation"), "y_true_convolution", "y", "differ"),
    (1, "X_col · W, reshaped, is the sliding window's y", "y_matmul", "y_sliding"),
    (2, "∂y/∂w at step 3's output (nudge each weight by 1, slide again) is its window xᵀ",
     "dy/dw_nudged", "x_window"),
    (2, "X_colᵀ · dL/dy is conv2d_backward's dL/dw", "dL/dw_matmul", "dL/dw"),
    (2, "dL/dw by nudging each weight, Σ dL/dy · Δy, is X_colᵀ · dL/dy", "dL/dw_nudged",
     "dL/dw_matmul"),
    (3, "∂y/∂p is the flipped kernel, placed at p", "dy/dp", "dy/dp_flipped"),
    (3, "Σ dL/dy · ∂y/∂p is conv2d_backward's dL/dx at p", "dL/dp", "dL/dx[p]"),
    (4, "dL/dy ⋆ w_flipped (full) is col2im(dL/dy · Wᵀ)", "dL/dx_flipped", "dL/dx_col2im"),
    (4, "dL/dy ⋆ w_flipped (full) is conv2d_backward's dL/dx", "dL/dx_flipped", "dL/dx"),
    (4, "dL/dy * w, a true convolution written tap by tap (no flip by hand), is dL/dx",
     "dL/dx_true_convolution", "dL/dx"),
    (5, "one window as a dense layer's neuron, w·x + b, is y there", "y_neuron",
     "y_at_window"),
    (5, "dL/db by nudging each b by 1, Σ dL/dy, is conv2d_backward's dL/db", "dL/db_nudged",
     "dL/db"),
    (6, "M · x, M built by nudging each pixel of x by 1, is y", "M·x", "y_flat"),
    (6, "Mᵀ · dL/dy is conv2d_backward's dL/dx", "Mᵀ·dL/dy", "dL/dx_flat"),
    (7, "col2im by hand (each window's row of dL/dX_col added back, tap by tap) is dL/dx",
     "dL/dx_scattered", "dL/dx"),
    (7, "the transposed convolution of dL/dy (conv_transpose2d) is dL/dx", "dL/dx_transposed",
     "dL/dx"),
    (8, "a batch of two: dL/dw by nudging each weight, summed over n, is conv2d_backward's",
     "batch dL/dw_nudged", "batch dL/dw"),
    (8, "a batch of two: Σ_o dL/dy[n, o] * w[o, c], written out per (n, o, c), is dL/dx",
     "batch dL/dx_sums", "batch dL/dx"),
    (8, "a batch of two: dL/db[o] = Σ_n Σ_ij dL/dy[n, o, i, j] is conv2d_backward's",
     "batch dL/db_sums", "batch dL/db"),
)


@dataclass
class Grid:
    """One table: values (R, K), a float array (NaN = blank cell) or an array of strings.

    dim (R, K) marks padding or inserted zeros (drawn dimmed, padding as "·"); mark (R, K) the
    highlighted cells (drawn bold and in [brackets]); focus is the cell kept in view when a
    large table is cropped.
    """

    title: str
    values: np.ndarray
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None
    dim: np.ndarray | None = None
    mark: np.ndarray | None = None
    focus: tuple[int, int] | None = None
    symbol: str = "·"      # how a dim cell is drawn; "" draws its value dimmed, in (parens)
    dim_note: str = "on the padding: dropped"   # the legend's words for a (parens) cell
    pin_last: int = 0      # trailing columns always shown (results), however it is cropped
    max_rows: int = 10     # rows shown before cropping


@dataclass
class Check:
    """One claim: max |computed - expected| within tolerance gives ✓, anything else ✗ (for a
    `differ` claim, the other way round). A claim that does not apply to this configuration
    (why says so) is drawn – and neither passes nor fails."""

    claim: str
    computed: str
    expected: str
    max_abs_diff: float
    tolerance: float
    differ: bool = False
    applicable: bool = True
    why: str = ""

    @property
    def holds(self) -> bool:
        """The claim is true of the numbers."""
        if not np.isfinite(self.max_abs_diff):
            return False
        return (self.max_abs_diff > self.tolerance) == self.differ

    @property
    def ok(self) -> bool:
        """Not a failure: the claim holds, or does not apply."""
        return self.holds or not self.applicable

    @property
    def mark(self) -> str:
        return "–" if not self.applicable else "✓" if self.holds else "✗"

    def not_applicable(self, why: str) -> None:
        self.applicable, self.why = False, why


@dataclass
class Step:
    title: str
    paragraphs: list[str]
    grids: list[Grid] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


@dataclass
class Walkthrough:
    steps: list[Step]
    arrays: dict[str, np.ndarray]
    pixel: tuple[int, int, int]          # (c, i, j) of p in x
    groups: int
    geometry: Geometry
    checks: list[Check]
    padding_mode: str = "zeros"

    def step(self, index: int) -> Any:
        """Step `index` (0-based) as a notebook shows it: _repr_html_ and str()."""
        from .exports import StepView
        return StepView(self, index)

    def _repr_html_(self) -> str:
        """The whole walkthrough in a notebook cell (its font inside, no network)."""
        from .exports import fragment
        return fragment(self)

    def to_json(self) -> dict:
        """Every array as nested lists, the geometry, the pixel and the checks: json.dumps-able."""
        g = self.geometry
        return {
            "geometry": {"input_size": g.input_size, "kernel_size": g.kernel_size,
                         "stride": g.stride, "dilation": g.dilation, "padding": g.pad,
                         "output_size": g.output_size, "groups": self.groups,
                         "padding_mode": self.padding_mode},
            "pixel": list(self.pixel),
            "arrays": {name: np.asarray(a).tolist() for name, a in self.arrays.items()},
            "checks": [{"claim": c.claim, "computed": c.computed, "expected": c.expected,
                        "max_abs_diff": c.max_abs_diff, "tolerance": c.tolerance, "ok": c.ok,
                        "differ": c.differ, "applicable": c.applicable, "why": c.why}
                       for c in self.checks],
            "steps": [{"title": s.title, "text": s.paragraphs} for s in self.steps],
        }


def verify(arrays: dict[str, np.ndarray]) -> list[Check]:
    """One Check per CLAIMS entry: tolerance 1e-9 · (1 + max |expected|), for float64."""
    checks = []
    for _, claim, computed, expected, *kind in CLAIMS:
        a = np.asarray(arrays[str(computed)], float)
        b = np.asarray(arrays[str(expected)], float)
        if a.shape != b.shape:
            diff = float("inf")
        else:
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        checks.append(Check(str(claim), str(computed), str(expected), diff,
                            1e-9 * (1.0 + scale), differ=kind == ["differ"]))
    return checks

