"""The flat-shift im2col for stride 1: every row of X_colᵀ is one contiguous run of memory.

Pad each (item, channel) plane once into a flat buffer whose rows are Wp = W + left + right wide,
with a tail of (KW - 1)·dw zeros. Computed over Wp columns per output row instead of OW (the
Wp - OW extra columns, whose windows wrap onto the next row, are dropped at the end), output
pixel (i, j) of a chunk of rows reads tap (kh, kw) at flat index

    (i + kh·dh)·Wp + j + kw·dw,

so tap (kh, kw) of a chunk of R rows starting at row r0 is the run of R·Wp numbers from
(r0 + kh·dh)·Wp + kw·dw: X_colᵀ's (c, kh, kw) row is a plain slice of plane c, and a chunk's
X_colᵀ is KH copies of (C, KW) runs. The products are those of conv.py, on Wp/OW more columns.

The extra columns of dL/dY are zeros, so in the backward products they add nothing, unless the
input cells they meet are NaN or inf (0 × inf is NaN). conv.py therefore checks the gradients
it builds this way and recomputes a non-finite one by a route that never meets those cells.

It needs stride 1 (a window's rows are then Wp apart in every chunk); chunking.route says
when conv.py takes it. The chunks run on chunking.run_shared's workers, each with
single-threaded BLAS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from . import borders
from .chunking import Chunk
from .geometry import Geometry

Array = NDArray[Any]


def padded_flat(x: Array, geometry: Geometry, padding_mode: str = "zeros") -> Array:
    """(N, C, H, W) -> (N, C, Hp·Wp + (KW - 1)·dw): each plane padded, flattened, zero tail."""
    n, c = x.shape[:2]
    (hp, wp), tail = geometry.padded_size, tail_size(geometry)
    top, bottom, left, right = geometry.pad
    flat = np.zeros((n, c, hp * wp + tail), dtype=x.dtype)
    planes = flat[:, :, : hp * wp].reshape(n, c, hp, wp)
    if padding_mode == "zeros":
        planes[:, :, top : hp - bottom, left : wp - right] = x
    else:
        planes[...] = borders.pad(x, geometry.pad, padding_mode)
    return flat


def tail_size(geometry: Geometry) -> int:
    """Zeros after the last padded row: the last output row's extra columns read that far."""
    return (geometry.kernel_size[1] - 1) * geometry.dilation[1]


def columns_t(flat: Array, geometry: Geometry, chunk: Chunk, scratch: Array,
              zero_extra: bool = False) -> Array:
    """A chunk's X_colᵀ, Wp columns per output row: (N, C, L) -> (C·KH·KW, n·R·Wp), in scratch.

    Column (n, i, j) for j < OW is output pixel (i, j)'s window; j >= OW are the extra columns,
    which hold the next row's first pixels (zero_extra: zeros, so that a NaN or inf there
    cannot reach a product with the zeros of dL/dY's extra columns: 0 × inf is NaN).
    """
    items, rows = chunk
    n, r, c = items.stop - items.start, rows.stop - rows.start, flat.shape[1]
    (kh, kw), (dh, dw), wp = geometry.kernel_size, geometry.dilation, geometry.padded_size[1]
    run = r * wp
    runs = sliding_window_view(flat[items], run, axis=2)       # (n, C, L - run + 1, run)
    cols = scratch[: c * kh * kw * n * run].reshape(c, kh, kw, n, run)
    for i in range(kh):
        start = (rows.start + i * dh) * wp
        # taps (i, 0..KW-1): runs starting at start + kw·dw -> (n, C, KW, run) -> (C, KW, n, run)
        np.copyto(cols[:, i], runs[:, :, start : start + (kw - 1) * dw + 1 : dw].transpose(1, 2, 0, 3))
    if zero_extra:
        cols.reshape(c, kh, kw, n, r, wp)[..., geometry.output_size[1] :] = 0
    return cols.reshape(c * kh * kw, n * run)


def rows_t(array: Array, chunk: Chunk, geometry: Geometry, scratch: Array) -> Array:
    """A chunk of (N, O, OH, OW) as (O, n·R·Wp), zeros in the extra columns, in scratch."""
    items, rows = chunk
    part = array[items, :, rows]                                # (n, O, R, OW)
    n, o, r, ow = part.shape
    wp = geometry.padded_size[1]
    wide = scratch[: o * n * r * wp].reshape(o, n, r, wp)
    wide[..., ow:] = 0
    np.copyto(wide[..., :ow], part.transpose(1, 0, 2, 3))
    return wide.reshape(o, n * r * wp)


def pixel_rows(array: Array, chunk: Chunk, geometry: Geometry, scratch: Array) -> Array:
    """rows_t's transpose, copied as such: a chunk of (N, O, OH, OW) as (n·R·Wp, O), one row per
    output pixel, zeros in the extra columns' rows, in scratch (dL/dY as the shifted dL/dW
    products read it fastest)."""
    items, rows = chunk
    part = array[items, :, rows]                                # (n, O, R, OW)
    n, o, r, ow = part.shape
    wp = geometry.padded_size[1]
    tall = scratch[: n * r * wp * o].reshape(n, r, wp, o)
    tall[:, :, ow:] = 0
    np.copyto(tall[:, :, :ow], part.transpose(0, 2, 3, 1))
    return tall.reshape(n * r * wp, o)


def store_rows_t(values_t: Array, array: Array, chunk: Chunk, bias: Array | None) -> None:
    """(O, n·R·Wp) back into the chunk (n, O, R, OW) of array, the extra columns dropped, + bias
    (added to values_t in place)."""
    items, rows = chunk
    part = array[items, :, rows]
    n, o, r, ow = part.shape
    rows_wide = values_t.reshape(o, -1)                        # a view: values_t is contiguous
    if bias is not None:        # on the long rows of values_t: 1.2× faster than adding in the copy
        rows_wide += bias.reshape(o, 1)
    np.copyto(part, rows_wide.reshape(o, n, r, -1)[..., :ow].transpose(1, 0, 2, 3))


def col2im_t_add(grad_cols_t: Array, grad_flat: Array, geometry: Geometry, chunk: Chunk) -> None:
    """The adjoint of columns_t: add (C·KH·KW, n·R·Wp) onto grad_flat (N, C, L), tap by tap.

    Chunks of one item that share input rows both add there: the caller must not run two such
    chunks at once. The extra columns must hold zeros (they add onto the next row's cells).
    """
    items, rows = chunk
    n, r, c = items.stop - items.start, rows.stop - rows.start, grad_flat.shape[1]
    (kh, kw), (dh, dw), wp = geometry.kernel_size, geometry.dilation, geometry.padded_size[1]
    run = r * wp
    slabs = grad_cols_t.reshape(c, kh, kw, n, run)
    for i in range(kh):
        for j in range(kw):
            start = (rows.start + i * dh) * wp + j * dw
            grad_flat[items, :, start : start + run] += slabs[:, i, j].transpose(1, 0, 2)


def unflatten(grad_flat: Array, geometry: Geometry) -> Array:
    """(N, C, Hp·Wp + tail) -> (N, C, Hp, Wp), a view (the tail dropped)."""
    hp, wp = geometry.padded_size
    return grad_flat[:, :, : hp * wp].reshape(grad_flat.shape[:2] + (hp, wp))
