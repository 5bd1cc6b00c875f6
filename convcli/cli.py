"""The convcli command line: thin commands that parse, call the library and print.

No maths here. A user's mistake (io.InputError, or a ValueError/TypeError from the library's
argument checks) prints one line on stderr and exits 2; anything else exits 1 with one line,
and `--debug` (or CONVCLI_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from . import __version__


class _Group(TyperGroup):
    """Click takes any word that starts with "-" for an option; a negative number (an inline
    kernel "-1 0 1; -2 0 2; -1 0 1", --bias -0.5) is a value, so it gets a leading space."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, [" " + a if re.match(r"-[\d.]", a) else a for a in args])


app = typer.Typer(
    cls=_Group,
    name="convcli",
    help="Compute, check and teach the forward and backward passes of 2-D convolution.\n\n"
    "Example: convcli forward samples/camera.png sobel-x --png edges.png",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _version(value: bool):
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal "
                                        "error (or set CONVCLI_DEBUG=1).")] = False,
):
    """Compute, check and teach the forward and backward passes of 2-D convolution.

    Arrays use PyTorch's layout: x (N, C, H, W), w (O, C/groups, KH, KW), y (N, O, OH, OW);
    the forward pass is a cross-correlation (the kernel is not flipped).
    """
    _state["debug"] = debug


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2):
    """One line on stderr, then exit (2: the user can fix it)."""
    _stderr().print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


