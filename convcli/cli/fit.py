"""convcli fit: learn the kernel (and bias) that turns one image into another."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..fit.run import FitResult, run_fit
from . import options as opt
from . import summary
from .errors import handle_errors, stderr
from .progress import LateProgress
from .summary import Fact

HELP = (
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
EXAMPLE = ("Example: convcli forward samples/camera.png sobel-x --out edges.npy && "
           "convcli fit samples/camera.png edges.npy --kernel-size 3 --true-kernel sobel-x "
           "--plot loss.png")
WHY_STOPPED = {"exact": "stopped: y = t to float64 precision",
               "plateau": "stopped: the loss stopped improving",
               "steps": "all of them: for a closer answer, more --steps or lstsq"}


class Method(str, Enum):
    gd = "gd"
    lstsq = "lstsq"


class Optimizer(str, Enum):
    adam = "adam"
    sgd = "sgd"


@handle_errors
def fit(
    image: Annotated[Path, typer.Argument(
        metavar="INPUT", help="x: a picture or a .npy array, as for forward.",
        show_default=False)],
    target: Annotated[Path, typer.Argument(
        metavar="TARGET", help="t: a picture or a .npy of the convolution's output shape "
        "(N, O, OH, OW), e.g. what `convcli forward` wrote.", show_default=False)],
    kernel_size: Annotated[str, typer.Option(
        "--kernel-size", "-k", help="The kernel to learn: K or KH,KW.", show_default=False)],
    stride: opt.Stride = "1",
    padding: opt.Padding = "same",
    dilation: opt.Dilation = "1",
    depthwise: Annotated[bool, typer.Option(
        "--depthwise", help="Learn one kernel per channel (groups = C).")] = False,
    method: Annotated[Method, typer.Option(
        help="gd (gradient descent) or lstsq (the exact least-squares answer).")] = Method.gd,
    optimizer: Annotated[Optimizer, typer.Option(
        help="adam or sgd (plain gradient descent).")] = Optimizer.adam,
    lr: Annotated[float | None, typer.Option(
        help="Learning rate (default: 0.1 for adam; for sgd, 1 / a bound on the loss's "
        "curvature, so that every step lowers the loss).", show_default=False)] = None,
    steps: Annotated[int, typer.Option(help="The most gradient steps.")] = 3000,
    seed: Annotated[int, opt.seed_option("the initial kernel")] = 0,
    no_bias: Annotated[bool, typer.Option(
        "--no-bias", help="Learn no bias (b = 0); by default a bias per output channel.")
    ] = False,
    tol: Annotated[float, typer.Option(
        help="A plateau is the lowest loss falling by less than tol·L over 100 steps: gd then "
        "goes back to its best kernel with lr / 10 (twice), then stops.")] = 1e-9,
    true_kernel: Annotated[str | None, typer.Option(
        help="The kernel that made TARGET, if known (any KERNEL forward accepts): shown beside "
        "the learned one, with the max abs error.", show_default=False)] = None,
    gray: opt.Gray = False,
    max_pixels: opt.MaxPixels = None,
    out: Annotated[Path | None, opt.out_option(
        "the learned kernel: a text file forward reads back, or .npy if the name ends in .npy "
        "(default: TARGET.kernel.txt beside the target; .npy when the kernel has more than one "
        "input channel, which text cannot hold)")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Also draw the loss per step (log scale) as a PNG.", show_default=False)] = None,
    json_output: opt.Json = False,
    quiet: opt.Quiet = False,
) -> None:
    shown = not (quiet or json_output)
    bar = LateProgress(stderr(), "fit", enabled=method == Method.gd and shown,
                       detail="loss {task.fields[loss]}")
    squares = LateProgress(stderr(), "least squares", enabled=shown)
    try:
        result = run_fit(image, target, opt.parse_ints(kernel_size, "kernel-size"),
                         depthwise=depthwise, method=method.value, optimizer=optimizer.value,
                         lr=lr, steps=steps, seed=seed, bias=not no_bias, tol=tol,
                         true_kernel=true_kernel, gray=gray, max_pixels=max_pixels, out=out,
                         plot=plot, progress=lambda step, loss: bar(step, steps,
                                                                    loss=f"{loss:.4g}"),
                         lstsq_progress=squares, notice=None if quiet else _notice,
                         **opt.geometry(stride, padding, dilation))
    finally:
        bar.close()
        squares.close()
    console = summary.console(quiet)
    summary.show(facts(result, padding), json_output=json_output, console=console)
    if not json_output and max(result.shape[2:]) <= 7:
        console.print(summary.kernel_tables([("learned w", result.found.weight),
                                             ("true w", result.true_weight)]))


def _notice(text: str) -> None:
    stderr().print(f"[bold yellow]note:[/] {text}")


def facts(result: FitResult, padding: str) -> list[Fact]:
    """input, target, kernel, geometry, method, loss, bias, X_col, the differences, time,
    written."""
    found, exact, shape = result.found, result.exact, result.shape
    differences = result.differences()
    return [
        summary.input_fact(result.image),
        summary.input_fact(result.target, key="target", label="target"),
        Fact("kernel", {"shape": list(shape), "groups": result.groups,
                        "weight": found.weight.tolist(),
                        "bias": None if found.bias is None else found.bias.tolist()},
             (("kernel", f"{'×'.join(map(str, shape))}, groups={result.groups}"
                         + ("  (each channel separately)" if result.groups > 1 else "")),)),
        summary.geometry_fact(result.geometry, result.groups, padding),
        *method_facts(result),
        Fact("loss", result.best_loss, (("loss", f"L = ½·mean((y − t)²) = {result.best_loss:.4g}"
                                         + (f"  (from {found.losses[0]:.4g})"
                                            if found.method == "gd" else "")),)),
        Fact("losses", found.losses),
        Fact(None, None, (("bias", ", ".join(f"{v:.6g}" for v in found.bias[:8])
                           if found.bias is not None else "none (--no-bias)"),)),
        Fact("lstsq", {"rank": exact.rank, "columns": result.columns,
                       "condition": exact.condition},
             (("X_col", f"rank {exact.rank} of {result.columns} columns, condition number "
                        f"{exact.condition:.3g}"
                        + ("  (not unique: the input does not pin every tap)"
                           if (exact.rank or 0) < result.columns else "")),)),
        Fact("max_abs_difference", differences, difference_rows(result, differences)),
        summary.time_fact(result.seconds),
        summary.written_fact(result.written),
    ]


def method_facts(result: FitResult) -> list[Fact]:
    """How the kernel was found: lstsq, or gd with its optimiser, rates and steps."""
    found = result.found
    gd = found.method == "gd"
    if not gd:
        how = "least squares on the im2col matrix: " + (
            "(X_col, 1) · (w, b) = t" if found.bias is not None else "X_col · w = t")
    else:
        rates = " → ".join(f"{r:.3g}" for r in found.rates)
        how = (f"gradient descent, {found.optimizer}, lr {rates}: {found.steps} of "
               f"{result.steps} steps  ({WHY_STOPPED[found.stopped]})")
    return [Fact("method", found.method, (("method", how),)),
            Fact("optimizer", found.optimizer if gd else None), Fact("lr", found.lr),
            Fact("lr_cuts", found.lr_cuts), Fact("steps", found.steps),
            Fact("stopped", found.stopped if gd else None)]


def difference_rows(result: FitResult, differences: dict[str, float | None]) -> tuple:
    """vs lstsq (after gd) and vs true (with --true-kernel)."""
    rows = []
    if result.found.method == "gd":
        bias = differences["bias_vs_lstsq"]
        rows.append(("vs lstsq", f"max |w − w_lstsq| = {differences['weight_vs_lstsq']:.3g}"
                     + (f", max |b − b_lstsq| = {bias:.3g}" if bias is not None else "")))
    if result.true_weight is not None:
        rows.append(("vs true", (f"max |w − w_true| = {differences['weight_vs_true']:.3g}  "
                                f"({result.true_source})")))
    return tuple(rows)
