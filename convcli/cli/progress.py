"""A rich progress bar for long work: shown only on a terminal, and only once the work has run
for `delay` seconds, so short runs and piped output stay clean."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from rich import progress as bars
from rich.console import Console


class LateProgress:
    """A ``progress(done, total, **fields)`` callback; ``close()`` removes the bar.

    detail: an extra column's template over the fields, e.g. "loss {task.fields[loss]}".
    """

    def __init__(self, console: Console, description: str, *, enabled: bool = True,
                 delay: float = 1.0, detail: str | None = None) -> None:
        self.console, self.description, self.delay = console, description, delay
        self.enabled = enabled and console.is_terminal
        self.detail = detail
        self.start = time.perf_counter()
        self.bar: bars.Progress | None = None
        self.task: bars.TaskID | None = None

    def __call__(self, done: int, total: int, **fields: Any) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.start < self.delay:
                return
            columns = [bars.TextColumn("{task.description}"), bars.BarColumn(),
                       bars.MofNCompleteColumn(), bars.TimeElapsedColumn()]
            if self.detail:
                columns.append(bars.TextColumn(self.detail))
            self.bar = bars.Progress(*columns, console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total, **fields)
        if self.task is not None:
            self.bar.update(self.task, completed=done, total=total, **fields)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def working(console: Console, message: str, *, quiet: bool) -> contextlib.AbstractContextManager[Any]:
    """A spinner while long work runs, only on a terminal (nothing when piped or quiet)."""
    if quiet or not console.is_terminal:
        return contextlib.nullcontext()
    return console.status(message)
