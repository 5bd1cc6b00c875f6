"""conv2d and its backward pass, written as the article's three formulas.

    forward   Y      = X_col · W                    (one matrix product per group)
    weights   dL/dW  = X_colᵀ · dL/dY               ("the xᵀ product")
    bias      dL/db  = Σ dL/dY
    input     dL/dX  = col2im(dL/dY · W)            (route 1)
                     = dL/dY ⋆ W_flipped, full      (route 2: the backward pass is a convolution
                                                     with the flipped kernel)

Layout and meaning are those of ``torch.nn.functional.conv2d``: x (N, C, H, W),
w (O, C/groups, KH, KW), b (O,), y (N, O, OH, OW). The forward pass is a cross-correlation:
the kernel is *not* flipped. M = N·OH·OW below is the number of output pixels. The two halves
of the backward pass also have PyTorch's names and argument order (``torch.nn.grad``):
``conv2d_input`` and ``conv2d_weight``.

Speed and memory: X_col is never built whole. The output is cut into chunks of batch items and
output rows whose piece of X_col fits ``memory_budget`` bytes (chunking.py); each chunk copies
its piece (as X_colᵀ, (C·KH·KW, rows·OW)), multiplies, and moves on. At stride 1 the pieces
come from the flat layout (flat.py: each row of X_colᵀ one contiguous run) and the chunks run
on one worker per core, each with single-threaded BLAS; dL/dW there skips X_col: one product
per kernel tap, dL/dY times the input shifted by the tap. At stride 2 and more, X_colᵀ is
columns.py's strided copy and BLAS runs each product on every core. Which design runs which
layer is one rule, chunking.route, with the measurements behind it.

With one input and one output channel per group (grey images, depthwise layers), X_col's product
is a matrix-vector product, cheap next to the copy: conv2d then takes depthwise.py's route,
which reads the windows straight off the padded rows.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import borders, depthwise, flat
from .chunking import DEFAULT_MEMORY_BUDGET, Chunk, route, run
from .columns import (
    col2im_t_add,
    columns_t,
    pad_input,
    per_group_columns,
    per_group_weights,
    rows_t,
    split_groups,
    store_rows_t,
)
from .errors import InputError
from .geometry import Geometry, resolve
from .validate import (
    as_float,
    check_budget,
    check_conv,
    check_grad_output,
    check_x_shape,
)

Array = NDArray[Any]
Route = Literal["auto", "col2im", "flipped"]


def conv2d(x: Any, w: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros", flip: bool = False,
           memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Array:
    """2-D convolution as deep learning means it: y = x ⋆ w + b, a cross-correlation (no flip).

    x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) or None -> y (N, O, OH, OW).
    stride and dilation: an int or (h, w); padding: an int, (h, w), (top, bottom, left, right),
    "valid", "same" or "full"; groups divides C and O (groups = C is depthwise).
    padding_mode: what the padded cells hold, "zeros" or a border mode of borders.py
    ("reflect", "symmetric", "replicate", "circular"). flip: rotate the kernel 180° first, a
    true convolution (scipy.ndimage.convolve's). float32 stays float32, float64 stays float64; integers and bools compute in float64.
    memory_budget: bytes of scratch for pieces of X_col or padded rows (at least one output
    row's worth is used even when the budget is smaller). Each thread keeps its scratch buffer,
    of at most 16 MiB, between calls.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d(x, np.array([[[[1.0, 0.0], [0.0, -1.0]]]]))
    array([[[[-4., -4.],
             [-4., -4.]]]])
    """
    x, w, b = as_float(x, w, b)
    assert x is not None and w is not None
    geometry = check_conv(x, w, b, stride=stride, padding=padding, dilation=dilation,
                          groups=groups)
    budget = check_budget(memory_budget)
    borders.check_mode(padding_mode, geometry.input_size, geometry.pad)
    w = flipped(w) if flip else w
    if depthwise.suits(w.shape, groups, geometry):     # one channel in and out per group
        return depthwise.conv2d_one_channel(x, w, b, geometry, groups, budget, padding_mode)
    n, c, o, (oh, ow) = x.shape[0], x.shape[1], w.shape[0], geometry.output_size
    y = np.empty((n, o, oh, ow), dtype=x.dtype)
    plan = route(geometry, c, o)
    if plan.flat:
        x_flat = flat.padded_flat(x, geometry, padding_mode)       # (N, C, Hp·Wp + tail)
        task = partial(_forward_chunk_flat, x_flat=x_flat, w=w, b=b, y=y, geometry=geometry,
                       groups=groups)
        run(task, n, oh, (c * w[0, 0].size + o) * geometry.padded_size[1], budget, x.dtype,
            workers=plan.workers)
        return y
    x_padded = pad_input(x, geometry, padding_mode)                 # (N, C, Hp, Wp)
    task = partial(_forward_chunk, x_padded=x_padded, w=w, b=b, y=y, geometry=geometry,
                   groups=groups)
    run(task, n, oh, (c * w[0, 0].size + o) * ow, budget, x.dtype, workers=plan.workers)
    return y


def _forward_chunk(chunk: Chunk, scratch: Array, *, x_padded: Array, w: Array, b: Array | None,
                   y: Array, geometry: Geometry, groups: int) -> None:
    """Y = X_col · W for one chunk, computed as Yᵀ = Wᵀ · X_colᵀ: one product per group."""
    cols_t = columns_t(x_padded, geometry, chunk, scratch)         # (C·KH·KW, Mc), Mc = n·rows·OW
    y_t = rows_t(y, chunk, groups, scratch[cols_t.size :], copy=False)   # (G, Og, Mc)
    # per group: (G, Og, Kg) · (G, Kg, Mc) -> (G, Og, Mc)
    _matmul(per_group_weights(w, groups), split_groups(cols_t, groups), out=y_t)
    if b is not None:
        y_t += b.reshape(groups, -1, 1)
    store_rows_t(y_t, y, chunk)


def _forward_chunk_flat(chunk: Chunk, scratch: Array, *, x_flat: Array, w: Array,
                        b: Array | None, y: Array, geometry: Geometry, groups: int) -> None:
    """Yᵀ = Wᵀ · X_colᵀ for one chunk of the flat layout (flat.py), Wp columns per output row."""
    cols_t = flat.columns_t(x_flat, geometry, chunk, scratch)      # (C·KH·KW, Mc), Mc = n·R·Wp
    m = cols_t.shape[1]
    y_t = scratch[cols_t.size : cols_t.size + w.shape[0] * m].reshape(groups, -1, m)
    # the extra columns' windows wrap onto the next row, where +inf and -inf may meet though no
    # real window holds both: no warning for values that are dropped (torch gives none either)
    with np.errstate(invalid="ignore"):
        _matmul(per_group_weights(w, groups), split_groups(cols_t, groups), out=y_t)
    flat.store_rows_t(y_t, y, chunk, b)


def conv2d_backward(grad_output: Any, x: Any, w: Any, *, stride: Any = 1, padding: Any = 0,
                    dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros",
                    flip: bool = False, grad_input_route: Route = "auto",
                    memory_budget: int = DEFAULT_MEMORY_BUDGET) -> tuple[Array, Array, Array]:
    """The three gradients of y = conv2d(x, w, b) for a given dL/dy.

    grad_output (N, O, OH, OW), x (N, C, H, W), w (O, C/groups, KH, KW)
    -> (dL/dx (N, C, H, W), dL/dw (O, C/groups, KH, KW), dL/db (O,)).

    grad_input_route: "col2im" (dL/dx = col2im(dL/dY · W)), "flipped" (dL/dx = dL/dy, dilated by
    the stride, fully correlated with the flipped, channel-swapped kernel) or "auto" (the faster
    one measured for the layer's stride and channels: chunking.route).
    padding_mode, flip: as in conv2d; dL/dx folds the gradient of each padded cell back onto
    the pixel it copied (borders.fold), and dL/dw is for the kernel as given (flipped back).
    memory_budget: bytes of scratch, as in conv2d.
    """
    grad_output, x, w = as_float(grad_output, x, w)
    assert grad_output is not None and x is not None and w is not None
    geometry = check_conv(x, w, None, stride=stride, padding=padding, dilation=dilation,
                          groups=groups)
    check_grad_output(grad_output, x.shape, w.shape, geometry)
    budget = check_budget(memory_budget)
    borders.check_mode(padding_mode, geometry.input_size, geometry.pad)
    if grad_input_route not in ("auto", "col2im", "flipped"):
        raise InputError(
            f"grad_input_route must be 'auto', 'col2im' or 'flipped', got {grad_input_route!r}"
        )
    grad_output = np.ascontiguousarray(grad_output)
    w_used = flipped(w) if flip else w
    grad_weight = _grad_weight(grad_output, x, w.shape, geometry, groups, budget, padding_mode)
    grad_bias = grad_output.sum(axis=(0, 2, 3))
    grad_input = _grad_input(grad_output, x.shape, w_used, geometry, groups, budget,
                             padding_mode, grad_input_route)
    return grad_input, flipped(grad_weight) if flip else grad_weight, grad_bias


def conv2d_weight(input: Any, weight_size: Any, grad_output: Any, *, stride: Any = 1,
                  padding: Any = 0, dilation: Any = 1, groups: int = 1,
                  padding_mode: str = "zeros",
                  memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Array:
    """dL/dw alone, the xᵀ product X_colᵀ · dL/dY, with ``torch.nn.grad.conv2d_weight``'s
    arguments: input x (N, C, H, W), weight_size (O, C/groups, KH, KW), grad_output
    (N, O, OH, OW) -> dL/dw (O, C/groups, KH, KW); padding_mode as in conv2d."""
    grad_output, x = as_float(grad_output, input)
    assert grad_output is not None and x is not None
    w_shape = check_x_shape(weight_size, "weight_size", "(O, C/groups, KH, KW)")
    w_like = np.broadcast_to(np.zeros((), x.dtype), w_shape)      # shapes only, no memory
    geometry = check_conv(x, w_like, None, stride=stride, padding=padding, dilation=dilation,
                          groups=groups)
    check_grad_output(grad_output, x.shape, w_shape, geometry)
    borders.check_mode(padding_mode, geometry.input_size, geometry.pad)
    return _grad_weight(np.ascontiguousarray(grad_output), x, w_shape, geometry, groups,
                        check_budget(memory_budget), padding_mode)


def conv2d_input(input_size: Any, weight: Any, grad_output: Any, *, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 padding_mode: str = "zeros",
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Array:
    """dL/dx alone, with ``torch.nn.grad.conv2d_input``'s arguments: input_size (N, C, H, W),
    weight (O, C/groups, KH, KW), grad_output (N, O, OH, OW) -> dL/dx (N, C, H, W), by the
    faster route for the stride (conv2d_backward's "auto"); padding_mode as in conv2d."""
    grad_output, w, shape, geometry = _prepare_grad_input(grad_output, input_size, weight,
                                                          stride, padding, dilation, groups)
    borders.check_mode(padding_mode, geometry.input_size, geometry.pad)
    return _grad_input(grad_output, shape, w, geometry, groups, check_budget(memory_budget),
                       padding_mode)


def _grad_input(grad_output: Array, x_shape: tuple[int, int, int, int], w: Array,
                geometry: Geometry, groups: int, memory_budget: int, padding_mode: str,
                name: Route = "auto") -> Array:
    """dL/dX by the named route ("auto": chunking.route's choice for the layer); with a border
    mode, dL/d(padded x) with its border folded back onto the pixels it copied."""
    plan = route(geometry, x_shape[1], w.shape[0])
    if name == "auto":
        # a NaN or inf weight: the flipped route multiplies it by dL/dy's zero padding, NaN
        # on pixels that weight never touches; col2im sums over the real windows only
        name = plan.grad_input if np.isfinite(w).all() else "col2im"
    function = (_grad_input_flipped if name == "flipped"
                else _grad_input_flat if plan.flat else _grad_input_col2im)
    if padding_mode == "zeros":
        return function(grad_output, x_shape, w, geometry, groups, memory_budget)
    grad_padded = function(grad_output, x_shape[:2] + geometry.padded_size, w,
                           unpadded(geometry), groups, memory_budget)
    return borders.fold(grad_padded, geometry.pad, padding_mode, geometry.input_size)


def _grad_weight(grad_output: Array, x: Array, w_shape: tuple[int, ...], geometry: Geometry,
                 groups: int, memory_budget: int, padding_mode: str = "zeros") -> Array:
    """dL/dW = X_colᵀ · dL/dY, summed over chunks of output pixels -> (O, C/g, KH, KW)."""
    if depthwise.suits(w_shape, groups, geometry):     # one channel in and out per group
        return depthwise.grad_weight_one_channel(grad_output, x, geometry, groups, memory_budget,
                                                 padding_mode)
    n, c, (oh, ow) = x.shape[0], x.shape[1], geometry.output_size
    plan = route(geometry, c, w_shape[0])
    if plan.flat:
        x_flat = flat.padded_flat(x, geometry, padding_mode)       # (N, C, Hp·Wp + tail)
        options: dict[str, Any] = {"x_flat": x_flat, "grad_output": grad_output,
                                   "geometry": geometry, "groups": groups}
        per_row = (w_shape[0] + c * w_shape[2] * w_shape[3]) * geometry.padded_size[1]
        with np.errstate(invalid="ignore"):         # 0 × inf in the extra columns, see below
            if plan.weight == "shifted":            # scratch: dL/dY alone, one item per chunk
                weights: Array = run(partial(_grad_weight_chunk_shifted, **options), n, oh,
                                     w_shape[0] * geometry.padded_size[1], memory_budget,
                                     x.dtype, workers=plan.workers, one_item=True)
            else:
                weights = run(partial(_grad_weight_chunk_flat, **options), n, oh, per_row,
                              memory_budget, x.dtype, workers=plan.workers)
        if not np.isfinite(weights).all():
            # a NaN or inf of x that only the extra columns reach (0 × inf = NaN), or a true
            # one: again with the extra columns of X_colᵀ zeroed, so that only windows count
            exact = partial(_grad_weight_chunk_flat, zero_extra=True, **options)
            weights = run(exact, n, oh, per_row, memory_budget, x.dtype, workers=plan.workers)
        return np.ascontiguousarray(weights).reshape(w_shape)
    x_padded = pad_input(x, geometry, padding_mode)                 # (N, C, Hp, Wp)
    task = partial(_grad_weight_chunk, x_padded=x_padded, grad_output=grad_output,
                   geometry=geometry, groups=groups)
    # per output pixel: its column of X_colᵀ (C·KH·KW values) and its row of dL/dY (O)
    row_size = (c * w_shape[2] * w_shape[3] + w_shape[0]) * ow
    grad_weight: Array = run(task, n, oh, row_size, memory_budget, x.dtype,
                             workers=plan.workers)
    return grad_weight.reshape(w_shape)


def _grad_weight_chunk(chunk: Chunk, scratch: Array, *, x_padded: Array, grad_output: Array,
                       geometry: Geometry, groups: int) -> Array:
    """One chunk's part of dL/dW = X_colᵀ · dL/dY, as its transpose dL/dYᵀ · X_col."""
    cols_t = columns_t(x_padded, geometry, chunk, scratch)         # (C·KH·KW, Mc)
    grad_y = rows_t(grad_output, chunk, groups, scratch[cols_t.size :])    # (G, Og, Mc)
    # per group: (G, Og, Mc) · (G, Mc, Kg) -> (G, Og, Kg)
    return _matmul(grad_y, split_groups(cols_t, groups).swapaxes(-1, -2))


def _grad_weight_chunk_flat(chunk: Chunk, scratch: Array, *, x_flat: Array, grad_output: Array,
                            geometry: Geometry, groups: int, zero_extra: bool = False) -> Array:
    """One chunk's part of dL/dW = X_colᵀ · dL/dY on the flat layout (flat.py); the extra
    columns of dL/dY are zeros, so they add nothing (zero_extra: nor can a NaN of x's).

    Computed as dL/dYᵀ · X_col, with dL/dY copied as it lies: taking dL/dY pixel-major for
    BLAS's faster "NN" product paid more in the transposing copy than it won (d: 1.81× torch
    against 1.68×)."""
    cols_t = flat.columns_t(x_flat, geometry, chunk, scratch, zero_extra)    # (C·KH·KW, Mc)
    grad_y = flat.rows_t(grad_output, chunk, geometry, scratch[cols_t.size :])   # (O, Mc)
    m = grad_y.shape[1]
    # per group: (G, Og, Mc) · (G, Mc, Kg) -> (G, Og, Kg)
    return _matmul(grad_y.reshape(groups, -1, m), split_groups(cols_t, groups).swapaxes(-1, -2))


def _grad_weight_chunk_shifted(chunk: Chunk, scratch: Array, *, x_flat: Array,
                               grad_output: Array, geometry: Geometry, groups: int) -> Array:
    """One chunk's part of dL/dW, tap by tap, without X_col: dL/dW[:, :, kh, kw] is the input
    shifted by the tap (a view of the flat buffer, one item per chunk) times dL/dY."""
    items, rows = chunk
    grad_y = flat.pixel_rows(grad_output, chunk, geometry, scratch)  # (R·Wp, O)
    m, (kh, kw), (dh, dw) = grad_y.shape[0], geometry.kernel_size, geometry.dilation
    wp, c, o = geometry.padded_size[1], x_flat.shape[1], grad_y.shape[1]
    grad_y_groups = per_group_columns(grad_y, groups)                  # (G, R·Wp, Og)
    plane = x_flat[items.start]                                      # (C, L)
    out = np.empty((kh, kw, groups, c // groups, o // groups), dtype=x_flat.dtype)
    for i in range(kh):
        for j in range(kw):
            start = (rows.start + i * dh) * wp + j * dw
            shifted = plane[:, start : start + m].reshape(groups, c // groups, m)
            # (G, Cg, R·Wp) · (G, R·Wp, Og): "NN" for BLAS (95 GFLOP/s against 74 as
            # dL/dYᵀ · shiftedᵀ, one core, c's shapes)
            np.matmul(shifted, grad_y_groups, out=out[i, j])
    return out.transpose(2, 4, 3, 0, 1)      # (KH, KW, G, Cg, Og) -> (G, Og, Cg, KH, KW)


def grad_input_col2im(grad_output: Any, x_shape: Any, w: Any, *, stride: Any = 1,
                      padding: Any = 0, dilation: Any = 1, groups: int = 1,
                      memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Array:
    """dL/dx by route 1: col2im(dL/dY · W). grad_output (N, O, OH, OW) -> (N, C, H, W)."""
    grad_output, w, shape, geometry = _prepare_grad_input(grad_output, x_shape, w, stride,
                                                          padding, dilation, groups)
    return _grad_input(grad_output, shape, w, geometry, groups, check_budget(memory_budget),
                       "zeros", "col2im")


def grad_input_flipped(grad_output: Any, x_shape: Any, w: Any, *, stride: Any = 1,
                       padding: Any = 0, dilation: Any = 1, groups: int = 1,
                       memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Array:
    """dL/dx by route 2: dL/dy ⋆ flip_kernel(w), a full correlation, cropped to x's shape.

    grad_output (N, O, OH, OW) -> (N, C, H, W). At stride > 1, dL/dy is first dilated by the
    stride (stride - 1 zeros between its pixels): the flipped-kernel rule alone holds only at
    stride 1.
    """
    grad_output, w, shape, geometry = _prepare_grad_input(grad_output, x_shape, w, stride,
                                                          padding, dilation, groups)
    return _grad_input(grad_output, shape, w, geometry, groups, check_budget(memory_budget),
                       "zeros", "flipped")


def unpadded(geometry: Geometry) -> Geometry:
    """The same geometry on the already padded input: (Hp, Wp), no padding left to do."""
    return resolve(geometry.padded_size, geometry.kernel_size, stride=geometry.stride,
                   padding=0, dilation=geometry.dilation)


def flipped(w: Array) -> Array:
    """The kernel rotated 180° (both spatial axes reversed), for a true convolution."""
    return np.ascontiguousarray(w[..., ::-1, ::-1])


def flip_kernel(w: Any, groups: int = 1) -> Array:
    """The kernel of the backward convolution: (O, C/g, KH, KW) -> (C, O/g, KH, KW).

    Both spatial axes reversed ([[a, b], [c, d]] -> [[d, c], [b, a]]) and, within each group,
    input and output channels swapped.
    """
    w = np.asarray(w)
    o, cg, kh, kw = w.shape
    # (O, Cg, KH, KW) -> (G, Og, Cg, KH, KW) -> (G, Cg, Og, KH, KW) -> (C, Og, KH, KW)
    swapped = w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(swapped.reshape(groups * cg, o // groups, kh, kw)[..., ::-1, ::-1])


def dilate(grad_output: Array, stride: tuple[int, int]) -> Array:
    """Insert stride - 1 zeros between pixels: (N, O, OH, OW) -> (N, O, (OH-1)·sh+1, (OW-1)·sw+1)."""
    sh, sw = stride
    if (sh, sw) == (1, 1):
        return grad_output
    n, o, oh, ow = grad_output.shape
    dilated = np.zeros((n, o, (oh - 1) * sh + 1, (ow - 1) * sw + 1), dtype=grad_output.dtype)
    dilated[:, :, ::sh, ::sw] = grad_output
    return dilated


def _grad_input_col2im(grad_output: Array, x_shape: tuple[int, int, int, int], w: Array,
                       geometry: Geometry, groups: int, memory_budget: int) -> Array:
    """dL/dX = col2im(dL/dX_col), dL/dX_col = dL/dY · W, built and scattered chunk by chunk."""
    n, c, height, width = x_shape
    top, _, left, _ = geometry.pad
    grad_padded = np.zeros((n, c) + geometry.padded_size, dtype=grad_output.dtype)
    task = partial(_grad_input_col2im_chunk, grad_output=grad_output, w=w, geometry=geometry,
                   groups=groups, grad_padded=grad_padded)
    (oh, ow), o = geometry.output_size, w.shape[0]
    run(task, n, oh, (c * w[0, 0].size + o) * ow, memory_budget, grad_output.dtype,
        workers=route(geometry, c, o).workers, rows_overlap=True)
    return grad_padded[:, :, top : top + height, left : left + width].copy()


def _grad_input_col2im_chunk(chunk: Chunk, scratch: Array, *, grad_output: Array, w: Array,
                             geometry: Geometry, groups: int, grad_padded: Array) -> None:
    items, rows = chunk
    k_group = w[0].size                                             # Kg = C/g·KH·KW
    m = (items.stop - items.start) * (rows.stop - rows.start) * geometry.output_size[1]
    grad_cols_t = scratch[: groups * k_group * m].reshape(groups, k_group, m)
    grad_y = rows_t(grad_output, chunk, groups, scratch[grad_cols_t.size :])  # (G, Og, Mc)
    # dL/dX_col = dL/dY · W, transposed, per group: (G, Kg, Og) · (G, Og, Mc) -> (G, Kg, Mc)
    _matmul(per_group_weights(w, groups).swapaxes(-1, -2), grad_y, out=grad_cols_t)
    # chunks run in turn: neighbouring row chunks add onto the input rows they share
    col2im_t_add(grad_cols_t.reshape(groups * k_group, m), grad_padded, geometry, chunk)


def _grad_input_flat(grad_output: Array, x_shape: tuple[int, int, int, int], w: Array,
                     geometry: Geometry, groups: int, memory_budget: int) -> Array:
    """dL/dX = col2im(dL/dY · W) in the flat layout (stride 1), whole items per worker."""
    if not np.isfinite(w).all():
        # W's NaN or inf times the zeros of dL/dY's extra columns would be NaN, added onto
        # cells no window gives that weight: the strided col2im has no extra columns
        return _grad_input_col2im(grad_output, x_shape, w, geometry, groups, memory_budget)
    n, c, height, width = x_shape
    top, _, left, _ = geometry.pad
    (hp, wp), o, (oh, _) = geometry.padded_size, w.shape[0], geometry.output_size
    grad_flat = np.zeros((n, c, hp * wp + flat.tail_size(geometry)), dtype=grad_output.dtype)
    task = partial(_grad_input_flat_chunk, grad_output=grad_output, w=w, geometry=geometry,
                   groups=groups, grad_flat=grad_flat)
    run(task, n, oh, (c * w[0, 0].size + o) * wp, memory_budget, grad_output.dtype,
        workers=route(geometry, c, o).workers, rows_overlap=True)
    return flat.unflatten(grad_flat, geometry)[:, :, top : top + height, left : left + width].copy()


def _grad_input_flat_chunk(chunk: Chunk, scratch: Array, *, grad_output: Array, w: Array,
                           geometry: Geometry, groups: int, grad_flat: Array) -> None:
    grad_y = flat.rows_t(grad_output, chunk, geometry, scratch)    # (O, Mc), zero extra columns
    m, k_group = grad_y.shape[1], w[0].size
    grad_cols_t = scratch[grad_y.size : grad_y.size + groups * k_group * m].reshape(
        groups, k_group, m)
    # dL/dX_colᵀ = Wᵀ · dL/dYᵀ per group: (G, Kg, Og) · (G, Og, Mc) -> (G, Kg, Mc)
    _matmul(per_group_weights(w, groups).swapaxes(-1, -2), grad_y.reshape(groups, -1, m),
            out=grad_cols_t)
    flat.col2im_t_add(grad_cols_t.reshape(groups * k_group, m), grad_flat, geometry, chunk)


def _grad_input_flipped(grad_output: Array, x_shape: tuple[int, int, int, int], w: Array,
                        geometry: Geometry, groups: int, memory_budget: int) -> Array:
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


def _prepare_grad_input(grad_output: Any, x_shape: Any, w: Any, stride: Any, padding: Any,
                        dilation: Any, groups: int
                        ) -> tuple[Array, Array, tuple[int, int, int, int], Geometry]:
    grad_output, w = as_float(grad_output, w)
    assert grad_output is not None and w is not None
    shape = check_x_shape(x_shape)
    x_like = np.broadcast_to(np.zeros((), w.dtype), shape)         # shapes only, no memory
    geometry = check_conv(x_like, w, None, stride=stride, padding=padding, dilation=dilation,
                          groups=groups)
    check_grad_output(grad_output, shape, w.shape, geometry)
    return np.ascontiguousarray(grad_output), w, shape, geometry


def _matmul(a: Array, b: Array, out: Array | None = None) -> Array:
    """a @ b for stacks of matrices; an inner dimension of 1 is an outer product, done by
    broadcasting (OpenBLAS was measured ~12× slower on such GEMMs)."""
    if a.shape[-1] == 1:
        return np.multiply(a, b, out=out)
    return np.matmul(a, b, out=out)
