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

Speed and memory: X_col has KH·KW times as many numbers as x, so it is never built whole. The
output is cut into chunks of batch items and output rows (``geometry.chunks``) whose piece of
X_col fits ``memory_budget`` bytes (default 256 MiB); each chunk copies its piece (as X_colᵀ,
(C·KH·KW, rows·OW), see im2col.py), multiplies, and moves on. BLAS runs each product on every
core. (Measured on 2 cores and not kept: running these chunks on a thread pool, which
oversubscribes the cores BLAS already uses, and copying with two threads.)

With one input and one output channel per group (grey images, depthwise layers), X_col's product
is a matrix-vector product, cheap next to the copy: conv2d then takes depthwise.py's route,
which reads the windows straight off the padded rows.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from . import depthwise
from .geometry import Geometry, chunks, resolve
from .im2col import col2im_t_add, columns_t, pad_input
from .scratch import scratch

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes of scratch (pieces of X_col, or padded rows on the one-channel route) that conv2d and
conv2d_backward may use at once."""

# Largest piece of X_col per chunk, whatever the budget. Measured on the benchmark shapes c-e:
# 4 MiB was up to 1.2× slower than 8-32 MiB on e; 8-32 MiB were within noise of each other, and
# fewer, larger products lose less when the other core is busy.
_CHUNK_BYTES = 16 * 2**20


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
           memory_budget=DEFAULT_MEMORY_BUDGET) -> np.ndarray:
    """2-D convolution as deep learning means it: y = x ⋆ w + b, a cross-correlation (no flip).

    x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) or None -> y (N, O, OH, OW).
    stride and dilation: an int or (h, w); padding: an int, (h, w), (top, bottom, left, right),
    "valid", "same" or "full"; groups divides C and O (groups = C is depthwise).
    float32 stays float32, float64 stays float64; integers and bools compute in float64.
    memory_budget: bytes of scratch for pieces of X_col or padded rows (at least one output
    row's worth is used even when the budget is smaller). Each thread keeps its scratch buffer,
    of at most 16 MiB, between calls.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d(x, np.array([[[[1.0, 0.0], [0.0, -1.0]]]]))
    array([[[[-4., -4.],
             [-4., -4.]]]])
    """
    x, w, b = as_float(x, w, b)
    geometry = check_shapes(x, w, b, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)
    _check_budget(memory_budget)
    n, c, o, (oh, ow) = x.shape[0], x.shape[1], w.shape[0], geometry.output_size
    if depthwise.suits(w.shape, groups, geometry):     # one channel in and out per group
        return depthwise.conv2d_one_channel(x, w, b, geometry, groups, memory_budget)
    x_padded = pad_input(x, geometry)                               # (N, C, Hp, Wp)
    y = np.empty((n, o, oh, ow), dtype=x.dtype)
    task = partial(_forward_chunk, x_padded=x_padded, w=w, b=b, y=y, geometry=geometry,
                   groups=groups)
    _run(task, n, oh, (c * w[0, 0].size + o) * ow, memory_budget, x.dtype)
    return y


def _forward_chunk(chunk, scratch, *, x_padded, w, b, y, geometry, groups):
    """Y = X_col · W for one chunk, computed as Yᵀ = Wᵀ · X_colᵀ: one product per group."""
    cols_t = columns_t(x_padded, geometry, chunk, scratch)         # (C·KH·KW, Mc), Mc = n·rows·OW
    y_t = _rows_t(y, chunk, groups, scratch[cols_t.size :], copy=False)   # (G, Og, Mc)
    # per group: (G, Og, Kg) · (G, Kg, Mc) -> (G, Og, Mc)
    _matmul(_per_group_weights(w, groups), _split_groups(cols_t, groups), out=y_t)
    if b is not None:
        y_t += b.reshape(groups, -1, 1)
    _store_rows_t(y_t, y, chunk)


def conv2d_backward(grad_output, x, w, *, stride=1, padding=0, dilation=1, groups=1,
                    grad_input_route="auto", memory_budget=DEFAULT_MEMORY_BUDGET):
    """The three gradients of y = conv2d(x, w, b) for a given dL/dy.

    grad_output (N, O, OH, OW), x (N, C, H, W), w (O, C/groups, KH, KW)
    -> (dL/dx (N, C, H, W), dL/dw (O, C/groups, KH, KW), dL/db (O,)).

    grad_input_route: "col2im" (dL/dx = col2im(dL/dY · W)), "flipped" (dL/dx = dL/dy, dilated by
    the stride, fully correlated with the flipped, channel-swapped kernel) or "auto" (flipped at
    stride 1, col2im otherwise: the faster one measured on each).
    memory_budget: bytes of scratch, as in conv2d.
    """
    grad_output, x, w = as_float(grad_output, x, w)
    geometry = check_shapes(x, w, None, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)
    _check_grad_output(grad_output, x, w, geometry)
    _check_budget(memory_budget)
    if grad_input_route == "auto":
        grad_input_route = "flipped" if geometry.stride == (1, 1) else "col2im"
    if grad_input_route not in ("col2im", "flipped"):
        raise ValueError(
            f"grad_input_route must be 'auto', 'col2im' or 'flipped', got {grad_input_route!r}"
        )
    grad_output = np.ascontiguousarray(grad_output)

    grad_weight = _grad_weight(grad_output, x, w, geometry, groups, memory_budget)
    grad_bias = grad_output.sum(axis=(0, 2, 3))
    grad_input = (_grad_input_col2im if grad_input_route == "col2im" else _grad_input_flipped)(
        grad_output, x.shape, w, geometry, groups, memory_budget)
    return grad_input, grad_weight, grad_bias


def _grad_weight(grad_output, x, w, geometry: Geometry, groups, memory_budget):
    """dL/dW = X_colᵀ · dL/dY, summed over chunks of output pixels -> (O, C/g, KH, KW)."""
    if depthwise.suits(w.shape, groups, geometry):     # one channel in and out per group
        return depthwise.grad_weight_one_channel(grad_output, x, geometry, groups, memory_budget)
    n, c, (oh, ow) = x.shape[0], x.shape[1], geometry.output_size
    x_padded = pad_input(x, geometry)                               # (N, C, Hp, Wp)
    task = partial(_grad_weight_chunk, x_padded=x_padded, grad_output=grad_output,
                   geometry=geometry, groups=groups)
    row_size = (c * w[0, 0].size + w.shape[0]) * ow
    return _run(task, n, oh, row_size, memory_budget, x.dtype).reshape(w.shape)


def _grad_weight_chunk(chunk, scratch, *, x_padded, grad_output, geometry, groups):
    """One chunk's part of dL/dW = X_colᵀ · dL/dY, as its transpose dL/dYᵀ · X_col."""
    cols_t = columns_t(x_padded, geometry, chunk, scratch)         # (C·KH·KW, Mc)
    grad_y = _rows_t(grad_output, chunk, groups, scratch[cols_t.size :])    # (G, Og, Mc)
    # per group: (G, Og, Mc) · (G, Mc, Kg) -> (G, Og, Kg)
    return _matmul(grad_y, _split_groups(cols_t, groups).swapaxes(-1, -2))


def grad_input_col2im(grad_output, x_shape, w, *, stride=1, padding=0, dilation=1, groups=1,
                      memory_budget=DEFAULT_MEMORY_BUDGET):
    """dL/dx by route 1: col2im(dL/dY · W). grad_output (N, O, OH, OW) -> (N, C, H, W)."""
    grad_output, w, geometry = _prepare_grad_input(grad_output, x_shape, w, stride, padding,
                                                   dilation, groups, memory_budget)
    return _grad_input_col2im(grad_output, tuple(x_shape), w, geometry, groups, memory_budget)


def grad_input_flipped(grad_output, x_shape, w, *, stride=1, padding=0, dilation=1, groups=1,
                       memory_budget=DEFAULT_MEMORY_BUDGET):
    """dL/dx by route 2: dL/dy ⋆ flip_kernel(w), a full correlation, cropped to x's shape.

    grad_output (N, O, OH, OW) -> (N, C, H, W). At stride > 1, dL/dy is first dilated by the
    stride (stride - 1 zeros between its pixels): the flipped-kernel rule alone holds only at
    stride 1.
    """
    grad_output, w, geometry = _prepare_grad_input(grad_output, x_shape, w, stride, padding,
                                                   dilation, groups, memory_budget)
    return _grad_input_flipped(grad_output, tuple(x_shape), w, geometry, groups, memory_budget)


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


def _grad_input_col2im(grad_output, x_shape, w, geometry: Geometry, groups, memory_budget):
    """dL/dX = col2im(dL/dX_col), dL/dX_col = dL/dY · W, built and scattered chunk by chunk."""
    n, c, height, width = x_shape
    top, _, left, _ = geometry.pad
    grad_padded = np.zeros((n, c) + geometry.padded_size, dtype=grad_output.dtype)
    task = partial(_grad_input_col2im_chunk, grad_output=grad_output, w=w, geometry=geometry,
                   groups=groups, grad_padded=grad_padded)
    (oh, ow), o = geometry.output_size, w.shape[0]
    _run(task, n, oh, (c * w[0, 0].size + o) * ow, memory_budget, grad_output.dtype)
    return grad_padded[:, :, top : top + height, left : left + width].copy()


def _grad_input_col2im_chunk(chunk, scratch, *, grad_output, w, geometry, groups, grad_padded):
    items, rows = chunk
    k_group = w[0].size                                             # Kg = C/g·KH·KW
    m = (items.stop - items.start) * (rows.stop - rows.start) * geometry.output_size[1]
    grad_cols_t = scratch[: groups * k_group * m].reshape(groups, k_group, m)
    grad_y = _rows_t(grad_output, chunk, groups, scratch[grad_cols_t.size :])  # (G, Og, Mc)
    # dL/dX_col = dL/dY · W, transposed, per group: (G, Kg, Og) · (G, Og, Mc) -> (G, Kg, Mc)
    _matmul(_per_group_weights(w, groups).swapaxes(-1, -2), grad_y, out=grad_cols_t)
    # chunks run in turn: neighbouring row chunks add onto the input rows they share
    col2im_t_add(grad_cols_t.reshape(groups * k_group, m), grad_padded, geometry, chunk)


def _grad_input_flipped(grad_output, x_shape, w, geometry: Geometry, groups, memory_budget):
    height, width = x_shape[2:]
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
                       dilation=geometry.dilation, groups=groups, memory_budget=memory_budget)
    if tuple(ends) == (height, width):
        return grad_part
    grad_input = np.zeros(x_shape, dtype=grad_part.dtype)
    grad_input[:, :, : ends[0], : ends[1]] = grad_part
    return grad_input


