"""Draw a Walkthrough (explain.py) with rich: one titled Panel per step, its Grids as tables,
its Checks as ✓/✗ lines. No maths here, only layout.

Highlighting never relies on colour alone, so NO_COLOR and the .txt export stay clear: marked
cells are bold and in [brackets], padding is a dimmed "·", a failed check is ✗. Large tables are
cropped around their focus cell with "⋯" and a note of the full shape, so nothing is wider than
the console.
"""

from __future__ import annotations

import numpy as np
from rich import box
from rich.cells import cell_len
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .model import Check, Grid, Step, Walkthrough

ELLIPSIS = "⋯"


def render(walk: Walkthrough, console: Console, *, pause=None) -> None:
    """Print every step as a Panel; call pause() after each step but the last (for --step)."""
    for index, step in enumerate(walk.steps):
        console.print(step_panel(step, console.width))
        if pause is not None and index < len(walk.steps) - 1:
            pause()


def step_panel(step: Step, width: int) -> Panel:
    """One step: its paragraphs, a legend if needed, its tables side by side, its checks."""
    inner = max(20, width - 4)                       # the Panel's border and padding take 4
    parts: list[RenderableType] = [Text(paragraph) for paragraph in step.paragraphs]
    legend = []
    if any(g.dim is not None and g.dim.any() and g.symbol for g in step.grids):
        legend.append("· padding (zero)")
    notes = dict.fromkeys(g.dim_note for g in step.grids
                          if g.dim is not None and g.dim.any() and not g.symbol)
    legend += [f"(n) {note}" for note in notes]
    if any(g.mark is not None and g.mark.any() for g in step.grids):
        legend.append("[n] highlighted")
    if legend:
        parts.append(Text("   ".join(legend), style="italic"))
    if step.grids:
        parts.append(Text())
        parts.append(Columns([grid_table(g, inner) for g in step.grids], padding=(0, 3)))
    if step.checks:
        parts.append(Text())
        parts += [check_line(c) for c in step.checks]
        if len(step.checks) > 2:
            parts.append(Text(count_text(step.checks), style="bold"))
    return Panel(Group(*parts), title=Text(step.title, style="bold"), title_align="left",
                 width=width, padding=(0, 1))


def count_text(checks: list[Check]) -> str:
    """"9 of 9 checks pass", and how many do not apply."""
    applicable = [c for c in checks if c.applicable]
    skipped = len(checks) - len(applicable)
    return (f"{sum(c.holds for c in applicable)} of {len(applicable)} checks pass"
            + (f" ({skipped} not applicable)" if skipped else ""))


def check_line(check: Check) -> Text:
    """✓, ✗ or – (not applicable), the claim and its max abs difference (or why not)."""
    line = Text()
    style = "bold" if not check.applicable else "bold green" if check.holds else "bold red"
    line.append(f"{check.mark} ", style=style)
    line.append(check.claim)
    diff = check.max_abs_diff
    if not check.applicable:
        line.append(f"  (not applicable: {check.why})", style="dim")
    else:
        line.append(f"  (max |diff| {'0' if diff == 0 else f'{diff:.1e}'})", style="dim")
    return line


