"""Convolution configurations the core tests run on: together they cover every case the core
issue names. Each is (name, x shape (N, C, H, W), w shape (O, C/groups, KH, KW), options)."""

import numpy as np

CONFIGS = [
    ("article 2x2 pad top-left", (1, 1, 4, 4), (1, 1, 2, 2), {"padding": (1, 0, 1, 0)}),
    ("odd 3x3 pad 1", (2, 3, 6, 7), (4, 3, 3, 3), {"padding": 1}),
    ("even 4x4 same", (1, 2, 7, 6), (3, 2, 4, 4), {"padding": "same"}),
    ("even 2x2 same stride 2", (2, 2, 7, 8), (3, 2, 2, 2), {"padding": "same", "stride": 2}),
    ("same stride 3 dilated", (1, 2, 10, 9), (2, 2, 3, 2), {"padding": "same", "stride": 3, "dilation": 2}),
    ("non-square 2x5 kernel", (1, 2, 6, 9), (3, 2, 2, 5), {"padding": (1, 2)}),
    ("1x1 kernel", (2, 4, 5, 3), (6, 4, 1, 1), {}),
    ("1x1 single channel", (1, 1, 5, 6), (1, 1, 1, 1), {"stride": 2}),
    ("kernel as large as padded input", (1, 2, 4, 5), (3, 2, 6, 7), {"padding": 1}),
    ("stride 2 not dividing", (2, 2, 9, 8), (3, 2, 3, 3), {"stride": 2}),
    ("stride 3 not dividing, (2, 3)", (1, 3, 11, 10), (2, 3, 3, 2), {"stride": (2, 3), "padding": 2}),
    ("dilation (1, 2)", (1, 2, 7, 9), (2, 2, 3, 3), {"dilation": (1, 2), "padding": (1, 2)}),
    ("dilation (2, 1) stride 2", (2, 1, 9, 8), (2, 1, 2, 3), {"dilation": (2, 1), "stride": 2}),
    ("asymmetric 4-tuple", (1, 2, 5, 6), (2, 2, 3, 3), {"padding": (2, 0, 1, 3)}),
    ("full padding", (1, 2, 4, 5), (3, 2, 3, 2), {"padding": "full"}),
    ("full dilated stride 2", (1, 1, 6, 5), (2, 1, 2, 3), {"padding": "full", "dilation": 2, "stride": 2}),
    ("valid", (2, 3, 6, 6), (2, 3, 3, 3), {"padding": "valid"}),
    ("padding larger than kernel", (1, 1, 3, 4), (2, 1, 2, 2), {"padding": (3, 1, 0, 4)}),
    ("groups 2", (2, 4, 6, 5), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ("depthwise", (1, 3, 6, 6), (3, 1, 3, 3), {"groups": 3, "padding": "same"}),
    ("depthwise multiplier 2 stride 2", (2, 2, 7, 7), (4, 1, 3, 2), {"groups": 2, "stride": 2}),
    ("O = 1 many channels", (1, 5, 6, 6), (1, 5, 3, 3), {"padding": 1}),
    ("C = 1 many outputs", (2, 1, 6, 6), (5, 1, 2, 2), {}),
    # Output rows of >= 64 pixels at horizontal stride 1 with one channel per group: the
    # depthwise.py route (conv2d and dL/dw), which the small cases above never reach.
    ("depthwise wide, depthwise.py route", (1, 2, 5, 70), (2, 1, 3, 3), {"groups": 2, "padding": "same"}),
    ("grey wide dilated", (2, 1, 4, 68), (1, 1, 2, 3), {"padding": (1, 0, 0, 1), "dilation": (1, 2)}),
]


def make(config, rng, dtype=np.float64, bias=True):
    _, x_shape, w_shape, options = config
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    groups = options.get("groups", 1)
    assert x_shape[1] == w_shape[1] * groups
    return x, w, b, options
