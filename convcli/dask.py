"""conv2d and its three gradients on Dask arrays: lazy, chunk by chunk, exact.

    y = conv2d(x, w, b)     one task per tile of tiling.plan: the input rows and columns the
                            tile's owned outputs read (its halo, gathered from the chunks that
                            hold it) -> the core's conv2d with the tile's share of the padding
    dx, dw, db = conv2d_backward(dy, x, w)
        dL/dx   per chunk of x: the rows and columns of dL/dy whose windows touch it -> the
                core's conv2d_input on that window range, cropped to the chunk
        dL/dw   Σ over tiles of X_col_tileᵀ · dY_tile (the core's conv2d_weight per tile), a
                tree sum
        dL/db   Σ dL/dy

Every task calls the in-memory core, so the results equal conv2d's up to the order of float
summation (dL/dw and dL/db add tile sums). The same graph runs on Dask's threads, its
processes or a `distributed` cluster. Other border modes than zeros pad x lazily first (each
border row and column gathered from the row or column it copies) and fold dL/dx back the same
way. Imported only when used: `import convcli` never loads Dask (pip install 'convcli[dask]').
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import dask
import dask.array as da
import numpy as np
from numpy.typing import NDArray

from . import borders
from . import conv as core
from .errors import InputError
from .geometry import Geometry
from .tiling import Span, axis_spans
from .validate import as_float, check_conv

Array = NDArray[Any]
Chunks = tuple[tuple[int, ...], ...]

__all__ = ["conv2d", "conv2d_backward", "conv2d_weight", "output_chunks", "pad"]


def conv2d(x: Any, w: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros", flip: bool = False,
           chunks: Any = None) -> da.Array:
    """y = x ⋆ w + b as a lazy Dask array, one task per tile.

    x (N, C, H, W), a Dask array (or a NumPy array, chunked by `chunks`); w (O, C/groups, KH,
    KW) and b (O,) NumPy arrays; the options as in convcli.conv2d -> y (N, O, OH, OW), chunked
    by output_chunks. chunks: rows or (rows, cols) per chunk of x, to rechunk it first.

    >>> import numpy as np
    >>> x = np.arange(36.0).reshape(1, 1, 6, 6)
    >>> y = conv2d(x, np.ones((1, 1, 3, 3)), padding="same", chunks=4)
    >>> y.chunks
    ((1,), (1,), (4, 2), (4, 2))
    >>> bool((y.compute() == core.conv2d(x, np.ones((1, 1, 3, 3)), padding="same")).all())
    True
    """
    x, w, b, geometry = _prepare(x, w, b, stride, padding, dilation, groups, chunks, flip)
    x, geometry = _padded(x, geometry, padding_mode)
    rows, cols = _spans(x.chunks, geometry)
    pieces = _blocks(x)
    w_task, b_task = dask.delayed(w, pure=True), dask.delayed(b, pure=True)
    out_channels = w.shape[0]
    batch = []
    for n, n_size in enumerate(x.chunks[0]):
        tiles = [[da.from_delayed(
            dask.delayed(_forward_tile, pure=True)(
                _gather(pieces[n], x.chunks, r, c), _cut(x.chunks, r, c), w_task, b_task,
                geometry, groups, (r.out_stop - r.out_start, c.out_stop - c.out_start)),
            shape=(n_size, out_channels, r.out_stop - r.out_start, c.out_stop - c.out_start),
            dtype=x.dtype, meta=np.empty((0, 0, 0, 0), x.dtype)) for c in cols] for r in rows]
        batch.append([tiles])
    return da.block(batch)


def conv2d_backward(grad_output: Any, x: Any, w: Any, *, stride: Any = 1, padding: Any = 0,
                    dilation: Any = 1, groups: int = 1, padding_mode: str = "zeros",
                    flip: bool = False, chunks: Any = None
                    ) -> tuple[da.Array, da.Array, da.Array]:
    """The three gradients of conv2d, lazy: grad_output dL/dy (N, O, OH, OW), x (N, C, H, W)
    and w (O, C/groups, KH, KW) -> (dL/dx chunked like x, dL/dw (O, C/groups, KH, KW),
    dL/db (O,)). x and grad_output may be Dask or NumPy arrays; the options as in conv2d."""
    x, w, _, geometry = _prepare(x, w, None, stride, padding, dilation, groups, chunks, flip)
    given_chunks = x.chunks
    grad_output = _as_dask(grad_output, x.dtype, None)
    expected = (x.shape[0], w.shape[0]) + geometry.output_size
    if grad_output.shape != expected:
        raise InputError(f"grad_output must have y's shape {expected}, got "
                         f"{grad_output.shape}")
    original = geometry
    x, geometry = _padded(x, geometry, padding_mode)
    rows, cols = _spans(x.chunks, geometry)
    dy = grad_output.rechunk((x.chunks[0], (w.shape[0],), tuple(r.out_stop - r.out_start
                              for r in rows), tuple(c.out_stop - c.out_start for c in cols)))
    grad_input = _grad_input(dy, x, w, geometry, groups)
    if padding_mode != "zeros":
        grad_input = _fold(grad_input, original, padding_mode, given_chunks)
    grad_weight = _grad_weight(dy, x, w, geometry, groups, rows, cols)
    if flip:
        grad_weight = grad_weight[..., ::-1, ::-1]
    grad_bias = dy.sum(axis=(0, 2, 3))
    return grad_input, grad_weight, grad_bias


def conv2d_weight(x: Any, weight_size: Any, grad_output: Any, *, stride: Any = 1,
                  padding: Any = 0, dilation: Any = 1, groups: int = 1,
                  padding_mode: str = "zeros", chunks: Any = None) -> da.Array:
    """dL/dw alone, lazy, with torch.nn.grad.conv2d_weight's arguments: x (N, C, H, W),
    weight_size (O, C/groups, KH, KW), grad_output (N, O, OH, OW) -> dL/dw, the tree sum of
    each tile's X_col_tileᵀ · dY_tile."""
    w_like = np.zeros(tuple(weight_size), dtype=getattr(x, "dtype", np.float64))
    x, w, _, geometry = _prepare(x, w_like, None, stride, padding, dilation, groups, chunks,
                                 False)
    grad_output = _as_dask(grad_output, x.dtype, None)
    expected = (x.shape[0], w.shape[0]) + geometry.output_size
    if grad_output.shape != expected:
        raise InputError(f"grad_output must have y's shape {expected}, got "
                         f"{grad_output.shape}")
    x, geometry = _padded(x, geometry, padding_mode)
    rows, cols = _spans(x.chunks, geometry)
    dy = grad_output.rechunk((x.chunks[0], (w.shape[0],), tuple(r.out_stop - r.out_start
                              for r in rows), tuple(c.out_stop - c.out_start for c in cols)))
    return _grad_weight(dy, x, w.astype(x.dtype), geometry, groups, rows, cols)


