"""What each command does, as library calls that return every number the command shows.

    run_forward(spec, ...)    -> ForwardResult:   y = x ⋆ w + b, written as .npy (and a picture)
    run_backward(spec, ...)   -> BackwardResult:  y and dL/dx, dL/dw, dL/db for a loss, as .npz
    run_gradcheck(spec, ...)  -> GradcheckResult: the finite-difference proof of the gradients
    run_fit(...)              -> FitResult:       a kernel learned from an image pair (fit/run.py)
    run_explain(...)          -> ExplainResult:   the walkthrough (teach/run.py)

Each checks every input and output before the work starts (InputError), and writes its files
whole or not at all. The command line renders a result as a table or as JSON, both from the
same object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import losses, outputs, picture
from .chunking import DEFAULT_MEMORY_BUDGET
from .conv import conv2d, conv2d_backward
from .errors import InputError
from .files import load_array
from .fit.run import FitResult, run_fit
from .gradcheck import Report, check_case, grade_answers, run_suite, write_suite_cases
from .gradcheck.answers import check_folder, write_cases
from .gradcheck.data import from_arrays
from .gradcheck.suite import select
from .images import load_image
from .problem import Problem, ProblemSpec, load_problem
from .teach.run import ExplainResult, run_explain
from .transposed import conv_transpose2d
from .validate import count_nonfinite, float_dtype

Array = NDArray[Any]
Progress = Callable[..., None]

__all__ = [
    "BackwardResult",
    "ExplainResult",
    "FitResult",
    "ForwardResult",
    "GradcheckResult",
    "ProblemSpec",
    "grade_gradcheck_answers",
    "run_backward",
    "run_explain",
    "run_fit",
    "run_forward",
    "run_gradcheck",
    "value_range",
    "write_gradcheck_cases",
]


def value_range(array: Array) -> tuple[float, float] | None:
    """(min, max) over the finite values, None if there are none."""
    finite = array[np.isfinite(array)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def _nonfinite(**arrays: Array) -> dict[str, tuple[int, int]]:
    counts = {name: count_nonfinite(array) for name, array in arrays.items()}
    return {name: c for name, c in counts.items() if any(c)}


def default_output(image: Path, suffix: str) -> Path:
    """samples/camera.png -> samples/camera.forward.npy (beside the image)."""
    return image.with_name(f"{image.stem}.{suffix}")


@dataclass(frozen=True)
class ForwardResult:
    """y (N, O, OH, OW) of a problem, how long it took, the picture's mapping (None without
    --png) and the files written."""

    problem: Problem
    y: Array
    seconds: float
    mapping: str | None
    written: list[Path]

    def nonfinite(self) -> dict[str, tuple[int, int]]:
        """(NaN, inf) counts of x and y, for the arrays that have any."""
        return _nonfinite(x=self.problem.x, y=self.y)


def run_forward(spec: ProblemSpec, *, out: Path | None = None, png: Path | None = None,
                normalize: bool = False, any_suffix: bool = False, png_bits: int = 8,
                memory_budget: int = DEFAULT_MEMORY_BUDGET) -> ForwardResult:
    """y = x ⋆ w + b, written to `out` (.npy; default IMAGE.forward.npy) and, with `png`, as a
    picture (clipped, or signed around mid grey for a zero-sum kernel; `normalize`: min..max).
    `out` "-" is standard output; any_suffix allows an `out` named like another format;
    png_bits 16 writes a grey picture at 16 bits."""
    if png_bits not in (8, 16):
        raise InputError(f"--png-bits must be 8 or 16, got {png_bits}")
    inputs = [spec.image, spec.kernel]
    out = outputs.check_output(out or default_output(spec.image, "forward.npy"), inputs,
                               fmt="npy", any_suffix=any_suffix)
    if png is not None:
        png = outputs.check_output(_png_name(png, "--png"), inputs, [out], option="--png")
    problem = load_problem(spec)
    if png is not None and png_bits == 16 and problem.w.shape[0] == 3:
        raise InputError("--png-bits 16 writes grey pictures only (Pillow writes no 16-bit "
                         "colour): drop it, or use --gray")
    start = time.perf_counter()
    with np.errstate(all="ignore"):    # NaN or inf in the data: counted in the summary instead
        operation = conv_transpose2d if spec.transpose else conv2d
        y = operation(problem.x, problem.w, problem.b, memory_budget=memory_budget,
                      **problem.conv_options())
    seconds = time.perf_counter() - start
    writers, mapping = [(out, outputs.npy_writer(y))], None
    if png is not None:
        mapping = picture.choose_mapping(y, zero_sum_kernel=picture.zero_sum(problem.w),
                                         signed_input=bool(np.nanmin(problem.x) < 0),
                                         normalize=normalize)
        writers.append((png, outputs.png_writer(picture.to_picture(y, mapping, png_bits))))
    outputs.write_all(writers)
    return ForwardResult(problem, y, seconds, mapping, [path for path, _ in writers])


@dataclass(frozen=True)
class BackwardResult:
    """y, the dL/dy used and the three gradients, the loss (L is None for a given dL/dy) and
    how it was made, the time and the files written."""

    problem: Problem
    y: Array
    grad_output: Array
    grad_input: Array
    grad_weight: Array
    grad_bias: Array
    loss: float | None
    loss_text: str
    seconds: float
    written: list[Path]

    def nonfinite(self) -> dict[str, tuple[int, int]]:
        """(NaN, inf) counts of x, y, dL/dy and the gradients, for the arrays that have any."""
        return _nonfinite(x=self.problem.x, y=self.y, grad_output=self.grad_output,
                          grad_input=self.grad_input, grad_weight=self.grad_weight,
                          grad_bias=self.grad_bias)

    def norms(self) -> dict[str, float]:
        """‖dL/dx‖, ‖dL/dw‖, ‖dL/db‖ (Frobenius)."""
        return {name: float(np.linalg.norm(array)) for name, array in (
            ("grad_input", self.grad_input), ("grad_weight", self.grad_weight),
            ("grad_bias", self.grad_bias))}


def run_backward(spec: ProblemSpec, *, loss: str = "sum", target: Path | None = None,
                 grad_output: Path | None = None, out: Path | None = None,
                 png_dx: Path | None = None, any_suffix: bool = False,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> BackwardResult:
    """y and the three gradients for L = Σy (loss "sum"), L = ½‖y − T‖² ("mse", T the
    `target`) or a given dL/dy (`grad_output`, a .npy of y's shape), written to `out` (.npz;
    default IMAGE.backward.npz) and, with `png_dx`, a picture of dL/dx."""
    _check_loss(loss, target, grad_output)
    inputs = [spec.image, spec.kernel, grad_output, target]
    out = outputs.check_output(out or default_output(spec.image, "backward.npz"), inputs,
                               fmt="npz", any_suffix=any_suffix)
    if png_dx is not None:
        png_dx = outputs.check_output(_png_name(png_dx, "--png-dx"), inputs, [out],
                                      option="--png-dx")
    problem = load_problem(spec)
    x, w = problem.x, problem.w
    y_shape = (x.shape[0], w.shape[0]) + problem.geometry.output_size
    given = _upstream(spec, loss, target, grad_output, y_shape, x.dtype)
    start = time.perf_counter()
    with np.errstate(all="ignore"):    # NaN or inf in the data: counted in the summary instead
        y = conv2d(x, w, problem.b, memory_budget=memory_budget, **problem.conv_options())
        loss_value: float | None
        if given is not None and grad_output is not None:
            loss_value, dy = None, given
            loss_text = f"dL/dy from {grad_output}"
        elif given is not None:                                        # --loss mse, T given
            loss_value, dy = losses.mse_loss(y, given)
            loss_text = "L = ½‖y − T‖², dL/dy = y − T"
        else:
            loss_value, dy = losses.sum_loss(y)
            loss_text = "L = Σy, dL/dy = 1"
        dy = dy.astype(x.dtype)
        dx, dw, db = conv2d_backward(dy, x, w, memory_budget=memory_budget,
                                     **problem.conv_options())
    seconds = time.perf_counter() - start
    g = problem.geometry
    writers = [(out, outputs.npz_writer(
        input=x, weight=w, **({} if problem.b is None else {"bias": problem.b}),
        y=y, grad_output=dy, grad_input=dx, grad_weight=dw, grad_bias=db,
        stride=np.array(g.stride), dilation=np.array(g.dilation), padding=np.array(g.pad),
        groups=np.array(problem.groups), padding_mode=np.array(spec.padding_mode),
        flip=np.array(spec.flip)))]
    if png_dx is not None:                                   # gradients are signed
        writers.append((png_dx, outputs.png_writer(picture.to_picture(dx, picture.SIGNED))))
    outputs.write_all(writers)
    return BackwardResult(problem, y, dy, dx, dw, db, loss_value, loss_text, seconds,
                          [path for path, _ in writers])


def _check_loss(loss: str, target: Path | None, grad_output: Path | None) -> None:
    if loss not in ("sum", "mse"):
        raise InputError(f"--loss must be sum or mse, got {loss!r}")
    if grad_output is not None and (loss != "sum" or target is not None):
        raise InputError("--grad-output gives dL/dy itself: it cannot go with --loss mse or "
                         "--target; drop one")
    if loss == "mse" and target is None:
        raise InputError("--loss mse needs --target T (an image or .npy of y's shape)")
    if target is not None and loss != "mse":
        raise InputError("--target is the T of --loss mse: add --loss mse, or drop --target")


def _upstream(spec: ProblemSpec, loss: str, target: Path | None, grad_output: Path | None,
              y_shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array | None:
    """The given dL/dy (--grad-output) or T (--loss mse), loaded and checked against y's shape
    before any work; None for the sum loss."""
    if grad_output is not None:
        return _same_shape(load_array(grad_output, "--grad-output"), y_shape, "--grad-output")
    if loss == "mse":
        assert target is not None
        t = load_image(target, dtype=dtype, gray=spec.gray, max_pixels=spec.max_pixels).array
        return _same_shape(t, y_shape, "--target")
    return None


def _same_shape(array: Array, y_shape: tuple[int, ...], option: str) -> Array:
    array = array.reshape((1,) * (4 - array.ndim) + array.shape) if array.ndim < 4 else array
    if array.shape != tuple(y_shape):
        raise InputError(f"{option} has shape {tuple(array.shape)} but y has shape "
                         f"{tuple(y_shape)}: give an array of y's shape")
    return array


def _png_name(path: Path, option: str) -> Path:
    """A picture's output must be named .png (a device, FIFO or "-" takes the bytes as they
    are)."""
    if outputs.destination(path)[0] == "file" and path.suffix.lower() != ".png":
        raise InputError(f"{option} writes a PNG: give a name ending in .png, got {path}")
    return path


@dataclass(frozen=True)
class GradcheckResult:
    """The report of a gradcheck, the problem it checked (None for the built-in suite) and the
    time it took."""

    problem: Problem | None
    report: Report
    seconds: float


def run_gradcheck(spec: ProblemSpec | None = None, *, backward: Callable[..., Any] | None = None,
                  forward: Callable[..., Any] | None = None,
                  cases: list[str] | None = None, samples: int | None = None, seed: int = 0,
                  eps: float | None = None, atol: float | None = None,
                  rtol: float | None = None, dtype: str = "float64",
                  progress: Progress | None = None, debug: bool = False) -> GradcheckResult:
    """The built-in suite (spec None: the named cases, or all, every coordinate) or the user's
    problem (`samples` coordinates of each tensor, 200 by default; b is the problem's bias or
    zeros), for convcli's backward or the given one (and forward)."""
    start = time.perf_counter()
    settings: dict[str, Any] = {"backward": backward, "forward": forward, "seed": seed,
                                "eps": eps, "atol": atol, "rtol": rtol, "dtype": dtype,
                                "progress": progress, "debug": debug}
    if spec is None:
        return GradcheckResult(None, run_suite(cases=cases, **settings),
                               time.perf_counter() - start)
    problem = load_problem(spec)
    b = problem.b if problem.b is not None else np.zeros(problem.w.shape[0], problem.x.dtype)
    report = check_case(problem.x, problem.w, b, name=spec.image.name,
                        samples=200 if samples is None else samples,
                        **problem.conv_options(), **settings)
    return GradcheckResult(problem, report, time.perf_counter() - start)


