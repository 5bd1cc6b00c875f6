"""A least-squares kernel: a linear filter is linear regression on the im2col matrix."""

from __future__ import annotations

import numpy as np

from ..chunking import LSTSQ_CHUNK_BYTES
from ..columns import pad_input, windows
from ..geometry import pair, resolve


def lstsq(x, t, kernel_size, *, groups=1, bias=True, stride=1, padding=0, dilation=1,
          chunk_bytes=LSTSQ_CHUNK_BYTES, progress=None):
    """The least-squares kernel: x (N, C, H, W), t (N, O, OH, OW) -> (w (O, C/groups, KH, KW),
    b (O,) or None, the smallest rank and the largest condition number of [X_col, 1]).

    conv2d is Y = X_col · W, linear in W, so the best W is linear regression: one solve of
    [X_col_g, 1] · [W_g; b_g] = T_g per group g, whose O/groups right-hand sides share X_col_g.
    X_col is never built whole: its rows arrive in pieces of at most chunk_bytes, and each piece
    is folded into a running QR factorisation, whose R has the same least-squares solution,
    rank and singular values as the whole matrix (TSQR). progress(done, total) counts the
    output rows folded in.
    """
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    geometry = resolve(x.shape[2:], pair(kernel_size, "kernel_size"), stride=stride,
                       padding=padding, dilation=dilation)
    (kh, kw), (oh, ow) = geometry.kernel_size, geometry.output_size
    x_windows = windows(pad_input(x, geometry), geometry)           # (N, OH, OW, C, KH, KW)
    taps, per_group = x.shape[1] * kh * kw // groups, t.shape[1] // groups
    width = taps + bias
    rows_per_chunk = max(1, chunk_bytes // (8 * ow * x.shape[1] * kh * kw))
    # Per group, R of the QR factorisation of [X_col_g, 1 | T_g]: its first `width` columns are
    # R of [X_col_g, 1], its last ones Qᵀ·T_g, which is all lstsq needs; Q is never formed.
    factors = [np.zeros((0, width + per_group)) for _ in range(groups)]
    for n in range(x.shape[0]):
        for top in range(0, oh, rows_per_chunk):
            rows = slice(top, min(oh, top + rows_per_chunk))
            cols = x_windows[n, rows].reshape(-1, x.shape[1] * kh * kw)     # (m, C·KH·KW)
            targets = t[n, :, rows].transpose(1, 2, 0).reshape(len(cols), -1)  # (m, O)
            for g, r in enumerate(factors):
                block = [cols[:, g * taps : (g + 1) * taps]]                 # (m, Kg)
                block += [np.ones((len(cols), 1))] if bias else []
                block += [targets[:, g * per_group : (g + 1) * per_group]]   # (m, Og)
                factors[g] = np.linalg.qr(np.vstack([r, np.hstack(block)]), mode="r")
            if progress is not None:
                progress(n * oh + rows.stop, x.shape[0] * oh)
    weights, biases, ranks, conditions = [], [], [], []
    for r in factors:
        solution, _, rank, singular = np.linalg.lstsq(
            r[:width, :width], r[:width, width:], rcond=None)                 # (Kg+1, Og)
        weights.append(solution[:taps].T)                                    # (Og, Kg)
        biases.append(solution[taps:].reshape(-1))
        ranks.append(int(rank))
        conditions.append(float(singular[0] / singular[-1]) if singular[-1] > 0 else np.inf)
    weight = np.concatenate(weights).reshape(t.shape[1], taps // (kh * kw), kh, kw)
    return weight, (np.concatenate(biases) if bias else None), min(ranks), max(conditions)

