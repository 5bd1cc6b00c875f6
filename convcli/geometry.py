"""Stride, dilation and padding -> the explicit pad split and the output size, in one place.

Every other module asks this one where the window goes; nothing else does padding arithmetic.
Conventions are PyTorch's: dilation 1 means no dilation, and a dilated kernel of size K
spans ``dilation * (K - 1) + 1`` pixels (Dumoulin & Visin, "A guide to convolution arithmetic").
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass


def pair(value, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= minimum -> (h, w)."""
    items = (value, value) if _is_int(value) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if items is None or len(items) != 2 or not all(_is_int(v) for v in items):
        raise TypeError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{name} must be >= {minimum} on both axes, got {value!r}")
    return int(items[0]), int(items[1])


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Geometry:
    """Where a (KH, KW) kernel goes over an (H, W) input, and the (OH, OW) it gives.

    ``pad`` is (top, bottom, left, right). The window of output pixel (i, j) covers padded rows
    ``i * stride_h + kh * dilation_h`` for kh in range(KH), and likewise for columns.
    """

    input_size: tuple[int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int, int, int]
    output_size: tuple[int, int]

    @property
    def padded_size(self) -> tuple[int, int]:
        top, bottom, left, right = self.pad
        return self.input_size[0] + top + bottom, self.input_size[1] + left + right

    @property
    def dilated_kernel_size(self) -> tuple[int, int]:
        return tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size))

    @property
    def used_size(self) -> tuple[int, int]:
        """Padded rows and columns that some window touches; the rest (bottom/right) are unused."""
        return tuple(
            (o - 1) * s + dk
            for o, s, dk in zip(self.output_size, self.stride, self.dilated_kernel_size)
        )


def resolve(input_size, kernel_size, *, stride=1, padding=0, dilation=1) -> Geometry:
    """Turn any padding form into the explicit (top, bottom, left, right) split and output size.

    padding: an int; an (h, w) pair; a (top, bottom, left, right) 4-tuple; "valid" (no pad);
    "same" (output = ceil(input / stride), total pad max(0, (out-1)*stride + dilation*(K-1) + 1
    - in), the smaller half on top/left as in PyTorch and TensorFlow); "full" (dilation*(K-1) on
    every side).

    >>> resolve((4, 4), (2, 2), padding=(1, 0, 1, 0)).output_size
    (4, 4)
    >>> resolve((5, 6), (2, 2), padding="same").pad
    (0, 1, 0, 1)
    """
    height, width = pair(input_size, "input size")
    kh, kw = pair(kernel_size, "kernel_size")
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    spans = tuple(d * (k - 1) + 1 for d, k in zip(dilation, (kh, kw)))

    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            pad = (0, 0, 0, 0)
        elif mode == "full":
            pad = (spans[0] - 1, spans[0] - 1, spans[1] - 1, spans[1] - 1)
        elif mode == "same":
            pad = ()
            for size, s, span in zip((height, width), stride, spans):
                out = math.ceil(size / s)
                total = max(0, (out - 1) * s + span - size)
                pad += (total // 2, total - total // 2)
        else:
            raise ValueError(
                f"padding must be an int, a pair, a 4-tuple or one of 'valid', 'same', 'full'; "
                f"got {padding!r}"
            )
    else:
        try:
            items = (padding, padding) if _is_int(padding) else tuple(padding)
        except TypeError:
            items = ()
        if len(items) not in (2, 4) or not all(_is_int(v) for v in items):
            raise TypeError(
                "padding must be an int, an (h, w) pair, a (top, bottom, left, right) 4-tuple "
                f"or one of 'valid', 'same', 'full'; got {padding!r}"
            )
        if any(v < 0 for v in items):
            raise ValueError(f"padding must be >= 0, got {padding!r}")
        items = tuple(int(v) for v in items)
        pad = (items[0], items[0], items[1], items[1]) if len(items) == 2 else items

    padded = (height + pad[0] + pad[1], width + pad[2] + pad[3])
    if spans[0] > padded[0] or spans[1] > padded[1]:
        raise ValueError(
            f"kernel {spans[0]}×{spans[1]} (dilated) is larger than the padded input "
            f"{padded[0]}×{padded[1]}: use a smaller kernel or dilation, or more padding"
        )
    output = tuple((p - span) // s + 1 for p, span, s in zip(padded, spans, stride))
    return Geometry((height, width), (kh, kw), stride, dilation, pad, output)


def chunks(batch: int, output_rows: int, row_bytes: int, budget: int):
    """Split an output of `batch` items of `output_rows` rows into pieces of similar size whose
    scratch memory, `row_bytes` per output row, stays within `budget` bytes.

    -> [(items, rows)], two slices each: whole items together while one item fits the budget,
    else runs of rows of one item, at least one row even when one row is over the budget.

    >>> chunks(4, 10, row_bytes=100, budget=2000)
    [(slice(0, 2, None), slice(0, 10, None)), (slice(2, 4, None), slice(0, 10, None))]
    >>> [(rows.start, rows.stop) for _, rows in chunks(1, 10, row_bytes=100, budget=450)]
    [(0, 3), (3, 6), (6, 10)]
    """
    rows_fit = max(1, budget // max(1, row_bytes))
    if rows_fit >= output_rows:
        per_chunk = rows_fit // output_rows
        return [(items, slice(0, output_rows)) for items in _even_slices(batch, per_chunk)]
    return [
        (slice(n, n + 1), rows)
        for n in range(batch)
        for rows in _even_slices(output_rows, rows_fit)
    ]


def _even_slices(length: int, most: int) -> list[slice]:
    """[0, length) cut into the fewest runs of at most `most`, their sizes differing by <= 1."""
    count = math.ceil(length / most)
    bounds = [length * k // count for k in range(count + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]
