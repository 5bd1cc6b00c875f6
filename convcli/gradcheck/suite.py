"""The built-in suite: named configurations that cover every case a conv2d backward must get
right, each small enough to check every coordinate."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    """One named configuration of the built-in suite: shapes, geometry and whether b is used."""

    name: str
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    w_shape: tuple[int, int, int, int]  # (O, C/groups, KH, KW)
    options: dict = field(default_factory=dict)  # stride, padding, dilation, groups
    bias: bool = True


SUITE = [
    Case("article 2x2, pad (1,0,1,0)", (1, 1, 4, 4), (1, 1, 2, 2), {"padding": (1, 0, 1, 0)}),
    Case("odd 3x3, pad 1, N=2, C≠O", (2, 3, 6, 7), (4, 3, 3, 3), {"padding": 1}),
    Case("even 4x4, same", (1, 2, 7, 6), (3, 2, 4, 4), {"padding": "same"}, bias=False),
    Case("even 2x2, same, stride 2", (2, 2, 7, 8), (3, 2, 2, 2), {"padding": "same", "stride": 2}),
    Case("non-square 2x5, pad (1,2)", (1, 2, 6, 9), (3, 2, 2, 5), {"padding": (1, 2)}),
    Case("1x1 kernel", (2, 4, 5, 3), (6, 4, 1, 1), {}),
    Case("kernel = padded input", (1, 2, 4, 5), (3, 2, 6, 7), {"padding": 1}),
    Case("stride 2, not dividing", (2, 2, 9, 8), (3, 2, 3, 3), {"stride": 2}, bias=False),
    Case("stride (3,2), pad 2", (1, 3, 11, 10), (2, 3, 3, 2), {"stride": (3, 2), "padding": 2}),
    Case("dilation (1,2)", (1, 2, 7, 9), (2, 2, 3, 3), {"dilation": (1, 2), "padding": (1, 2)}),
    Case("dilation (2,1), stride 2", (2, 1, 9, 8), (2, 1, 2, 3), {"dilation": (2, 1), "stride": 2}),
    Case("same, stride 3, dilation 2", (1, 2, 10, 9), (2, 2, 3, 2),
         {"padding": "same", "stride": 3, "dilation": 2}),
    Case("pad (2,0,1,3)", (1, 2, 5, 6), (2, 2, 3, 3), {"padding": (2, 0, 1, 3)}),
    Case("full, dilation 2, stride 2", (1, 1, 6, 5), (2, 1, 2, 3),
         {"padding": "full", "dilation": 2, "stride": 2}),
    Case("valid", (2, 3, 6, 6), (2, 3, 3, 3), {"padding": "valid"}, bias=False),
    Case("groups 2", (2, 4, 6, 5), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    Case("depthwise, same", (1, 3, 6, 6), (3, 1, 3, 3), {"groups": 3, "padding": "same"}),
    Case("depthwise x2, stride 2", (2, 2, 7, 7), (4, 1, 3, 2), {"groups": 2, "stride": 2}),
]

