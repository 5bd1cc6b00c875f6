"""convcli forward: y = x ⋆ w + b on an image, written as .npy (and a picture)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import api, batch, picture, stores
from ..errors import InputError
from . import batches, big, summary
from . import options as opt
from .errors import handle_errors
from .progress import working
from .summary import Fact

EXAMPLE = "Example: convcli forward samples/camera.png sobel-x --png edges.png"


@handle_errors
def forward(
    ctx: typer.Context,
    images: Annotated[list[Path], typer.Argument(
        metavar="IMAGE", show_default=False,
        help="One image or several, or a quoted glob ('photos/*.png'): a picture (PNG, JPEG, "
        "TIFF, BMP, WebP, GIF), a .npy array (H, W), (C, H, W) or (N, C, H, W), or a Zarr "
        "store (big.zarr, store.zarr::component). 8- and 16-bit pictures become floats in "
        "[0, 1]; arrays are used as they are.")],
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
    transpose: Annotated[bool, typer.Option(
        "--transpose", help="A transposed convolution (torch's conv_transpose2d, the backward "
        "pass of conv2d as a layer): KERNEL is (C_in, C_out/groups, KH, KW), --padding crops "
        "(default 0), --stride spreads the input out.")] = False,
    output_padding: Annotated[str, typer.Option(
        help="With --transpose: rows and columns added at the bottom and right, N or H,W "
        "(each smaller than the stride or the dilation).")] = "0",
    out: Annotated[Path | None, opt.out_option(
        "y (N, O, OH, OW) as .npy (default: IMAGE.forward.npy beside the image)")] = None,
    png: Annotated[Path | None, typer.Option(
        help="Also write a picture of y: clipped to [0, 1], or, for a zero-sum kernel (Sobel, "
        "Laplacian) with negative output, mapped around mid grey (0 = grey).")] = None,
    png_bits: Annotated[int, typer.Option(
        help="Bits per sample of the --png picture: 8, or 16 for grey (0..65535).")] = 8,
    normalize: Annotated[bool, typer.Option(
        "--normalize", help="Map the picture's min..max to 0..255.")] = False,
    memory_budget: opt.MemoryBudget = 256,
    chunks: opt.Chunks = None,
    scheduler: opt.SchedulerName = None,
    out_dir: Annotated[Path | None, typer.Option(
        help="With several images: the folder for their NAME.forward.npy (default: beside "
        "each image).", show_default=False)] = None,
    any_suffix: opt.AnySuffix = False,
    json_output: opt.Json = False,
    quiet: opt.Quiet = False,
) -> None:
    """Run a kernel over an image: y = x ⋆ w + b (cross-correlation, PyTorch's conv2d).

    A 2-D kernel on a colour image is applied to each channel separately (depthwise), as image tools do; a (O, C, KH, KW) kernel is an ordinary multi-channel convolution.

    Many images: convcli forward 'photos/*.png' sobel-x --out-dir edges/ runs them on a pool of threads (--scheduler processes or tcp://HOST:PORT for more), reports the files that failed at the end without stopping the others, and exits 1 if any did.

    Bigger than memory: a Zarr store (big.zarr, store.zarr::component), --out y.zarr, --chunks or --scheduler runs chunk by chunk on Dask and writes the output chunk by chunk (pip install 'convcli\\[dask]'): convcli forward big.zarr sobel-x --out y.zarr --chunks 2048
    """  # one line per paragraph: Typer keeps a docstring's line breaks
    image, many = _one_or_many(images, out, out_dir, chunks)
    if transpose and not _given(ctx, "padding"):
        padding = "0"                              # "same" means nothing to a transposed conv
    elif not transpose and _given(ctx, "output_padding"):
        raise InputError("--output-padding goes with --transpose")
    spec = opt.problem(image, kernel, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, bias=bias, gray=gray, dtype=dtype, max_pixels=max_pixels,
                       quiet=quiet or json_output, border=border, flip=flip,
                       transpose=transpose,
                       output_padding=opt.parse_ints(output_padding, "output-padding"))
    console = summary.console(quiet, stderr=summary.to_stdout(out))
    if many is not None:
        big.refuse("several images (each y is written to --out-dir as NAME.forward.npy)",
                   png=png, normalize=normalize)
        done = batches.run(spec, many, out_dir=out_dir, scheduler=scheduler or "threads",
                             console=console, quiet=quiet or json_output,
                             memory_budget=opt.budget(memory_budget))
        summary.show(batches.facts(done), json_output=json_output, console=console)
        if done.failed:
            raise typer.Exit(1)
        return
    if big.wanted(image, out, chunks, scheduler):
        big.refuse(png=png, normalize=normalize, transpose=transpose)
        chunked = big.forward(spec, out=out, chunk_text=chunks, scheduler_name=scheduler,
                              console=console, quiet=quiet or json_output)
        summary.show(big.forward_facts(chunked), json_output=json_output, console=console)
        return
    with working(console, "computing y = x ⋆ w", quiet=quiet or json_output):
        result = api.run_forward(spec, out=out, png=png, normalize=normalize,
                                 any_suffix=any_suffix, png_bits=png_bits,
                                 memory_budget=opt.budget(memory_budget))
    summary.show(facts(result), json_output=json_output, console=console)


def _one_or_many(images: list[Path], out: Path | None, out_dir: Path | None,
                 chunks: str | None) -> tuple[Path, list[Path] | None]:
    """The one image of a plain run, or (the first, all of them) for a batch: several IMAGEs,
    a glob, or --out-dir."""
    if not images:
        raise InputError("give an IMAGE (or several) and a KERNEL: convcli forward IMAGE KERNEL")
    expanded = batch.expand(images)
    if len(expanded) == 1 and out_dir is None:
        return expanded[0], None
    if out is not None:
        raise InputError("--out names one output: with several images, give --out-dir FOLDER")
    if chunks is not None or any(stores.is_store(image) for image in expanded):
        raise InputError("Zarr stores and --chunks run one image at a time: give one IMAGE")
    return expanded[0], expanded


def _transpose_rows(spec: api.ProblemSpec) -> tuple[tuple[str, str], ...]:
    if not spec.transpose:
        return ()
    return (("transpose", f"conv_transpose2d, output padding {spec.output_padding}"),)


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def facts(result: api.ForwardResult) -> list[Fact]:
    """input, kernel, geometry, output, time, picture, written."""
    problem, y = result.problem, result.y
    x_range, y_range = api.value_range(problem.x), api.value_range(y)
    return [
        summary.input_fact(problem.image, range=x_range),
        summary.kernel_fact(problem.w, problem.kernel_source, problem.groups, problem.x.shape[1]),
        summary.geometry_fact(problem.geometry, problem.groups, problem.spec.padding_text(),
                              problem.spec.padding_mode, problem.spec.flip),
        Fact("output", {"shape": list(y.shape), "dtype": str(y.dtype), "range": y_range},
             (("output", (f"{summary.shape_text(y)}  range {summary.range_text(y_range)}  "
                         f"(input range {summary.range_text(x_range)})")),)),
        Fact("transpose", problem.spec.transpose, _transpose_rows(problem.spec)),
        summary.nonfinite_fact(result.nonfinite(), picture=result.mapping is not None),
        summary.time_fact(result.seconds),
        Fact("picture", result.mapping,
             (("picture", f"{result.mapping}; {picture.layout(y)}"),) if result.mapping else ()),
        summary.written_fact(result.written),
    ]
