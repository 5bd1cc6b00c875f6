"""convcli gradcheck: the finite-difference proof of dL/dx, dL/dw and dL/db, fit for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import api
from ..errors import InputError
from ..gradcheck import render
from . import options as opt
from . import summary
from .errors import handle_errors, stderr
from .progress import LateProgress
from .summary import Fact

HELP = (
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
EXAMPLE = ("Examples: convcli gradcheck  (the built-in suite, as CI runs it);  "
           "convcli gradcheck samples/camera.png sobel-x --stride 2 --samples 500")


@handle_errors
def gradcheck(
    ctx: typer.Context,
    image: Annotated[Path | None, typer.Argument(
        metavar="[IMAGE]", help="Check your own case: a picture or .npy, as for forward. "
        "Without IMAGE and KERNEL, run the built-in suite.", show_default=False)] = None,
    kernel: Annotated[str | None, typer.Argument(
        metavar="[KERNEL]", help="The kernel, as for forward.", show_default=False)] = None,
    stride: opt.Stride = "1",
    padding: opt.Padding = "same",
    dilation: opt.Dilation = "1",
    groups: opt.Groups = None,
    bias: opt.Bias = None,
    gray: opt.Gray = False,
    max_pixels: opt.MaxPixels = None,
    samples: Annotated[int | None, typer.Option(
        help="Coordinates of each of x, w, b to check (chosen at random, always with the "
        "corners and border pixels); default 200. The suite checks every coordinate.")] = None,
    eps: Annotated[float | None, typer.Option(
        help="Central-difference step (default 1e-6; float32: 0.1).")] = None,
    atol: Annotated[float | None, typer.Option(
        help="Absolute tolerance (default 1e-5; float32: 1e-2).")] = None,
    rtol: Annotated[float | None, typer.Option(
        help="Relative tolerance (default 1e-3; float32: 3e-3).")] = None,
    seed: Annotated[int, opt.seed_option("g = dL/dy, the data and the samples")] = 0,
    dtype: Annotated[opt.DType, typer.Option(
        help="float64 (the default: a proof) or float32 (looser, with a warning).")
    ] = opt.DType.float64,
    json_output: opt.Json = False,
    quiet: opt.Quiet = False,
) -> None:
    """Prove dL/dx, dL/dw and dL/db by finite differences (the method: HELP).

    With IMAGE KERNEL, b is --bias (0 by default; dL/db is checked either way).
    """
    spec = None
    if image is None:
        _refuse_case_options(ctx, ["stride", "padding", "dilation", "groups", "bias", "gray",
                                   "max_pixels", "samples"])
    else:
        if kernel is None:
            raise InputError("give a KERNEL after IMAGE (or neither, for the built-in suite)")
        spec = opt.problem(image, kernel, stride=stride, padding=padding, dilation=dilation,
                           groups=groups, bias=bias, gray=gray, dtype=dtype,
                           max_pixels=max_pixels)
    bar = LateProgress(stderr(), "gradcheck", enabled=not (quiet or json_output))
    try:
        result = api.run_gradcheck(spec, samples=samples, seed=seed, eps=eps, atol=atol,
                                   rtol=rtol, dtype=dtype.value, progress=bar)
    finally:
        bar.close()
    show(result, json_output=json_output, quiet=quiet)
    if not result.report.passed:
        raise typer.Exit(1)


def _refuse_case_options(ctx: typer.Context, names: list[str]) -> None:
    """The built-in suite has its own configurations: options for IMAGE KERNEL are refused."""
    source = ctx.get_parameter_source
    names = [f"--{name.replace('_', '-')}" for name in names
             if (found := source(name)) is not None and found.name != "DEFAULT"]
    if names:
        raise InputError(f"{', '.join(names)} {'applies' if len(names) == 1 else 'apply'}"
                         " to IMAGE KERNEL; the built-in suite has its own configurations")


def show(result: api.GradcheckResult, *, json_output: bool, quiet: bool) -> None:
    """Warnings on stderr; the report as JSON, or the case, the results, the failures and the
    verdict as tables."""
    report, console = result.report, summary.console(quiet or json_output)
    for warning in report.warnings:
        stderr().print(f"[bold yellow]warning:[/] {warning}")
    facts = case_facts(result) + [Fact(key, value) for key, value in report.to_dict().items()]
    facts.append(Fact("seconds", round(result.seconds, 6)))
    if json_output:
        summary.show(facts, json_output=True, console=console)
        return
    if result.problem is not None:
        console.print(summary.table(facts))
    console.print(render.results_table(report))
    for table in render.failure_tables(report):
        console.print(table)
    console.print(render.verdict(report, result.seconds))


def case_facts(result: api.GradcheckResult) -> list[Fact]:
    """What was checked: the suite, or the user's input, kernel and geometry."""
    problem = result.problem
    if problem is None:
        return [Fact("suite", "built-in")]
    return [summary.input_fact(problem.image),
            summary.kernel_fact(problem.w, problem.kernel_source, problem.groups,
                                problem.x.shape[1]),
            summary.geometry_fact(problem.geometry, problem.groups,
                                  problem.spec.padding_text())]
