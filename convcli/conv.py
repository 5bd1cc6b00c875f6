"""conv2d and its backward pass, written as the article's three formulas.

    forward   Y      = X_col · W                    (one matrix product per group)
    weights   dL/dW  = X_colᵀ · dL/dY               ("the xᵀ product")
    bias      dL/db  = Σ dL/dY
    input     dL/dX  = col2im(dL/dY · W)            (route 1)
                     = dL/dY ⋆ W_flipped, full      (route 2: the backward pass is a convolution
                                                     with the flipped kernel)

Layout and meaning are those of ``torch.nn.functional.conv2d``: x (N, C, H, W),
w (O, C/groups, KH, KW), b (O,), y (N, O, OH, OW). The forward pass is a cross-correlation:
the kernel is *not* flipped. M = N·OH·OW below is the number of output pixels.
"""

from __future__ import annotations

import numpy as np

from .geometry import Geometry, resolve
from .im2col import col2im_geometry, im2col_geometry


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """2-D convolution as deep learning means it: y = x ⋆ w + b, a cross-correlation (no flip).

    x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) or None -> y (N, O, OH, OW).
    stride and dilation: an int or (h, w); padding: an int, (h, w), (top, bottom, left, right),
    "valid", "same" or "full"; groups divides C and O (groups = C is depthwise).
    float32 stays float32, float64 stays float64; integers and bools compute in float64.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d(x, np.array([[[[1.0, 0.0], [0.0, -1.0]]]]))
    array([[[[-4., -4.],
             [-4., -4.]]]])
    """
    x, w, b = as_float(x, w, b)
    geometry = check_shapes(x, w, b, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)
    n, o, (oh, ow) = x.shape[0], w.shape[0], geometry.output_size
    cols = im2col_geometry(x, geometry)                             # (M, C·KH·KW)
    y_rows = _matmul(_per_group(cols, groups), _per_group_weights(w, groups).transpose(0, 2, 1))
    y_rows = _merge_groups(y_rows)                                  # (M, O)
    if b is not None:
        y_rows += b
    # (M, O) -> (N, OH, OW, O) -> (N, O, OH, OW)
    return np.ascontiguousarray(y_rows.reshape(n, oh, ow, o).transpose(0, 3, 1, 2))


def conv2d_backward(grad_output, x, w, *, stride=1, padding=0, dilation=1, groups=1,
                    grad_input_route="auto"):
    """The three gradients of y = conv2d(x, w, b) for a given dL/dy.

    grad_output (N, O, OH, OW), x (N, C, H, W), w (O, C/groups, KH, KW)
    -> (dL/dx (N, C, H, W), dL/dw (O, C/groups, KH, KW), dL/db (O,)).

    grad_input_route: "col2im" (dL/dx = col2im(dL/dy · W)), "flipped" (dL/dx = dL/dy, dilated by
    the stride, fully correlated with the flipped, channel-swapped kernel) or "auto" (flipped at
    stride 1, col2im otherwise: the faster one measured on each).
    """
    grad_output, x, w = as_float(grad_output, x, w)
    geometry = check_shapes(x, w, None, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)
    _check_grad_output(grad_output, x, w, geometry)
    gy_rows = _rows(grad_output)                                    # (M, O)
    cols = im2col_geometry(x, geometry)                             # (M, C·KH·KW)

    # dL/dW = X_colᵀ · dL/dY, per group: (Kg, M) · (M, Og) -> (Kg, Og), stored as (Og, Kg)
    grad_w = _matmul(_per_group(cols, groups).transpose(0, 2, 1), _per_group(gy_rows, groups))
    grad_weight = np.ascontiguousarray(grad_w.transpose(0, 2, 1)).reshape(w.shape)
    grad_bias = grad_output.sum(axis=(0, 2, 3))
    del cols

    if grad_input_route == "auto":
        grad_input_route = "flipped" if geometry.stride == (1, 1) else "col2im"
    if grad_input_route == "col2im":
        grad_input = _grad_input_col2im(gy_rows, x.shape, w, geometry, groups)
    elif grad_input_route == "flipped":
        grad_input = _grad_input_flipped(grad_output, x.shape, w, geometry, groups)
    else:
        raise ValueError(
            f"grad_input_route must be 'auto', 'col2im' or 'flipped', got {grad_input_route!r}"
        )
    return grad_input, grad_weight, grad_bias


