"""The optimisers of gradient descent, and the safe step for plain descent."""

from __future__ import annotations

import numpy as np

from ..columns import pad_input, windows
from ..geometry import pair, resolve


def safe_sgd_lr(x, t, kernel_size, *, groups=1, bias=True, stride=1, padding=0, dilation=1):
    """1 / an upper bound on L's largest curvature: gradient descent with it never goes up.

    L's Hessian for one output channel of group g is [X_col_g, 1]ᵀ[X_col_g, 1] / t.size, and
    its largest eigenvalue is at most its trace, (Σ X_col_g² + M) / t.size. Σ X_col² is summed
    over the windows' strided view of x², without building X_col.
    """
    x = np.asarray(x, dtype=np.float64)
    geometry = resolve(x.shape[2:], pair(kernel_size, "kernel_size"), stride=stride,
                       padding=padding, dilation=dilation)
    squares = windows(pad_input(x * x, geometry), geometry)             # (N, OH, OW, C, KH, KW)
    per_channel = squares.sum(axis=(0, 1, 2, 4, 5))                     # (C,)
    per_group = per_channel.reshape(groups, -1).sum(axis=1).max()
    outputs = x.shape[0] * geometry.output_size[0] * geometry.output_size[1]
    return float(np.asarray(t).size / (per_group + (outputs if bias else 0)))


class Adam:
    """Adam (Kingma & Ba, 2015): each parameter moves by lr · m̂ / (√v̂ + eps), where m and v
    are running means of its gradient and squared gradient (bias-corrected: m̂, v̂)."""

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.moments, self.count = None, 0

    def step(self, params, grads):
        """Update params in place."""
        if self.moments is None:
            self.moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
        self.count += 1
        for p, g, (m, v) in zip(params, grads, self.moments):
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g * g - v)
            m_hat = m / (1 - self.beta1**self.count)
            v_hat = v / (1 - self.beta2**self.count)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class SGD:
    """Plain gradient descent: p -= lr · dL/dp."""

    def __init__(self, lr):
        self.lr = lr

    def step(self, params, grads):
        """Update params in place."""
        for p, g in zip(params, grads):
            p -= self.lr * g
