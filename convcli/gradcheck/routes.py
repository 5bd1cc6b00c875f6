"""convcli's own self-check: its two dL/dx routes (col2im, and the flipped-kernel convolution)
agree element by element, compared a band of input rows at a time so that memory stays
bounded on a large image."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from ..chunking import GRADCHECK_CHUNK_ELEMENTS
from ..conv import grad_input_col2im, grad_input_flipped
from .data import CaseData
from .verdicts import ROUTES, Result, combine, compare


def routes_agree(data: CaseData, atol: float, rtol: float) -> Result:
    """Compare grad_input_col2im with grad_input_flipped on every pixel of x (N, C, H, W)."""
    parts = []
    for rows, g_band, x_band_shape, pad, first in _bands(data):
        options = {"stride": data.geometry.stride, "padding": pad,
                   "dilation": data.geometry.dilation, "groups": data.groups}
        by_col2im = grad_input_col2im(g_band, x_band_shape, data.w, **options)[:, :, rows]
        by_flip = grad_input_flipped(g_band, x_band_shape, data.w, **options)[:, :, rows]
        part = compare(data.name, ROUTES, by_col2im.reshape(-1), by_flip.reshape(-1),
                       by_col2im.shape, by_col2im.size, atol, rtol)
        part.worst = [replace(w, index=(w.index[0], w.index[1], w.index[2] + first, w.index[3]))
                      for w in part.worst]
        parts.append(part)
    return combine(parts, data.name, ROUTES, data.x.size)


def _bands(data: CaseData) -> Iterator[tuple[slice, np.ndarray, tuple[int, ...], Any, int]]:
    """Bands of x's rows [r0, r1), each as the sub-problem that gives their whole dL/dx: the
    rows i0..i1 of dL/dy whose windows reach them, over padded rows [i0·sh, i1·sh + span) with
    no vertical padding. Yields (the band's rows in that sub-problem, dL/dy's rows, the
    sub-problem's x shape, its padding, r0). Rows no window reaches are 0 on both routes."""
    geo, (n, c, height, width) = data.geometry, data.x.shape
    top, _, left, right = geo.pad
    (sh, _), (span, _), oh = geo.stride, geo.dilated_kernel_size, geo.output_size[0]
    rows_per_band = max(1, GRADCHECK_CHUNK_ELEMENTS // (4 * n * c * width * max(1, span)))
    for r0 in range(0, height, rows_per_band):
        r1 = min(height, r0 + rows_per_band)
        i0 = max(0, -((span - 1 - (r0 + top)) // sh))      # ceil((r0 + top - span + 1) / sh)
        i1 = min(oh - 1, (r1 - 1 + top) // sh)
        if i0 > i1:
            continue
        band_height = (i1 - i0) * sh + span
        offset = i0 * sh - top                                # x row of the band's first row
        stop = min(r1 - offset, band_height)
        if stop <= r0 - offset:
            continue
        yield (slice(r0 - offset, stop), data.g[:, :, i0: i1 + 1],
               (n, c, band_height, width), (0, 0, left, right), r0)