def grad_input_col2im(grad_output, x_shape, w, *, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx by route 1: col2im(dL/dY · W). grad_output (N, O, OH, OW) -> (N, C, H, W)."""
    grad_output, w, geometry = _prepare_grad_input(grad_output, x_shape, w, stride, padding,
                                                   dilation, groups)
    return _grad_input_col2im(_rows(grad_output), tuple(x_shape), w, geometry, groups)


def grad_input_flipped(grad_output, x_shape, w, *, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx by route 2: dL/dy ⋆ flip_kernel(w), a full correlation, cropped to x's shape.

    grad_output (N, O, OH, OW) -> (N, C, H, W). At stride > 1, dL/dy is first dilated by the
    stride (stride - 1 zeros between its pixels): the flipped-kernel rule alone holds only at
    stride 1.
    """
    grad_output, w, geometry = _prepare_grad_input(grad_output, x_shape, w, stride, padding,
                                                   dilation, groups)
    return _grad_input_flipped(grad_output, tuple(x_shape), w, geometry, groups)


def flip_kernel(w, groups=1) -> np.ndarray:
    """The kernel of the backward convolution: (O, C/g, KH, KW) -> (C, O/g, KH, KW).

    Both spatial axes reversed ([[a, b], [c, d]] -> [[d, c], [b, a]]) and, within each group,
    input and output channels swapped.
    """
    w = np.asarray(w)
    o, cg, kh, kw = w.shape
    # (O, Cg, KH, KW) -> (G, Og, Cg, KH, KW) -> (G, Cg, Og, KH, KW) -> (C, Og, KH, KW)
    swapped = w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(swapped.reshape(groups * cg, o // groups, kh, kw)[..., ::-1, ::-1])


def dilate(grad_output, stride) -> np.ndarray:
    """Insert stride - 1 zeros between pixels: (N, O, OH, OW) -> (N, O, (OH-1)·sh+1, (OW-1)·sw+1)."""
    sh, sw = stride
    if (sh, sw) == (1, 1):
        return grad_output
    n, o, oh, ow = grad_output.shape
    dilated = np.zeros((n, o, (oh - 1) * sh + 1, (ow - 1) * sw + 1), dtype=grad_output.dtype)
    dilated[:, :, ::sh, ::sw] = grad_output
    return dilated


def _grad_input_col2im(gy_rows, x_shape, w, geometry: Geometry, groups):
    # dL/dX_col = dL/dY · W, per group: (M, Og) · (Og, Kg) -> (M, Kg)
    grad_cols = _merge_groups(_matmul(_per_group(gy_rows, groups), _per_group_weights(w, groups)))
    return col2im_geometry(grad_cols, x_shape, geometry)


def _grad_input_flipped(grad_output, x_shape, w, geometry: Geometry, groups):
    n, c, height, width = x_shape
    top, _, left, _ = geometry.pad
    gy = dilate(grad_output, geometry.stride)
    # The full correlation gives dL/d(padded x) on padded rows [0, used); x's rows are
    # [top, top + H). Pad (or crop, where negative) dL/dy so that only those rows are computed.
    pads, ends = [], []
    for axis, start, size in ((2, top, height), (3, left, width)):
        span = geometry.dilated_kernel_size[axis - 2]
        end = min(start + size, geometry.used_size[axis - 2])
        if end <= start:
            return np.zeros(x_shape, dtype=grad_output.dtype)
        pads.append((span - 1 - start, end - gy.shape[axis]))
        ends.append(end - start)
    (pt, pb), (pl, pr) = pads
    gy = gy[:, :, max(0, -pt) : gy.shape[2] - max(0, -pb), max(0, -pl) : gy.shape[3] - max(0, -pr)]
    grad_part = conv2d(gy, flip_kernel(w, groups),
                       padding=(max(0, pt), max(0, pb), max(0, pl), max(0, pr)),
                       dilation=geometry.dilation, groups=groups)
    if tuple(ends) == (height, width):
        return grad_part
    grad_input = np.zeros(x_shape, dtype=grad_part.dtype)
    grad_input[:, :, : ends[0], : ends[1]] = grad_part
    return grad_input


def _prepare_grad_input(grad_output, x_shape, w, stride, padding, dilation, groups):
    grad_output, w = as_float(grad_output, w)
    x_shape = tuple(x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {x_shape}")
    geometry = check_shapes(np.empty(x_shape, dtype=w.dtype), w, None, stride=stride,
                            padding=padding, dilation=dilation, groups=groups)
    _check_grad_output(grad_output, x_shape, w, geometry)
    return grad_output, w, geometry


def _rows(grad_output):
    """dL/dy as one row per output pixel: (N, O, OH, OW) -> (M, O)."""
    return grad_output.transpose(0, 2, 3, 1).reshape(-1, grad_output.shape[1])


def _per_group(rows, groups):
    """(M, G·k) -> (G, M, k): a view, each group's columns side by side."""
    m, width = rows.shape
    return rows.reshape(m, groups, width // groups).transpose(1, 0, 2)


def _per_group_weights(w, groups):
    """(O, C/g, KH, KW) -> (G, O/g, C/g·KH·KW): each group's weight matrix W."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _merge_groups(stacked):
    """(G, M, k) -> (M, G·k)."""
    g, m, k = stacked.shape
    return stacked.transpose(1, 0, 2).reshape(m, g * k)


def _matmul(a, b):
    """a @ b for stacks of matrices; an inner dimension of 1 is an outer product, done by
    broadcasting (OpenBLAS was measured ~12× slower on such GEMMs)."""
    if a.shape[-1] == 1:
        return a * b
    return a @ b


def as_float(*arrays):
    """Arrays (None passes through) in one float dtype: float32 when every float input is at
    most 32-bit and no input is an integer or bool, float64 otherwise."""
    converted = [None if a is None else np.asarray(a) for a in arrays]
    dtypes = []
    for a in converted:
        if a is None:
            continue
        if a.dtype.kind == "f":
            dtypes.append(np.float32 if a.dtype.itemsize <= 4 else np.float64)
        elif a.dtype.kind in "biu":
            dtypes.append(np.float64)
        else:
            raise TypeError(f"arrays must be real numbers, got dtype {a.dtype}")
    dtype = np.result_type(*dtypes) if dtypes else np.float64
    return [None if a is None else a.astype(dtype, copy=False) for a in converted]


def check_shapes(x, w, b, *, stride, padding, dilation, groups) -> Geometry:
    """Check x, w, b and the options against each other; return the resolved geometry."""
    for name, array in (("x", x), ("w", w)):
        if array.ndim != 4:
            layout = "(N, C, H, W)" if name == "x" else "(O, C/groups, KH, KW)"
            raise ValueError(f"{name} must be 4-D {layout}, got shape {array.shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    channels, out_channels = x.shape[1], w.shape[0]
    if channels % groups:
        raise ValueError(f"groups={groups} does not divide {channels} input channels")
    if out_channels % groups:
        raise ValueError(f"groups={groups} does not divide {out_channels} output channels")
    if w.shape[1] * groups != channels:
        raise ValueError(
            f"w has {w.shape[1]} input channels per group but x has {channels} channels "
            f"(groups={groups}); w must be (O, C/groups, KH, KW)"
        )
    if b is not None and b.shape != (out_channels,):
        raise ValueError(f"b must have shape (O,) = ({out_channels},), got {b.shape}")
    if min(x.shape) == 0 or min(w.shape) == 0:
        raise ValueError(f"x {x.shape} and w {w.shape} must not have an empty axis")
    return resolve(x.shape[2:], w.shape[2:], stride=stride, padding=padding, dilation=dilation)


def _check_grad_output(grad_output, x, w, geometry: Geometry):
    x_shape = x if isinstance(x, tuple) else x.shape
    expected = (x_shape[0], w.shape[0]) + geometry.output_size
    if grad_output.shape != expected:
        raise ValueError(
            f"grad_output must have y's shape (N, O, OH, OW) = {expected}, "
            f"got {grad_output.shape}"
        )