def _prepare_grad_input(grad_output, x_shape, w, stride, padding, dilation, groups,
                        memory_budget):
    grad_output, w = as_float(grad_output, w)
    _check_budget(memory_budget)
    x_shape = tuple(x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {x_shape}")
    geometry = check_shapes(np.empty(x_shape, dtype=w.dtype), w, None, stride=stride,
                            padding=padding, dilation=dilation, groups=groups)
    _check_grad_output(grad_output, x_shape, w, geometry)
    return np.ascontiguousarray(grad_output), w, geometry


def _rows_t(array, chunk, groups, spare, copy=True):
    """A chunk of a (N, O, OH, OW) array as (G, O/G, n·rows·OW), the layout of Yᵀ: a view of
    array for a chunk of one item; else a copy in spare (or, copy=False, room for one)."""
    items, rows = chunk
    part = array[items, :, rows]                                    # (n, O, rows, OW)
    n, o, r, ow = part.shape
    if n == 1:
        view = part.view()
        view.shape = (groups, o // groups, r * ow)                  # raises rather than copy
        return view
    rows_t = spare[: part.size].reshape(o, n, r, ow)
    if copy:
        np.copyto(rows_t, part.transpose(1, 0, 2, 3))
    return rows_t.reshape(groups, o // groups, n * r * ow)


def _store_rows_t(rows_t, array, chunk):
    """Put (G, O/G, n·rows·OW) back as the chunk (n, O, rows, OW) of array, unless it is a view."""
    items, rows = chunk
    part = array[items, :, rows]
    n, o, r, ow = part.shape
    if n > 1:
        part[...] = rows_t.reshape(o, n, r, ow).transpose(1, 0, 2, 3)


def _split_groups(cols_t, groups):
    """(G·k, Mc) -> (G, k, Mc): each group's rows of X_colᵀ."""
    width, m = cols_t.shape
    return cols_t.reshape(groups, width // groups, m)


def _per_group_weights(w, groups):
    """(O, C/g, KH, KW) -> (G, O/g, C/g·KH·KW): each group's weight matrix Wᵀ."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _matmul(a, b, out=None):
    """a @ b for stacks of matrices; an inner dimension of 1 is an outer product, done by
    broadcasting (OpenBLAS was measured ~12× slower on such GEMMs)."""
    if a.shape[-1] == 1:
        return np.multiply(a, b, out=out)
    return np.matmul(a, b, out=out)


def _run(task, batch, output_rows, row_size, memory_budget, dtype):
    """Run task(chunk, scratch) over chunks of the (batch, output_rows) output, in turn.

    row_size: scratch elements one output row of one item needs. One scratch buffer, reused by
    every chunk, holds at most min(memory_budget, _CHUNK_BYTES) bytes (or one row, if more).
    Returns the sum of what the tasks return (None if nothing).
    """
    itemsize = np.dtype(dtype).itemsize
    plan = chunks(batch, output_rows, row_size * itemsize, min(_CHUNK_BYTES, memory_budget))
    buffer = scratch(row_size * max((i.stop - i.start) * (r.stop - r.start) for i, r in plan),
                     dtype)
    parts = [task(chunk, buffer) for chunk in plan]
    parts = [part for part in parts if part is not None]
    return sum(parts[1:], parts[0]) if parts else None


def _check_budget(memory_budget):
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer)):
        raise TypeError(f"memory_budget must be an int number of bytes, got {memory_budget!r}")
    if memory_budget < 1:
        raise ValueError(f"memory_budget must be >= 1 byte, got {memory_budget!r}")


def as_float(*arrays):
    """Arrays (None passes through) in one float dtype: float32 when every float input is at
    most 32-bit (float16 computes in float32) and no input is an integer or bool, float64
    otherwise. Mixed float32 and float64 inputs compute in float64, as NumPy promotes them
    (torch.nn.functional.conv2d refuses them)."""
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
