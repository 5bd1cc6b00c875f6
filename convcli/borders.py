"""Border modes: what the padded cells hold, and the adjoint that folds their gradient back.

A padded axis of length L with `before` and `after` extra cells is x read at a source index per
padded position p ∈ [−before, L + after):

    replicate  clip(p, 0, L − 1)                      (scipy 'nearest', OpenCV REPLICATE)
    reflect    mirror without repeating the edge      (torch 'reflect', scipy 'mirror',
               period 2(L − 1)                         OpenCV REFLECT_101, NumPy 'reflect')
    symmetric  mirror repeating the edge, period 2L   (scipy 'reflect', OpenCV REFLECT,
                                                        NumPy 'symmetric')
    circular   p mod L                                (torch 'circular', scipy 'wrap')

so padding is a gather x[..., rows][..., cols], and its adjoint (the backward pass through the
padding) adds each padded cell's gradient onto the pixel it copied. Like torch, 'reflect'
needs pads smaller than the axis and 'circular' pads no larger than it; 'replicate' and
'symmetric' take any pad.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError

Array = NDArray[Any]
MODES = ("zeros", "reflect", "symmetric", "replicate", "circular")


def check_mode(mode: str, size: tuple[int, int], pad: tuple[int, int, int, int]) -> None:
    """Refuse an unknown mode, or pads the mode cannot fill (torch's rules)."""
    if mode not in MODES:
        raise InputError(f"padding_mode must be one of {', '.join(MODES)}, got {mode!r}")
    for axis, (length, before, after) in enumerate(((size[0], pad[0], pad[1]),
                                                    (size[1], pad[2], pad[3]))):
        name = ("height", "width")[axis]
        widest = max(before, after)
        if mode == "reflect" and widest >= length and widest > 0:
            raise InputError(f"border mode reflect needs padding smaller than the input's "
                             f"{name} ({length}), got {widest}: use less padding, or "
                             "symmetric or replicate")
        if mode == "circular" and widest > length:
            raise InputError(f"border mode circular needs padding no larger than the input's "
                             f"{name} ({length}), got {widest}: it would wrap around more than "
                             "once; use less padding")


def source_index(length: int, before: int, after: int, mode: str) -> Array:
    """The source index in [0, length) of each of the before + length + after padded cells."""
    p = np.arange(-before, length + after)
    if mode == "replicate" or length == 1:
        return np.clip(p, 0, length - 1)
    if mode == "circular":
        return np.mod(p, length)
    if mode == "reflect":
        period = 2 * (length - 1)
        q = np.mod(p, period)
        return np.where(q < length, q, period - q)
    if mode == "symmetric":
        q = np.mod(p, 2 * length)
        return np.where(q < length, q, 2 * length - 1 - q)
    raise InputError(f"padding_mode must be one of {', '.join(MODES)}, got {mode!r}")


def pad(x: Array, pad: tuple[int, int, int, int], mode: str) -> Array:
    """x (..., H, W) -> (..., H + top + bottom, W + left + right), the border filled by mode:
    x copied into the middle once, then the border rows and columns gathered from it."""
    top, bottom, left, right = pad
    height, width = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (height + top + bottom, width + left + right), x.dtype)
    out[..., top: top + height, left: left + width] = x
    cols = source_index(width, left, right, mode) + left       # in out's columns
    side = np.r_[0:left, left + width: len(cols)]
    if side.size:
        out[..., top: top + height, side] = out[..., top: top + height, cols[side]]
    rows = source_index(height, top, bottom, mode) + top        # whole padded rows now
    edge = np.r_[0:top, top + height: len(rows)]
    if edge.size:
        out[..., edge, :] = out[..., rows[edge], :]
    return out


def fold(grad_padded: Array, pad: tuple[int, int, int, int], mode: str,
         size: tuple[int, int]) -> Array:
    """The adjoint of pad: grad_padded (..., Hp, Wp) -> (..., H, W), each padded cell's
    gradient added onto the pixel it copied. The result is a view of grad_padded's middle,
    which is overwritten: pass an array you no longer need."""
    top, bottom, left, right = pad
    height, width = size
    rows = source_index(height, top, bottom, mode)
    cols = source_index(width, left, right, mode)
    side = np.r_[0:left, left + width: len(cols)]
    edge = np.r_[0:top, top + height: len(rows)]
    # The result is the middle of grad_padded itself (no copy of the image): the border cells
    # it adds lie outside the middle, so writing into it never changes a value still to read.
    # The caller's grad_padded is scratch: conv2d_backward made it for this.
    out = grad_padded[..., top: top + height, left: left + width]
    edge_rows = grad_padded[..., edge, left: left + width].copy() if edge.size else None
    if side.size:                                   # the side columns, all rows
        if edge_rows is not None:
            _add_at(edge_rows, cols[side], grad_padded[..., edge, :][..., side], axis=-1)
        _add_at(out, cols[side], grad_padded[..., top: top + height, side], axis=-1)
    if edge_rows is not None:                       # the top and bottom rows, folded
        _add_at(out, rows[edge], edge_rows, axis=-2)
    return out


def _add_at(out: Array, index: Array, values: Array, axis: int) -> None:
    """out[..., index[k], ...] += values[..., k, ...] along axis, repeated indices summed
    (np.add.at only when an index repeats: a pad wider than the image, or replicate)."""
    target, source = np.moveaxis(out, axis, 0), np.moveaxis(values, axis, 0)
    if len(np.unique(index)) == len(index):
        target[index] += source
    else:
        np.add.at(target, index, source)