def grid_table(grid: Grid, max_width: int) -> Table:
    """A rich Table of grid, cropped around grid.focus to grid.max_rows rows and max_width columns.

    Only the cells that can be shown are formatted, so a 512×512 image costs no more than a 4×4.
    """
    rows, cols = np.shape(grid.values)[:2] if np.ndim(grid.values) == 2 else (len(grid.values), 1)
    focus = grid.focus or (0, 0)
    row_span = _window(rows, grid.max_rows, focus[0])
    body = cols - grid.pin_last
    shown_rows = np.arange(*row_span)

    def table_of(limit):
        return _table(grid, row_span, _window(body, limit, focus[1]))

    # The most body columns that fit: estimated from the cells' widths (a column takes its
    # width + 2 of padding + 1 between columns, less the 2 outer pads), then confirmed by rich.
    limit = min(body, max_width // 2)
    start, stop = _window(body, limit, focus[1])      # every narrower window lies inside it
    columns = np.r_[start:stop, body:cols]
    cells = _cells(grid, shown_rows, columns)
    width = {j: max([cell_len(t.plain) for t in cells[:, k]]
                    + [cell_len(grid.col_labels[j]) if grid.col_labels else 0])
             for k, j in enumerate(columns)}
    labels = ([max(cell_len(grid.row_labels[i]) for i in shown_rows)]
              if grid.row_labels is not None else [])

    def estimate(n):
        c0, c1 = _window(body, n, focus[1])
        widths = (labels + [1] * (c0 > 0) + [width[j] for j in range(c0, c1)]
                  + [1] * (c1 < body) + [width[j] for j in range(body, cols)])
        return sum(widths) + 3 * len(widths) - 3

    while limit > 1 and estimate(limit) > max_width:
        limit -= 1
    table = table_of(limit)
    measure = Console(width=10_000).measure
    while limit > 1 and measure(table).maximum > max_width:
        limit -= 1
        table = table_of(limit)
    return table


def _table(grid: Grid, row_span: tuple[int, int], col_span: tuple[int, int]) -> Table:
    (r0, r1), (c0, c1) = row_span, col_span
    shape = np.shape(grid.values)
    rows, cols = shape[0], (shape[1] if len(shape) > 1 else 1)
    body = cols - grid.pin_last
    shown_rows, shown_cols = np.arange(r0, r1), np.r_[c0:c1, body:cols]
    cells = dict(zip([(int(i), int(j)) for i in shown_rows for j in shown_cols],
                     _cells(grid, shown_rows, shown_cols).ravel()))
    cropped = (r0, r1, c0, c1) != (0, rows, 0, body)
    caption = Text(f"cropped from {rows}×{cols}") if cropped else None
    table = Table(title=Text(grid.title, style="bold"), caption=caption, box=box.SIMPLE_HEAD,
                  min_width=cell_len(grid.title),      # a title is never cut: w_flipped[1,0]
                  show_edge=False, pad_edge=False, padding=(0, 1),
                  show_header=grid.col_labels is not None, caption_style="dim")
    col_index = (([None] if c0 > 0 else []) + list(range(c0, c1)) + ([None] if c1 < body else [])
                 + list(range(body, cols)))
    if grid.row_labels is not None:
        table.add_column(Text(""), style="bold", justify="right", no_wrap=True)
    for j in col_index:
        label = ELLIPSIS if j is None else (grid.col_labels[j] if grid.col_labels else "")
        table.add_column(Text(label), justify="right", no_wrap=True)
    row_index = ([None] if r0 > 0 else []) + list(range(r0, r1)) + ([None] if r1 < rows else [])
    for i in row_index:
        line = []
        if grid.row_labels is not None:
            line.append(Text(ELLIPSIS if i is None else grid.row_labels[i]))
        for j in col_index:
            line.append(Text(ELLIPSIS) if i is None or j is None else cells[(i, j)])
        table.add_row(*line)
    return table


def _cells(grid: Grid, rows, cols) -> np.ndarray:
    """(len(rows), len(cols)) Texts of those cells: numbers formatted alike (over the shown
    cells), marked cells bold in [brackets], dim ones as grid.symbol or in (parentheses)."""
    values = np.asarray(grid.values)
    values = values.reshape(values.shape + (1,) * (2 - values.ndim))[np.ix_(rows, cols)]
    strings = _format(values)
    dim = np.zeros(values.shape, bool) if grid.dim is None else grid.dim[np.ix_(rows, cols)]
    mark = np.zeros(values.shape, bool) if grid.mark is None else grid.mark[np.ix_(rows, cols)]
    cells = np.empty(values.shape, dtype=object)
    for (i, j), text in np.ndenumerate(strings):
        if mark[i, j]:
            cells[i, j] = Text(f"[{text}]", style="bold reverse" if not dim[i, j] else "bold")
        elif dim[i, j]:
            shown = f"{grid.symbol} " if grid.symbol else f"({text})"
            cells[i, j] = Text(shown, style="dim")
        else:
            cells[i, j] = Text(f"{text} ")
    return cells


def _format(values: np.ndarray) -> np.ndarray:
    """Strings for a table's values: whole numbers as integers, others with 2 decimals (one
    format per table so the columns line up); NaN is a blank cell."""
    if values.dtype.kind not in "fiub":
        return values.astype(str)
    finite = values[np.isfinite(values)]
    whole = finite.size == 0 or bool(np.all(finite == np.round(finite)))
    out = np.empty(values.shape, dtype=object)
    for index, v in np.ndenumerate(values):
        text = "" if not np.isfinite(v) else (f"{v:.0f}" if whole else f"{v:.2f}").replace("-", "−")
        if text.startswith("−") and not text.strip("−0."):
            text = text[1:]                                     # −0.00 -> 0.00
        out[index] = text
    return out


def _window(size: int, limit: int, focus: int) -> tuple[int, int]:
    """[start, stop) of at most limit items that contains focus, as centred as it can be."""
    limit = max(1, min(limit, size))
    start = min(max(0, focus - limit // 2), size - limit)
    return start, start + limit
