"""convcli forward on many images: the batch run with a progress bar over the files, and its
summary (how many were written, how fast, each failure on a row of its own)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..batch import BatchResult, run_batch
from ..problem import ProblemSpec
from .progress import LateProgress
from .summary import Fact, time_fact


def run(spec: ProblemSpec, images: list[Path], *, out_dir: Path | None, scheduler: str,
        console: Console, quiet: bool, memory_budget: int) -> BatchResult:
    bar = LateProgress(console, "images", enabled=not quiet)
    try:
        return run_batch(spec, images, out_dir=out_dir, scheduler=scheduler, progress=bar,
                         memory_budget=memory_budget)
    finally:
        bar.close()


def facts(result: BatchResult) -> list[Fact]:
    """images, rate, failures, time, written."""
    total = len(result.done) + len(result.failed)
    folders = sorted({str(done.written.parent) for done in result.done})
    return [
        Fact("images", {"total": total, "written": len(result.done),
                        "failed": len(result.failed), "scheduler": result.scheduler},
             (("images", (f"{total:,} read, {len(result.done):,} written, "
                         f"{len(result.failed):,} failed  (on {result.scheduler})")),)),
        Fact("images_per_second", round(result.rate, 3),
             (("rate", f"{result.rate:,.1f} images/s"),)),
        Fact("failed", [{"image": str(f.image), "error": f.error} for f in result.failed],
             tuple(("failed", f"{f.image}: {f.error}") for f in result.failed)),
        time_fact(result.seconds),
        Fact("written", [str(done.written) for done in result.done],
             (("written", f"{len(result.done):,} files in {', '.join(folders) or '-'}"),)),
    ]
