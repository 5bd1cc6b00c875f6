"""conv_transpose2d: the backward pass of conv2d as a layer of its own (PyTorch's
``torch.nn.functional.conv_transpose2d``), and its three gradients.

A transposed convolution of x with w *is* conv2d's dL/dx route: y = conv2d_input(y's shape, w,
x) for the conv2d that maps y's shape back onto x's, with the same stride, padding, dilation
and groups. Its weight layout is therefore conv2d's seen from the other side, (C_in,
C_out/groups, KH, KW), and its gradients are conv2d's other two formulas:

    dL/dx = conv2d(dL/dy, w)                (the forward pass of that conv2d)
    dL/dw = conv2d_weight(dL/dy, w's shape, x)
    dL/db = Σ dL/dy

Output size per axis: (H − 1)·stride − top − bottom + dilation·(K − 1) + output_padding + 1.
output_padding adds rows at the bottom (columns at the right) that the padding had cropped;
past the full output they are zeros (plus the bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .chunking import DEFAULT_MEMORY_BUDGET
from .conv import conv2d, conv2d_input, conv2d_weight
from .errors import InputError
from .geometry import is_int, pair
from .validate import as_float, check_4d, check_size

Array = NDArray[Any]


def conv_transpose2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1, *,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Array:
    """y = the transposed convolution of x (N, C_in, H, W) with w (C_in, C_out/groups, KH, KW),
    plus b (C_out,) -> y (N, C_out, H_out, W_out), with torch's arguments and semantics
    (padding: an int, (h, w) or (top, bottom, left, right))."""
    x, w, b = as_float(x, w, b)
    assert x is not None and w is not None
    plan = _plan(x, w, b, stride, padding, output_padding, groups, dilation)
    y_shape, cropped, options, extra = plan
    y = conv2d_input(cropped, w, x, memory_budget=memory_budget, **options)
    if extra != (0, 0):
        y = np.pad(y, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    assert y.shape == y_shape
    return y


def conv_transpose2d_backward(grad_output: Any, x: Any, w: Any, *, stride: Any = 1,
                              padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                              dilation: Any = 1, memory_budget: int = DEFAULT_MEMORY_BUDGET
                              ) -> tuple[Array, Array, Array]:
    """The three gradients of y = conv_transpose2d(x, w, b) for a given dL/dy (N, C_out,
    H_out, W_out) -> (dL/dx (N, C_in, H, W), dL/dw (C_in, C_out/groups, KH, KW), dL/db
    (C_out,))."""
    grad_output, x, w = as_float(grad_output, x, w)
    assert grad_output is not None and x is not None and w is not None
    y_shape, cropped, options, _ = _plan(x, w, None, stride, padding, output_padding, groups,
                                         dilation)
    if grad_output.shape != y_shape:
        raise InputError(f"grad_output must have y's shape (N, C_out, H_out, W_out) = "
                         f"{y_shape}, got {grad_output.shape}")
    g = np.ascontiguousarray(grad_output[:, :, : cropped[2], : cropped[3]])  # rows it reaches
    grad_input = conv2d(g, w, memory_budget=memory_budget, **options)
    grad_weight = conv2d_weight(g, w.shape, x, memory_budget=memory_budget, **options)
    return grad_input, grad_weight, grad_output.sum(axis=(0, 2, 3))


def output_shape(x: Array, w: Array, b: Array | None, stride: Any, padding: Any,
                 output_padding: Any, groups: Any, dilation: Any
                 ) -> tuple[tuple[int, ...], tuple[int, int, int, int]]:
    """y's shape (N, C_out, H_out, W_out) and the padding as (top, bottom, left, right), after
    checking every argument as conv_transpose2d does."""
    y_shape = _plan(x, w, b, stride, padding, output_padding, groups, dilation)[0]
    return y_shape, _pads(padding)


def _plan(x: Array, w: Array, b: Array | None, stride: Any, padding: Any, output_padding: Any,
          groups: Any, dilation: Any
          ) -> tuple[tuple[int, ...], tuple[int, int, int, int], dict[str, Any], tuple[int, int]]:
    """Check the arguments -> (y's shape, the shape conv2d_input computes, that conv2d's
    options, the zero rows and columns output_padding adds past it)."""
    check_4d(x, "x")
    check_4d(w, "w", "(C_in, C_out/groups, KH, KW)")
    if not is_int(groups) or groups < 1 or x.shape[1] % groups:
        raise InputError(f"groups must be a positive int dividing C_in = {x.shape[1]}, "
                         f"got {groups!r}")
    if w.shape[0] != x.shape[1]:
        raise InputError(f"w must be (C_in, C_out/groups, KH, KW) with C_in = {x.shape[1]} "
                         f"(x's channels), got {w.shape}")
    c_out = w.shape[1] * groups
    if b is not None and b.shape != (c_out,):
        raise InputError(f"b must have shape (C_out,) = ({c_out},), got {b.shape}")
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    extras = pair(output_padding, "output_padding", minimum=0)
    pads = _pads(padding)
    shape, cropped, extra = [x.shape[0], c_out], [x.shape[0], c_out], []
    for axis in range(2):
        s, d, op = strides[axis], dilations[axis], extras[axis]
        before, after = pads[2 * axis], pads[2 * axis + 1]
        if op >= max(s, d):
            raise InputError(f"output_padding must be smaller than the stride or the dilation "
                             f"on each axis, got {extras} for stride {strides}, dilation "
                             f"{dilations}")
        size = (x.shape[2 + axis] - 1) * s - before - after + d * (w.shape[2 + axis] - 1) + op + 1
        if size < 1:
            raise InputError(f"the output would have {size} {('rows', 'columns')[axis]}: use "
                             "less padding")
        shape.append(size)
        extra.append(max(0, op - after))
        cropped.append(size - extra[-1])
    check_size("the output y", tuple(shape), x.dtype.itemsize,
               "use a smaller stride or kernel, or more padding")
    options = {"stride": strides, "dilation": dilations, "groups": groups,
               "padding": (pads[0], max(0, pads[1] - extras[0]), pads[2],
                           max(0, pads[3] - extras[1]))}
    return (tuple(shape), (cropped[0], cropped[1], cropped[2], cropped[3]), options,
            (extra[0], extra[1]))


def _pads(padding: Any) -> tuple[int, int, int, int]:
    """An int, (h, w) or (top, bottom, left, right) of ints >= 0."""
    if is_int(padding):
        values = (padding,) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) in (2, 4) and all(
            is_int(v) for v in padding):
        values = tuple(padding) if len(padding) == 4 else (padding[0], padding[0],
                                                            padding[1], padding[1])
    else:
        raise InputError("padding of conv_transpose2d must be an int, (h, w) or (top, bottom, "
                         f"left, right), got {padding!r}")
    if min(values) < 0:
        raise InputError(f"padding must not be negative, got {padding!r}")
    return int(values[0]), int(values[1]), int(values[2]), int(values[3])
