"""Every array of the walkthrough, each claim computed by two routes, from the core."""

from __future__ import annotations

import numpy as np

from .. import borders
from ..columns import col2im, im2col, pad_input
from ..conv import conv2d, conv2d_backward, dilate, flip_kernel
from ..transposed import conv_transpose2d
from .grids import article_row


def compute(x, w, grad_output, geometry, groups, pixel, padding_mode="zeros", anchor=None
            ) -> dict[str, np.ndarray]:
    """Every array of the walkthrough, each claim computed by two routes. Shapes as the module
    docstring; the pixel's arrays ("dy/dp", "footprint") have y's shape (1, O, OH, OW).
    padding_mode: what the padded cells hold (borders.py); the backward folds their gradient
    back onto the pixels they copied."""
    top, _, left, _ = geometry.pad
    kernel_size, stride, dilation = geometry.kernel_size, geometry.stride, geometry.dilation
    options = {"stride": stride, "padding": geometry.pad, "dilation": dilation}
    n, channels, height, width = x.shape
    out_channels = w.shape[0]
    oh, ow = geometry.output_size

    bordered = {"padding_mode": padding_mode}
    y = conv2d(x, w, groups=groups, **options, **bordered)
    x_padded = pad_input(x, geometry, padding_mode)
    # the windows of the padded x: the same X_col as im2col(x, padding) when the border is zeros
    x_col = im2col(x_padded, kernel_size, stride=stride, dilation=dilation)  # (OH·OW, C·KH·KW)
    w_matrix = weight_matrix(w, groups)                             # (C·KH·KW, O)
    # (OH·OW, O) -> (1, OH, OW, O) -> (1, O, OH, OW)
    y_matmul = (x_col @ w_matrix).reshape(1, oh, ow, out_channels).transpose(0, 3, 1, 2)

    grad_x, grad_w, grad_b = conv2d_backward(grad_output, x, w, groups=groups, **options,
                                             **bordered)
    grad_rows = grad_output.transpose(0, 2, 3, 1).reshape(oh * ow, out_channels)  # (OH·OW, O)
    grad_w_matmul = weights_from_matrix(x_col.T @ grad_rows, w.shape, groups)

    # p's footprint: y of a padded image that is zero except p (and its copies) = 1 is ∂y/∂p,
    # by linearity; slid by the plain window, not the core
    c, i, j = pixel
    one_hot = np.zeros_like(x_padded)
    for at in copies_of(pixel, geometry, padding_mode):
        one_hot[0, c, at[0], at[1]] = 1.0
    dy_dp = slide(one_hot, w, geometry, groups)                       # (1, O, OH, OW)
    inside = article_row(x_padded[0], pad_mask(geometry), geometry, anchor)
    dy_dw, grad_w_nudged, window = nudged(x_padded, w, grad_output, geometry, groups,
                                          (0, *divmod(inside, ow)))
    w_flipped = flip_kernel(w, groups)                              # (C, O/groups, KH, KW)
    dy_dp_flipped = np.zeros_like(y)
    for at in copies_of(pixel, geometry, padding_mode):    # p, and its copies in the border
        for o, out_i, out_j, fi, fj in flipped_footprint(pixel, w.shape, geometry, groups, at):
            dy_dp_flipped[0, o, out_i, out_j] += w_flipped[c, o % (out_channels // groups), fi, fj]

    # dL/dx all at once: dilate dL/dy by the stride, pad it fully, slide the flipped kernel
    grad_dilated = dilate(grad_output, stride)                      # (1, O, (OH-1)·s+1, ...)
    span_h, span_w = geometry.dilated_kernel_size
    full = (span_h - 1, span_h - 1, span_w - 1, span_w - 1)
    used_h, used_w = geometry.used_size
    grad_x_padded = np.zeros((n, channels) + geometry.padded_size)
    grad_x_padded[:, :, :used_h, :used_w] = conv2d(grad_dilated, w_flipped, padding=full,
                                                   dilation=dilation, groups=groups)
    grad_cols = grad_rows @ w_matrix.T
    # the same, as the textbook's true convolution dL/dy * w, written out with no flip
    grad_true_padded = np.zeros((n, channels) + geometry.padded_size)
    grad_true_padded[:, :, :used_h, :used_w] = true_convolution_full(grad_dilated, w, geometry,
                                                                     groups)
    if padding_mode == "zeros":
        grad_x_flipped = grad_x_padded[:, :, top : top + height, left : left + width]
        grad_x_true = grad_true_padded[:, :, top : top + height, left : left + width]
        grad_x_col2im = col2im(grad_cols, x.shape, kernel_size, **options)
    else:       # the border's gradient folds back onto the pixels it copied
        grad_x_flipped = borders.fold(grad_x_padded.copy(), geometry.pad, padding_mode,
                                      (height, width))
        grad_x_true = borders.fold(grad_true_padded, geometry.pad, padding_mode,
                                   (height, width))
        grad_x_col2im = borders.fold(col2im(grad_cols, x_padded.shape, kernel_size,
                                            stride=stride, dilation=dilation),
                                     geometry.pad, padding_mode, (height, width))

    extra = {**batch_arrays(x, w, grad_output, geometry, groups, padding_mode),
             **bias_arrays(x_padded, w, grad_output, geometry, groups, inside, grad_b),
             **matrix_arrays(x, w, grad_output, geometry, groups, padding_mode),
             **col2im_arrays(grad_cols, x, w, grad_output, geometry, groups, padding_mode)}
    return {
        **extra,
        "x": x, "padding": np.array(geometry.pad), "x_padded": x_padded, "w": w,
        "w_flipped": w_flipped, "X_col": x_col, "W": w_matrix, "y": y,
        "y_sliding": slide(x_padded, w, geometry, groups), "y_matmul": y_matmul,
        "y_true_convolution": true_convolution(x_padded, w, geometry, groups),
        "dL/dy": grad_output, "dL/dw": grad_w, "dL/dw_matmul": grad_w_matmul,
        "dy/dw_nudged": dy_dw, "x_window": window, "dL/dw_nudged": grad_w_nudged,
        "p": np.array(x[0, c, i, j]), "dy/dp": dy_dp, "dy/dp_flipped": dy_dp_flipped,
        "footprint": x[0, c, i, j] * dy_dp,
        "dL/dp": np.array(np.sum(grad_output * dy_dp)), "dL/dx[p]": np.array(grad_x[0, c, i, j]),
        "dL/dy_dilated": grad_dilated, "dL/dy_padded": np.pad(grad_dilated, ((0, 0), (0, 0),
                                                               full[:2], full[2:])),
        "dL/dx_padded": grad_x_padded, "dL/dx_flipped": grad_x_flipped,
        "dL/dx_col2im": grad_x_col2im, "dL/dx": grad_x, "dL/dx_true_convolution": grad_x_true,
    }


def slide(x_padded, w, geometry, groups) -> np.ndarray:
    """y by the definition, without im2col: for each kernel tap (kh, kw), add w[:, :, kh, kw]
    times the input it meets at every window. (1, C, Hp, Wp) -> (1, O, OH, OW)."""
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    out_channels, group_channels, kh, kw = w.shape
    group_out = out_channels // groups
    y = np.zeros((1, out_channels, oh, ow))
    for row in range(kh):
        for col in range(kw):
            # (C, OH, OW): the pixel under tap (row, col) for every window
            seen = x_padded[0, :, row * dh : row * dh + (oh - 1) * sh + 1 : sh,
                            col * dw : col * dw + (ow - 1) * sw + 1 : sw]
            for g in range(groups):
                outs, ins = slice(g * group_out, (g + 1) * group_out), slice(
                    g * group_channels, (g + 1) * group_channels)
                if w[outs, :, row, col].any():           # a zero tap adds nothing
                    y[0, outs] += np.einsum("oc,chw->ohw", w[outs, :, row, col], seen[ins])
    return y


def nudged(x_padded, w, grad_output, geometry, groups, output):
    """∂y/∂w at one output and dL/dw, by nudging each weight by 1 and sliding the window again
    (y is linear in w, so the change is exactly the derivative): no X_col, no core routine.
    output: (o, i, j). Returns (∂y(o,i,j)/∂w[o] (C/g·KH·KW,), dL/dw (O, C/g, KH, KW)) and the
    window x(o,i,j) read off x_padded, (C/g·KH·KW,)."""
    o, i, j = output
    grad_w = np.zeros(w.shape)
    dy_dw = np.zeros(w.shape[1:])
    for index in np.ndindex(*w.shape):
        one = np.zeros(w.shape)
        one[index] = 1.0
        change = slide(x_padded, one, geometry, groups)              # y(w + e) − y(w)
        grad_w[index] = np.sum(grad_output * change)
        if index[0] == o:
            dy_dw[index[1:]] = change[0, o, i, j]
    return dy_dw.ravel(), grad_w, window_of(x_padded, w.shape, geometry, groups, output)


MAX_MATRIX = 400          # M is built when both its sides are at most this long


def batch_arrays(x, w, grad_output, geometry, groups, padding_mode):
    """A batch of two (x, and x turned 180° with its own dL/dy): dL/dw by nudging each weight,
    summed over both items, and dL/dx[n, c] = Σ_o dL/dy[n, o] * w[o, c] written out per
    (n, o, c) as true convolutions; and the core's answers for the same batch."""
    second = x[..., ::-1, ::-1].copy()
    batch = np.concatenate([x, second])
    grads = np.concatenate([grad_output, grad_output[..., ::-1, ::-1] * -1.0 + 1.0])
    options = {"stride": geometry.stride, "padding": geometry.pad,
               "dilation": geometry.dilation, "padding_mode": padding_mode}
    core_dx, core_dw, core_db = conv2d_backward(grads, batch, w, groups=groups, **options)
    out_channels, group_channels, kh, kw = w.shape
    group_out = out_channels // groups
    grad_w = np.zeros(w.shape)
    grad_x_padded = np.zeros((2, x.shape[1]) + geometry.padded_size)
    used_h, used_w = geometry.used_size
    for n in range(2):
        item = pad_input(batch[n : n + 1], geometry, padding_mode)
        grad_w += nudged(item, w, grads[n : n + 1], geometry, groups, (0, 0, 0))[1]
        dilated = dilate(grads[n : n + 1], geometry.stride)
        for o in range(out_channels):
            for c in range(group_channels):
                channel = (o // group_out) * group_channels + c
                one = np.zeros((1, 1, kh, kw))
                one[0, 0] = w[o, c]
                grad_x_padded[n, channel, :used_h, :used_w] += true_convolution_full(
                    dilated[:, o : o + 1], one, geometry, 1)[0, 0]
    top, _, left, _ = geometry.pad
    height, width = geometry.input_size
    if padding_mode == "zeros":
        grad_x = grad_x_padded[:, :, top : top + height, left : left + width]
    else:
        grad_x = borders.fold(grad_x_padded, geometry.pad, padding_mode, (height, width))
    return {"batch dL/dw_nudged": grad_w, "batch dL/dw": core_dw,
            "batch dL/dx_sums": grad_x, "batch dL/dx": core_dx,
            "batch dL/db_sums": grads.sum(axis=(0, 2, 3)), "batch dL/db": core_db}


def bias_arrays(x_padded, w, grad_output, geometry, groups, inside, grad_b):
    """The bias as in a dense layer: y = w·x + b on step 3's window (b = 0 here), and dL/db by
    nudging each b by 1 (every output of its channel moves by 1): Σ dL/dy per channel."""
    i, j = divmod(inside, geometry.output_size[1])
    window = window_of(x_padded, w.shape, geometry, groups, (0, i, j))
    y_neuron = np.array([np.dot(w[0].ravel(), window)])          # + b, with b = 0
    nudges = grad_output[0].sum(axis=(1, 2))          # Δy = 1 on channel o: Σ dL/dy · 1
    return {"y_neuron": y_neuron, "y_at_window": np.array([slide(x_padded, w, geometry,
                                                                 groups)[0, 0, i, j]]),
            "dL/db": grad_b, "dL/db_nudged": nudges}


def window_of(x_padded, w_shape, geometry, groups, output):
    """The window of output (o, i, j), read off x_padded: its C/g·KH·KW values."""
    o, i, j = output
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    out_channels, group_channels, kh, kw = w_shape
    first = (o // (out_channels // groups)) * group_channels
    window = x_padded[0, first : first + group_channels,
                      i * sh : i * sh + (kh - 1) * dh + 1 : dh,
                      j * sw : j * sw + (kw - 1) * dw + 1 : dw]
    return window.ravel()


def matrix_arrays(x, w, grad_output, geometry, groups, padding_mode):
    """The big sparse matrix M of y = M·x (d2l's kernel2matrix), built by nudging each input
    pixel by 1 and sliding the window: column k of M is pixel k's footprint. Empty when M
    would be larger than MAX_MATRIX on a side."""
    _, channels, height, width = x.shape
    rows = w.shape[0] * geometry.output_size[0] * geometry.output_size[1]
    columns = channels * height * width
    if max(rows, columns) > MAX_MATRIX:
        empty = np.zeros(0)
        return {"M": np.zeros((0, 0)), "M·x": empty, "y_flat": empty, "Mᵀ·dL/dy": empty,
                "dL/dx_flat": empty}
    matrix = np.zeros((rows, columns))
    for k, (c, i, j) in enumerate(np.ndindex(channels, height, width)):
        one_hot = np.zeros((1, channels) + geometry.padded_size)
        for at in copies_of((c, i, j), geometry, padding_mode):
            one_hot[0, c, at[0], at[1]] = 1.0
        matrix[:, k] = slide(one_hot, w, geometry, groups).ravel()
    y = slide(pad_input(x, geometry, padding_mode), w, geometry, groups)
    grad_x = conv2d_backward(grad_output, x, w, groups=groups, stride=geometry.stride,
                             padding=geometry.pad, dilation=geometry.dilation,
                             padding_mode=padding_mode)[0]
    return {"M": matrix, "M·x": matrix @ x.ravel(), "y_flat": y.ravel(),
            "Mᵀ·dL/dy": matrix.T @ grad_output.ravel(), "dL/dx_flat": grad_x.ravel()}


def col2im_arrays(grad_cols, x, w, grad_output, geometry, groups, padding_mode):
    """col2im by hand: each row of dL/dX_col (one window) added back onto the padded pixels
    its window covers, tap by tap (not the core's col2im); and dL/dx as a transposed
    convolution of dL/dy: conv_transpose2d crops the forward padding (and adds the rows the
    stride left unread as output_padding)."""
    _, channels, height, width = x.shape
    kh, kw = w.shape[2:]
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    top, _, left, _ = geometry.pad
    padded = np.zeros((1, channels) + geometry.padded_size)
    columns = grad_cols.reshape(oh, ow, channels, kh, kw)               # (OH, OW, C, KH, KW)
    for r in range(kh):
        for q in range(kw):
            padded[0, :, r * dh : r * dh + (oh - 1) * sh + 1 : sh,
                   q * dw : q * dw + (ow - 1) * sw + 1 : sw] += columns[:, :, :, r, q].transpose(
                2, 0, 1)
    used_h, used_w = geometry.used_size
    leftover = (geometry.padded_size[0] - used_h, geometry.padded_size[1] - used_w)
    if padding_mode == "zeros":
        scattered = padded[:, :, top : top + height, left : left + width]
        transposed = conv_transpose2d(grad_output, w, stride=geometry.stride,
                                      padding=geometry.pad, output_padding=leftover,
                                      groups=groups, dilation=geometry.dilation)
    else:
        scattered = borders.fold(padded.copy(), geometry.pad, padding_mode, (height, width))
        whole = conv_transpose2d(grad_output, w, stride=geometry.stride, padding=0,
                                 output_padding=leftover, groups=groups,
                                 dilation=geometry.dilation)
        transposed = borders.fold(whole, geometry.pad, padding_mode, (height, width))
    return {"dL/dX_col": grad_cols, "dL/dx_scattered": scattered,
            "dL/dx_transposed": transposed, "output_padding": np.array(leftover)}


def pad_mask(geometry) -> np.ndarray:
    """(Hp, Wp): True on the padding."""
    top, _, left, _ = geometry.pad
    height, width = geometry.input_size
    mask = np.ones(geometry.padded_size, bool)
    mask[top : top + height, left : left + width] = False
    return mask


def true_convolution(x_padded, w, geometry, groups) -> np.ndarray:
    """The textbook convolution x * w over the windows of y, written out: tap (r, q) meets the
    pixel (KH−1−r, KW−1−q) of each window (the kernel turned 180° by the definition). Not y
    unless w is the same turned 180°. (1, C, Hp, Wp) -> (1, O, OH, OW)."""
    return slide(x_padded, w[..., ::-1, ::-1], geometry, groups)


def true_convolution_full(grad_dilated, w, geometry, groups) -> np.ndarray:
    """dL/dy * w, the full textbook convolution, written as the sum over taps k of w[k] times
    dL/dy shifted by k (z[i] = Σ_k w[k] · g[i − k·d]): no kernel is flipped by hand, no core
    routine used. (1, O, OHd, OWd) -> (1, C, OHd + (KH−1)·dh, OWd + (KW−1)·dw)."""
    out_channels, group_channels, kh, kw = w.shape
    (dh, dw), group_out = geometry.dilation, out_channels // groups
    _, _, rows, cols = grad_dilated.shape
    z = np.zeros((1, group_channels * groups, rows + (kh - 1) * dh, cols + (kw - 1) * dw))
    for r in range(kh):
        for q in range(kw):
            for g in range(groups):
                outs = slice(g * group_out, (g + 1) * group_out)
                ins = slice(g * group_channels, (g + 1) * group_channels)
                z[0, ins, r * dh : r * dh + rows, q * dw : q * dw + cols] += np.einsum(
                    "oc,ohw->chw", w[outs, :, r, q], grad_dilated[0, outs])
    return z


def weight_matrix(w, groups) -> np.ndarray:
    """W of Y = X_col · W: (O, C/g, KH, KW) -> (C·KH·KW, O), block-diagonal over the groups
    (an input channel outside an output's group meets a zero)."""
    out_channels, group_channels = w.shape[:2]
    taps = w[0, 0].size
    group_out, group_rows = out_channels // groups, group_channels * taps
    matrix = np.zeros((groups * group_rows, out_channels))
    for g in range(groups):
        outs = slice(g * group_out, (g + 1) * group_out)
        matrix[g * group_rows : (g + 1) * group_rows, outs] = w[outs].reshape(group_out, -1).T
    return matrix


def weights_from_matrix(matrix, w_shape, groups) -> np.ndarray:
    """The inverse of weight_matrix: (C·KH·KW, O) -> (O, C/g, KH, KW), the diagonal blocks."""
    out_channels, group_channels, kh, kw = w_shape
    group_out, group_rows = out_channels // groups, group_channels * kh * kw
    blocks = [matrix[g * group_rows : (g + 1) * group_rows, g * group_out : (g + 1) * group_out]
              for g in range(groups)]
    return np.concatenate([b.T for b in blocks]).reshape(w_shape)


def copies_of(pixel, geometry, padding_mode):
    """The padded positions (r, c) that hold p: p itself, and under a border mode its copies."""
    _, i, j = pixel
    top, bottom, left, right = geometry.pad
    height, width = geometry.input_size
    if padding_mode == "zeros":
        return [(i + top, j + left)]
    rows = np.flatnonzero(borders.source_index(height, top, bottom, padding_mode) == i)
    cols = np.flatnonzero(borders.source_index(width, left, right, padding_mode) == j)
    return [(int(r), int(q)) for r in rows for q in cols]


def flipped_footprint(pixel, w_shape, geometry, groups, at=None):
    """The outputs p touches, read off the flipped kernel: (o, i, j, fi, fj) with output (o, i, j)
    getting p · w_flipped[c, o, fi, fj]. Window (i, j) covers padded row i·s + kh·d, so p's padded
    row r is met by tap kh = KH-1-fi at i = (r - (KH-1)·d + fi·d) / s, where that is whole.
    at: the padded position (r, c) to read from (a copy of p under a border mode); default p's."""
    c, i, j = pixel
    top, _, left, _ = geometry.pad
    if at is not None:
        i, j = at[0] - top, at[1] - left
    out_channels, group_channels, kh, kw = w_shape
    group_out = out_channels // groups
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    first_row, first_col = i + top - (kh - 1) * dh, j + left - (kw - 1) * dw
    group = c // group_channels
    for o in range(group * group_out, (group + 1) * group_out):
        for fi in range(kh):
            for fj in range(kw):
                row, col = first_row + fi * dh, first_col + fj * dw
                if row % sh or col % sw or not (0 <= row // sh < oh and 0 <= col // sw < ow):
                    continue
                yield o, row // sh, col // sw, fi, fj


