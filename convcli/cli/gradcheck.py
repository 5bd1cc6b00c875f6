"""convcli gradcheck: the finite-difference proof of dL/dx, dL/dw and dL/db, fit for CI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from .. import api
from ..errors import InputError
from ..gradcheck import load_function, render
from ..gradcheck.suite import EVERY, EXTRA
from ..gradcheck.verdicts import settings
from . import options as opt
from . import summary
from .errors import debugging, handle_errors, stderr
from .progress import LateProgress
from .summary import Fact

HELP = (
    "Prove dL/dx, dL/dw and dL/db by finite differences: convcli's own backward, or yours "
    "(--backward); exit 0 if all pass (skipped cases allowed), 1 if any fails, 2 for a usage "
    "error.\n\n"
    "The loss is L = Σ(y ⊙ g), g a random, non-uniform dL/dy (seeded). For each checked "
    "coordinate v of x, w and b, the numeric gradient (L(v + eps) − L(v − eps)) / 2eps (central "
    "differences, in float64 unless --dtype float32) is compared with the backward's: it "
    "passes when |analytic − numeric| ≤ atol + rtol·|numeric| (torch.autograd.gradcheck's "
    "rule). Each configuration also checks the adjoint identity ⟨conv2d(x, w), g⟩ = "
    "⟨x, dL/dx⟩ and, for convcli's own backward, that its two dL/dx routes (col2im, and the "
    "flipped-kernel convolution) agree.\n\n"
    "With no arguments: the built-in suite of named configurations (--list-cases; pick some "
    "with --case), every coordinate. With IMAGE KERNEL: your own data and geometry, --samples "
    "coordinates of each tensor.\n\n"
    "Your implementation: --backward MODULE:FUNCTION is called as backward(grad_output, x, w, "
    "*, stride, padding, dilation, groups) -> (grad_input, grad_weight, grad_bias), with "
    "stride and dilation (h, w) pairs, padding (top, bottom, left, right) and float64 copies; "
    "--forward MODULE:FUNCTION as forward(x, w, b, *, ...) -> y. MODULE is importable from "
    "this folder or a path to a .py file. Raise NotImplementedError to skip a case. Outside "
    "Python: --write-cases DIR, then your code writes DIR/answers/NAME.npz, then --answers DIR."
)
EXAMPLE = ("Examples: convcli gradcheck  (the built-in suite, as CI runs it);  "
           "convcli gradcheck --backward my_conv.py:backward --case groups2;  "
           "convcli gradcheck samples/camera.png sobel-x --stride 2 --samples 500")


@handle_errors
def gradcheck(
    ctx: typer.Context,
    image: Annotated[Path | None, typer.Argument(
        metavar="[IMAGE]", help="Check your own case: a picture or .npy, as for forward. "
        "Without IMAGE and KERNEL, run the built-in suite.", show_default=False)] = None,
    kernel: Annotated[str | None, typer.Argument(
        metavar="[KERNEL]", help="The kernel, as for forward.", show_default=False)] = None,
    backward: Annotated[str | None, typer.Option(
        "--backward", metavar="MODULE:FUNCTION", show_default=False,
        help="Check your backward instead of convcli's (the convention: above).")] = None,
    forward: Annotated[str | None, typer.Option(
        "--forward", metavar="MODULE:FUNCTION", show_default=False,
        help="Also check your forward's y against conv2d's.")] = None,
    case: Annotated[list[str] | None, typer.Option(
        "--case", metavar="NAME", show_default=False,
        help="Run only this suite case (repeatable; --list-cases lists them).")] = None,
    list_cases: Annotated[bool, typer.Option(
        "--list-cases", help="List the built-in suite's cases and exit.")] = False,
    write_cases: Annotated[Path | None, typer.Option(
        "--write-cases", metavar="DIR", show_default=False,
        help="Write each case as DIR/NAME.npz (x, w, b, grad_output, geometry) with an index, "
        "for an implementation in any language, and exit.")] = None,
    answers: Annotated[Path | None, typer.Option(
        "--answers", metavar="DIR", show_default=False,
        help="Grade DIR/answers/NAME.npz (grad_input, grad_weight, grad_bias, optional y) "
        "against the cases --write-cases wrote in DIR.")] = None,
    stride: opt.Stride = "1",
    padding: opt.Padding = "same",
    dilation: opt.Dilation = "1",
    groups: opt.Groups = None,
    bias: opt.Bias = None,
    gray: opt.Gray = False,
    max_pixels: opt.MaxPixels = None,
    border: opt.BorderMode = opt.Border.zeros,
    flip: opt.Flip = False,
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
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of each exception your code raised.")] = False,
    json_output: opt.Json = False,
    quiet: opt.Quiet = False,
) -> None:
    """Prove dL/dx, dL/dw and dL/db by finite differences (the method: HELP).

    With IMAGE KERNEL, b is --bias (0 by default; dL/db is checked either way).
    """
    if list_cases:
        _show_cases(json_output)
        return
    if samples is not None and samples < 1:
        raise InputError(f"--samples must be at least 1, got {samples}")
    try:                             # the tolerances' own checks, named as the options
        settings(dtype.value, eps, atol, rtol)
    except InputError as error:
        raise InputError(re.sub(r"\b(eps|atol|rtol)\b", r"--\1", str(error))) from None
    _refuse_conflicts(ctx, image, write_cases, answers)
    spec = None
    if image is not None:
        if kernel is None:
            raise InputError("give a KERNEL after IMAGE (or neither, for the built-in suite)")
        spec = opt.problem(image, kernel, stride=stride, padding=padding, dilation=dilation,
                           groups=groups, bias=bias, gray=gray, dtype=dtype,
                           max_pixels=max_pixels, quiet=quiet or json_output, border=border,
                           flip=flip)
    if write_cases is not None:
        written = api.write_gradcheck_cases(write_cases, spec, cases=case, seed=seed,
                                            dtype=dtype.value,
                                            command="convcli " + " ".join(sys.argv[1:]))
        _show_written(written, json_output=json_output, quiet=quiet)
        return
    functions = {name: load_function(value, f"--{name}")
                 for name, value in (("backward", backward), ("forward", forward)) if value}
    debug = debug or debugging()
    bar = LateProgress(stderr(), "gradcheck", enabled=not (quiet or json_output))
    try:
        if answers is not None:
            result = api.grade_gradcheck_answers(answers, cases=case, eps=eps, atol=atol,
                                                 rtol=rtol, progress=bar, debug=debug)
        else:
            result = api.run_gradcheck(spec, cases=case, samples=samples, seed=seed, eps=eps,
                                       atol=atol, rtol=rtol, dtype=dtype.value, progress=bar,
                                       debug=debug, **functions)
    finally:
        bar.close()
    show(result, json_output=json_output, quiet=quiet)
    if not result.report.passed:
        raise typer.Exit(1)


def _refuse_conflicts(ctx: typer.Context, image: Path | None, write_cases: Path | None,
                      answers: Path | None) -> None:
    """Options that cannot go together are refused before any work."""
    given = _given(ctx, ["backward", "forward", "case", "write_cases", "answers", "samples",
                         "seed", "dtype"])
    if image is None:
        _refuse_case_options(ctx, ["stride", "padding", "dilation", "groups", "bias", "gray",
                                   "max_pixels", "samples", "border", "flip"])
    elif "--case" in given:
        raise InputError("--case picks built-in suite cases; it does not apply to IMAGE KERNEL")
    if answers is not None:
        clash = [g for g in given if g in ("--backward", "--forward", "--write-cases", "--seed",
                                           "--dtype")]
        if image is not None or clash:
            what = ", ".join((["IMAGE KERNEL"] if image is not None else []) + clash)
            raise InputError(f"--answers grades the answers in its folder; {what} cannot go "
                             "with it")
    if write_cases is not None:
        clash = [g for g in given if g in ("--backward", "--forward", "--samples")]
        if clash:
            raise InputError(f"--write-cases only writes the cases; {', '.join(clash)} cannot "
                             "go with it")


def _given(ctx: typer.Context, names: list[str]) -> list[str]:
    source = ctx.get_parameter_source
    return [f"--{name.replace('_', '-')}" for name in names
            if (found := source(name)) is not None and found.name != "DEFAULT"]


def _show_cases(json_output: bool) -> None:
    """The suite's cases: name, what it covers, shapes and geometry."""
    rows = [{"name": c.name, "description": c.description, "x_shape": c.x_shape,
             "w_shape": c.w_shape, "options": c.options, "bias": c.bias, "kind": c.kind,
             "extra": c in EXTRA} for c in EVERY]
    if json_output:
        typer.echo(json.dumps(rows))
        return
    table = Table(box=box.SIMPLE_HEAD, title="the built-in suite (--case NAME)")
    for column in ("name", "x", "w", "covers"):
        table.add_column(column, no_wrap=column != "covers")
    for c in EVERY:
        table.add_row(c.name, "×".join(map(str, c.x_shape)), "×".join(map(str, c.w_shape)),
                      c.description)
    summary.console(False).print(table)


def _show_written(written: list[Path], *, json_output: bool, quiet: bool) -> None:
    if json_output:
        typer.echo(json.dumps({"written": [str(p) for p in written]}))
    elif not quiet:
        folder = written[-1].parent
        summary.console(False).print(
            f"written  {len(written) - 1} cases and {written[-1].name} in {folder}; write your "
            f"answers to {folder / 'answers'}/NAME.npz, then run: convcli gradcheck --answers "
            f"{folder}")


def _refuse_case_options(ctx: typer.Context, names: list[str]) -> None:
    """The built-in suite has its own configurations: options for IMAGE KERNEL are refused."""
    names = _given(ctx, names)
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
        summary.print_table(facts, console)
    console.print(render.results_table(report, console.width))
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
                                  problem.spec.padding_text(), problem.spec.padding_mode,
                                  problem.spec.flip)]
