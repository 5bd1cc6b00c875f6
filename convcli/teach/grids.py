"""The grids the steps show: one per channel of an array, one per kernel of a weight."""

from __future__ import annotations

import numpy as np

from .model import MAX_CHANNEL_GRIDS, Grid
from .text import fmt


def inside_row(x_padded, pad_mask, geometry) -> int:
    """The first output whose window has no padding (the article's y = x1·w1 + ...), else 0."""
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    kh, kw = geometry.kernel_size
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * sh, i * sh + (kh - 1) * dh + 1, dh)
            cols = slice(j * sw, j * sw + (kw - 1) * dw + 1, dw)
            if not pad_mask[rows, cols].any():
                return i * ow + j
    return 0


def article_row(x_padded, pad_mask, geometry, anchor=None) -> int:
    """The output of step 3's "one output first" (an index into X_col's rows): the anchor (the
    output at p, on a large image) when its window has no padding, else inside_row's."""
    (_oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    kh, kw = geometry.kernel_size
    if anchor is not None:
        i, j = anchor
        rows = slice(i * sh, i * sh + (kh - 1) * dh + 1, dh)
        cols = slice(j * sw, j * sw + (kw - 1) * dw + 1, dw)
        if not pad_mask[rows, cols].any():
            return i * ow + j
    return inside_row(x_padded, pad_mask, geometry)


def channel_grids(title, arrays, *, dim=None, mark=None, focus=None, prefix="c", only=None,
                   symbol="·", note=None):
    """One Grid per channel of arrays (Ch, R, K), at most MAX_CHANNEL_GRIDS of them."""
    count = len(arrays)
    chosen = list(range(count)) if only is None else list(only)
    grids = []
    for ch in chosen[:MAX_CHANNEL_GRIDS]:
        name = title if count == 1 else f"{title} [{prefix}={ch}]"
        grid = Grid(name, arrays[ch], dim=dim, focus=focus, symbol=symbol,
                    mark=None if mark is None else (mark[ch] if mark.ndim == 3 else mark))
        if note is not None:
            grid.dim_note = note
        grids.append(grid)
    if len(chosen) > MAX_CHANNEL_GRIDS:
        grids[-1].title += f" (+{len(chosen) - MAX_CHANNEL_GRIDS} more)"
    return grids


def kernel_grids(title, w, names, flipped=False, named=True):
    """One Grid per (out, in) channel pair of w (A, B, KH, KW), labelled with the tap names."""
    a_count, b_count, kh, kw = w.shape
    grids = []
    for index in range(min(a_count * b_count, MAX_CHANNEL_GRIDS)):
        o, c = divmod(index, b_count)
        order = [names[(kh - 1 - r) * kw + (kw - 1 - q)] if flipped else names[r * kw + q]
                 for r in range(kh) for q in range(kw)]
        name = title if a_count * b_count == 1 else f"{title}[{o},{c}]"
        if named and kh * kw <= 26:
            labels = np.array([f"{n}={fmt(v)}" for n, v in zip(order, w[o, c].ravel())],
                              dtype=object).reshape(kh, kw)
            grids.append(Grid(name, labels))
        else:
            grids.append(Grid(name, w[o, c]))
    if a_count * b_count > MAX_CHANNEL_GRIDS:
        grids[-1].title += f" (+{a_count * b_count - MAX_CHANNEL_GRIDS} more)"
    return grids


