"""The built-in suite: named configurations that cover every case a conv2d backward must get
right, each small enough to check every coordinate; ``select`` picks some by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class Case:
    """One configuration of the built-in suite.

    name: a short identifier (``--case NAME``, the file name in ``--write-cases``);
    description: what it covers; x_shape (N, C, H, W); w_shape (O, C/groups, KH, KW);
    options: stride, padding, dilation, groups as conv2d takes them (and padding_mode, flip;
    or output_padding for conv_transpose2d); bias: whether b is used; kind: "conv2d" or
    "conv_transpose2d" (then w_shape is (C_in, C_out/groups, KH, KW)).
    """

    name: str
    description: str
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    options: dict[str, Any] = field(default_factory=dict)
    bias: bool = True
    kind: str = "conv2d"


SUITE = [
    Case("article", "the article's 2x2 kernel, pad (1,0,1,0)", (1, 1, 4, 4), (1, 1, 2, 2),
         {"padding": (1, 0, 1, 0)}),
    Case("odd-3x3", "odd 3x3, pad 1, N=2, C≠O", (2, 3, 6, 7), (4, 3, 3, 3), {"padding": 1}),
    Case("even-4x4-same", "even 4x4, same, no bias", (1, 2, 7, 6), (3, 2, 4, 4),
         {"padding": "same"}, bias=False),
    Case("even-2x2-same-stride2", "even 2x2, same, stride 2", (2, 2, 7, 8), (3, 2, 2, 2),
         {"padding": "same", "stride": 2}),
    Case("non-square-kernel", "non-square 2x5 kernel, pad (1,2)", (1, 2, 6, 9), (3, 2, 2, 5),
         {"padding": (1, 2)}),
    Case("1x1", "1x1 kernel", (2, 4, 5, 3), (6, 4, 1, 1), {}),
    Case("kernel-is-padded-input", "kernel as large as the padded input", (1, 2, 4, 5),
         (3, 2, 6, 7), {"padding": 1}),
    Case("stride2-not-dividing", "stride 2 not dividing the size, no bias", (2, 2, 9, 8),
         (3, 2, 3, 3), {"stride": 2}, bias=False),
    Case("stride3x2-pad2", "stride (3,2), pad 2", (1, 3, 11, 10), (2, 3, 3, 2),
         {"stride": (3, 2), "padding": 2}),
    Case("dilation1x2", "dilation (1,2), pad (1,2)", (1, 2, 7, 9), (2, 2, 3, 3),
         {"dilation": (1, 2), "padding": (1, 2)}),
    Case("dilation2x1-stride2", "dilation (2,1), stride 2", (2, 1, 9, 8), (2, 1, 2, 3),
         {"dilation": (2, 1), "stride": 2}),
    Case("same-stride3-dilation2", "same, stride 3, dilation 2", (1, 2, 10, 9), (2, 2, 3, 2),
         {"padding": "same", "stride": 3, "dilation": 2}),
    Case("pad-2-0-1-3", "pad (2,0,1,3): each side its own", (1, 2, 5, 6), (2, 2, 3, 3),
         {"padding": (2, 0, 1, 3)}),
    Case("full-dilation2-stride2", "full, dilation 2, stride 2", (1, 1, 6, 5), (2, 1, 2, 3),
         {"padding": "full", "dilation": 2, "stride": 2}),
    Case("valid", "valid, no bias", (2, 3, 6, 6), (2, 3, 3, 3), {"padding": "valid"},
         bias=False),
    Case("groups2", "groups 2", (2, 4, 6, 5), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    Case("depthwise-same", "depthwise (groups = C = 3), same", (1, 3, 6, 6), (3, 1, 3, 3),
         {"groups": 3, "padding": "same"}),
    Case("depthwise-x2-stride2", "depthwise, 2 outputs per channel, stride 2", (2, 2, 7, 7),
         (4, 1, 3, 2), {"groups": 2, "stride": 2}),
]


EXTRA = [
    Case("reflect-stride2", "border mode reflect, odd 3x3, stride 2", (1, 2, 7, 8), (3, 2, 3, 3),
         {"padding": (2, 1, 1, 2), "stride": 2, "padding_mode": "reflect"}),
    Case("symmetric-even", "border mode symmetric, even 2x4, same", (2, 1, 5, 6), (2, 1, 2, 4),
         {"padding": "same", "padding_mode": "symmetric"}),
    Case("replicate-dilation", "border mode replicate, dilation 2, pads wider than the image",
         (1, 2, 3, 4), (2, 2, 2, 2), {"padding": 5, "dilation": 2, "padding_mode": "replicate"}),
    Case("circular-groups", "border mode circular, groups 2", (1, 4, 5, 5), (4, 2, 3, 3),
         {"padding": 2, "groups": 2, "padding_mode": "circular"}, bias=False),
    Case("flip", "true convolution (flip), non-square kernel", (1, 2, 6, 5), (2, 2, 3, 2),
         {"padding": "same", "flip": True}),
    Case("transpose-stride2", "conv_transpose2d, stride 2, output padding 1", (2, 3, 4, 5),
         (3, 2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1},
         kind="conv_transpose2d"),
    Case("transpose-groups", "conv_transpose2d, groups 2, dilation 2, stride (1,3)",
         (1, 4, 4, 3), (4, 3, 2, 3), {"stride": (1, 3), "dilation": 2, "groups": 2,
                                      "padding": (0, 1, 2, 0)}, kind="conv_transpose2d",
         bias=False),
]
"""Cases beyond conv2d with zero padding: border modes, flip and conv_transpose2d. A user's
backward gets them only when --case names them (its keywords grow: padding_mode, flip,
output_padding); convcli's own backward runs them always."""

EVERY = SUITE + EXTRA


def select(names: list[str] | tuple[str, ...] | None, *, extra: bool = True) -> list[Case]:
    """The cases named in ``names`` (in the suite's order), or for None SUITE, and EXTRA too
    when ``extra``."""
    if not names:
        return list(EVERY if extra else SUITE)
    known = {case.name for case in EVERY}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"unknown case {', '.join(map(repr, unknown))}: "
                         "`convcli gradcheck --list-cases` lists them")
    return [case for case in EVERY if case.name in names]
