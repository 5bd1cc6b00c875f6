"""convcli kernels: the preset kernels with their matrices."""

from __future__ import annotations

from fractions import Fraction

from rich.table import Table
from rich.text import Text

from .. import kernels as presets
from . import options as opt
from . import summary
from .errors import handle_errors
from .summary import Fact

EXAMPLE = "Example: convcli kernels"


@handle_errors
def kernels(json_output: opt.Json = False) -> None:
    """List the preset kernels with their matrices (use a name as KERNEL)."""
    if json_output:
        summary.show([Fact(name, {"description": text, "matrix": matrix.tolist()})
                      for name, (text, matrix) in presets.PRESETS.items()],
                     json_output=True, console=summary.console())
        return
    table = Table(title="Preset kernels (cross-correlation weights, not flipped)")
    table.add_column("name", style="bold")
    table.add_column("matrix")
    table.add_column("what it does")
    for name, (text, matrix) in presets.PRESETS.items():
        rows = "\n".join(" ".join(_short(v) for v in row) for row in matrix)
        table.add_row(name, rows, Text(text))                  # no markup: x[j+1] stays
    summary.console().print(table)


def _short(value: float) -> str:
    """A preset's entry as written: 1/9, 0.5, -2."""
    fraction = Fraction(float(value)).limit_denominator(256)
    return f"{float(fraction):g}" if fraction.denominator == 1 else str(fraction)
