"""walkthrough(): the article's argument on real numbers, as a Walkthrough of ten checked steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import borders
from ..conv import conv2d
from ..errors import InputError
from ..geometry import Geometry, pair, resolve
from .arrays import compute, copies_of, flipped_footprint
from .model import CLAIMS, Check, Walkthrough, verify
from .steps import steps

ARTICLE_KERNEL = np.array([[1.0, 2.0], [3.0, 4.0]])   # [[a, b], [c, d]]
ARTICLE_PADDING = (1, 0, 1, 0)                         # at top and left: y keeps x's size


def walkthrough(x: Any = None, w: Any = None, *, stride: Any = 1, padding: Any = None,
                dilation: Any = 1, groups: int = 1, pixel: Any = None, seed: int = 0,
                grad_output: Any = None, padding_mode: str = "zeros", target: Any = None,
                loss: str = "random") -> Walkthrough:
    """The article's argument on real numbers.

    x: (H, W), (C, H, W) or (1, C, H, W); default a 4×4 of seeded integers 1..5 (no zeros, so
    the padding stands out). w: (KH, KW) or (O, C/groups, KH, KW); default [[1, 2], [3, 4]].
    padding: as conv2d; default (1, 0, 1, 0) for a 2×2 kernel (the article), "same" otherwise.
    pixel: (i, j) or (c, i, j) of p in x; default (0, 0, 0). grad_output: dL/dy (1, O, OH, OW);
    default seeded random integers in ±1..3 (never all ones: that hides bugs).
    padding_mode: what the padded cells hold ("zeros" or a border mode of borders.py).
    target: T of L = ½‖y − T‖², so dL/dy = y − T (y's shape; instead of grad_output).
    loss: "sum" makes dL/dy 1 everywhere (L = Σy) instead of the seeded integers.
    """
    rng = np.random.default_rng(seed)
    w = np.asarray(ARTICLE_KERNEL if w is None else w, dtype=float)
    w = w.reshape((1, 1) + w.shape) if w.ndim == 2 else w
    if w.ndim != 4:
        raise InputError(f"the kernel must be (KH, KW) or (O, C, KH, KW), got shape {w.shape}")
    spans = tuple(d * (k - 1) + 1 for d, k in zip(pair(dilation, "dilation"), w.shape[2:]))
    if x is None:
        side = max(4, *spans)
        x = rng.integers(1, 6, size=(1, w.shape[1] * groups, side, side))
    x = np.asarray(x, dtype=float)
    x = x.reshape((1,) * (4 - x.ndim) + x.shape) if x.ndim in (2, 3) else x
    if x.ndim != 4 or x.shape[0] != 1:
        raise InputError(f"the image must be (H, W), (C, H, W) or (1, C, H, W), got {x.shape}")
    if padding is None:
        padding = ARTICLE_PADDING if spans == (2, 2) else "same"
    geometry = resolve(x.shape[2:], w.shape[2:], stride=stride, padding=padding,
                       dilation=dilation)
    borders.check_mode(padding_mode, geometry.input_size, geometry.pad)
    y = conv2d(x, w, groups=groups, **geometry.options())          # validates shapes too
    upstream = "seeded random integers"
    if target is not None and grad_output is not None:
        raise InputError("give dL/dy (--grad-output) or T (--loss mse --target), not both")
    if target is not None:
        grad_output = y - _as_y(target, y.shape, "--target")
        upstream = "y − T, for the loss L = ½‖y − T‖²"
    elif grad_output is None and loss == "sum":
        grad_output = np.ones(y.shape)
        upstream = "1 everywhere, for the loss L = Σy"
    elif grad_output is None:
        grad_output = rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], size=y.shape)
    else:
        grad_output = _as_y(grad_output, y.shape, "--grad-output")
        upstream = "the given dL/dy"
    p = _pixel(pixel, x.shape)
    anchor = _anchor(p, w.shape, geometry, groups, padding_mode)
    arrays = compute(x, w, grad_output, geometry, groups, p, padding_mode, anchor)
    checks = verify(arrays)
    _not_applicable(checks, arrays, geometry, groups, p, padding_mode)
    walk_steps = steps(arrays, geometry, groups, p, padding_mode, upstream, anchor)
    for (index, *_), check in zip(CLAIMS, checks):
        walk_steps[index].checks.append(check)
    walk_steps[-1].checks = list(checks)
    return Walkthrough(walk_steps, arrays, p, groups, geometry, checks, padding_mode)


def _not_applicable(checks: list[Check], arrays: dict[str, np.ndarray], geometry: Geometry,
                    groups: int, pixel: tuple[int, int, int], padding_mode: str) -> None:
    """Mark the claims that say nothing here: step 4's when no window's tap lands on p (the
    stride or the dilation skips it: both sides are 0), the contrast of step 1 when w is the
    same turned 180° (then x * w is y)."""
    w = arrays["w"]
    reached = any(True for at in copies_of(pixel, geometry, padding_mode)
                  for _ in flipped_footprint(pixel, w.shape, geometry, groups, at))
    for (index, _, computed, *_), check in zip(CLAIMS, checks, strict=True):
        if index == 3 and not reached:
            check.not_applicable("no window's tap lands on p, so both sides are 0")
        if computed == "y_true_convolution" and np.array_equal(w, w[..., ::-1, ::-1]):
            check.not_applicable("w is the same turned 180°, so here x * w is y")
        if computed in ("M·x", "Mᵀ·dL/dy") and not arrays["M"].size:
            check.not_applicable("M is built for small cases only")


LARGE = 12          # an image wider or taller than this is explained around p


def _anchor(pixel: tuple[int, int, int], w_shape: tuple[int, ...], geometry: Geometry,
            groups: int, padding_mode: str) -> tuple[int, int]:
    """The output step 1 explains: (0, 0) on a small image; on a large one the first output
    whose window reads p (or the nearest to p), so every table is cropped around p."""
    if max(geometry.input_size) <= LARGE:
        return 0, 0
    for at in copies_of(pixel, geometry, padding_mode):
        for _, i, j, *_ in flipped_footprint(pixel, w_shape, geometry, groups, at):
            return i, j
    top, _, left, _ = geometry.pad
    (oh, ow), (sh, sw) = geometry.output_size, geometry.stride
    return min(oh - 1, (pixel[1] + top) // sh), min(ow - 1, (pixel[2] + left) // sw)


def _as_y(array: Any, y_shape: tuple[int, ...], option: str) -> np.ndarray:
    """An array of y's shape (N, O, OH, OW), given with or without its leading 1s."""
    array = np.asarray(array, dtype=float)
    if array.size != int(np.prod(y_shape)) or array.shape[-2:] != tuple(y_shape[-2:]):
        raise InputError(f"{option} has shape {array.shape} but y has shape {tuple(y_shape)}: "
                         "give an array of y's shape")
    if not np.isfinite(array).all():
        raise InputError(f"{option} holds NaN or inf; a walkthrough needs finite numbers")
    return array.reshape(y_shape)


def _pixel(pixel: Any, x_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(i, j) or (c, i, j) inside x -> (c, i, j)."""
    values = (0, 0, 0) if pixel is None else tuple(int(v) for v in pixel)
    values = (0,) + values if len(values) == 2 else values
    if len(values) != 3 or not all(0 <= p < n for p, n in zip(values, x_shape[1:])):
        raise InputError(f"--pixel must be I,J (or C,I,J) inside x of shape (C, H, W) = "
                         f"{x_shape[1:]}, got {','.join(map(str, pixel))}")
    return values[0], values[1], values[2]
