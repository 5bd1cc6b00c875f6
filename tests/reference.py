"""Loop-by-definition references for the tests: independent of convcli's geometry and im2col.

Each output pixel y[n, o, i, j] = b[o] + Σ_{c, kh, kw} x_pad[n, g·Cg + c, i·sh + kh·dh, j·sw + kw·dw]
· w[o, c, kh, kw], with g = o // (O / groups): the definition, one pixel at a time.
"""

import math

import numpy as np


def explicit_padding(padding, size, kernel, stride, dilation):
    """Any padding form -> (top, bottom, left, right), from the issue's own words."""
    if isinstance(padding, str):
        out = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            span = d * (k - 1) + 1
            if padding == "valid":
                out += [0, 0]
            elif padding == "full":
                out += [span - 1, span - 1]
            else:  # same: output ceil(n / s), the smaller half first
                total = max(0, (math.ceil(n / s) - 1) * s + span - n)
                out += [total // 2, total - total // 2]
        return tuple(out)
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


def _setup(x, w, stride, padding, dilation):
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    dilation = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    top, bottom, left, right = explicit_padding(padding, x.shape[2:], w.shape[2:], stride, dilation)
    x_pad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    kh, kw = w.shape[2:]
    oh = (x_pad.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (x_pad.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return x_pad, stride, dilation, (top, left), (oh, ow)


def _window(n, i, j, first, count, stride, dilation, kernel):
    """x_pad[n, first : first + count, rows, cols] with rows i·sh + kh·dh, cols j·sw + kw·dw."""
    rows = slice(i * stride[0], i * stride[0] + dilation[0] * (kernel[0] - 1) + 1, dilation[0])
    cols = slice(j * stride[1], j * stride[1] + dilation[1] * (kernel[1] - 1) + 1, dilation[1])
    return n, slice(first, first + count), rows, cols


def conv2d_loop(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    x_pad, stride, dilation, _, (oh, ow) = _setup(x, w, stride, padding, dilation)
    n_batch, out_channels, cg = x.shape[0], w.shape[0], w.shape[1]
    og = out_channels // groups
    y = np.zeros((n_batch, out_channels, oh, ow))
    for n in range(n_batch):
        for o in range(out_channels):
            first = (o // og) * cg
            for i in range(oh):
                for j in range(ow):
                    window = x_pad[_window(n, i, j, first, cg, stride, dilation, w.shape[2:])]
                    y[n, o, i, j] = np.sum(window * w[o]) + (0.0 if b is None else b[o])
    return y


def conv2d_backward_loop(grad_output, x, w, stride=1, padding=0, dilation=1, groups=1):
    """Each y[n, o, i, j] sends grad·w[o] back to its window and grad·window to w[o]."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    x_pad, stride, dilation, (top, left), (oh, ow) = _setup(x, w, stride, padding, dilation)
    grad_x_pad = np.zeros_like(x_pad)
    grad_w = np.zeros_like(w)
    og = w.shape[0] // groups
    cg = w.shape[1]
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            first = (o // og) * cg
            for i in range(oh):
                for j in range(ow):
                    index = _window(n, i, j, first, cg, stride, dilation, w.shape[2:])
                    grad = grad_output[n, o, i, j]
                    grad_x_pad[index] += grad * w[o]
                    grad_w[o] += grad * x_pad[index]
    h, width = x.shape[2:]
    grad_x = grad_x_pad[:, :, top : top + h, left : left + width]
    return grad_x, grad_w, grad_output.sum(axis=(0, 2, 3))


def numerical_gradient(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of array (in place)."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        up = f()
        flat[k] = saved - eps
        down = f()
        flat[k] = saved
        grad_flat[k] = (up - down) / (2 * eps)
    return grad
