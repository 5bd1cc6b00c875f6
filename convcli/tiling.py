"""Tiles: which output rows (and columns) each chunk of the input owns, and which input rows it
must read for them (its halo), so that a convolution can run chunk by chunk, on one machine or
many, and give exactly conv2d's answer. Pure NumPy: the Dask layer (issue 17) maps this plan.

Along one axis with input length L, pad `before`, stride s, dilation d and kernel K (span
S = d·(K − 1) + 1), output row i reads input rows i·s − before … i·s − before + S − 1. Row i
belongs to the chunk holding its window's centre, c_i = i·s − before + (S − 1)//2, so chunk
[a, b) owns the rows i with a ≤ c_i < b:

    ceil((a − off) / s) ≤ i < ceil((b − off) / s),   off = (S − 1)//2 − before,

the first chunk also owning the rows centred in the top padding and the last those centred in
the bottom padding. A chunk's rows need not be a multiple of the stride.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .conv import conv2d
from .errors import InputError
from .geometry import Geometry
from .validate import as_float, check_conv

Array = NDArray[Any]


@dataclass(frozen=True)
class Span:
    """One chunk's share along one axis: the output rows [out_start, out_stop) it owns, the
    input rows [in_start, in_stop) they read, and the zero rows before and after those that
    lie in the padding."""

    out_start: int
    out_stop: int
    in_start: int
    in_stop: int
    pad_before: int
    pad_after: int


def axis_spans(length: int, chunks: list[int], before: int, stride: int, span: int,
               outputs: int) -> list[Span]:
    """The Span of each chunk (sizes `chunks`, summing to length) along one axis; a chunk that
    owns no output row is left out."""
    if sum(chunks) != length or min(chunks) < 1:
        raise InputError(f"chunks {chunks} must be positive and add up to the axis length "
                         f"{length}")
    offset = (span - 1) // 2 - before
    edges = np.cumsum([0] + list(chunks))
    spans = []
    for k, (a, b) in enumerate(itertools.pairwise(edges.tolist())):
        first = 0 if k == 0 else min(outputs, max(0, -((offset - a) // stride)))
        last = outputs if k == len(chunks) - 1 else min(outputs, max(0, -((offset - b) // stride)))
        if first >= last:
            continue
        start, stop = first * stride - before, (last - 1) * stride - before + span
        spans.append(Span(first, last, max(0, start), min(length, stop), max(0, -start),
                          max(0, stop - length)))
    return spans


def plan(geometry: Geometry, chunks: tuple[list[int], list[int]]
         ) -> list[tuple[Span, Span]]:
    """Every tile of a chunking (row chunk sizes, column chunk sizes) as (row Span, column
    Span)."""
    per_axis: list[list[Span]] = []
    for axis in range(2):
        before = geometry.pad[2 * axis]
        per_axis.append(axis_spans(geometry.input_size[axis], chunks[axis], before,
                                   geometry.stride[axis], geometry.dilated_kernel_size[axis],
                                   geometry.output_size[axis]))
    return [(rows, cols) for rows in per_axis[0] for cols in per_axis[1]]


def conv2d_tiled(x: Any, w: Any, b: Any = None, *, chunks: tuple[list[int], list[int]],
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Array:
    """conv2d computed tile by tile (the reference for any distributed run of the same plan):
    each tile is conv2d of its input rows and columns with only its own share of the padding.
    x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) -> y (N, O, OH, OW), equal to conv2d's."""
    x, w, b = as_float(x, w, b)
    assert x is not None and w is not None
    geometry = check_conv(x, w, b, stride=stride, padding=padding, dilation=dilation,
                          groups=groups)
    y = np.empty((x.shape[0], w.shape[0]) + geometry.output_size, dtype=x.dtype)
    for rows, cols in plan(geometry, chunks):
        out = y[:, :, rows.out_start: rows.out_stop, cols.out_start: cols.out_stop]
        if rows.in_start >= rows.in_stop or cols.in_start >= cols.in_stop:
            out[...] = 0.0 if b is None else b.reshape(1, -1, 1, 1)   # windows of padding only
            continue
        tile = x[:, :, rows.in_start: rows.in_stop, cols.in_start: cols.in_stop]
        out[...] = conv2d(
            tile, w, b, stride=geometry.stride, dilation=geometry.dilation, groups=groups,
            padding=(rows.pad_before, rows.pad_after, cols.pad_before, cols.pad_after))
    return y
