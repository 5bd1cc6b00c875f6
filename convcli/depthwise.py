"""The forward pass and dL/dW with one input and one output channel per group, grey images
(C = O = 1) and depthwise layers (groups = C = O), read straight off the padded image instead of
X_col.

With one input channel, X_col has only KH·KW columns and Y = X_col · W is a matrix-vector
product: copying X_col (KH·KW times the image) costs several times the product. The same sum,
split by kernel column j, needs no copy at all:

    y[o, r, :] = Σ_j  W[o, 0, :, j] · S_j[r]        (KH) · (KH, OW) -> (OW)
    S_j[r]     = x_padded[r·sh + i·dh, j·dw : j·dw + OW]  for i < KH

S_j[r] is the (KH, OW) strip of rows under kernel column j, a strided view of the padded
image. For a chunk of output rows (and items) at once, W[:, :, :, j] · S_j is one batched
product that BLAS runs as KH-long dot products, and y is the sum of KW such products. It needs
unit steps along a row, so it serves only horizontal stride 1 (``suits`` says when conv2d uses
it; it computes any number of outputs per group).

Chunks of about 2 MiB keep each strip near the caches. Each chunk copies its own padded rows
into a scratch buffer, so no padded copy of the whole input is made. The chunks run on a thread
pool (NumPy's products and sums release the GIL): one thread per CPU this process may use, or
as many as OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from . import borders, chunking
from .chunking import ONE_CHANNEL_CHUNK_BYTES, THREADS_FROM, chunks_with_halo, scratch
from .geometry import Geometry

Array = NDArray[Any]
Strip = Callable[[int], Array]
Task = Callable[[int, slice, slice, Strip, Array], Any]


def suits(w_shape: tuple[int, ...], groups: int, geometry: Geometry) -> bool:
    """Whether conv2d should use this module: one input and one output channel per group, a
    horizontal stride of 1 and output rows of at least 64 pixels. With more outputs per group
    X_col's product has work enough for BLAS (at 16 outputs, X_col was 3× faster); on shorter
    rows each BLAS call is too small (depthwise 56×56 float32 was 2× slower here, 64×64
    0.94×)."""
    o, c_group = w_shape[:2]
    one_channel = c_group == 1 and o == groups
    return one_channel and geometry.stride[1] == 1 and geometry.output_size[1] >= 64


def conv2d_one_channel(x: Array, w: Array, b: Array | None, geometry: Geometry, groups: int,
                       memory_budget: int, padding_mode: str = "zeros") -> Array:
    """y = x ⋆ w + b for w with one input channel per group; geometry.stride[1] must be 1.

    x (N, C, H, W) with C = groups, w (O, 1, KH, KW), b (O,) or None -> y (N, O, OH, OW).
    Scratch per thread: one chunk's padded input rows and its (n, rows, O/g, OW) partial sum.
    """
    o, _, kh, kw = w.shape
    og = o // groups
    y = np.empty((x.shape[0], o) + geometry.output_size, dtype=x.dtype)
    # W[:, 0, :, j] per group: (G, Og, KH) for each kernel column j
    w_columns = [np.ascontiguousarray(w[:, 0, :, j]).reshape(groups, og, kh) for j in range(kw)]
    bias = None if b is None else b.reshape(groups, og, 1)
    product = np.multiply if kh == 1 else np.matmul     # a KH of 1 is a broadcast product

    def forward(g: int, items: slice, rows: slice, strip: Strip, part: Array) -> None:
        out = y[items, g * og : (g + 1) * og, rows].transpose(0, 2, 1, 3)   # (n, rows, Og, OW)
        part = part[: out.size].reshape(out.shape)
        for j in range(kw):
            # (Og, KH) · S_j (n, rows, KH, OW) -> (n, rows, Og, OW)
            product(w_columns[j][g], strip(j), out=out if j == 0 else part)
            if j:
                out += part
        if bias is not None:
            out += bias[g]

    _in_chunks(forward, x, geometry, groups, og, og, memory_budget, o * kh * kw, padding_mode)
    return y


def grad_weight_one_channel(grad_output: Array, x: Array, geometry: Geometry, groups: int,
                            memory_budget: int, padding_mode: str = "zeros") -> Array:
    """dL/dW for w with one input channel per group; geometry.stride[1] must be 1.

    grad_output (N, O, OH, OW), x (N, C, H, W) with C = groups -> dL/dw (O, 1, KH, KW):

        dL/dW[o, 0, :, j] = Σ_{n, r}  S_j[n, r] · dL/dy[n, o, r, :]      (KH, OW) · (OW) -> (KH)

    the "xᵀ product" of the article, with X_col's rows read off the same strips as forward.
    """
    o = grad_output.shape[1]
    og = o // groups
    kh, kw = geometry.kernel_size

    def weights(g: int, items: slice, rows: slice, strip: Strip,
                part: Array) -> tuple[int, Array]:
        # dL/dy per row, as (n, rows, OW, Og)
        grad_y = grad_output[items, g * og : (g + 1) * og, rows].transpose(0, 2, 3, 1)
        # S_j (n, rows, KH, OW) · (n, rows, OW, Og) -> (n, rows, KH, Og), summed over n and rows
        return g, np.stack([np.matmul(strip(j), grad_y).sum(axis=(0, 1)).T for j in range(kw)],
                           axis=-1)                                   # (Og, KH, KW)

    grad_w = np.zeros((groups, og, kh, kw), dtype=grad_output.dtype)
    for g, part in _in_chunks(weights, x, geometry, groups, og, 0, memory_budget, o * kh * kw,
                              padding_mode):
        grad_w[g] += part
    return grad_w.reshape(o, 1, kh, kw)


def _in_chunks(task: Task, x: Array, geometry: Geometry, groups: int, og: int, part_og: int,
               memory_budget: int, work: int, padding_mode: str = "zeros") -> list[Any]:
    """Run task(g, items, rows, strip, part) over chunks of every group's output and return what
    the calls return, as a list. strip(j) is S_j for the chunk, (n, rows, KH, OW); part is flat
    scratch for (n, rows, part_og, OW).

    Each worker builds a chunk's padded rows in its own scratch, within memory_budget (at least
    one output row and the kernel's extra rows), its border filled by padding_mode. work:
    multiply-adds per output pixel, to decide on threads.
    """
    n = x.shape[0]
    (oh, ow), (kh, _) = geometry.output_size, geometry.kernel_size
    (sh, _), (dh, dw) = geometry.stride, geometry.dilation
    top, left = geometry.pad[0], geometry.pad[2]
    padded_w = geometry.padded_size[1]                 # = OW + (KW - 1)·dw, at stride 1
    workers = chunking.threads()
    row_bytes = (sh * padded_w + part_og * ow) * x.itemsize   # per output row of one item
    # r output rows read r·sh + halo padded rows (the halo: rows below the last one's first)
    halo = (kh - 1) * dh + 1 - sh
    halo_bytes = max(0, halo) * padded_w * x.itemsize
    plan = chunks_with_halo(n, oh, row_bytes, halo_bytes,
                            min(ONE_CHANNEL_CHUNK_BYTES, memory_budget // workers))
    tasks = [(g, chunk) for g in range(groups) for chunk in plan]
    if len(tasks) < 2 * workers or n * oh * ow * work < THREADS_FROM:
        workers = 1
    most_items = max(items.stop - items.start for items, _ in plan)
    most_rows = max(rows.stop - rows.start for _, rows in plan)

    def work_on(share: list[tuple[int, tuple[slice, slice]]]) -> list[Any]:
        rows_in = most_rows * sh + halo
        sizes = (most_items * rows_in * padded_w, most_items * most_rows * part_og * ow)
        buffer = scratch(sum(sizes), x.dtype)
        padded_rows = buffer[: sizes[0]].reshape(most_items, rows_in, padded_w)
        part = buffer[sizes[0] :]
        results = []
        for g, (items, rows) in share:
            ni, r = items.stop - items.start, rows.stop - rows.start
            padded = padded_rows[:ni, : r * sh + halo]
            if padding_mode == "zeros":
                _pad_rows(x[items, g], padded, rows.start * sh - top, left)
            else:
                _pad_rows_bordered(x[items, g], padded, rows.start * sh, geometry.pad,
                                   padding_mode)
            strip = partial(_strip, padded, r, kh, ow, sh, dh, dw)
            results.append(task(g, items, rows, strip, part))
        return results

    if workers == 1:
        return work_on(tasks)
    shares = chunking.pool(workers).map(work_on, [tasks[k::workers] for k in range(workers)])
    return [result for share in shares for result in share]


def _strip(padded: Array, rows: int, kh: int, ow: int, sh: int, dh: int, dw: int,
           j: int) -> Array:
    """S_j for a chunk: (n, rows, KH, OW), a view of its padded rows (n, rows_in, padded width):
    element [n, r, i, c] is padded[n, r·sh + i·dh, j·dw + c]."""
    span = (kh - 1) * dh + 1
    # (n, rows_in - span + 1, OW, span) -> (n, rows, OW, KH) -> (n, rows, KH, OW)
    spans = sliding_window_view(padded[:, :, j * dw : j * dw + ow], span, axis=1)
    return spans[:, : (rows - 1) * sh + 1 : sh, :, ::dh].transpose(0, 1, 3, 2)


def _pad_rows(plane: Array, padded: Array, row0: int, left: int) -> None:
    """Copy plane (n, H, W) into padded (n, rows, width) as rows row0.. of the zero-padded plane
    (row0 < 0 inside the top padding), after `left` zero columns; zeros elsewhere."""
    lo, hi = max(0, row0), min(plane.shape[1], row0 + padded.shape[1])  # plane rows in the chunk
    if hi <= lo:
        padded[...] = 0
        return
    padded[:, : lo - row0] = 0
    padded[:, hi - row0 :] = 0
    body = padded[:, lo - row0 : hi - row0]
    body[:, :, :left] = 0
    body[:, :, left + plane.shape[2] :] = 0
    body[:, :, left : left + plane.shape[2]] = plane[:, lo:hi]


def _pad_rows_bordered(plane: Array, padded: Array, first: int, pad: tuple[int, int, int, int],
                       mode: str) -> None:
    """Padded rows first.. of plane (n, H, W) padded by a border mode (borders.py) into padded
    (n, rows, width): the plane's rows copied as a block, the few border rows gathered from the
    rows they copy, then the side columns from the middle ones."""
    top, bottom, left, right = pad
    height, width = plane.shape[1:]
    count = padded.shape[1]
    lo, hi = max(first, top), min(first + count, top + height)     # padded rows inside x
    if lo < hi:
        padded[:, lo - first: hi - first, left: left + width] = plane[:, lo - top: hi - top]
    outside = [k for k in range(count) if not lo <= first + k < hi]
    if outside:
        rows = borders.source_index(height, top, bottom, mode)
        padded[:, outside, left: left + width] = plane[:, rows[[first + k for k in outside]]]
    cols = borders.source_index(width, left, right, mode) + left
    side = np.r_[0:left, left + width: len(cols)]
    if side.size:
        padded[:, :count, side] = padded[:, :count, cols[side]]
