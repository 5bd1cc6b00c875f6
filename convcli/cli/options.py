"""Every option that more than one command takes, defined once, and the parsers that turn the
text a user typed into the values the library takes (stride "2,1" -> (2, 1), ...). A bad value
is an InputError that names the option."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import InputError
from ..kernels import PRESETS
from ..problem import ProblemSpec


class DType(str, Enum):
    float64 = "float64"
    float32 = "float32"


Stride = Annotated[str, typer.Option(help="Stride: N or H,W.")]
Dilation = Annotated[str, typer.Option(help="Dilation: N or H,W (1 = none, as in PyTorch).")]
Padding = Annotated[str, typer.Option(
    help="Padding: same, valid, full, N, H,W or T,B,L,R (top, bottom, left, right).")]
Groups = Annotated[int | None, typer.Option(
    help="Groups for a 4-D (O, C/groups, KH, KW) kernel (default: C divided by the kernel's C).")]
Bias = Annotated[str | None, typer.Option(
    help="Bias: one number, or one per output channel (a,b,c).")]
Gray = Annotated[bool, typer.Option("--gray", help="Convert the image to one channel (luma).")]
Precision = Annotated[DType, typer.Option(
    "--dtype", help="float64 (the default: a reference tool) or float32.")]
MaxPixels = Annotated[int | None, typer.Option(
    help="Raise Pillow's decompression-bomb limit (89,478,485 pixels) for a file you trust.")]
MemoryBudget = Annotated[float, typer.Option(
    help="MiB of scratch for pieces of the im2col matrix (it is never built whole).")]
class Border(str, Enum):
    zeros = "zeros"
    reflect = "reflect"
    symmetric = "symmetric"
    replicate = "replicate"
    circular = "circular"


BorderMode = Annotated[Border, typer.Option(
    "--border", help="What the padded cells hold: zeros, reflect (torch reflect, scipy mirror, "
    "OpenCV REFLECT_101), symmetric (scipy reflect, OpenCV REFLECT), replicate (scipy "
    "nearest) or circular (scipy wrap).")]
Flip = Annotated[bool, typer.Option(
    "--flip", help="Rotate the kernel 180° first: a true convolution (scipy.ndimage.convolve, "
    "ImageMagick) instead of deep learning's cross-correlation.")]
AnySuffix = Annotated[bool, typer.Option(
    "--any-suffix", help="Keep an --out name whose suffix promises another format "
    "(e.g. y.png for .npy data); refused otherwise.")]
Chunks = Annotated[str | None, typer.Option(
    help="Run chunk by chunk on Dask (pip install 'convcli\\[dask]'): rows per chunk, N or H,W "
    "(default: a Zarr store's own chunks, else 2048). Implied by a Zarr IMAGE or --out y.zarr.",
    show_default=False)]
SchedulerName = Annotated[str | None, typer.Option(
    "--scheduler", help="Where the chunks run: threads (the default), processes, synchronous, "
    "or tcp://HOST:PORT, a running distributed scheduler (pip install "
    "'convcli\\[distributed]').", show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
ImageArg = Annotated[Path, typer.Argument(
    metavar="IMAGE", help="A picture (PNG, JPEG, TIFF, BMP, WebP, GIF), a .npy array (H, W), "
    "(C, H, W) or (N, C, H, W), or a Zarr store (big.zarr, store.zarr::component; read chunk by "
    "chunk). 8- and 16-bit pictures become floats in [0, 1]; arrays are used as they are.",
    show_default=False)]
KernelArg = Annotated[str, typer.Argument(
    metavar="KERNEL", help="A preset name (see `convcli kernels`), an inline matrix "
    "\"1 0 -1; 2 0 -2; 1 0 -1\" (fractions a/b allowed), a text file (rows of numbers; a blank line starts another "
    "output channel) or a .npy (KH, KW), (O, KH, KW) or (O, C, KH, KW).", show_default=False)]


def out_option(what: str) -> Any:
    """--out / -o: where the command writes `what`."""
    return typer.Option("--out", "-o", help=f"Where to write {what}.", show_default=False)


def seed_option(what: str) -> Any:
    """--seed: the seed of `what`."""
    return typer.Option("--seed", help=f"Seed of {what}.")


MAX_INT = 2**31 - 1
"""The largest stride, padding or dilation accepted (torch's int64 is never reached by a real
image; a bigger number is a typo)."""


def parse_ints(text: str, option: str, lengths: tuple[int, ...] = (1, 2)) -> Any:
    """"2" -> 2, "2,1" -> (2, 1); InputError naming the option otherwise."""
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) not in lengths:
        forms = " or ".join({1: "N", 2: "H,W", 4: "T,B,L,R"}[n] for n in lengths)
        raise InputError(f"--{option} must be {forms} (integers), got {text.strip()!r}")
    return values[0] if len(values) == 1 else values


def parse_padding(text: str) -> Any:
    """same, valid, full, N, H,W or T,B,L,R -> conv2d's padding."""
    if text.strip().lower() in ("same", "valid", "full"):
        return text.strip().lower()
    return parse_ints(text, "padding", (1, 2, 4))


