"""convcli backward: y and dL/dx, dL/dw, dL/db for a loss or a given dL/dy, written as .npz."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .. import api
from . import big, summary
from . import options as opt
from .errors import handle_errors
from .progress import working
from .summary import Fact

EXAMPLE = ("Example: convcli backward samples/camera.png sobel-x --loss mse "
           "--target samples/brick.png --png-dx dx.png")


class Loss(str, Enum):
    sum = "sum"
    mse = "mse"


@handle_errors
def backward(
    image: opt.ImageArg,
    kernel: opt.KernelArg,
    stride: opt.Stride = "1",
    padding: opt.Padding = "same",
    dilation: opt.Dilation = "1",
    groups: opt.Groups = None,
    bias: opt.Bias = None,
    gray: opt.Gray = False,
    dtype: opt.Precision = opt.DType.float64,
    max_pixels: opt.MaxPixels = None,
    border: opt.BorderMode = opt.Border.zeros,
    flip: opt.Flip = False,
    grad_output: Annotated[Path | None, typer.Option(
        help="dL/dy as a .npy of y's shape (N, O, OH, OW); replaces --loss.")] = None,
    loss: Annotated[Loss, typer.Option(
        help="sum: L = Σy, so dL/dy = 1; mse: L = ½‖y − T‖², so dL/dy = y − T (needs --target).")
    ] = Loss.sum,
    target: Annotated[Path | None, typer.Option(
        help="T for --loss mse: an image or .npy of y's shape.")] = None,
    out: Annotated[Path | None, opt.out_option(
        "the .npz (default: IMAGE.backward.npz beside the image)")] = None,
    png_dx: Annotated[Path | None, typer.Option(
        help="Also write a picture of dL/dx (mapped around mid grey when signed).")] = None,
    memory_budget: opt.MemoryBudget = 256,
    chunks: opt.Chunks = None,
    scheduler: opt.SchedulerName = None,
    any_suffix: opt.AnySuffix = False,
    json_output: opt.Json = False,
    quiet: opt.Quiet = False,
) -> None:
    """Compute y and the three gradients dL/dx, dL/dw, dL/db for a loss or a given dL/dy.

    Bigger than memory: a Zarr IMAGE, --out g.zarr, --chunks or --scheduler runs chunk by chunk on Dask and writes a Zarr group (y, grad_input, grad_weight, grad_bias, weight; the geometry as attributes): convcli backward big.zarr sobel-x --out grads.zarr

    Writes one .npz holding the case (input, weight, bias when given, the geometry) and its results (y, grad_output, grad_input, grad_weight, grad_bias), so it can be re-run; np.load(path, allow_pickle=False) reads it. --out - writes it to standard output (the summary then goes to stderr).
    """  # one line per paragraph: Typer keeps a docstring's line breaks
    spec = opt.problem(image, kernel, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, bias=bias, gray=gray, dtype=dtype, max_pixels=max_pixels,
                       quiet=quiet or json_output, border=border, flip=flip)
    console = summary.console(quiet, stderr=summary.to_stdout(out))
    if big.wanted(image, out, chunks, scheduler):
        big.refuse(png_dx=png_dx)
        chunked = big.backward(spec, loss=loss.value, target=target, grad_output=grad_output,
                               out=out, chunk_text=chunks, scheduler_name=scheduler,
                               console=console, quiet=quiet or json_output)
        summary.show(big.backward_facts(chunked), json_output=json_output, console=console)
        if not json_output and max(chunked.grad_weight.shape[2:]) <= 7:
            console.print(summary.kernel_tables([("dL/dw", chunked.grad_weight)]))
        return
    with working(console, "computing dL/dx, dL/dw, dL/db", quiet=quiet or json_output):
        result = api.run_backward(spec, loss=loss.value, target=target, grad_output=grad_output,
                                  any_suffix=any_suffix,
                                  out=out, png_dx=png_dx, memory_budget=opt.budget(memory_budget))
    summary.show(facts(result), json_output=json_output, console=console)
    dw = result.grad_weight
    if not json_output and max(dw.shape[2:]) <= 7:
        console.print(summary.kernel_tables([("dL/dw", dw)]))


def facts(result: api.BackwardResult) -> list[Fact]:
    """input, kernel, geometry, output, loss, the gradients' norms, time, written."""
    problem, dw, db = result.problem, result.grad_weight, result.grad_bias
    norms = result.norms()
    loss = result.loss_text + ("" if result.loss is None else f";  L = {result.loss:.6g}")
    bias_rows = ((("grad_bias", ", ".join(f"{v:.6g}" for v in db[:8])
                   + (" ⋯" if db.size > 8 else "")),) if db.size > 1 else ())
    return [
        summary.input_fact(problem.image),
        summary.kernel_fact(problem.w, problem.kernel_source, problem.groups, problem.x.shape[1]),
        summary.geometry_fact(problem.geometry, problem.groups, problem.spec.padding_text(),
                              problem.spec.padding_mode, problem.spec.flip),
        Fact("output", {"shape": list(result.y.shape)},
             (("output", f"y {summary.shape_text(result.y)}"),)),
        Fact("loss", result.loss_text, (("loss", loss),)),
        Fact("L", result.loss),
        Fact("norms", norms, tuple((f"‖{name}‖", f"{value:.6g}") for name, value in norms.items())),
        Fact("grad_weight", dw.tolist() if dw.size <= 49 * 16 else None),
        Fact("grad_bias", db.tolist(), bias_rows),
        summary.nonfinite_fact(result.nonfinite()),
        summary.time_fact(result.seconds),
        summary.written_fact(result.written),
    ]
