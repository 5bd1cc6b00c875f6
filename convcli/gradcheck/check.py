"""The check itself: run an implementation's backward (and forward) on a configuration and
compare it with the numeric gradients, the adjoint identity and, for convcli's own backward,
its two dL/dx routes. Nothing the implementation does stops the run: each problem is a
failing result."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..validate import float_dtype
from .answers import answer_functions, read_cases, write_cases
from .calling import Function, call, unpack, vet
from .data import CaseData, from_arrays, from_case
from .numeric import CentralDifferences, sample_coordinates
from .routes import routes_agree
from .suite import EVERY, Case, select
from .verdicts import (
    ADJOINT,
    BACKWARD,
    FORWARD,
    OUTPUT,
    TENSORS,
    Report,
    compare,
    failure,
    settings,
    skipped,
)
from .whole import WholeDifferences, backward_of, forward_of
from .work import Plan, Work

Progress = Callable[[int, int], None]


def run_suite(backward: Function | None = None, *, forward: Function | None = None,
              cases: list[str] | tuple[str, ...] | None = None, seed: int = 0,
              eps: float | None = None, atol: float | None = None, rtol: float | None = None,
              dtype: str = "float64", progress: Progress | None = None,
              debug: bool = False) -> Report:
    """Check ``backward`` (and ``forward``) on the built-in suite, every coordinate of x, w, b.

    backward: ``(grad_output, x, w, *, stride, padding, dilation, groups) -> (dx, dw, db)``
    (calling.py states the convention); None checks convcli's own, with its routes check.
    forward: an optional ``(x, w, b, *, stride, padding, dilation, groups) -> y``.
    cases: names of suite cases (suite.py), None for all. eps, atol, rtol: None means the
    dtype's defaults (float64: 1e-6, 1e-5, 1e-3). progress(done, total) counts the work.
    debug: an exception's message in the report carries its traceback.
    """
    dtype, eps, atol, rtol, warnings = settings(dtype, eps, atol, rtol)
    report = Report([], dtype, seed, eps, atol, rtol, warnings)
    chosen: list[Case] = select(cases, extra=backward is None)
    data = [from_case(case, seed, EVERY.index(case), float_dtype(dtype)) for case in chosen]
    work = Work(progress)
    plans = [work.plan(d, None, own=backward is None, forward=forward is not None) for d in data]
    for one, plan in zip(data, plans):
        check_data(report, one, backward=backward, forward=forward, samples=None,
                   rng=np.random.default_rng([seed, 10_000]), work=plan, debug=debug)
    return report


def check_case(x: Any, w: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros",
               flip: bool = False, samples: int | None = None,
               backward: Function | None = None, forward: Function | None = None,
               grad_output: Any = None, seed: int = 0, eps: float | None = None,
               atol: float | None = None, rtol: float | None = None, dtype: str = "float64",
               name: str = "your case", progress: Progress | None = None,
               debug: bool = False) -> Report:
    """Check ``backward`` (and ``forward``) on one case: x (N, C, H, W), w (O, C/groups,
    KH, KW), b (O,) or None, grad_output (N, O, OH, OW) or None (then drawn from ``seed``).

    samples: None checks every coordinate; K checks K coordinates of each tensor chosen at random
    (seeded), always including the corners and border pixels, so a 512×512 image takes seconds.
    padding_mode, flip: as in conv2d (then the numeric gradients re-run the whole forward pass,
    and the user's backward gets them as keywords). Non-finite data raise InputError before
    any checking. Other arguments as in run_suite.

    >>> x = np.random.default_rng(0).standard_normal((1, 1, 64, 64))
    >>> report = check_case(x, np.ones((1, 1, 3, 3)), padding="same", samples=20)
    >>> report.passed, [r.checked for r in report.results]
    (True, [20, 9, 4096, 1])
    """
    dtype, eps, atol, rtol, warnings = settings(dtype, eps, atol, rtol)
    report = Report([], dtype, seed, eps, atol, rtol, warnings)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
               "padding_mode": padding_mode, "flip": flip}
    rng = np.random.default_rng(seed)
    data = from_arrays(name, x, w, b, grad_output, options=options, rng=rng,
                       dtype=float_dtype(dtype))
    plan = Work(progress).plan(data, samples, own=backward is None, forward=forward is not None)
    check_data(report, data, backward=backward, forward=forward, samples=samples, rng=rng,
               work=plan, debug=debug)
    return report


def check_data(report: Report, data: CaseData, *, backward: Function | None,
               forward: Function | None, samples: int | None, rng: np.random.Generator,
               work: Plan, debug: bool) -> None:
    """Append one configuration's results to report: y (with a forward), dL/dx, dL/dw, dL/db
    at the sampled coordinates, the adjoint identity, and (own backward) the routes."""
    report.configurations[data.name] = data.summary()
    if forward is not None:
        report.results.append(_check_forward(data, forward, report, debug))
    work.advance("forward")
    y = forward_of(data)(data.x, data.w)                        # no bias: for the adjoint
    y_dot_g = float(np.vdot(y.astype(np.float64, copy=False), data.g))
    del y
    got = _run_backward(report, data, backward, debug)
    work.advance("backward")
    if got is None:
        work.finish()
        return
    coords = {"grad_input": sample_coordinates(data.x.shape, samples, rng),
              "grad_weight": sample_coordinates(data.w.shape, samples, rng)}
    if data.b is not None:
        coords["grad_bias"] = sample_coordinates(data.b.shape, samples, rng)
    analytic = {tensor: array[tuple(index.T)] for tensor, index in coords.items()
                if (array := got.get(tensor)) is not None}
    x_dot_dx = None if got.get("grad_input") is None else float(np.vdot(data.x, got["grad_input"]))
    del got                                                     # only the samples are kept
    _compare_numeric(report, data, coords, analytic, work)
    if backward is None and data.plain:     # convcli's own: its two dL/dx routes must agree
        report.results.append(routes_agree(data, report.atol, report.rtol))
        work.advance("routes")
    if x_dot_dx is not None:    # <conv2d(x, w), g> = <x, dL/dx>, dx from the backward under test
        report.results.append(compare(data.name, ADJOINT, np.array([x_dot_dx]),
                                      np.array([y_dot_g]), (), 1, report.atol, report.rtol))
    work.finish()


def _run_backward(report: Report, data: CaseData, backward: Function | None,
                  debug: bool) -> dict[str, np.ndarray | None] | None:
    """The backward's three tensors, each vetted; None when the call itself failed or was
    skipped (then a result says so). A tensor that failed vetting is None in the dict."""
    if backward is None:
        values: list[Any] = list(backward_of(data)(data.g, data.x, data.w))
    else:
        outcome = call(backward, data.g.copy(), data.x.copy(), data.w.copy(), debug=debug,
                       **data.options())
        if outcome.skipped:
            report.results.append(skipped(data.name, BACKWARD, outcome.error))
            return None
        if outcome.error:
            report.results.append(failure(data.name, BACKWARD, 0, "raised " + outcome.error,
                                          outcome.error))
            return None
        values, problem = unpack(outcome.value, TENSORS)
        if problem:
            report.results.append(failure(data.name, BACKWARD, 0, problem))
            return None
    got: dict[str, np.ndarray | None] = {}
    shapes = {"grad_input": data.x.shape, "grad_weight": data.w.shape,
              "grad_bias": (data.g.shape[1],)}
    for tensor, value in zip(TENSORS, values):
        if tensor == "grad_bias" and data.b is None:
            continue                  # a case without bias: dL/db is not checked
        array, problem = vet(value, shapes[tensor])
        if problem:
            report.results.append(failure(data.name, tensor, int(np.prod(shapes[tensor])),
                                          problem))
        got[tensor] = array
    return got


def _compare_numeric(report: Report, data: CaseData, coords: dict[str, np.ndarray],
                     analytic: dict[str, np.ndarray], work: Plan) -> None:
    """Central differences at each tensor's coordinates against the analytic values."""
    if data.plain:
        differences = CentralDifferences(data.x, data.w, data.b, data.g, data.geometry,
                                         data.groups, report.eps)
        numeric_of = {"grad_input": differences.input_differences,
                      "grad_weight": differences.weight_differences,
                      "grad_bias": differences.bias_differences}
    else:
        whole = WholeDifferences(data, report.eps)
        numeric_of = {tensor: partial(whole.differences, tensor) for tensor in TENSORS}
    for tensor, index in coords.items():
        if tensor not in analytic:
            work.advance(tensor, len(index))
            continue
        numeric = numeric_of[tensor](index, lambda count, t=tensor: work.advance(t, count))
        size = data.x.size if tensor == "grad_input" else data.w.size if tensor == (
            "grad_weight") else data.g.shape[1]
        report.results.append(compare(data.name, tensor, analytic[tensor], numeric, index, size,
                                      report.atol, report.rtol))


def _check_forward(data: CaseData, forward: Function, report: Report, debug: bool):
    """The forward under test against conv2d(x, w, b), element by element."""
    outcome = call(forward, data.x.copy(), data.w.copy(),
                   None if data.b is None else data.b.copy(), debug=debug, **data.options())
    if outcome.skipped:
        return skipped(data.name, FORWARD, outcome.error)
    if outcome.error:
        return failure(data.name, FORWARD, 0, "raised " + outcome.error, outcome.error)
    expected = forward_of(data)(data.x, data.w, data.b)
    got, problem = vet(outcome.value, expected.shape)
    if got is None:
        return failure(data.name, OUTPUT, expected.size, problem)
    return compare(data.name, OUTPUT, got.reshape(-1), expected.reshape(-1), expected.shape,
                   expected.size, report.atol, report.rtol)


def grade_answers(folder: Any, *, cases: list[str] | tuple[str, ...] | None = None,
                  eps: float | None = None, atol: float | None = None,
                  rtol: float | None = None, progress: Progress | None = None,
                  debug: bool = False) -> Report:
    """Grade the answers an implementation in any language wrote into folder/answers/ for the
    cases of ``write_cases`` (answers.py), with the same rule and report as run_suite."""
    folder = Path(folder)
    data = read_cases(folder, cases)
    dtype, eps, atol, rtol, warnings = settings(data[0].x.dtype.name, eps, atol, rtol)
    report = Report([], dtype, 0, eps, atol, rtol, warnings)
    work = Work(progress)
    plans = [work.plan(d, None, own=False, forward=True) for d in data]
    for one, plan in zip(data, plans):
        backward, forward = answer_functions(folder, one.name)
        check_data(report, one, backward=backward, forward=forward, samples=None,
                   rng=np.random.default_rng(0), work=plan, debug=debug)
    return report


def write_suite_cases(folder: Any, *, cases: list[str] | tuple[str, ...] | None = None,
                      seed: int = 0, dtype: str = "float64", command: str = "") -> list[Path]:
    """Write the suite's cases (the conv2d ones, or those named) for grade_answers."""
    chosen = select(cases, extra=False)
    data = [from_case(case, seed, EVERY.index(case), float_dtype(dtype)) for case in chosen]
    return write_cases(Path(folder), data,
                       command or f"convcli gradcheck --write-cases {folder}")
