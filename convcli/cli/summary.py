"""Facts -> a table or JSON. A command turns its result into Facts, each holding its JSON value
and the table rows that show it, so the two outputs come from one object and cannot disagree.
Also the facts that several commands share (input, kernel, geometry, time, written) and small
kernel tables."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.columns import Columns
from rich.console import Console
from rich.table import Table

from ..geometry import Geometry
from ..images import LoadedImage

Row = tuple[str, str]


@dataclass(frozen=True)
class Fact:
    """One thing a command reports: its JSON key and value (key None: table only) and its
    table rows (none: JSON only)."""

    key: str | None
    value: Any
    rows: tuple[Row, ...] = ()


def show(facts: Sequence[Fact], *, json_output: bool, console: Console) -> None:
    """Print the facts as one JSON object (indented, strict: NaN and inf as strings), or as a
    two-column table: on stdout, or on stderr when stdout carries the data (``--out -``)."""
    if json_output:
        typer.echo(json.dumps(as_json(facts), indent=2, allow_nan=False), err=console.stderr)
    else:
        print_table(facts, console)


def as_json(facts: Iterable[Fact]) -> dict[str, Any]:
    return {fact.key: _strict(fact.value) for fact in facts if fact.key is not None}


def _strict(value: Any) -> Any:
    """JSON has no NaN or inf: they become the strings "nan", "inf", "-inf"."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def print_table(facts: Iterable[Fact], console: Console) -> None:
    """The facts as label/text rows: a rich grid that folds long text on a terminal; plain
    lines, never wrapped or padded with spaces, when piped."""
    if console.is_terminal:
        console.print(table(facts))
        return
    rows = [row for fact in facts for row in fact.rows]
    width = max((len(label) for label, _ in rows), default=0)
    for label, text in rows:
        console.print(f"{label:<{width}}  {text}", markup=False, highlight=False,
                      soft_wrap=True)


def table(facts: Iterable[Fact]) -> Table:
    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for fact in facts:
        for label, text in fact.rows:
            grid.add_row(label, text)
    return grid


def console(quiet: bool = False, *, stderr: bool = False) -> Console:
    """The console a command prints its summary on (stderr when stdout carries data)."""
    return Console(quiet=quiet, highlight=False, stderr=stderr)


def to_stdout(out: Path | None) -> bool:
    """Whether --out is "-": the data go to standard output, the summary to stderr."""
    return out is not None and str(out) == "-"


def shape_text(array: Any) -> str:
    """1×3×512×512 float64"""
    return "×".join(str(n) for n in array.shape) + f" {array.dtype}"


def range_text(values: Sequence[float] | None) -> str:
    """(low, high) -> "low .. high"."""
    return "no finite values" if values is None else f"{values[0]:.4g} .. {values[1]:.4g}"


def input_fact(image: LoadedImage, *, key: str = "input", label: str = "input",
               **extra: Any) -> Fact:
    """An image as read: its path, shape, dtype, source and notes."""
    x = image.array
    value = {"path": str(image.path), "shape": list(x.shape), "dtype": str(x.dtype),
             "source": image.source, "notes": image.notes, **extra}
    return Fact(key, value, ((label, f"{shape_text(x)}  {image.source}"),
                             *[("", f"note: {note}") for note in image.notes]))


def kernel_fact(w: Any, source: str, groups: int, channels: int) -> Fact:
    """The weight (O, C/groups, KH, KW), where it came from, and the groups."""
    separately = "  (each channel separately)" if groups == channels > 1 else ""
    return Fact("kernel", {"source": source, "shape": list(w.shape), "groups": groups},
                (("kernel", f"{shape_text(w)}  {source}, groups={groups}{separately}"),))


def geometry_fact(geometry: Geometry, groups: int, padding_option: str,
                  padding_mode: str = "zeros", flip: bool = False) -> Fact:
    """The resolved padding (its border mode), stride and dilation (and the --padding they
    came from), and whether the kernel was flipped."""
    top, bottom, left, right = geometry.pad
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    value = {"stride": list(geometry.stride), "dilation": list(geometry.dilation),
             "padding": dict(zip(("top", "bottom", "left", "right"), geometry.pad)),
             "groups": groups, "padding_mode": padding_mode, "flip": flip}
    border = "" if padding_mode == "zeros" else f", --border {padding_mode}"
    rows = [("padding", (f"top {top}, bottom {bottom}, left {left}, right {right}  "
                         f"(--padding {padding_option}{border})")),
            ("stride", f"{sh}, {sw}  dilation {dh}, {dw}")]
    if flip:
        rows.append(("flip", "kernel rotated 180°: a true convolution (--flip)"))
    return Fact("geometry", value, tuple(rows))


def time_fact(seconds: float) -> Fact:
    return Fact("seconds", round(seconds, 6), (("time", f"{seconds * 1000:.1f} ms"),))


def written_fact(paths: Sequence[Path]) -> Fact:
    names = [str(path) for path in paths]
    shown = ["standard output" if name == "-" else name for name in names]
    return Fact("written", names, (("written", ", ".join(shown)),))


def kernel_tables(named: Sequence[tuple[str, Any]], limit: int = 6) -> Columns:
    """Kernels (O, C/g, KH, KW) as small KH×KW tables side by side: for each of the first
    `limit` (o, c) pairs, one table per (title, array) in named (None arrays are skipped)."""
    arrays = [(title, array) for title, array in named if array is not None]
    shape = arrays[0][1].shape
    pairs = [(o, c) for o in range(shape[0]) for c in range(shape[1])][:limit]
    tables = []
    for o, c in pairs:
        for title, array in arrays:
            name = f"{title}[{o},{c}]" if len(pairs) > 1 else title
            grid = Table(title=name, show_header=False, min_width=len(name) + 2)
            for _ in range(array.shape[3]):
                grid.add_column(justify="right")
            tiny = 1e-9 * np.abs(array).max()          # rounding noise around 0 shows as 0
            for row in array[o, c]:
                grid.add_row(*(f"{v if abs(v) > tiny else 0.0:.4g}" for v in row))
            tables.append(grid)
    return Columns(tables)


def nonfinite_fact(counts: dict[str, tuple[int, int]], picture: bool = False) -> Fact:
    """NaN and inf counts per array (JSON: {name: {"nan": n, "inf": m}}, empty when all are
    finite) and, when there are any, one warning row saying what they do."""
    value = {name: {"nan": nan, "inf": inf} for name, (nan, inf) in counts.items()}
    if not counts:
        return Fact("nonfinite", value)
    parts = ", ".join(f"{name} {nan:,} NaN and {inf:,} inf" for name, (nan, inf) in
                      counts.items())
    text = (f"non-finite values: {parts}; they spread to every output whose window reads them, "
            "ranges count finite values only" + ("; the picture paints them black"
                                                  if picture else ""))
    return Fact("nonfinite", value, (("warning", text),))
