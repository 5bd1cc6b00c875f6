"""convcli explain: the walkthrough of "Convolution in forward and backward", every claim checked."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .. import outputs
from ..errors import InputError
from ..teach import exports, page, render_gif
from ..teach import quiz as quizzes
from ..teach.render_rich import render, step_panel
from ..teach.run import ExplainResult, run_explain
from ..teach.text import fmt
from . import options as opt
from .errors import handle_errors

HELP = (
    "Walk through \"Convolution in forward and backward\" on real numbers, every claim checked."
    "\n\n"
    "The steps: y = x ⋆ w (cross-correlation), im2col's Y = X_col · W, dL/dw = X_colᵀ · dL/dy, "
    "one pixel p's footprint (p times the flipped kernel), dL/dx = dL/dy ⋆ w_flipped (full), "
    "the bias (a dense layer's neuron on every window), the big matrix y = M·x, col2im and the "
    "transposed convolution, channels and the batch. Each claim gets ✓ or ✗ from a real "
    "comparison with code that does not reuse what it checks (– when it does not apply), "
    "with its max abs difference. --quiz makes a worksheet, --grade marks it."
    "\n\n"
    "By default the article's case: a seeded 4×4 of integers, the 2×2 kernel (a b; c d) = "
    "(1 2; 3 4), stride 1, padding (1, 0, 1, 0) (top and left, so y keeps x's size), "
    "and a seeded random integer dL/dy. With stride > 1 dL/dy is dilated with zeros first; with "
    "channels the flip also swaps input and output channels; large inputs are cropped with ⋯. "
    "Exit 0 when every check passes, 1 when one fails, 2 for a usage error."
)
EXAMPLE = ("Examples: convcli explain;  convcli explain --stride 2 --pixel 2,2;  "
           "convcli explain --image samples/camera.png --kernel sobel-x --pixel 100,80 "
           "--loss mse --target samples/brick.png --export page.html --animate walk.gif")


@handle_errors
def explain(
    image: Annotated[Path | None, typer.Option(
        help="x: a picture or .npy, as for forward (default: seeded integers 1..5).")] = None,
    kernel: Annotated[str | None, typer.Option(
        help="w: a preset, inline matrix, text file or .npy, as for forward (default: "
        "\"1 2; 3 4\"). A 2-D kernel on a colour image is applied to each channel.")] = None,
    stride: opt.Stride = "1",
    padding: Annotated[str | None, typer.Option(
        help="Padding: same, valid, full, N, H,W or T,B,L,R (default: 1,0,1,0 for a 2×2 "
        "kernel, as in the article; same otherwise).")] = None,
    dilation: opt.Dilation = "1",
    pixel: Annotated[str, typer.Option(help="p, the input pixel of step 4: I,J or C,I,J.")] = "0,0",
    gray: opt.Gray = False,
    max_pixels: opt.MaxPixels = None,
    seed: Annotated[int, opt.seed_option("the default x and of dL/dy")] = 0,
    step: Annotated[bool, typer.Option(
        "--step", help="Pause after each step until Enter (only on a terminal).")] = False,
    export: Annotated[Path | None, typer.Option(
        help="Also write the walkthrough as .svg, .txt, or .html: an interactive page (step "
        "through the windows, hover a pixel to see its footprint; no network needed).")] = None,
    animate: Annotated[Path | None, typer.Option(
        help="Also write a .gif: the kernel sliding over the padded input, p's footprint, "
        "then the flipped kernel sliding over the padded dL/dy.")] = None,
    border: opt.BorderMode = opt.Border.zeros,
    loss: Annotated[str, typer.Option(
        help="Where dL/dy comes from: random (seeded integers, the default), sum (L = Σy: "
        "1 everywhere) or mse (L = ½‖y − T‖²: y − T, with --target).")] = "random",
    target: Annotated[Path | None, typer.Option(
        help="T of --loss mse: an image or .npy of y's shape.")] = None,
    grad_output: Annotated[Path | None, typer.Option(
        help="dL/dy itself: a .npy of y's shape (1, O, OH, OW) or (OH, OW).")] = None,
    quiz: Annotated[int | None, typer.Option(
        help="Exercise mode: a worksheet of N questions (values of y, dL/dw, dL/db, dL/dx to "
        "work out by hand) instead of the walkthrough; the answers go to --key.",
        show_default=False)] = None,
    student: Annotated[str, typer.Option(
        help="Whose worksheet: the questions are drawn from the name, so each student gets "
        "their own.")] = "student",
    key: Annotated[Path | None, typer.Option(
        help="The answer key (JSON): written by --quiz, read by --grade.",
        show_default=False)] = None,
    grade: Annotated[Path | None, typer.Option(
        help="Mark a student's answers (JSON: {\"1\": 20, ...}) against --key; exit 0 when "
        "all are right, 1 otherwise.", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print every step's arrays, the checks and the geometry as one JSON "
        "object instead.")] = False,
) -> None:
    """Walk through the forward and backward passes of a convolution (see HELP)."""
    if grade is not None:
        _grade(grade, key, json_output)
        return
    if quiz is not None:
        if key is None:
            raise InputError("--quiz writes its answers to --key KEY.json: add --key")
        if not 1 <= quiz <= 20:
            raise InputError(f"--quiz must be 1 to 20 questions, got {quiz}")
        if json_output or animate is not None:
            raise InputError("--json and --animate show every answer: they do not go with "
                             "--quiz")
        outputs.check_output(key, [image, kernel, export], option="--key", fmt="json")
    elif key is not None:
        raise InputError("--key goes with --quiz (to write it) or --grade (to read it)")
    if not json_output:
        opt.note_shadowed_preset(kernel)
    result = run_explain(image, kernel, pixel=parse_pixel(pixel), gray=gray,
                         max_pixels=max_pixels, seed=seed, export=export, animate=animate,
                         padding_mode=border.value, loss=loss, target=target,
                         grad_output=grad_output,
                         **opt.geometry(stride, padding, dilation))
    console = Console(record=export is not None, highlight=False,
                      file=io.StringIO() if json_output else None)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    if quiz is not None:
        assert key is not None
        sheet = quizzes.make_quiz(result.walk, quiz, student)
        for part in quizzes.worksheet(result.walk, sheet):
            console.print(step_panel(part, console.width))
        key_text = json.dumps(sheet.key(result.walk), indent=2) + "\n"
        outputs.write_all([(key, outputs.text_writer(key_text))])
        write_files(result, console)
        console.print(f"answer key: {key}", markup=False)
        return
    interactive = step and sys.stdin.isatty() and console.is_terminal and not json_output
    render(result.walk, console, pause=(lambda: input("Enter: next step ")) if interactive
           else None)
    write_files(result, console)
    if json_output:
        typer.echo(json.dumps({"notes": result.notes, **result.walk.to_json()}, indent=2))
    if not all(check.ok for check in result.walk.checks):
        raise typer.Exit(1)


def _grade(answers: Path, key: Path | None, json_output: bool) -> None:
    """Mark a student's answers against the key: a table (or JSON), exit 1 unless all right."""
    if key is None:
        raise InputError("--grade needs the answer key: add --key KEY.json")
    marks = quizzes.grade(quizzes.load_json(key, "the answer key"),
                          quizzes.load_json(answers, "the answers"))
    right = sum(mark.right for mark in marks)
    if json_output:
        typer.echo(json.dumps({"right": right, "questions": len(marks), "marks": [
            {"number": m.number, "label": m.label, "given": m.given, "answer": m.answer,
             "right": m.right} for m in marks]}, indent=2))
    else:
        console = Console(highlight=False)
        for m in marks:
            given = "no answer" if m.given is None else fmt(m.given)
            verdict = "✓" if m.right else f"✗ (the answer is {fmt(m.answer)})"
            console.print(f"{m.number}. {m.label} = {given}  {verdict}", markup=False)
        console.print(f"{right} of {len(marks)} right", markup=False)
    if right < len(marks):
        raise typer.Exit(1)


def parse_pixel(text: str) -> tuple[int, ...]:
    """"I,J" or "C,I,J" -> the pixel's coordinates."""
    try:
        coordinates = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        coordinates = ()
    if len(coordinates) not in (2, 3):
        raise InputError(f"--pixel must be I,J or C,I,J (integers), got {text!r}")
    return coordinates


def write_files(result: ExplainResult, console: Console) -> None:
    """The export (what the recording console printed) and the animation, written whole."""
    writers: list[tuple[Path, Any]] = []
    if result.export is not None:
        kind = result.export.suffix.lower()
        document = (exports.svg_of(console) if kind == ".svg"
                    else page.page(result.walk) if kind == ".html"
                    else console.export_text())
        writers.append((result.export, outputs.text_writer(document)))
    if result.animate is not None:
        images = render_gif.frames(result.walk)
        writers.append((result.animate, lambda file: render_gif.save_gif(images, file)))
    outputs.write_all(writers)
    if writers:
        console.print(f"written: {', '.join(str(path) for path, _ in writers)}", markup=False)
