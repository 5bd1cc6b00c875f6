"""Stride, dilation and padding -> the explicit pad split and the output size, in one place.

Every other module asks this one where the window goes; nothing else does padding arithmetic.
Conventions are PyTorch's: dilation 1 means no dilation, and a dilated kernel of size K
spans ``dilation * (K - 1) + 1`` pixels (Dumoulin & Visin, "A guide to convolution arithmetic").
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, TypeGuard

from .errors import InputError

Pair = tuple[int, int]
Pad = tuple[int, int, int, int]
PADDING_FORMS = ("an int, an (h, w) pair, a (top, bottom, left, right) 4-tuple or one of "
                 "'valid', 'same', 'full'")


def is_int(value: object) -> TypeGuard[int]:
    """An integer that is not a bool (True is not a stride)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def pair(value: Any, name: str, *, minimum: int = 1) -> Pair:
    """An int or an (h, w) pair of ints, each >= minimum -> (h, w)."""
    items: Any = (value, value) if is_int(value) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if items is None or len(items) != 2 or not all(is_int(v) for v in items):
        raise InputError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}")
    if any(v < minimum for v in items):
        raise InputError(f"{name} must be >= {minimum} on both axes, got {value!r}")
    return int(items[0]), int(items[1])


@dataclass(frozen=True)
class Geometry:
    """Where a (KH, KW) kernel goes over an (H, W) input, and the (OH, OW) it gives.

    ``pad`` is (top, bottom, left, right). The window of output pixel (i, j) covers padded rows
    ``i * stride_h + kh * dilation_h`` for kh in range(KH), and likewise for columns.
    """

    input_size: Pair
    kernel_size: Pair
    stride: Pair
    dilation: Pair
    pad: Pad
    output_size: Pair

    @property
    def padded_size(self) -> Pair:
        top, bottom, left, right = self.pad
        return self.input_size[0] + top + bottom, self.input_size[1] + left + right

    @property
    def dilated_kernel_size(self) -> Pair:
        """The span of the dilated kernel, dilation·(K − 1) + 1 on each axis."""
        (dh, dw), (kh, kw) = self.dilation, self.kernel_size
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    @property
    def used_size(self) -> Pair:
        """Padded rows and columns that some window touches; the rest (bottom/right) are unused."""
        (oh, ow), (sh, sw), (span_h, span_w) = (self.output_size, self.stride,
                                                self.dilated_kernel_size)
        return (oh - 1) * sh + span_h, (ow - 1) * sw + span_w

    def options(self) -> dict[str, Any]:
        """stride, padding (the explicit 4-tuple) and dilation, as conv2d's keywords."""
        return {"stride": self.stride, "padding": self.pad, "dilation": self.dilation}


def resolve(input_size: Any, kernel_size: Any, *, stride: Any = 1, padding: Any = 0,
            dilation: Any = 1) -> Geometry:
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
    strides = pair(stride, "stride")
    dilations = pair(dilation, "dilation")
    spans = (dilations[0] * (kh - 1) + 1, dilations[1] * (kw - 1) + 1)
    pad = _explicit_pad(padding, (height, width), strides, spans)
    padded = (height + pad[0] + pad[1], width + pad[2] + pad[3])
    if spans[0] > padded[0] or spans[1] > padded[1]:
        raise InputError(
            f"kernel {spans[0]}×{spans[1]} (dilated) is larger than the padded input "
            f"{padded[0]}×{padded[1]}: use a smaller kernel or dilation, or more padding"
        )
    output = ((padded[0] - spans[0]) // strides[0] + 1, (padded[1] - spans[1]) // strides[1] + 1)
    return Geometry((height, width), (kh, kw), strides, dilations, pad, output)


def _explicit_pad(padding: Any, size: Pair, stride: Pair, spans: Pair) -> Pad:
    """Any padding form -> (top, bottom, left, right)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "full":
            return (spans[0] - 1, spans[0] - 1, spans[1] - 1, spans[1] - 1)
        if mode == "same":
            totals = [max(0, (math.ceil(n / s) - 1) * s + span - n)
                      for n, s, span in zip(size, stride, spans)]
            return (totals[0] // 2, totals[0] - totals[0] // 2,
                    totals[1] // 2, totals[1] - totals[1] // 2)
        raise InputError(f"padding must be {PADDING_FORMS}; got {padding!r}")
    try:
        items = (padding, padding) if is_int(padding) else tuple(padding)
    except TypeError:
        items = ()
    if len(items) not in (2, 4) or not all(is_int(v) for v in items):
        raise InputError(f"padding must be {PADDING_FORMS}; got {padding!r}")
    if any(v < 0 for v in items):
        raise InputError(f"padding must be >= 0, got {padding!r}")
    values = tuple(int(v) for v in items)
    if len(values) == 2:
        return (values[0], values[0], values[1], values[1])
    return (values[0], values[1], values[2], values[3])
