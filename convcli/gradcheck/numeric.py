"""Numeric gradients: which coordinates to check, and the central differences of the loss at
them, computed on the part of y that moves."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ..chunking import GRADCHECK_CHUNK_ELEMENTS
from ..columns import im2col
from ..conv import conv2d
from ..errors import InputError


def sample_coordinates(shape, samples, rng) -> np.ndarray:
    """Indices (K, ndim) of the coordinates to check in a tensor of ``shape``.

    samples None (or ≥ the size): all of them. Otherwise the corners of the last two axes (for
    the first and the last index of the leading axes), the middle and one random point of each
    of the four edges, and random others until there are ``samples`` (more if the corners and
    edges alone outnumber it).
    """
    size = math.prod(shape)
    if samples is None or samples >= size:
        return np.indices(shape).reshape(len(shape), -1).T
    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    if len(shape) == 1:
        forced = [(0,), (shape[0] - 1,)]
    else:
        *lead, height, width = shape

        def point(row, col, heads=None):  # heads: the leading indices, random if None
            return (*([int(rng.integers(s)) for s in lead] if heads is None else heads), row, col)

        first, last = [0] * len(lead), [s - 1 for s in lead]
        forced = [point(row, col, heads) for heads in (first, last)
                  for row in (0, height - 1) for col in (0, width - 1)]
        for row, col in ((height // 2, width // 2),
                         (int(rng.integers(height)), int(rng.integers(width)))):
            forced += [point(0, col), point(height - 1, col), point(row, 0), point(row, width - 1)]
    flat: list[int] = list(dict.fromkeys(
        np.ravel_multi_index(np.array(forced).T, shape).ravel().tolist()))
    wanted = max(samples, len(flat))
    chosen = set(flat)
    while len(flat) < wanted:
        for k in rng.choice(size, size=min(size, 2 * (wanted - len(flat))), replace=False):
            if len(flat) < wanted and int(k) not in chosen:
                chosen.add(int(k))
                flat.append(int(k))
    return np.array(np.unravel_index(np.array(flat), shape)).T



class CentralDifferences:
    """Central differences of L = Σ conv2d(x, w, b) ⊙ g, computed on the part of y that moves."""

    def __init__(self, x, w, b, g, geometry, groups, eps):
        self.x, self.w, self.b, self.g = x, w, b, g
        self.geometry, self.groups, self.eps = geometry, groups, eps
        self.rows_per_band = self._per_call(geometry.output_size[1] * w[0, 0].size)

    def input_differences(self, index, advance):
        """dL/dx at index (K, 4) of x, one number per row."""
        geo, g = self.geometry, self.g
        (oh, ow), (sh, sw) = geo.output_size, geo.stride
        top, _, left, _ = geo.pad
        numeric = np.zeros(len(index))
        # Output row i reads padded rows i·sh + kh·dh, kh < KH: the padded row p is read only
        # by rows i in [ceil((p − span + 1) / sh), floor(p / sh)], clipped to [0, OH). Those
        # rows read padded rows [i0·sh, i1·sh + span): the crop that gives them exactly.
        blocks = defaultdict(list)  # crop shape -> [(k, n, c, row, col, i0, i1, j0, j1)]
        for k, (n, c, row, col) in enumerate(index.tolist()):
            spans = zip((row + top, col + left), (sh, sw), geo.dilated_kernel_size, (oh, ow))
            (i0, i1), (j0, j1) = [(max(0, -((span - 1 - p) // s)), min(size - 1, p // s))
                                  for p, s, span, size in spans]
            if i0 > i1 or j0 > j1:
                continue  # no window reads this pixel: L does not depend on it
            shape = ((i1 - i0) * sh + geo.dilated_kernel_size[0],
                     (j1 - j0) * sw + geo.dilated_kernel_size[1])
            blocks[shape].append((k, n, c, row + top - i0 * sh, col + left - j0 * sw,
                                  i0, i1, j0, j1))
        for (crop_h, crop_w), members in blocks.items():
            for part in _chunks(members, self._per_call(crop_h * crop_w * self.w.shape[0])):
                crops = np.stack([padded_block(self.x[n], geo.pad, i0 * sh, crop_h, j0 * sw,
                                               crop_w)
                                  for _, n, _, _, _, i0, _, j0, _ in part])  # (k, C, ch, cw)
                plus, minus, steps = self._perturb(
                    crops, [(j, c, row, col) for j, (_, _, c, row, col, *_) in enumerate(part)])
                y_local = conv2d(np.concatenate([plus, minus]), self.w, self.b,
                                 stride=geo.stride, dilation=geo.dilation, groups=self.groups)
                g_local = np.stack([g[n, :, i0: i1 + 1, j0: j1 + 1]
                                    for _, n, _, _, _, i0, i1, j0, j1 in part])
                numeric[[m[0] for m in part]] = self._quotient(y_local, g_local, steps, axis=0)
            advance(len(members))
        advance(len(index) - sum(len(m) for m in blocks.values()))
        return numeric

    def weight_differences(self, index, advance):
        """dL/dw at index (K, 4) of w.

        w[o, c, kh, kw] enters only y[:, o] = Σ_c' x_c' ⋆ w[o, c'] + b[o], and there only the
        term of input channel c, so L+ − L− needs y's part x_c ⋆ w[o, c] alone (the other terms
        are the same on both sides): the column matrix of x_c (M, KH·KW) times the two
        perturbed filters, the forward pass of conv2d written in rows, band by band of output
        rows so that memory stays bounded.
        """
        w = self.w
        in_per_group, out_per_group = w.shape[1], w.shape[0] // self.groups
        numeric = np.zeros(len(index))
        by_channel = defaultdict(list)  # (group, c) -> [(k, o, kh, kw)]
        for k, (o, c, kh, kw) in enumerate(index.tolist()):
            by_channel[(o // out_per_group, c)].append((k, o, kh, kw))
        for (group, c), members in by_channel.items():
            channel = group * in_per_group + c                          # x's channel
            for part in _chunks(members, w[0, 0].size):  # (Mb, 2k) stays as small as X_col
                outputs = [o for _, o, _, _ in part]
                plus, minus, steps = self._perturb(
                    w[outputs, c], [(j, kh, kw) for j, (_, _, kh, kw) in enumerate(part)])
                filters = np.concatenate([plus, minus]).reshape(2 * len(part), -1)
                total = np.zeros(len(part))
                for col_matrix, g_rows in self._bands(slice(channel, channel + 1)):
                    y_part = col_matrix @ filters.T                            # (Mb, 2k)
                    total += self._quotient(y_part, g_rows[:, outputs], np.ones(len(part)))
                numeric[[k for k, *_ in part]] = total / steps
                advance(len(part))
        return numeric

    def bias_differences(self, index, advance):
        """dL/db at index (K, 1) of b: y[:, o] = X_col · w[o] + b[o], with b[o] ± eps."""
        w, groups = self.w, self.groups
        in_per_group, out_per_group = w.shape[1], w.shape[0] // groups
        numeric = np.zeros(len(index))
        by_group = defaultdict(list)
        for k, (o,) in enumerate(index.tolist()):
            by_group[o // out_per_group].append((k, o))
        for group, by_output in by_group.items():
            # Output channel o of a grouped conv is a plain conv of its group's input channels.
            channels = slice(group * in_per_group, (group + 1) * in_per_group)
            for members in _chunks(by_output, w[0].size):
                outputs = [o for _, o in members]
                plus, minus, steps = self._perturb(self.b[outputs],
                                                   [(j,) for j in range(len(members))])
                weights = w[outputs].reshape(len(members), -1).T               # (Cg·KH·KW, k)
                total = np.zeros(len(members))
                for col_matrix, g_rows in self._bands(channels):
                    y_no_bias = col_matrix @ weights                           # (Mb, k)
                    y_both = np.concatenate([y_no_bias + plus, y_no_bias + minus], axis=1)
                    total += self._quotient(y_both, g_rows[:, outputs], np.ones(len(members)))
                numeric[[k for k, _ in members]] = total / steps
                advance(len(members))
        return numeric

    def _bands(self, channels):
        """The column matrix of x's channels and the matching rows of g, a band of output rows
        at a time: (Mb, len(channels)·KH·KW) and (Mb, O), rows in (n, i, j) order."""
        geo, oh = self.geometry, self.geometry.output_size[0]
        (sh, _), (span_h, _) = geo.stride, geo.dilated_kernel_size
        width = geo.padded_size[1]
        rows = max(1, self.rows_per_band // max(1, channels.stop - channels.start))
        for n in range(self.x.shape[0]):
            for start in range(0, oh, rows):
                stop = min(oh, start + rows)
                block = padded_block(self.x[n, channels], geo.pad, start * sh,
                                     (stop - 1 - start) * sh + span_h, 0, width)
                col_matrix = im2col(block[None], geo.kernel_size, stride=geo.stride,
                                    dilation=geo.dilation)
                g_rows = self.g[n, :, start:stop].transpose(1, 2, 0).reshape(-1, self.g.shape[1])
                yield col_matrix, g_rows
    def _perturb(self, base, positions):
        """Two copies of base (k, ...), moved by +eps and −eps at positions[j] (which starts
        with j), and the steps actually taken (in float32, v ± eps is rounded)."""
        plus, minus = base.copy(), base.copy()
        steps = np.empty(len(positions))
        for j, at in enumerate(positions):
            plus[at] += self.eps
            minus[at] -= self.eps
            steps[j] = float(plus[at]) - float(minus[at])
        return plus, minus, steps

    @staticmethod
    def _quotient(y_both, g_local, steps, axis=1):
        """(L+ − L−) / step for each perturbation; y_both holds the + half, then the − half."""
        plus, minus = np.split(y_both, 2, axis=axis)
        change = plus.astype(np.float64) - minus                    # in float64, like the sum
        if axis == 1 and change.ndim == 2:                          # (M, k): one pass, no copy
            return np.einsum("mk,mk->k", change, g_local) / steps
        change *= g_local
        other_axes = tuple(a for a in range(change.ndim) if a != axis)
        return change.sum(axis=other_axes) / steps

    @staticmethod
    def _per_call(elements_per_member):
        return max(1, GRADCHECK_CHUNK_ELEMENTS // (2 * elements_per_member))


def padded_block(x, pad, row, height, col, width) -> np.ndarray:
    """Rows [row, row + height) and columns [col, col + width) of x (C, H, W) zero-padded by
    pad (top, bottom, left, right), without padding all of x: (C, height, width)."""
    top, _, left, _ = pad
    channels, rows, cols = x.shape
    block = np.zeros((channels, height, width), dtype=x.dtype)
    r0, r1 = max(row - top, 0), min(row + height - top, rows)
    c0, c1 = max(col - left, 0), min(col + width - left, cols)
    if r0 < r1 and c0 < c1:
        block[:, r0 + top - row: r1 + top - row, c0 + left - col: c1 + left - col] = \
            x[:, r0:r1, c0:c1]
    return block


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start: start + size]