def pad(x: Any, padding: tuple[int, int, int, int], mode: str) -> da.Array:
    """x (N, C, H, W) padded lazily by (top, bottom, left, right) in a border mode of
    borders.py: each border row and column taken from the one it copies (zeros: zeros)."""
    x = x if isinstance(x, da.Array) else da.from_array(np.asarray(x))
    if mode == "zeros":
        top, bottom, left, right = padding
        return da.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    size = (x.shape[2], x.shape[3])
    borders.check_mode(mode, size, padding)
    top, bottom, left, right = (int(v) for v in padding)
    geometry = Geometry(size, (1, 1), (1, 1), (1, 1), (top, bottom, left, right), size)
    return _padded(x, geometry, mode)[0]


def output_chunks(x_chunks: Chunks, w_shape: tuple[int, ...], *, stride: Any = 1,
                  padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Chunks:
    """The chunks of y for x chunked as x_chunks ((N...), (C,), (rows...), (cols...)): each
    chunk of x owns the outputs whose window's centre it holds (tiling.py)."""
    shape = tuple(sum(c) for c in x_chunks)
    x_like = np.broadcast_to(np.zeros(()), shape)
    w_like = np.broadcast_to(np.zeros(()), tuple(w_shape))
    geometry = check_conv(x_like, w_like, None, stride=stride, padding=padding,
                          dilation=dilation, groups=groups, in_memory=False)
    rows, cols = _spans(x_chunks, geometry)
    return (tuple(x_chunks[0]), (int(w_shape[0]),), tuple(r.out_stop - r.out_start for r in rows),
            tuple(c.out_stop - c.out_start for c in cols))


def halo(geometry: Geometry) -> tuple[int, int]:
    """The rows and columns beyond its own that a tile reads: the dilated kernel's span − 1."""
    span_h, span_w = geometry.dilated_kernel_size
    return span_h - 1, span_w - 1


# ---- preparing the inputs --------------------------------------------------------------------

def _prepare(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int,
             chunks: Any, flip: bool) -> tuple[da.Array, Array, Array | None, Geometry]:
    """x as a float Dask array with whole channels, w and b as NumPy arrays of its dtype, the
    geometry checked (not against memory: no chunk holds the whole) and the chunks against the
    halo."""
    if isinstance(w, da.Array) or isinstance(b, da.Array):
        w, b = (None if a is None else np.asarray(a) for a in (w, b))
    dtype = as_float(np.empty(0, getattr(x, "dtype", np.float64)), w)[0]
    assert dtype is not None
    _, w, b = as_float(np.empty(0, dtype.dtype), w, b)
    assert w is not None
    x = _as_dask(x, dtype.dtype, chunks)
    geometry = check_conv(x, w, b, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, in_memory=False)
    _check_chunks(x.chunks, geometry)
    return x, core.flipped(w) if flip else w, b, geometry


def _as_dask(x: Any, dtype: np.dtype[Any], chunks: Any) -> da.Array:
    """A Dask array of dtype with the channel axis in one chunk, rechunked to chunks
    (rows or (rows, cols)) if given."""
    spatial: tuple[Any, Any] = (-1, -1)
    if chunks is not None:
        given = (chunks, chunks) if np.ndim(chunks) == 0 else tuple(chunks)
        if len(given) != 2 or not all(isinstance(c, (int, np.integer)) and c >= 1
                                      for c in given):
            raise InputError(f"chunks must be a positive int or (rows, cols), got {chunks!r}")
        spatial = (int(given[0]), int(given[1]))
    if not isinstance(x, da.Array):
        x = da.from_array(np.asarray(x), chunks=(-1, -1) + spatial)
    if x.ndim != 4:
        raise InputError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise InputError(f"arrays must hold real numbers, got dtype {x.dtype}")
    x = x.astype(dtype)
    new = {1: -1} | ({2: spatial[0], 3: spatial[1]} if chunks is not None else {})
    return x.rechunk(new)


def _check_chunks(chunks: Chunks, geometry: Geometry) -> None:
    """Every chunk but the last along an axis must hold at least the halo."""
    for axis, (name, need) in enumerate(zip(("rows", "columns"), halo(geometry), strict=True)):
        sizes = chunks[2 + axis][:-1]
        if sizes and min(sizes) < need:
            one = name[:-1]
            raise InputError(
                f"chunks of {min(sizes)} {one if min(sizes) == 1 else name} are smaller than "
                f"the kernel's halo of {need} {name} (a window {need + 1} {name} wide): use "
                f"chunks of at least {need} {name}, for example --chunks {max(need, 1024)}")


def _padded(x: da.Array, geometry: Geometry, mode: str) -> tuple[da.Array, Geometry]:
    """For a border mode other than zeros: x padded by the mode (lazily; each border row or
    column taken from the one it copies) and the geometry without padding."""
    borders.check_mode(mode, geometry.input_size, geometry.pad)
    if mode == "zeros":
        return x, geometry
    top, bottom, left, right = geometry.pad
    for axis, before, after in ((2, top, bottom), (3, left, right)):
        length = x.shape[axis]
        source = borders.source_index(length, before, after, mode)
        parts = [da.take(x, source[:before], axis=axis)] if before else []
        parts.append(x)
        if after:
            parts.append(da.take(x, source[before + length:], axis=axis))
        x = da.concatenate(parts, axis=axis)
    return x, core.unpadded(geometry)


def _fold(grad_padded: da.Array, geometry: Geometry, mode: str, chunks: Chunks) -> da.Array:
    """The adjoint of _padded: each border row and column's gradient added onto the row or
    column it copied -> dL/dx (N, C, H, W) chunked as `chunks`."""
    top, bottom, left, right = geometry.pad
    g = grad_padded
    for axis, before, after in ((2, top, bottom), (3, left, right)):
        length = geometry.input_size[axis - 2]
        source = borders.source_index(length, before, after, mode)
        onto: dict[int, list[int]] = defaultdict(list)
        for k in itertools.chain(range(before), range(before + length, len(source))):
            onto[int(source[k])].append(k)
        parts, start = [], 0
        for row in sorted(onto):
            parts.append(_take(g, axis, before + start, before + row))
            added = _take(g, axis, before + row, before + row + 1)
            for k in onto[row]:
                added = added + _take(g, axis, k, k + 1)
            parts.append(added)
            start = row + 1
        parts.append(_take(g, axis, before + start, before + length))
        g = da.concatenate([p for p in parts if p.shape[axis]], axis=axis)
    return g.rechunk(chunks)


def _take(x: da.Array, axis: int, start: int, stop: int) -> da.Array:
    index: list[slice] = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


# ---- the plan over chunks --------------------------------------------------------------------

def _spans(chunks: Chunks, geometry: Geometry) -> tuple[list[Span], list[Span]]:
    """The row Spans and column Spans of x's chunks (tiling.axis_spans)."""
    per_axis = []
    for axis in range(2):
        per_axis.append(axis_spans(geometry.input_size[axis], list(chunks[2 + axis]),
                                   geometry.pad[2 * axis], geometry.stride[axis],
                                   geometry.dilated_kernel_size[axis],
                                   geometry.output_size[axis]))
    return per_axis[0], per_axis[1]


def _blocks(x: da.Array) -> Any:
    """x's chunks as Delayed objects, indexed [n, row chunk, column chunk]."""
    return x.to_delayed()[:, 0]


def _edges(sizes: tuple[int, ...]) -> Array:
    return np.cumsum((0,) + tuple(sizes))


def _covering(sizes: tuple[int, ...], start: int, stop: int) -> range:
    """The chunks (of these sizes) that hold rows [start, stop); for no rows, the chunk at
    start (its empty slice keeps the batch and channel axes)."""
    edges = _edges(sizes)
    if start >= stop:
        start = min(start, int(edges[-1]) - 1)
        stop = start + 1
    first = int(np.searchsorted(edges, start, side="right")) - 1
    last = int(np.searchsorted(edges, stop, side="left"))
    return range(first, max(first + 1, last))


def _gather(blocks: Any, chunks: Chunks, rows: Span, cols: Span) -> list[list[Any]]:
    """The chunks that hold a span's input rows and columns, as nested lists for np.block."""
    return [[blocks[i, j] for j in _covering(chunks[3], cols.in_start, cols.in_stop)]
            for i in _covering(chunks[2], rows.in_start, rows.in_stop)]


def _cut(chunks: Chunks, rows: Span, cols: Span) -> tuple[int, int, int, int, tuple[int, ...]]:
    """Where a span's input starts and stops in its gathered block, and its padding."""
    row0 = int(_edges(chunks[2])[_covering(chunks[2], rows.in_start, rows.in_stop)[0]])
    col0 = int(_edges(chunks[3])[_covering(chunks[3], cols.in_start, cols.in_stop)[0]])
    return (rows.in_start - row0, rows.in_stop - row0, cols.in_start - col0,
            cols.in_stop - col0, (rows.pad_before, rows.pad_after, cols.pad_before,
                                  cols.pad_after))


def _tile_input(pieces: list[list[Array]], cut: tuple[int, int, int, int, tuple[int, ...]]
                ) -> Array:
    r0, r1, c0, c1, _ = cut
    return np.block(pieces)[..., r0:r1, c0:c1]


def _forward_tile(pieces: list[list[Array]], cut: tuple[int, int, int, int, tuple[int, ...]],
                  w: Array, b: Array | None, geometry: Geometry, groups: int,
                  size: tuple[int, int]) -> Array:
    """One tile of y (size rows and columns): the core's conv2d of its input block with its
    share of the padding."""
    tile = _tile_input(pieces, cut)
    if tile.shape[2] == 0 or tile.shape[3] == 0:           # windows wholly in the padding
        y = np.zeros((tile.shape[0], w.shape[0]) + size, dtype=tile.dtype)
        return y if b is None else y + b.reshape(1, -1, 1, 1)
    with np.errstate(all="ignore"):        # NaN or inf in the data: counted, not warned
        return core.conv2d(tile, w, b, stride=geometry.stride, padding=cut[4],
                           dilation=geometry.dilation, groups=groups)


def _grad_weight(dy: da.Array, x: da.Array, w: Array, geometry: Geometry, groups: int,
                 rows: list[Span], cols: list[Span]) -> da.Array:
    """dL/dw = Σ over tiles of X_col_tileᵀ · dY_tile, a tree sum of the tiles' parts."""
    pieces, dy_blocks = _blocks(x), _blocks(dy)
    parts = []
    for n in range(len(x.chunks[0])):
        for (i, r), (j, c) in itertools.product(enumerate(rows), enumerate(cols)):
            task = dask.delayed(_grad_weight_tile, pure=True)(
                _gather(pieces[n], x.chunks, r, c), _cut(x.chunks, r, c), dy_blocks[n, i, j],
                w.shape, geometry, groups)
            parts.append(da.from_delayed(task, shape=w.shape, dtype=x.dtype,
                                         meta=np.empty((0, 0, 0, 0), x.dtype)))
    return da.stack(parts).sum(axis=0)


def _grad_weight_tile(pieces: list[list[Array]],
                      cut: tuple[int, int, int, int, tuple[int, ...]], dy: Array,
                      w_shape: tuple[int, ...], geometry: Geometry, groups: int) -> Array:
    """One tile's part of dL/dw: the core's conv2d_weight of its input block and its dL/dy."""
    tile = _tile_input(pieces, cut)
    if tile.shape[2] == 0 or tile.shape[3] == 0:     # windows wholly in the padding: no part
        return np.zeros(w_shape, dtype=dy.dtype)
    with np.errstate(all="ignore"):
        return core.conv2d_weight(tile, w_shape, dy, stride=geometry.stride,
                                  padding=cut[4], dilation=geometry.dilation, groups=groups)


def _grad_input(dy: da.Array, x: da.Array, w: Array, geometry: Geometry, groups: int
                ) -> da.Array:
    """dL/dx chunked like x: each chunk from the rows and columns of dL/dy whose windows
    touch it."""
    dy_blocks = _blocks(dy)
    w_task = dask.delayed(w, pure=True)
    out_edges = (_edges(dy.chunks[2]), _edges(dy.chunks[3]))
    x_edges = (_edges(x.chunks[2]), _edges(x.chunks[3]))
    batch = []
    for n, n_size in enumerate(x.chunks[0]):
        grid = []
        for a, b_ in itertools.pairwise(x_edges[0].tolist()):
            line = []
            for c, d in itertools.pairwise(x_edges[1].tolist()):
                reach = (_reach(a, b_, geometry, 0), _reach(c, d, geometry, 1))
                shape = (n_size, x.shape[1], b_ - a, d - c)
                if reach[0][0] >= reach[0][1] or reach[1][0] >= reach[1][1]:
                    line.append(da.zeros(shape, dtype=x.dtype, chunks=shape))
                    continue
                rows_in = _covering(dy.chunks[2], *reach[0])
                cols_in = _covering(dy.chunks[3], *reach[1])
                pieces = [[dy_blocks[n, i, j] for j in cols_in] for i in rows_in]
                origin = (int(out_edges[0][rows_in[0]]), int(out_edges[1][cols_in[0]]))
                task = dask.delayed(_grad_input_tile, pure=True)(
                    pieces, origin, reach, (a, c), shape, w_task, geometry, groups)
                line.append(da.from_delayed(task, shape=shape, dtype=x.dtype,
                                            meta=np.empty((0, 0, 0, 0), x.dtype)))
            grid.append(line)
        batch.append([grid])
    return da.block(batch)


def _reach(start: int, stop: int, geometry: Geometry, axis: int) -> tuple[int, int]:
    """The outputs [first, last) whose windows touch input rows [start, stop) on one axis:
    window i covers rows i·s − before … i·s − before + span − 1."""
    s, before = geometry.stride[axis], geometry.pad[2 * axis]
    span, outputs = geometry.dilated_kernel_size[axis], geometry.output_size[axis]
    first = max(0, -(-(start + before - span + 1) // s))
    last = min(outputs, (stop - 1 + before) // s + 1)
    return first, max(first, last)


def _grad_input_tile(pieces: list[list[Array]], origin: tuple[int, int],
                     reach: tuple[tuple[int, int], tuple[int, int]], corner: tuple[int, int],
                     shape: tuple[int, int, int, int], w: Array, geometry: Geometry,
                     groups: int) -> Array:
    """One chunk of dL/dx: the core's conv2d_input over the windows `reach` (outputs
    [first, last) on each axis), whose rows start at first·s − before, cropped to the chunk
    whose top-left input pixel is `corner`."""
    (i0, i1), (j0, j1) = reach
    dy: Array = np.block(pieces)[..., i0 - origin[0]: i1 - origin[0], j0 - origin[1]: j1 - origin[1]]
    (sh, sw), (span_h, span_w) = geometry.stride, geometry.dilated_kernel_size
    local_shape = (shape[0], shape[1], (i1 - i0 - 1) * sh + span_h, (j1 - j0 - 1) * sw + span_w)
    with np.errstate(all="ignore"):
        local = core.conv2d_input(local_shape, w, dy, stride=geometry.stride,
                                  dilation=geometry.dilation, groups=groups)
    start = (i0 * sh - geometry.pad[0], j0 * sw - geometry.pad[2])   # local's first row, col
    out = np.zeros(shape, dtype=local.dtype)
    lo = [max(corner[k], start[k]) for k in range(2)]
    hi = [min(corner[k] + shape[2 + k], start[k] + local_shape[2 + k]) for k in range(2)]
    if lo[0] < hi[0] and lo[1] < hi[1]:
        out[..., lo[0] - corner[0]: hi[0] - corner[0], lo[1] - corner[1]: hi[1] - corner[1]] = \
            local[..., lo[0] - start[0]: hi[0] - start[0], lo[1] - start[1]: hi[1] - start[1]]
    return out
