"""Draw a gradcheck Report (verdicts.py) with rich: the results table, what failed and why, and
a one-line verdict; and the same as plain text (for an AssertionError). No maths here, only
layout.
"""

from __future__ import annotations

import io
import math

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

PASS, FAIL, SKIP = "✓", "✗", "skipped"
# The columns a narrow terminal can lose, in the order they go; configuration, tensor and the
# verdict always stay.
OPTIONAL = ("max rel err", "max abs err", "checked")


def results_table(report, width: int = 80) -> Table:
    """One row per result: configuration, tensor, coordinates checked, errors, verdict. Columns
    of OPTIONAL are dropped, in that order, until the table fits in ``width``."""
    rows = [_row(result) for result in report.results]
    columns = ["configuration", "tensor", "checked", "max abs err", "max rel err", ""]
    for dropped in range(len(OPTIONAL) + 1):
        keep = [c for c in columns if c not in OPTIONAL[:dropped]]
        if _width(keep, columns, rows) <= width:
            break
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  title=f"gradcheck ({report.dtype}, eps {report.eps:g}, "
                  f"|a − n| ≤ {report.atol:g} + {report.rtol:g}·|n|)")
    for name in keep:
        table.add_column(name, justify="left" if name in ("configuration", "tensor") else
                         "right" if name else "center", no_wrap=name != "configuration",
                         overflow="fold")
    previous = None
    for result, row in zip(report.results, rows):
        if previous is not None and result.configuration != previous:
            table.add_section()
        shown = dict(zip(columns, row))
        if result.configuration == previous:
            shown["configuration"] = ""
        previous = result.configuration
        table.add_row(*[_styled(shown[name]) if name == "" else shown[name] for name in keep])
    return table


def _row(result) -> list[str]:
    verdict = SKIP if result.skipped else PASS if result.passed else FAIL
    if result.checked == 0 and not result.worst:
        return [result.configuration, result.tensor, "-", "-", "-", verdict]
    return [result.configuration, result.tensor, _checked(result),
            _number(result.max_abs_err), _number(result.max_rel_err), verdict]


def _width(keep, columns, rows) -> int:
    """The table's width with the columns in keep: each column's widest cell, 1 of padding on
    each inner side and a divider between columns (a configuration name over 24 may fold)."""
    total = 3 * (len(keep) - 1)
    for name in keep:
        k = columns.index(name)
        widest = max([len(name)] + [len(row[k]) for row in rows])
        total += min(widest, 24) if name == "configuration" else widest
    return total


def _styled(verdict: str) -> str:
    return {FAIL: f"[bold red]{FAIL}[/]", SKIP: f"[yellow]{SKIP}[/]"}.get(verdict, verdict)


def failure_tables(report) -> list[RenderableType]:
    """For each failing result, its worst few coordinates, analytic and numeric side by side;
    or, where nothing could be compared, the reason (an exception, a wrong shape); then the
    skipped configurations."""
    shown: list[RenderableType] = []
    for result in report.failures:
        title = f"{FAIL} {result.configuration}: {result.tensor}"
        if not result.worst:
            shown.append(Text(f"{title}: {result.note}", style="bold red"))
            continue
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
        shown.append(table)
    for result in report.results:
        if result.skipped:
            shown.append(Text(f"{SKIP}: {result.configuration} ({result.tensor} raised "
                              f"{result.error})", style="yellow"))
    return shown


def verdict(report, seconds: float) -> str:
    """One line: the checks and the configurations passed, failed and skipped."""
    counts = report.counts()
    count = len(report.results) - sum(r.skipped for r in report.results)
    where = (f"configurations: {counts['passed']} passed, {counts['failed']} failed, "
             f"{counts['skipped']} skipped; {seconds:.2f} s")
    if report.passed:
        return f"[bold green]{PASS}[/] all {count} checks passed ({where})"
    return f"[bold red]{FAIL}[/] {len(report.failures)} of {count} checks failed ({where})"


def plain_text(report, seconds: float = 0.0, width: int = 100) -> str:
    """The whole report (table, failures, verdict) as plain text, no colour."""
    out = io.StringIO()
    console = Console(file=out, width=width, no_color=True, color_system=None,
                      highlight=False, soft_wrap=False)
    console.print(results_table(report, width))
    for table in failure_tables(report):
        console.print(table)
    console.print(verdict(report, seconds))
    return out.getvalue()


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
    if tensor == "y":
        return "your y", "conv2d's y"
    return "analytic", "numeric"
