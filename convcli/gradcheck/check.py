"""The check itself: run a backward on a configuration, compare it with the numeric gradients,
the adjoint identity and (for convcli's own backward) its two dL/dx routes."""

from __future__ import annotations

import numpy as np

from ..conv import conv2d, conv2d_backward, grad_input_col2im, grad_input_flipped
from ..errors import InputError
from ..geometry import resolve
from .numeric import CentralDifferences, sample_coordinates
from .suite import SUITE
from .verdicts import ADJOINT, ROUTES, TENSORS, Report, compare, settings, shape_failure


def run_suite(backward=None, *, seed=0, eps=None, atol=None, rtol=None, dtype="float64",
              progress=None) -> Report:
    """Check ``backward`` on every configuration of SUITE, every coordinate of x, w and b.

    backward: a function like ``conv2d_backward``,
    ``(grad_output, x, w, *, stride, padding, dilation, groups) -> (dx, dw, db)``; default
    convcli's. eps, atol, rtol: None means the dtype's defaults (float64: 1e-6, 1e-5, 1e-3).
    progress: an optional ``progress(done, total)`` callback, called after each configuration.
    """
    dtype, eps, atol, rtol, warnings = settings(dtype, eps, atol, rtol)
    report = Report([], dtype, seed, eps, atol, rtol, warnings)
    for k, case in enumerate(SUITE):
        rng = np.random.default_rng([seed, k])
        x = rng.standard_normal(case.x_shape)
        w = rng.standard_normal(case.w_shape)
        b = rng.standard_normal(case.w_shape[0]) if case.bias else None
        _check_into(report, case.name, x, w, b, case.options, backward, rng, None)
        if progress is not None:
            progress(k + 1, len(SUITE))
    return report


def check_case(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, samples=None,
               backward=None, seed=0, eps=None, atol=None, rtol=None, dtype="float64",
               name="your case", progress=None) -> Report:
    """Check ``backward`` on one user case: x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) or None.

    samples: None checks every coordinate; K checks K coordinates of each tensor chosen at random
    (seeded), always including the corners and border pixels, so a 512×512 image takes seconds.
    The data are cast to dtype; g is drawn from ``seed``. Other arguments as in run_suite;
    progress is called as ``progress(done, total)``; its units are the coordinates, the backward
    call and the routes check.

    >>> x = np.random.default_rng(0).standard_normal((1, 1, 64, 64))
    >>> report = check_case(x, np.ones((1, 1, 3, 3)), padding="same", samples=20)
    >>> report.passed, [r.checked for r in report.results]
    (True, [20, 9, 4096, 1])
    """
    dtype, eps, atol, rtol, warnings = settings(dtype, eps, atol, rtol)
    report = Report([], dtype, seed, eps, atol, rtol, warnings)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    rng = np.random.default_rng(seed)
    _check_into(report, name, x, w, b, options, backward, rng, samples, progress)
    return report



def _check_into(report, name, x, w, b, options, backward, rng, samples, progress=None):
    """Append the five results of one configuration to report."""
    dtype = np.dtype(report.dtype)
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    b = None if b is None else np.asarray(b, dtype=dtype)
    options = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **options}
    y = conv2d(x, w, **options)  # checks every shape and option; no bias, for the adjoint
    if b is not None and b.shape != (w.shape[0],):
        raise InputError(f"b must have shape (O,) = ({w.shape[0]},), got {b.shape}")
    geometry = resolve(x.shape[2:], w.shape[2:], stride=options["stride"],
                       padding=options["padding"], dilation=options["dilation"])
    groups = options["groups"]
    g = rng.standard_normal(y.shape).astype(dtype)  # random, non-uniform dL/dy
    report.configurations[name] = {
        "x_shape": x.shape, "w_shape": w.shape, "bias": b is not None, "stride": geometry.stride,
        "pad": geometry.pad, "dilation": geometry.dilation, "groups": groups, "y_shape": y.shape}

    backward = conv2d_backward if backward is None else backward
    analytic = backward(g.copy(), x.copy(), w.copy(), **options)
    coords = {
        "grad_input": sample_coordinates(x.shape, samples, rng),
        "grad_weight": sample_coordinates(w.shape, samples, rng),
    }
    if b is not None:
        coords["grad_bias"] = sample_coordinates(b.shape, samples, rng)
    total = sum(len(c) for c in coords.values()) + 2  # the coordinates, the backward, the routes
    done = 0

    def advance(count):
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    advance(1)

    forward = CentralDifferences(x, w, b, g, geometry, groups, report.eps)
    numeric_of = {"grad_input": forward.input_differences,
                  "grad_weight": forward.weight_differences,
                  "grad_bias": forward.bias_differences}
    for tensor, got, like in zip(TENSORS, analytic, (x, w, b)):
        if tensor not in coords:
            continue
        got = np.asarray(got)
        if got.shape != like.shape:
            report.results.append(shape_failure(name, tensor, got.shape, like.shape))
            advance(len(coords[tensor]))
            continue
        index = coords[tensor]
        numeric = numeric_of[tensor](index, advance)
        report.results.append(compare(name, tensor, got[tuple(index.T)], numeric, index,
                                       like.size, report.atol, report.rtol))

    # The two routes of convcli's own dL/dx must agree element by element.
    by_col2im = grad_input_col2im(g, x.shape, w, **options)
    by_flip = grad_input_flipped(g, x.shape, w, **options)
    report.results.append(compare(name, ROUTES, by_col2im.reshape(-1), by_flip.reshape(-1),
                                   x.shape, x.size, report.atol, report.rtol))
    advance(1)

    # Adjoint: <conv2d(x, w), g> = <x, dL/dx>, dx from the backward under test.
    dx = np.asarray(analytic[0])
    if dx.shape != x.shape:
        report.results.append(shape_failure(name, ADJOINT, dx.shape, x.shape))
        return
    lhs = np.vdot(y.astype(np.float64), g.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), dx.astype(np.float64))
    report.results.append(compare(name, ADJOINT, np.array([rhs]), np.array([lhs]), (), 1,
                                   report.atol, report.rtol))


