"""convcli forward and backward on images bigger than memory: the route taken when the image
is a Zarr store, --out names one, or --chunks or --scheduler is given (chunked.py does the
work); the summary rows of such a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from .. import stores
from ..chunked import (
    ChunkedBackwardResult,
    ChunkedForwardResult,
    run_backward_chunked,
    run_forward_chunked,
)
from ..errors import InputError
from ..problem import ProblemSpec
from ..schedulers import connect
from . import options as opt
from . import summary
from .progress import LateProgress
from .summary import Fact


def wanted(image: Path, out: Path | None, chunks: str | None, scheduler: str | None) -> bool:
    """Whether a run goes chunk by chunk: a Zarr IMAGE, --out NAME.zarr, --chunks or
    --scheduler."""
    return (stores.is_store(image) or (out is not None and stores.is_store(out))
            or chunks is not None or scheduler is not None)


def refuse(why: str = "a chunked run (a Zarr image or output, --chunks or --scheduler)",
           **options: Any) -> None:
    """Options that do not go with this kind of run, refused by name."""
    given = [name for name, value in options.items() if value]
    if given:
        names = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(f"{names} does not go with {why}; drop it")


def chunks(text: str | None) -> Any:
    return None if text is None else opt.parse_ints(text, "chunks")


def forward(spec: ProblemSpec, *, out: Path | None, chunk_text: str | None,
            scheduler_name: str | None, console: Console, quiet: bool) -> ChunkedForwardResult:
    """Run the chunked forward pass with a progress bar over the chunks written."""
    scheduler = connect(scheduler_name or "threads")
    bar = LateProgress(console, "chunks written", enabled=not quiet)
    try:
        return run_forward_chunked(spec, out=out, chunks=chunks(chunk_text),
                                   scheduler=scheduler, progress=bar)
    finally:
        bar.close()
        scheduler.close()


def backward(spec: ProblemSpec, *, loss: str, target: Path | None, grad_output: Path | None,
             out: Path | None, chunk_text: str | None, scheduler_name: str | None,
             console: Console, quiet: bool) -> ChunkedBackwardResult:
    """Run the chunked backward pass with a progress bar over the chunks written."""
    scheduler = connect(scheduler_name or "threads")
    bar = LateProgress(console, "chunks written", enabled=not quiet)
    try:
        return run_backward_chunked(spec, loss=loss, target=target, grad_output=grad_output,
                                    out=out, chunks=chunks(chunk_text), scheduler=scheduler,
                                    progress=bar)
    finally:
        bar.close()
        scheduler.close()


def run_fact(x: Any, scheduler: str, written_chunks: int) -> Fact:
    """The chunks of x and where they ran."""
    rows, cols = max(x.chunks[2]), max(x.chunks[3])
    value = {"chunks": [rows, cols], "scheduler": scheduler, "chunks_written": written_chunks}
    return Fact("chunked", value, (("chunks", (f"{rows}×{cols} on {scheduler}, "
                                              f"{written_chunks:,} chunks written")),))


def problem_facts(problem: Any) -> list[Fact]:
    """input, kernel and geometry: what forward and backward both report."""
    return [
        summary.input_fact(problem.image),
        summary.kernel_fact(problem.w, problem.kernel_source, problem.groups, problem.x.shape[1]),
        summary.geometry_fact(problem.geometry, problem.groups, problem.spec.padding_text(),
                              problem.spec.padding_mode, problem.spec.flip),
    ]


def forward_facts(result: ChunkedForwardResult) -> list[Fact]:
    """input, kernel, geometry, output, chunks, time, written: forward's facts."""
    problem = result.problem
    y_range = result.y_stats.range()
    shape = "×".join(map(str, result.y_shape))
    return [
        *problem_facts(problem),
        Fact("output", {"shape": list(result.y_shape), "dtype": result.y_dtype,
                        "range": y_range},
             (("output", f"{shape} {result.y_dtype}  range {summary.range_text(y_range)}"),)),
        run_fact(problem.x, result.scheduler, result.y_chunks),
        summary.nonfinite_fact(result.nonfinite()),
        summary.time_fact(result.seconds),
        summary.written_fact(result.written),
    ]


def backward_facts(result: ChunkedBackwardResult) -> list[Fact]:
    """backward's facts for a chunked run."""
    problem, dw, db = result.problem, result.grad_weight, result.grad_bias
    norms = result.norms()
    loss = result.loss_text + ("" if result.loss is None else f";  L = {result.loss:.6g}")
    shape = "×".join(map(str, result.y_shape))
    return [
        *problem_facts(problem),
        Fact("output", {"shape": list(result.y_shape)}, (("output", f"y {shape}"),)),
        Fact("loss", result.loss_text, (("loss", loss),)),
        Fact("L", result.loss),
        Fact("norms", norms, tuple((f"‖{name}‖", f"{value:.6g}") for name, value in norms.items())),
        Fact("grad_weight", dw.tolist() if dw.size <= 49 * 16 else None),
        Fact("grad_bias", db.tolist()),
        run_fact(problem.x, result.scheduler, result.chunks_written),
        summary.nonfinite_fact(result.nonfinite()),
        summary.time_fact(result.seconds),
        summary.written_fact(result.written),
    ]
