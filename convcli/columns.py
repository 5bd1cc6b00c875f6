"""im2col and col2im: every sliding window as one row of a matrix, and the exact adjoint.

With the column matrix X_col, the convolution is one matrix product (the article's
Y = X_col · W), and col2im carries a gradient on X_col back onto the input, summing where
windows overlap.

The core (conv.py) never builds the whole X_col: it copies X_colᵀ one chunk of output rows at
a time (``columns_t``) into a scratch buffer, in the layout (C·KH·KW, rows·OW). That layout copies
whole runs of OW pixels at once and makes the product of one item land in y's (N, O, OH, OW)
layout directly. ``col2im_t_add`` is its adjoint, chunk by chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from . import borders
from .chunking import Chunk
from .errors import InputError
from .geometry import Geometry, resolve
from .validate import check_4d, check_x_shape

Array = NDArray[Any]


def pad_input(x: Array, geometry: Geometry, padding_mode: str = "zeros") -> Array:
    """(N, C, H, W) -> (N, C, H + top + bottom, W + left + right), zeros in the border (or what
    the border mode copies there, borders.py)."""
    top, bottom, left, right = geometry.pad
    if not any(geometry.pad):
        return x
    if padding_mode != "zeros":
        return borders.pad(x, geometry.pad, padding_mode)
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def windows_t(x_padded: Array, geometry: Geometry) -> Array:
    """Every window, kernel taps first: (N, C, Hp, Wp) -> (N, C, KH, KW, OH, OW), a read-only view.

    Element [n, c, kh, kw, i, j] is x_padded[n, c, i*stride_h + kh*dilation_h,
    j*stride_w + kw*dilation_w]: for each tap (kh, kw), a strided slice of the image.
    """
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    # (N, C, Hp - span_h + 1, Wp - span_w + 1, span_h, span_w) -> (N, C, OH, OW, KH, KW)
    spans = sliding_window_view(x_padded, geometry.dilated_kernel_size, axis=(2, 3))
    return spans[..., ::sh, ::sw, ::dh, ::dw].transpose(0, 1, 4, 5, 2, 3)


def windows(x_padded: Array, geometry: Geometry) -> Array:
    """Every window as a row of X_col: (N, C, Hp, Wp) -> (N, OH, OW, C, KH, KW), a view.

    Element [n, i, j, c, kh, kw] is row (n, i, j) of X_col, with its columns in (c, kh, kw)
    order.
    """
    # (N, C, KH, KW, OH, OW) -> (N, OH, OW, C, KH, KW)
    return windows_t(x_padded, geometry).transpose(0, 4, 5, 1, 2, 3)


def columns_t(x_padded: Array, geometry: Geometry, chunk: Chunk, scratch: Array) -> Array:
    """X_colᵀ for one chunk of the output, copied into scratch.

    chunk = (items, rows), two slices of the output's N and OH axes; scratch: a flat buffer with
    room for it. (N, C, Hp, Wp) -> (C·KH·KW, n_items·rows·OW): column (n, i, j) is the window of
    output pixel (i, j) of item n, as row (n, i, j) of im2col's X_col.
    """
    items, rows = chunk
    view = windows_t(x_padded, geometry)[items, :, :, :, rows]  # (n, C, KH, KW, rows, OW)
    n, c, kh, kw, r, ow = view.shape
    cols = scratch[: view.size].reshape(c, kh, kw, n, r, ow)
    np.copyto(cols, view.transpose(1, 2, 3, 0, 4, 5))
    return cols.reshape(c * kh * kw, n * r * ow)


def col2im_t_add(grad_cols_t: Array, grad_padded: Array, geometry: Geometry,
                 chunk: Chunk) -> None:
    """The adjoint of columns_t: add (C·KH·KW, n_items·rows·OW) onto grad_padded (N, C, Hp, Wp).

    One strided slice per kernel tap, as in col2im; chunks of one item that share input rows both
    add there, so the caller must not run two such chunks at once.
    """
    items, rows = chunk
    n, c, r = items.stop - items.start, grad_padded.shape[1], rows.stop - rows.start
    (kh, kw), ow = geometry.kernel_size, geometry.output_size[1]
    (stride_h, stride_w), (dil_h, dil_w) = geometry.stride, geometry.dilation
    # (C·KH·KW, n·rows·OW) -> (C, KH, KW, n, rows, OW)
    slabs = grad_cols_t.reshape(c, kh, kw, n, r, ow)
    for i in range(kh):
        first = rows.start * stride_h + i * dil_h
        in_rows = slice(first, first + (r - 1) * stride_h + 1, stride_h)
        for j in range(kw):
            in_cols = slice(j * dil_w, j * dil_w + (ow - 1) * stride_w + 1, stride_w)
            # (C, n, rows, OW) -> (n, C, rows, OW)
            grad_padded[items, :, in_rows, in_cols] += slabs[:, i, j].transpose(1, 0, 2, 3)


def rows_t(array: Array, chunk: Chunk, groups: int, spare: Array,
           copy: bool = True) -> Array:
    """A chunk of a (N, O, OH, OW) array as (G, O/G, n·rows·OW), the layout of Yᵀ: a view of
    array for a chunk of one item; else a copy in spare (or, copy=False, room for one)."""
    items, rows = chunk
    part = array[items, :, rows]                                    # (n, O, rows, OW)
    n, o, r, ow = part.shape
    if n == 1:
        view = part.view()
        view.shape = (groups, o // groups, r * ow)                  # raises rather than copy
        return view
    copied = spare[: part.size].reshape(o, n, r, ow)
    if copy:
        np.copyto(copied, part.transpose(1, 0, 2, 3))
    return copied.reshape(groups, o // groups, n * r * ow)


def store_rows_t(values_t: Array, array: Array, chunk: Chunk) -> None:
    """Put (G, O/G, n·rows·OW) back as the chunk (n, O, rows, OW) of array, unless it is a view."""
    items, rows = chunk
    part = array[items, :, rows]
    n, o, r, ow = part.shape
    if n > 1:
        part[...] = values_t.reshape(o, n, r, ow).transpose(1, 0, 2, 3)


def split_groups(cols_t: Array, groups: int) -> Array:
    """(G·k, Mc) -> (G, k, Mc): each group's rows of X_colᵀ."""
    width, m = cols_t.shape
    return cols_t.reshape(groups, width // groups, m)


def per_group_columns(values: Array, groups: int) -> Array:
    """(M, O) -> (G, M, O/G), a view: each group's columns (dL/dY one row per pixel)."""
    m, o = values.shape
    return values.reshape(m, groups, o // groups).swapaxes(0, 1)


def per_group_weights(w: Array, groups: int) -> Array:
    """(O, C/g, KH, KW) -> (G, O/g, C/g·KH·KW): each group's weight matrix Wᵀ."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def im2col(x: Any, kernel_size: Any, *, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1) -> Array:
    """The column matrix: (N, C, H, W) -> (N·OH·OW, C·KH·KW).

    One row per output pixel (in (n, i, j) order), one column per kernel tap (in (c, kh, kw)
    order), so for groups = 1, ``y = (im2col(x, ...) @ w.reshape(O, -1).T)`` reshaped to
    (N, OH, OW, O) and moved to (N, O, OH, OW).

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, 2)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    x = np.asarray(x)
    check_4d(x, "x")
    geometry = resolve(x.shape[2:], kernel_size, stride=stride, padding=padding, dilation=dilation)
    n, c = x.shape[:2]
    (oh, ow), (kh, kw) = geometry.output_size, geometry.kernel_size
    return windows(pad_input(x, geometry), geometry).reshape(n * oh * ow, c * kh * kw)


def col2im(cols: Any, x_shape: Any, kernel_size: Any, *, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1) -> Array:
    """The adjoint of im2col: (N·OH·OW, C·KH·KW) -> (N, C, H, W), overlapping windows summed.

    For any x and C, <im2col(x), C> = <x, col2im(C)>. It loops only over the KH·KW kernel
    offsets, each adding one strided slice.
    """
    cols = np.asarray(cols)
    n, c, height, width = check_x_shape(x_shape)
    geometry = resolve((height, width), kernel_size, stride=stride, padding=padding,
                       dilation=dilation)
    (oh, ow), (kh, kw) = geometry.output_size, geometry.kernel_size
    expected = (n * oh * ow, c * kh * kw)
    if cols.shape != expected:
        raise InputError(f"cols must have shape (N·OH·OW, C·KH·KW) = {expected}, got {cols.shape}")
    top, _, left, _ = geometry.pad
    grad_padded = np.zeros((n, c) + geometry.padded_size, dtype=cols.dtype)
    # (N·OH·OW, C·KH·KW) -> (C·KH·KW, N·OH·OW), the layout col2im_t_add adds from
    col2im_t_add(cols.T, grad_padded, geometry, (slice(0, n), slice(0, oh)))
    return np.ascontiguousarray(grad_padded[:, :, top : top + height, left : left + width])