def handle_errors(command):
    """Turn a user's mistake into one line and exit 2, an internal error into exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .io import InputError

        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except (InputError, ValueError, TypeError) as error:
            if _debugging():
                raise
            fail(str(error).replace("\n", " "))
        except KeyboardInterrupt:
            fail("interrupted; no output file was changed", 130)
        except Exception as error:  # noqa: BLE001 - the last line of defence
            if _debugging():
                raise
            fail(f"internal error: {type(error).__name__}: {error} (run with --debug for "
                 "the traceback, and please report it)", 1)

    return wrapper


def _debugging() -> bool:
    return _state["debug"] or os.environ.get("CONVCLI_DEBUG", "") not in ("", "0")


# --- shared options ---------------------------------------------------------------------------

Stride = Annotated[str, typer.Option(help="Stride: N or H,W.")]
Dilation = Annotated[str, typer.Option(help="Dilation: N or H,W (1 = none, as in PyTorch).")]
Padding = Annotated[str, typer.Option(
    help="Padding: same, valid, full, N, H,W or T,B,L,R (top, bottom, left, right).")]
Groups = Annotated[Optional[int], typer.Option(
    help="Groups for a 4-D (O, C/groups, KH, KW) kernel (default: C divided by the kernel's C).")]
Bias = Annotated[Optional[str], typer.Option(
    help="Bias: one number, or one per output channel (a,b,c).")]
Gray = Annotated[bool, typer.Option("--gray", help="Convert the image to one channel (luma).")]
DType = Annotated[str, typer.Option(help="float64 (default: a reference tool) or float32.")]
MaxPixels = Annotated[Optional[int], typer.Option(
    help="Raise Pillow's decompression-bomb limit (89,478,485 pixels) for a file you trust.")]
MemoryBudget = Annotated[float, typer.Option(
    help="MiB of scratch for pieces of the im2col matrix (it is never built whole).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
ImageArg = Annotated[Path, typer.Argument(
    metavar="IMAGE", help="A picture (PNG, JPEG, TIFF, BMP, WebP, GIF) or a .npy array (H, W), (C, H, W) or "
    "(N, C, H, W). 8- and 16-bit pictures become floats in [0, 1]; .npy values are used as "
    "they are.", show_default=False)]
KernelArg = Annotated[str, typer.Argument(
    metavar="KERNEL", help="A preset name (see `convcli kernels`), an inline matrix \"1 0 -1; 2 0 -2; 1 0 -1\", "
    "a text file (rows of numbers; a blank line starts another output channel) or a .npy "
    "(KH, KW), (O, KH, KW) or (O, C, KH, KW).", show_default=False)]


def parse_ints(text: str, option: str, lengths=(1, 2)) -> int | tuple[int, ...]:
    """"2" -> 2, "2,1" -> (2, 1); InputError naming the option otherwise."""
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) not in lengths:
        forms = " or ".join({1: "N", 2: "H,W", 4: "T,B,L,R"}[n] for n in lengths)
        raise _input_error(f"--{option} must be {forms} (integers), got {text!r}")
    return values[0] if len(values) == 1 else values


def parse_padding(text: str):
    if text.strip().lower() in ("same", "valid", "full"):
        return text.strip().lower()
    return parse_ints(text, "padding", (1, 2, 4))


def _input_error(message):
    from .io import InputError

    return InputError(message)


def geometry_options(stride: str, padding: str, dilation: str) -> dict:
    """The CLI's text options -> conv2d's keyword arguments (checked for sign)."""
    options = dict(stride=parse_ints(stride, "stride"), padding=parse_padding(padding),
                   dilation=parse_ints(dilation, "dilation"))
    for name in ("stride", "dilation"):
        values = options[name] if isinstance(options[name], tuple) else (options[name],)
        if min(values) < 1:
            raise _input_error(f"--{name} must be at least 1, got {min(values)}")
    padding_values = options["padding"]
    if not isinstance(padding_values, str):
        values = padding_values if isinstance(padding_values, tuple) else (padding_values,)
        if min(values) < 0:
            raise _input_error(f"--padding must not be negative, got {padding}")
    return options


def _budget(mib: float) -> int:
    """--memory-budget in MiB -> bytes."""
    if not mib > 0:
        raise _input_error(f"--memory-budget must be a positive number of MiB, got {mib}")
    return max(1, int(mib * 2**20))


def parse_dtype(text: str):
    import numpy as np

    if text not in ("float32", "float64"):
        raise _input_error(f"--dtype must be float32 or float64, got {text!r}")
    return np.dtype(text)


def parse_bias(text: str | None, out_channels: int):
    import numpy as np

    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise _input_error(f"--bias must be a number or one per output channel, got {text!r}")
    if len(values) == 1:
        values *= out_channels
    if len(values) != out_channels:
        raise _input_error(f"--bias has {len(values)} values for {out_channels} output "
                           "channel(s): give one value, or one per channel")
    return np.array(values)


def load_problem(image: Path, kernel: str, *, gray, dtype, max_pixels, groups):
    """Image and kernel -> (loaded image, w (O, C/groups, KH, KW), groups, kernel description)."""
    from . import io, kernels

    if max_pixels is not None and max_pixels < 1:
        raise _input_error(f"--max-pixels must be at least 1, got {max_pixels}")
    loaded = io.load_image(image, gray=gray, dtype=parse_dtype(dtype), max_pixels=max_pixels)
    matrix, description = io.load_kernel(kernel)
    w, groups = kernels.as_weight(matrix, loaded.array.shape[1], groups)
    return loaded, w.astype(loaded.array.dtype), groups, description


def _png_name(path: Path, option: str) -> Path:
    if path.suffix.lower() != ".png":
        raise _input_error(f"{option} writes a PNG: give a name ending in .png, got {path}")
    return path


def default_output(image: Path, suffix: str) -> Path:
    """samples/camera.png -> samples/camera.forward.npy (beside the image)."""
    return image.with_name(f"{image.stem}.{suffix}")


def _console(quiet: bool = False):
    from rich.console import Console

    return Console(quiet=quiet, highlight=False)


def working(message: str, *, quiet: bool):
    """A spinner while long work runs, only on a terminal (nothing when piped or --quiet)."""
    import contextlib

    console = _console(quiet)
    if quiet or not console.is_terminal:
        return contextlib.nullcontext()
    return console.status(message)


def _range_text(minmax) -> str:
    """[low, high] from _minmax -> "low .. high"."""
    return "no finite values" if minmax is None else f"{minmax[0]:.4g} .. {minmax[1]:.4g}"


def _summary_table(rows):
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


def _shape(array) -> str:
    return "×".join(str(n) for n in array.shape) + f" {array.dtype}"


def _print_json(payload):
    typer.echo(json.dumps(payload, indent=2))


# --- forward ---------------------------------------------------------------------------------


@app.command(epilog="Example: convcli forward samples/camera.png sobel-x --png edges.png")
@handle_errors
def forward(
    image: ImageArg,
    kernel: KernelArg,
    stride: Stride = "1",
    padding: Padding = "same",
    dilation: Dilation = "1",
    groups: Groups = None,
    bias: Bias = None,
    gray: Gray = False,
    dtype: DType = "float64",
    max_pixels: MaxPixels = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Where to write y (N, O, OH, OW) as .npy (default: IMAGE.forward.npy "
        "beside the image).")] = None,
    png: Annotated[Optional[Path], typer.Option(
        help="Also write a picture of y: clipped to [0, 1], or, for a zero-sum kernel (Sobel, "
        "Laplacian) with negative output, mapped around mid grey (0 = grey).")] = None,
    normalize: Annotated[bool, typer.Option(
        "--normalize", help="Map the picture's min..max to 0..255.")] = False,
    memory_budget: MemoryBudget = 256,
    json_output: Json = False,
    quiet: Quiet = False,
):
    """Run a kernel over an image: y = x ⋆ w + b (cross-correlation, PyTorch's conv2d).

    A 2-D kernel on a colour image is applied to each channel separately (depthwise), as image tools do; a (O, C, KH, KW) kernel is an ordinary multi-channel convolution.
    """  # one line per paragraph: Typer keeps a docstring's line breaks
    import numpy as np

    from . import io, picture
    from .conv import conv2d
    from .geometry import resolve

    options = geometry_options(stride, padding, dilation)
    out = io.check_output(out or default_output(image, "forward.npy"), [image, kernel])
    if png is not None:
        png = io.check_output(_png_name(png, "--png"), [image, kernel], [out], option="--png")
    loaded, w, groups, kernel_source = load_problem(image, kernel, gray=gray, dtype=dtype,
                                                    max_pixels=max_pixels, groups=groups)
    x = loaded.array
    b = parse_bias(bias, w.shape[0])
    b = None if b is None else b.astype(x.dtype)
    start = time.perf_counter()
    with working("computing y = x ⋆ w", quiet=quiet or json_output):
        y = conv2d(x, w, b, groups=groups, memory_budget=_budget(memory_budget), **options)
    seconds = time.perf_counter() - start
    geometry = resolve(x.shape[2:], w.shape[2:], **options)

    writers, mapping = [(out, io.npy_writer(y))], None
    if png is not None:
        mapping = picture.choose_mapping(y, zero_sum_kernel=picture.zero_sum(w),
                                         signed_input=bool(np.nanmin(x) < 0), normalize=normalize)
        writers.append((png, io.png_writer(picture.to_picture(y, mapping))))
    io.write_all(writers)
    written = [str(path) for path, _ in writers]

    report = {
        "input": {"path": str(image), "shape": list(x.shape), "dtype": str(x.dtype),
                  "source": loaded.source, "notes": loaded.notes, "range": _minmax(x)},
        "kernel": {"source": kernel_source, "shape": list(w.shape), "groups": groups},
        "geometry": _geometry_json(geometry, groups),
        "output": {"shape": list(y.shape), "dtype": str(y.dtype), "range": _minmax(y)},
        "picture": mapping,
        "seconds": round(seconds, 6),
        "written": written,
    }
    if json_output:
        _print_json(report)
        return
    console = _console(quiet)
    rows = [
        ("input", f"{_shape(x)}  {loaded.source}"),
        *[("", f"note: {note}") for note in loaded.notes],
        ("kernel", f"{_shape(w)}  {kernel_source}, groups={groups}"
                   + ("  (each channel separately)" if groups == x.shape[1] > 1 else "")),
        *_geometry_rows(geometry, padding),
        ("output", f"{_shape(y)}  range {_range_text(report['output']['range'])}  "
                   f"(input range {_range_text(report['input']['range'])})"),
        ("time", f"{seconds * 1000:.1f} ms"),
        *([("picture", f"{mapping}; {picture.layout(y)}")] if mapping else []),
        ("written", ", ".join(written)),
    ]
    console.print(_summary_table(rows))


def _minmax(array):
    import numpy as np

    if array.size == 0 or not np.isfinite(array).any():
        return None
    return [float(np.nanmin(array)), float(np.nanmax(array))]


def _geometry_json(geometry, groups):
    return {"stride": list(geometry.stride), "dilation": list(geometry.dilation),
            "padding": dict(zip(("top", "bottom", "left", "right"), geometry.pad)),
            "groups": groups}


def _geometry_rows(geometry, padding_option) -> list[tuple[str, str]]:
    top, bottom, left, right = geometry.pad
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    return [("padding", f"top {top}, bottom {bottom}, left {left}, right {right}  "
                        f"(--padding {padding_option})"),
            ("stride", f"{sh}, {sw}  dilation {dh}, {dw}")]


# --- backward --------------------------------------------------------------------------------


@app.command(epilog="Example: convcli backward samples/camera.png sobel-x --loss mse "
             "--target samples/brick.png --png-dx dx.png")
@handle_errors
def backward(
    image: ImageArg,
    kernel: KernelArg,
    stride: Stride = "1",
    padding: Padding = "same",
    dilation: Dilation = "1",
    groups: Groups = None,
    bias: Bias = None,
    gray: Gray = False,
    dtype: DType = "float64",
    max_pixels: MaxPixels = None,
    grad_output: Annotated[Optional[Path], typer.Option(
        help="dL/dy as a .npy of y's shape (N, O, OH, OW); replaces --loss.")] = None,
    loss: Annotated[str, typer.Option(
        help="sum: L = Σy, so dL/dy = 1; mse: L = ½‖y − T‖², so dL/dy = y − T (needs --target).")
    ] = "sum",
    target: Annotated[Optional[Path], typer.Option(
        help="T for --loss mse: an image or .npy of y's shape.")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Where to write the .npz (default: IMAGE.backward.npz beside the "
        "image).")] = None,
    png_dx: Annotated[Optional[Path], typer.Option(
        help="Also write a picture of dL/dx (mapped around mid grey when signed).")] = None,
    memory_budget: MemoryBudget = 256,
    json_output: Json = False,
    quiet: Quiet = False,
):
    """Compute y and the three gradients dL/dx, dL/dw, dL/db for a loss or a given dL/dy.

    Writes one .npz holding y, grad_output, grad_input, grad_weight, grad_bias and the geometry (np.load(path, allow_pickle=False) reads it).
    """  # one line per paragraph: Typer keeps a docstring's line breaks
    import numpy as np

    from . import io, losses, picture
    from .conv import conv2d, conv2d_backward
    from .geometry import resolve

    options = geometry_options(stride, padding, dilation)
    if loss not in ("sum", "mse"):
        raise _input_error(f"--loss must be sum or mse, got {loss!r}")
    if loss == "mse" and target is None and grad_output is None:
        raise _input_error("--loss mse needs --target T (an image or .npy of y's shape)")
    if target is not None and loss != "mse":
        raise _input_error("--target is the T of --loss mse: add --loss mse, or drop --target")
    inputs = [image, kernel, grad_output, target]
    out = io.check_output(out or default_output(image, "backward.npz"), inputs)
    if png_dx is not None:
        png_dx = io.check_output(_png_name(png_dx, "--png-dx"), inputs, [out], option="--png-dx")
    loaded, w, groups, kernel_source = load_problem(image, kernel, gray=gray, dtype=dtype,
                                                    max_pixels=max_pixels, groups=groups)
    x = loaded.array
    b = parse_bias(bias, w.shape[0])
    b = None if b is None else b.astype(x.dtype)
    start = time.perf_counter()
    budget = _budget(memory_budget)
    y = conv2d(x, w, b, groups=groups, memory_budget=budget, **options)
    if grad_output is not None:
        dy = _same_shape(io.load_array(grad_output, "--grad-output"), y, "--grad-output")
        loss_value, loss_text = None, f"dL/dy from {grad_output}"
    elif loss == "mse":
        t = io.load_image(target, dtype=x.dtype, max_pixels=max_pixels).array
        loss_value, dy = losses.mse_loss(y, _same_shape(t, y, "--target"))
        loss_text = "L = ½‖y − T‖², dL/dy = y − T"
    else:
        loss_value, dy = losses.sum_loss(y)
        loss_text = "L = Σy, dL/dy = 1"
    dy = dy.astype(x.dtype)
    with working("computing dL/dx, dL/dw, dL/db", quiet=quiet or json_output):
        dx, dw, db = conv2d_backward(dy, x, w, groups=groups, memory_budget=budget, **options)
    seconds = time.perf_counter() - start
    geometry = resolve(x.shape[2:], w.shape[2:], **options)

    writers = [(out, io.npz_writer(
        y=y, grad_output=dy, grad_input=dx, grad_weight=dw, grad_bias=db, weight=w,
        stride=np.array(geometry.stride), dilation=np.array(geometry.dilation),
        padding=np.array(geometry.pad), groups=np.array(groups)))]
    if png_dx is not None:                                   # gradients are signed
        writers.append((png_dx, io.png_writer(picture.to_picture(dx, picture.SIGNED))))
    io.write_all(writers)
    written = [str(path) for path, _ in writers]

    norms = {name: float(np.linalg.norm(a)) for name, a in
             (("grad_input", dx), ("grad_weight", dw), ("grad_bias", db))}
    if json_output:
        _print_json({
            "input": {"path": str(image), "shape": list(x.shape), "dtype": str(x.dtype),
                      "notes": loaded.notes},
            "kernel": {"source": kernel_source, "shape": list(w.shape), "groups": groups},
            "geometry": _geometry_json(geometry, groups),
            "output": {"shape": list(y.shape)},
            "loss": loss_text, "L": loss_value, "norms": norms,
            "grad_weight": dw.tolist() if dw.size <= 49 * 16 else None,
            "grad_bias": db.tolist(), "seconds": round(seconds, 6), "written": written,
        })
        return
    console = _console(quiet)
    rows = [
        ("input", f"{_shape(x)}  {loaded.source}"),
        *[("", f"note: {note}") for note in loaded.notes],
        ("kernel", f"{_shape(w)}  {kernel_source}, groups={groups}"),
        *_geometry_rows(geometry, padding),
        ("output", f"y {_shape(y)}"),
        ("loss", loss_text + ("" if loss_value is None else f";  L = {loss_value:.6g}")),
        *[(f"‖{name}‖", f"{value:.6g}") for name, value in norms.items()],
        *([("grad_bias", ", ".join(f"{v:.6g}" for v in db[:8]) + (" ⋯" if db.size > 8 else ""))]
          if db.size > 1 else []),
        ("time", f"{seconds * 1000:.1f} ms"),
        ("written", ", ".join(written)),
    ]
    console.print(_summary_table(rows))
    if max(dw.shape[2:]) <= 7:
        console.print(_kernel_tables([("dL/dw", dw)]))


def _same_shape(array, y, option):
    array = array.reshape((1,) * (4 - array.ndim) + array.shape) if array.ndim < 4 else array
    if array.shape != y.shape:
        raise _input_error(f"{option} has shape {tuple(array.shape)} but y has shape "
                           f"{tuple(y.shape)}: give an array of y's shape")
    return array


# --- kernels ---------------------------------------------------------------------------------


@app.command(epilog="Example: convcli kernels")
@handle_errors
def kernels(json_output: Json = False):
    """List the preset kernels with their matrices (use a name as KERNEL)."""
    from rich.table import Table
    from rich.text import Text

    from . import kernels as presets

    if json_output:
        _print_json({name: {"description": text, "matrix": matrix.tolist()}
                     for name, (text, matrix) in presets.PRESETS.items()})
        return
    table = Table(title="Preset kernels (cross-correlation weights, not flipped)")
    table.add_column("name", style="bold")
    table.add_column("matrix")
    table.add_column("what it does")
    for name, (text, matrix) in presets.PRESETS.items():
        rows = "\n".join(" ".join(_short(v) for v in row) for row in matrix)
        table.add_row(name, rows, Text(text))                  # no markup: x[j+1] stays
    _console().print(table)


def _short(value) -> str:
    from fractions import Fraction

    fraction = Fraction(float(value)).limit_denominator(256)
    return f"{float(fraction):g}" if fraction.denominator == 1 else str(fraction)


# --- explain ---------------------------------------------------------------------------------


EXPLAIN_HELP = (
    "Walk through \"Convolution in forward and backward\" on real numbers, every claim checked."
    "\n\n"
    "The steps: y = x ⋆ w (cross-correlation), im2col's Y = X_col · W, dL/dw = X_colᵀ · dL/dy, "
    "one pixel p's footprint (p times the flipped kernel), and dL/dx = dL/dy ⋆ w_flipped "
    "(full). Each equality gets ✓ or ✗ from a real comparison, with its max abs difference."
    "\n\n"
    "By default the article's case: a seeded 4×4 of integers, the 2×2 kernel (a b; c d) = "
    "(1 2; 3 4), stride 1, padding (1, 0, 1, 0) (top and left, so y keeps x's size), "
    "and a seeded random integer dL/dy. With stride > 1 dL/dy is dilated with zeros first; with "
    "channels the flip also swaps input and output channels; large inputs are cropped with ⋯. "
    "Exit 0 when every check passes, 1 when one fails, 2 for a usage error."
)


@app.command(help=EXPLAIN_HELP,
             epilog="Examples: convcli explain;  convcli explain --stride 2 --pixel 2,2;  "
                    "convcli explain --image samples/camera.png --kernel sobel-x --pixel 100,80 "
                    "--export walk.svg --animate walk.gif")
@handle_errors
def explain(
    image: Annotated[Optional[Path], typer.Option(
        help="x: a picture or .npy, as for forward (default: seeded integers 1..5).")] = None,
    kernel: Annotated[Optional[str], typer.Option(
        help="w: a preset, inline matrix, text file or .npy, as for forward (default: "
        "\"1 2; 3 4\"). A 2-D kernel on a colour image is applied to each channel.")] = None,
    stride: Stride = "1",
    padding: Annotated[Optional[str], typer.Option(
        help="Padding: same, valid, full, N, H,W or T,B,L,R (default: 1,0,1,0 for a 2×2 "
        "kernel, as in the article; same otherwise).")] = None,
    dilation: Dilation = "1",
    pixel: Annotated[str, typer.Option(help="p, the input pixel of step 4: I,J or C,I,J.")] = "0,0",
    gray: Gray = False,
    max_pixels: MaxPixels = None,
    seed: Annotated[int, typer.Option(help="Seed of the default x and of dL/dy.")] = 0,
    step: Annotated[bool, typer.Option(
        "--step", help="Pause after each step until Enter (only on a terminal).")] = False,
    export: Annotated[Optional[Path], typer.Option(
        help="Also write the walkthrough as .svg, .html or .txt.")] = None,
    animate: Annotated[Optional[Path], typer.Option(
        help="Also write a .gif: the kernel sliding over the padded input, then p's "
        "footprint.")] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print every step's arrays, the checks and the geometry as one JSON "
        "object instead.")] = False,
):
    """Walk through the forward and backward passes of a convolution (see EXPLAIN_HELP)."""
    import io as text_io

    from rich.console import Console

    from . import io, kernels
    from .explain import ARTICLE_KERNEL, walkthrough
    from .explain_render import render

    options = geometry_options(stride, padding or "valid", dilation)
    if padding is None:                            # the walkthrough's default: the article's
        options["padding"] = None
    try:
        coordinates = tuple(int(v) for v in pixel.replace(" ", "").split(","))
    except ValueError:
        coordinates = ()
    if len(coordinates) not in (2, 3):
        raise _input_error(f"--pixel must be I,J or C,I,J (integers), got {pixel!r}")
    for path, suffixes, option in ((export, (".svg", ".html", ".txt"), "export"),
                                   (animate, (".gif",), "animate")):
        if path is not None and path.suffix.lower() not in suffixes:
            raise _input_error(f"--{option} must end in {', '.join(suffixes)}, got {path}")
        if path is not None:
            io.check_output(path, [image, kernel], option=f"--{option}")
    notes, x = [], None
    if image is not None:
        loaded = io.load_image(image, gray=gray, max_pixels=max_pixels)
        x, notes = loaded.array, list(loaded.notes)
        if x.shape[0] > 1:
            notes.append(f"{image} holds {x.shape[0]} images; explaining the first")
            x = x[:1]
    matrix = ARTICLE_KERNEL if kernel is None else io.load_kernel(kernel)[0]
    channels = x.shape[1] if x is not None else (matrix.shape[1] if matrix.ndim == 4 else 1)
    w, groups = kernels.as_weight(matrix, channels)
    walk = walkthrough(x, w, groups=groups, pixel=coordinates, seed=seed, **options)

    console = Console(record=export is not None, highlight=False,
                      file=text_io.StringIO() if json_output else None)
    for note in notes:
        console.print(f"note: {note}", markup=False)
    interactive = step and sys.stdin.isatty() and console.is_terminal and not json_output
    render(walk, console, pause=(lambda: input("Enter: next step ")) if interactive else None)
    writers = []
    if export is not None:
        save = {".svg": console.export_svg, ".html": console.export_html,
                ".txt": console.export_text}[export.suffix.lower()]
        document = save(title="convcli explain") if export.suffix.lower() == ".svg" else save()
        writers.append((export, io.text_writer(document)))
    if animate is not None:
        from . import animate as animation

        images = animation.frames(walk)
        writers.append((animate, lambda file: animation.save_gif(images, file)))
    io.write_all(writers)
    if writers:
        console.print(f"written: {', '.join(str(path) for path, _ in writers)}", markup=False)
    if json_output:
        _print_json({"notes": notes, **walk.to_json()})
    if not all(check.ok for check in walk.checks):
        raise typer.Exit(1)


# --- gradcheck -------------------------------------------------------------------------------


GRADCHECK_HELP = (
    "Prove dL/dx, dL/dw and dL/db by finite differences; exit 0 if all pass, 1 if any fails, 2 "
    "for a usage error.\n\n"
    "The loss is L = Σ(y ⊙ g), g a random, non-uniform dL/dy (seeded). For each checked "
    "coordinate v of x, w and b, the numeric gradient (L(v + eps) − L(v − eps)) / 2eps (central "
    "differences, in float64 unless --dtype float32) is compared with conv2d_backward's: it "
    "passes when "
    "|analytic − numeric| ≤ atol + rtol·|numeric| (torch.autograd.gradcheck's rule). Each "
    "configuration also checks that the two dL/dx routes (col2im, and the flipped-kernel "
    "convolution) agree, and the adjoint identity ⟨conv2d(x, w), g⟩ = ⟨x, dL/dx⟩.\n\n"
    "With no arguments: the built-in suite of named configurations (every padding form, "
    "strides 1 to 3, dilation, groups, ...), every coordinate. With IMAGE KERNEL: your own "
    "data and geometry, --samples coordinates of each tensor."
)


@app.command(help=GRADCHECK_HELP,
             epilog="Examples: convcli gradcheck  (the built-in suite, as CI runs it);  "
             "convcli gradcheck samples/camera.png sobel-x --stride 2 --samples 500")
@handle_errors
def gradcheck(
    image: Annotated[Optional[Path], typer.Argument(
        metavar="[IMAGE]", help="Check your own case: a picture or .npy, as for forward. "
        "Without IMAGE and KERNEL, run the built-in suite.", show_default=False)] = None,
    kernel: Annotated[Optional[str], typer.Argument(
        metavar="[KERNEL]", help="The kernel, as for forward.", show_default=False)] = None,
    stride: Stride = None,
    padding: Annotated[Optional[str], typer.Option(
        help="Padding: same (the default), valid, full, N, H,W or T,B,L,R.")] = None,
    dilation: Dilation = None,
    groups: Groups = None,
    bias: Annotated[Optional[str], typer.Option(
        help="b: one number, or one per output channel (default 0; dL/db is checked either "
        "way).")] = None,
    gray: Gray = False,
    max_pixels: MaxPixels = None,
    samples: Annotated[Optional[int], typer.Option(
        help="Coordinates of each of x, w, b to check (chosen at random, always with the "
        "corners and border pixels); default 200. The suite checks every coordinate.")] = None,
    eps: Annotated[Optional[float], typer.Option(
        help="Central-difference step (default 1e-6; float32: 0.1).")] = None,
    atol: Annotated[Optional[float], typer.Option(
        help="Absolute tolerance (default 1e-5; float32: 1e-2).")] = None,
    rtol: Annotated[Optional[float], typer.Option(
        help="Relative tolerance (default 1e-3; float32: 3e-3).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of g = dL/dy, the data and the samples.")] = 0,
    dtype: Annotated[str, typer.Option(
        help="float64 (the default: a proof) or float32 (looser, with a warning).")] = "float64",
    json_output: Json = False,
    quiet: Quiet = False,
):
    """Prove dL/dx, dL/dw and dL/db by finite differences (the method: GRADCHECK_HELP)."""
    import numpy as np
    from rich.console import Console

    from . import gradcheck as checks
    from . import gradcheck_render as render
    from .geometry import resolve
    from .progress import LateProgress

    if dtype not in ("float32", "float64"):
        raise _input_error(f"--dtype must be float32 or float64, got {dtype!r}")
    if image is not None and kernel is None:
        raise _input_error("give a KERNEL after IMAGE (or neither, for the built-in suite)")
    settings = dict(seed=seed, eps=eps, atol=atol, rtol=rtol, dtype=dtype)
    console = _console(quiet or json_output)
    bar = LateProgress(Console(stderr=True), "gradcheck",
                              enabled=not (quiet or json_output))
    start = time.perf_counter()
    header = []
    if image is None:
        given = [f"--{name.replace('_', '-')}" for name, value in (
            ("stride", stride), ("padding", padding), ("dilation", dilation), ("groups", groups),
            ("bias", bias), ("gray", gray or None), ("max_pixels", max_pixels),
            ("samples", samples)) if value is not None]
        if given:
            raise _input_error(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'}"
                               " to IMAGE KERNEL; the built-in suite has its own configurations")
        try:
            report = checks.run_suite(progress=bar, **settings)
        finally:
            bar.close()
        described = {"suite": "built-in", "configurations": report.configurations}
    else:
        options = geometry_options(stride or "1", padding or "same", dilation or "1")
        loaded, w, groups, kernel_source = load_problem(image, kernel, gray=gray, dtype=dtype,
                                                        max_pixels=max_pixels, groups=groups)
        x = loaded.array
        b = parse_bias(bias, w.shape[0])
        b = (b if b is not None else np.zeros(w.shape[0])).astype(x.dtype)
        try:
            report = checks.check_case(x, w, b, groups=groups, name=image.name, progress=bar,
                                       samples=200 if samples is None else samples,
                                       **options, **settings)
        finally:
            bar.close()
        geometry = resolve(x.shape[2:], w.shape[2:], **options)
        described = {"input": {"path": str(image), "shape": list(x.shape),
                               "notes": loaded.notes},
                     "kernel": {"source": kernel_source, "shape": list(w.shape)},
                     "geometry": _geometry_json(geometry, groups)}
        header = [("input", f"{_shape(x)}  {loaded.source}"),
                  *[("", f"note: {note}") for note in loaded.notes],
                  ("kernel", f"{_shape(w)}  {kernel_source}, groups={groups}"),
                  *_geometry_rows(geometry, padding or "same")]
    seconds = time.perf_counter() - start

    for warning in report.warnings:
        _stderr().print(f"[bold yellow]warning:[/] {warning}")
    if json_output:
        _print_json({**described, **report.to_dict(), "seconds": round(seconds, 6)})
    else:
        if header:
            console.print(_summary_table(header))
        console.print(render.results_table(report))
        for table in render.failure_tables(report):
            console.print(table)
        console.print(render.verdict(report, seconds))
    if not report.passed:
        raise typer.Exit(1)


# --- fit -------------------------------------------------------------------------------------


FIT_HELP = (
    "Learn the kernel w (and bias b) that turns INPUT into TARGET: conv2d(x, w) + b ≈ t.\n\n"
    "Gradient descent (--method gd, the default) minimises L = ½·mean((conv2d(x, w) + b − t)²) "
    "with Adam or SGD, taking dL/dw and dL/db from conv2d_backward. --method lstsq finds the "
    "exact answer in one step: a linear filter is linear regression on the im2col matrix "
    "(X_col · w = t, each window of the input a sample, each kernel tap a feature), so a "
    "least-squares solver finds w and b at once; after gd, convcli says how far it is from "
    "that answer.\n\n"
    "A grey INPUT and grey TARGET learn one K×K kernel; an RGB INPUT and a grey TARGET learn "
    "(1, 3, K, K) (with --kernel-size 1, the luma weights); --depthwise learns one kernel per "
    "channel. The kernel is written as a text file `convcli forward` reads back (or .npy)."
)


@app.command("fit", help=FIT_HELP,
             epilog="Example: convcli forward samples/camera.png sobel-x --out edges.npy && "
             "convcli fit samples/camera.png edges.npy --kernel-size 3 --true-kernel sobel-x "
             "--plot loss.png")
@handle_errors
def fit_command(
    image: Annotated[Path, typer.Argument(
        metavar="INPUT", help="x: a picture or a .npy array, as for forward.",
        show_default=False)],
    target: Annotated[Path, typer.Argument(
        metavar="TARGET", help="t: a picture or a .npy of the convolution's output shape "
        "(N, O, OH, OW), e.g. what `convcli forward` wrote.", show_default=False)],
    kernel_size: Annotated[str, typer.Option(
        "--kernel-size", "-k", help="The kernel to learn: K or KH,KW.", show_default=False)],
    stride: Stride = "1",
    padding: Padding = "same",
    dilation: Dilation = "1",
    depthwise: Annotated[bool, typer.Option(
        "--depthwise", help="Learn one kernel per channel (groups = C).")] = False,
    method: Annotated[str, typer.Option(
        help="gd (gradient descent) or lstsq (the exact least-squares answer).")] = "gd",
    optimizer: Annotated[str, typer.Option(help="adam or sgd (plain gradient descent).")] = "adam",
    lr: Annotated[Optional[float], typer.Option(
        help="Learning rate (default: 0.1 for adam; for sgd, 1 / a bound on the loss's "
        "curvature, so that every step lowers the loss).", show_default=False)] = None,
    steps: Annotated[int, typer.Option(help="The most gradient steps.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the initial kernel.")] = 0,
    bias: Annotated[bool, typer.Option(
        "--bias/--no-bias", help="Learn a bias b per output channel.")] = True,
    tol: Annotated[float, typer.Option(
        help="A plateau is the lowest loss falling by less than tol·L over 100 steps: gd then "
        "goes back to its best kernel with lr / 10 (twice), then stops.")] = 1e-9,
    true_kernel: Annotated[Optional[str], typer.Option(
        help="The kernel that made TARGET, if known (any KERNEL forward accepts): shown beside "
        "the learned one, with the max abs error.", show_default=False)] = None,
    gray: Gray = False,
    max_pixels: MaxPixels = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Where to write the learned kernel: a text file forward reads back, "
        "or .npy if the name ends in .npy (default: TARGET.kernel.txt beside the target; "
        ".npy when the kernel has more than one input channel, which text cannot hold).",
        show_default=False)] = None,
    plot: Annotated[Optional[Path], typer.Option(
        help="Also draw the loss per step (log scale) as a PNG.", show_default=False)] = None,
    json_output: Json = False,
    quiet: Quiet = False,
):
    import numpy as np

    from . import fit as fitting
    from . import io, kernels
    from . import plot as plotting
    from .geometry import resolve
    from .progress import LateProgress

    options = geometry_options(stride, padding, dilation)
    size = parse_ints(kernel_size, "kernel-size")
    if min(size if isinstance(size, tuple) else (size,)) < 1:
        raise _input_error(f"--kernel-size must be at least 1, got {kernel_size!r}")
    if method not in ("gd", "lstsq"):
        raise _input_error(f"--method must be gd or lstsq, got {method!r}")
    if optimizer not in ("adam", "sgd"):
        raise _input_error(f"--optimizer must be adam or sgd, got {optimizer!r}")
    for name, value, valid in (("--steps", steps, steps >= 0), ("--tol", tol, tol >= 0),
                               ("--lr", lr, lr is None or lr > 0)):
        if not valid:
            raise _input_error(f"{name} must be {'positive' if name == '--lr' else 'at least 0'}"
                               f", got {value}")
    if plot is not None and method == "lstsq":
        raise _input_error("--plot draws the loss per gradient step; --method lstsq takes none "
                           "(use --method gd)")
    if plot is not None and plot.suffix.lower() != ".png":
        raise _input_error(f"--plot writes a PNG: give a name ending in .png, got {plot}")
    if max_pixels is not None and max_pixels < 1:
        raise _input_error(f"--max-pixels must be at least 1, got {max_pixels}")
    inputs = [image, target, true_kernel]
    if out is not None:
        out = io.check_output(out, inputs)
    if plot is not None:
        plot = io.check_output(plot, inputs, [out], option="--plot")

    loaded = io.load_image(image, gray=gray, max_pixels=max_pixels)
    x = loaded.array                                                # (N, C, H, W)
    target_loaded = io.load_image(target, max_pixels=max_pixels)
    t = target_loaded.array                                         # (N, O, OH, OW)
    shape, groups = fitting.weight_shape(x, t, size, depthwise=depthwise, **options)
    true_w = None
    if true_kernel is not None:
        matrix, true_source = io.load_kernel(true_kernel)
        true_w, true_groups = kernels.as_weight(matrix, x.shape[1])
        if (true_w.shape, true_groups) != (shape, groups):
            raise _input_error(f"--true-kernel gives a {true_w.shape} kernel with groups="
                               f"{true_groups}, but the learned one is {shape} with groups="
                               f"{groups}")
    as_text = shape[1] == 1 and groups == 1        # (O, 1, KH, KW) on one channel: text holds it
    if out is None:
        out = io.check_output(default_output(target, "kernel.txt" if as_text else "kernel.npy"),
                              inputs)
    elif out.suffix.lower() != ".npy" and not as_text:
        raise _input_error(f"a {shape} kernel cannot be written as a text kernel file (it holds "
                           "(KH, KW) or (O, KH, KW) for one input channel): give --out ending "
                           "in .npy")

    start = time.perf_counter()
    settings = {"bias": bias, "depthwise": depthwise, **options}
    bar = LateProgress(_stderr(), "fit", enabled=method == "gd" and not (quiet or json_output),
                       delay=0.0, detail="loss {task.fields[loss]}")
    try:
        found = fitting.fit(x, t, size, method=method, optimizer=optimizer, lr=lr, steps=steps,
                            seed=seed, tol=tol, **settings,
                            callback=lambda step, loss: bar(step, steps, loss=f"{loss:.4g}"))
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    exact = found if method == "lstsq" else fitting.fit(x, t, size, method="lstsq", **settings)
    geometry = resolve(x.shape[2:], shape[2:], **options)
    best_loss = min(found.losses)

    if out.suffix.lower() == ".npy":
        writers = [(out, io.npy_writer(found.weight))]
    else:
        writers = [(out, io.text_writer(_kernel_text(found, image, out, best_loss,
                                                     padding=padding, stride=stride,
                                                     dilation=dilation, gray=gray)))]
    if plot is not None:
        title = f"convcli fit: {optimizer}, lr {_rates(found, '->')}, {found.steps} steps"
        writers.append((plot, io.png_writer(plotting.loss_curve(found.losses, title=title))))
    io.write_all(writers)
    written = [str(path) for path, _ in writers]

    columns = int(np.prod(shape[1:])) + bias                # of [X_col, 1], per group
    differences = {
        "weight_vs_lstsq": float(np.abs(found.weight - exact.weight).max()),
        "bias_vs_lstsq": float(np.abs(found.bias - exact.bias).max()) if bias else None,
        "weight_vs_true": None if true_w is None else float(np.abs(found.weight - true_w).max()),
    }
    if json_output:
        _print_json({
            "input": {"path": str(image), "shape": list(x.shape), "notes": loaded.notes},
            "target": {"path": str(target), "shape": list(t.shape),
                       "notes": target_loaded.notes},
            "kernel": {"shape": list(shape), "groups": groups, "weight": found.weight.tolist(),
                       "bias": None if found.bias is None else found.bias.tolist()},
            "geometry": _geometry_json(geometry, groups),
            "method": method, "optimizer": optimizer if method == "gd" else None,
            "lr": found.lr, "lr_cuts": found.lr_cuts, "steps": found.steps,
            "stopped": found.stopped if method == "gd" else None,
            "loss": best_loss, "losses": found.losses,
            "lstsq": {"rank": exact.rank, "columns": columns, "condition": exact.condition},
            "max_abs_difference": differences,
            "seconds": round(seconds, 6), "written": written,
        })
        return
    if method == "lstsq":
        how = "least squares on the im2col matrix: " + ("(X_col, 1) · (w, b) = t" if bias
                                                          else "X_col · w = t")
    else:
        why = {"exact": "stopped: y = t to float64 precision",
               "plateau": "stopped: the loss stopped improving",
               "steps": "all of them: for a closer answer, more --steps or lstsq"}[found.stopped]
        how = (f"gradient descent, {optimizer}, lr {_rates(found)}: {found.steps} of {steps} "
               f"steps  ({why})")
    rows = [
        ("input", f"{_shape(x)}  {loaded.source}"),
        *[("", f"note: {note}") for note in loaded.notes],
        ("target", f"{_shape(t)}  {target_loaded.source}"),
        *[("", f"note: {note}") for note in target_loaded.notes],
        ("kernel", f"{'×'.join(map(str, shape))}, groups={groups}"
                   + ("  (each channel separately)" if groups > 1 else "")),
        *_geometry_rows(geometry, padding),
        ("method", how),
        ("loss", f"L = ½·mean((y − t)²) = {best_loss:.4g}"
                 + (f"  (from {found.losses[0]:.4g})" if method == "gd" else "")),
        ("bias", ", ".join(f"{v:.6g}" for v in found.bias[:8]) if bias else "none (--no-bias)"),
        ("X_col", f"rank {exact.rank} of {columns} columns, condition number "
                  f"{exact.condition:.3g}"
                  + ("  (not unique: the input does not pin every tap)"
                     if exact.rank < columns else "")),
    ]
    if method == "gd":
        rows.append(("vs lstsq", f"max |w − w_lstsq| = {differences['weight_vs_lstsq']:.3g}"
                     + (f", max |b − b_lstsq| = {differences['bias_vs_lstsq']:.3g}"
                        if bias else "")))
    if true_w is not None:
        error = differences["weight_vs_true"]
        rows.append(("vs true", f"max |w − w_true| = {error:.3g}  ({true_source})"))
    rows += [("time", f"{seconds * 1000:.1f} ms"), ("written", ", ".join(written))]
    console = _console(quiet)
    console.print(_summary_table(rows))
    if max(shape[2:]) <= 7:
        console.print(_kernel_tables([("learned w", found.weight), ("true w", true_w)]))


def _rates(found, arrow="→") -> str:
    """The learning rates gd used: "0.1", or "0.1 → 0.01" after a plateau (Pillow's default
    font has no →: the plot passes "->")."""
    return f" {arrow} ".join(f"{found.lr / 10**k:.3g}" for k in range(found.lr_cuts + 1))


def _kernel_text(found, image, out, loss, *, padding, stride, dilation, gray) -> str:
    """The learned (O, 1, KH, KW) kernel as forward's text format: rows of numbers, a blank
    line between output channels, each number exact (repr round-trips a float)."""
    import shlex

    o, _, kh, kw = found.weight.shape
    paths = " ".join(shlex.quote(str(path)) for path in (image, out))
    command = f"convcli forward {paths} --padding {padding}"
    command += "".join(f" --{name} {value}" for name, value in (("stride", stride),
                                                                 ("dilation", dilation))
                       if value != "1")
    command += " --gray" if gray else ""
    if found.bias is not None:
        command += " --bias " + ",".join(repr(float(v)) for v in found.bias)
    numbers = [[[repr(float(v)) for v in row] for row in channel] for channel in found.weight[:, 0]]
    width = max(len(n) for channel in numbers for row in channel for n in row)
    lines = [(f"# learned by convcli fit ({found.method}): w {o}×1×{kh}×{kw}, "
              f"cross-correlation weights (not flipped), loss {loss:.4g}"),
             f"# apply it: {command}"]
    for index, channel in enumerate(numbers):
        lines += [""] if index else []
        lines += ["  ".join(n.rjust(width) for n in row) for row in channel]
    return "\n".join(lines) + "\n"


def _kernel_tables(named, limit: int = 6):
    """Kernels (O, C/g, KH, KW) as small KH×KW tables side by side: for each of the first
    `limit` (o, c) pairs, one table per (title, array) in named (None arrays are skipped)."""
    import numpy as np
    from rich.columns import Columns
    from rich.table import Table

    named = [(title, array) for title, array in named if array is not None]
    shape = named[0][1].shape
    pairs = [(o, c) for o in range(shape[0]) for c in range(shape[1])][:limit]
    tables = []
    for o, c in pairs:
        for title, array in named:
            name = f"{title}[{o},{c}]" if len(pairs) > 1 else title
            table = Table(title=name, show_header=False, min_width=len(name) + 2)
            for _ in range(array.shape[3]):
                table.add_column(justify="right")
            tiny = 1e-9 * np.abs(array).max()          # rounding noise around 0 shows as 0
            for row in array[o, c]:
                table.add_row(*(f"{v if abs(v) > tiny else 0.0:.4g}" for v in row))
            tables.append(table)
    return Columns(tables)


def main():
    """The console script's entry point."""
    app()


if __name__ == "__main__":
    main()