def grade_gradcheck_answers(folder: Path, *, cases: list[str] | None = None,
                            eps: float | None = None, atol: float | None = None,
                            rtol: float | None = None, progress: Progress | None = None,
                            debug: bool = False) -> GradcheckResult:
    """Grade folder/answers/NAME.npz against the cases written in folder (--write-cases)."""
    start = time.perf_counter()
    report = grade_answers(folder, cases=cases, eps=eps, atol=atol, rtol=rtol,
                           progress=progress, debug=debug)
    return GradcheckResult(None, report, time.perf_counter() - start)


def write_gradcheck_cases(folder: Path, spec: ProblemSpec | None = None, *,
                          cases: list[str] | None = None, seed: int = 0,
                          dtype: str = "float64", command: str = "") -> list[Path]:
    """Write the suite's cases (or the user's problem, b its bias or zeros, g drawn from seed)
    as .npz files and an index in folder, for an implementation outside Python."""
    select(cases)                                     # an unknown name before any folder is made
    check_folder(folder)
    if spec is None:
        return write_suite_cases(folder, cases=cases, seed=seed, dtype=dtype, command=command)
    problem = load_problem(spec)
    b = problem.b if problem.b is not None else np.zeros(problem.w.shape[0], problem.x.dtype)
    data = from_arrays(spec.image.stem, problem.x, problem.w, b, None,
                       options=problem.conv_options(), rng=np.random.default_rng(seed),
                       dtype=float_dtype(dtype))
    return write_cases(folder, [data], command)
