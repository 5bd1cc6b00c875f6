"""Draw a gradcheck Report (gradcheck.py) with rich: the results table, the worst coordinates of
each failure and a one-line verdict. No maths here, only layout.
"""

from __future__ import annotations

import math

from rich import box
from rich.table import Table

PASS, FAIL = "✓", "✗"


def results_table(report) -> Table:
    """One row per result: configuration, tensor, coordinates checked, errors, verdict (the
    error / tolerance ratios are in the failure tables and the JSON)."""
    table = Table(box=box.SIMPLE_HEAD, title=f"gradcheck ({report.dtype}, eps {report.eps:g}, "
                  f"|a − n| ≤ {report.atol:g} + {report.rtol:g}·|n|)")
    table.add_column("configuration", min_width=13)
    table.add_column("tensor", no_wrap=True)
    table.add_column("checked", justify="right", no_wrap=True)
    table.add_column("max abs err", justify="right")
    table.add_column("max rel err", justify="right")
    table.add_column("", justify="center")
    previous = None
    for result in report.results:
        if previous is not None and result.configuration != previous:
            table.add_section()
        name = result.configuration if result.configuration != previous else ""
        previous = result.configuration
        table.add_row(name, result.tensor, _checked(result), _number(result.max_abs_err),
                      _number(result.max_rel_err), PASS if result.passed else f"[bold red]{FAIL}[/]")
    return table


def failure_tables(report) -> list[Table]:
    """For each failing result, its worst few coordinates, analytic and numeric side by side."""
    tables = []
    for result in report.failures:
        title = f"{FAIL} {result.configuration}: {result.tensor}"
        if result.note:
            title += f" ({result.note})"
        analytic, numeric = _value_names(result.tensor)
        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
        table.add_column("index")
        table.add_column(analytic, justify="right")
        table.add_column(numeric, justify="right")
        table.add_column("|a − n|", justify="right")
        table.add_column("err/tol", justify="right")
        for worst in result.worst:
            table.add_row(str(list(worst.index)), f"{worst.analytic:.8g}", f"{worst.numeric:.8g}",
                          _number(worst.abs_err), _number(worst.ratio, ".3g"))
        tables.append(table)
    return tables


def verdict(report, seconds: float) -> str:
    configurations = len({r.configuration for r in report.results})
    count = len(report.results)
    where = f"{configurations} configuration{'s' if configurations != 1 else ''}"
    if report.passed:
        return f"[bold green]{PASS}[/] all {count} checks passed ({where}, {seconds:.2f} s)"
    return (f"[bold red]{FAIL}[/] {len(report.failures)} of {count} checks failed ({where}, "
            f"{seconds:.2f} s)")


def _checked(result) -> str:
    if result.checked == result.size:
        return f"{result.size:,}"
    return f"{result.checked:,} of {result.size:,}"


def _number(value, spec=".2e") -> str:
    return format(value, spec) if math.isfinite(value) else str(value)


def _value_names(tensor):
    if tensor == "routes_agree":
        return "col2im route", "flipped route"
    if tensor == "adjoint":
        return "⟨x, dL/dx⟩", "⟨conv2d(x, w), g⟩"
    return "analytic", "numeric"