def geometry(stride: str, padding: str | None, dilation: str) -> dict[str, Any]:
    """The text options -> conv2d's stride, padding (None stays None) and dilation, checked
    for sign."""
    options = {"stride": parse_ints(stride, "stride"), "dilation": parse_ints(dilation, "dilation"),
               "padding": None if padding is None else parse_padding(padding)}
    for name in ("stride", "dilation"):
        values = options[name] if isinstance(options[name], tuple) else (options[name],)
        if min(values) < 1:
            raise InputError(f"--{name} must be at least 1, got {min(values)}")
    if not isinstance(options["padding"], (str, type(None))):
        values = options["padding"] if isinstance(options["padding"], tuple) else (
            options["padding"],)
        if min(values) < 0:
            raise InputError(f"--padding must not be negative, got {(padding or '').strip()}")
    typed = {"stride": stride, "dilation": dilation, "padding": padding or ""}
    for name, value in options.items():
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, int) and v > MAX_INT for v in values):
            raise InputError(f"--{name} {typed[name].strip()} is too large: at most "
                             f"{MAX_INT:,} (2³¹ − 1)")
    return options


def parse_bias(text: str | None) -> tuple[float, ...] | None:
    """"0.5" or "1,2,3" -> the bias values (one, or one per output channel)."""
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"--bias must be a number or one per output channel, "
                         f"got {text!r}") from None


def budget(mib: float) -> int:
    """--memory-budget in MiB -> bytes."""
    if not 0 < mib < 2**40:
        raise InputError(f"--memory-budget must be a positive number of MiB below 2⁴⁰, "
                         f"got {mib}")
    return max(1, int(mib * 2**20))


def problem(image: Path, kernel: str, *, stride: str = "1", padding: str = "same",
            dilation: str = "1", groups: int | None = None, bias: str | None = None,
            gray: bool = False, dtype: DType = DType.float64,
            max_pixels: int | None = None, quiet: bool = False,
            border: Border = Border.zeros, flip: bool = False, transpose: bool = False,
            output_padding: Any = 0) -> ProblemSpec:
    """The options every IMAGE KERNEL command shares -> the library's ProblemSpec (and, unless
    quiet, a note when a file shadows a preset)."""
    if not quiet:
        note_shadowed_preset(kernel)
    return ProblemSpec(image, kernel, groups=groups, bias=parse_bias(bias), gray=gray,
                       dtype=dtype.value, max_pixels=max_pixels, padding_mode=border.value,
                       flip=flip, transpose=transpose, output_padding=output_padding,
                       **geometry(stride, padding, dilation))


def note_shadowed_preset(kernel: str | None) -> None:
    """A file in the current folder named like a preset is used as the kernel: say so on
    stderr, so nobody runs the wrong kernel unknowingly."""
    if kernel is not None and kernel.lower() in PRESETS and Path(kernel).is_file():
        Console(stderr=True, highlight=False).print(
            f"[bold yellow]note:[/] using the file ./{kernel}, not the preset {kernel.lower()} "
            f"(rename the file to use the preset)")
