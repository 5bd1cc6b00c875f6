"""Learn a kernel from an image and its filtered version: the reason gradients exist.

Given an input x (N, C, H, W) and a target t (N, O, OH, OW), find w (O, C/groups, KH, KW) and
b (O,) with conv2d(x, w) + b ≈ t, by minimising

    L = ½·mean((conv2d(x, w) + b − t)²),     so dL/dy = (y − t) / t.size.

Two ways:

- ``method="gd"``: gradient descent, Adam or plain full-batch gradient descent ("sgd", as
  PyTorch names it), with dL/dw and dL/db from ``conv2d_backward``.
- ``method="lstsq"``: the exact answer in one solve. y = X_col · W is linear in W, so fitting a
  linear filter *is* linear regression on the im2col matrix: each row of X_col (one window of
  the input, plus a 1 for the bias) is a sample, each column a feature, and t holds the labels.
  np.linalg.lstsq solves [X_col, 1] · [W; b] = T, one solve per group.

Channels: a C-channel input and an O-channel target give an ordinary (O, C, KH, KW) kernel
(grey -> grey: (1, 1, K, K); RGB -> grey: (1, 3, K, K), whose K = 1 case is the luma weights of
an RGB-to-grey conversion); ``depthwise=True`` learns one kernel per channel, (O, 1, KH, KW)
with groups = C.

How fast gradient descent gets there depends on the conditioning of X_col: on a smooth patch,
neighbouring pixels are nearly equal, so high-frequency patterns in the kernel barely change y
and take many steps to learn. lstsq does not care (``Fit.condition`` reports it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .conv import conv2d, conv2d_backward
from .geometry import pair, resolve
from .im2col import pad_input, windows

ADAM_LR = 0.1
STEPS = 3000
TOL = 1e-9
PATIENCE = 100      # a plateau: the lowest loss fell by less than tol·L over this many steps
EXACT = 1e-26       # stop when L <= EXACT · ½·mean(t²): float64 cannot do much better
LR_CUTS = 2         # on a plateau, restart from the best kernel with lr / 10, at most twice


@dataclass
class Fit:
    """A learned kernel and how it was found.

    weight (O, C/groups, KH, KW) and bias (O,) or None: those of the lowest loss seen (Adam's
    loss is not monotone); losses: L at each step, from the initial guess (steps + 1 values;
    one for lstsq); stopped: why gd stopped, "steps" (all done), "exact" (L at float64's floor)
    or "plateau"; lr: the initial learning rate and lr_cuts: how many plateaus divided it by 10;
    rank and condition (σ_max / σ_min) of [X_col, 1] (lstsq).
    """

    weight: np.ndarray
    bias: np.ndarray | None
    groups: int
    losses: list[float]
    method: str
    stopped: str = "steps"
    lr: float | None = None
    lr_cuts: int = 0
    rank: int | None = None
    condition: float | None = None

    @property
    def steps(self) -> int:
        return len(self.losses) - 1


def fit(x, t, kernel_size, *, method="gd", optimizer="adam", lr=None, steps=STEPS, seed=0,
        bias=True, tol=TOL, depthwise=False, stride=1, padding=0, dilation=1,
        callback=None) -> Fit:
    """Learn w (and b) so that conv2d(x, w) + b ≈ t.

    x (N, C, H, W), t (N, O, OH, OW) -> Fit with weight (O, C/groups, KH, KW), bias (O,).
    kernel_size: K or (KH, KW). method: "gd" or "lstsq"; the rest is for gd: optimizer "adam"
    or "sgd"; lr: Adam's step [0.1], or for sgd 1 / a bound on L's curvature (every step then
    lowers L); seed: of the initial w and b (PyTorch's uniform ±1/√fan_in). A plateau (the
    lowest L fell by less than tol·L over 100 steps) restarts from the best state with lr / 10,
    twice, and then stops; so does an exact fit. callback(step, loss) is called at every step.

    >>> x = np.random.default_rng(0).random((1, 1, 8, 8))
    >>> t = conv2d(x, np.array([[[[1.0, -1.0]]]])) + 0.5
    >>> found = fit(x, t, (1, 2), method="lstsq")
    >>> np.round(found.weight, 9).tolist(), np.round(found.bias, 9).tolist()
    ([[[[1.0, -1.0]]]], [0.5])
    """
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    geometry = {"stride": stride, "padding": padding, "dilation": dilation}
    shape, groups = weight_shape(x, t, kernel_size, depthwise=depthwise, **geometry)
    if method == "lstsq":
        weight, b, rank, condition = lstsq(x, t, kernel_size, groups=groups, bias=bias,
                                           **geometry)
        return Fit(weight, b, groups, [loss(x, t, weight, b, groups=groups, **geometry)],
                   method, rank=rank, condition=condition)
    if method != "gd":
        raise ValueError(f"method must be 'gd' or 'lstsq', got {method!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if steps < 0 or tol < 0:
        raise ValueError(f"steps and tol must not be negative, got steps={steps}, tol={tol}")
    if lr is None:
        lr = ADAM_LR if optimizer == "adam" else safe_sgd_lr(x, t, kernel_size, groups=groups,
                                                              bias=bias, **geometry)
    if not lr > 0:
        raise ValueError(f"the learning rate must be positive, got {lr}")

    descent = Adam(lr) if optimizer == "adam" else SGD(lr)
    return _descend(x, t, shape, groups, descent, bias=bias, steps=steps, seed=seed, tol=tol,
                    callback=callback, geometry=geometry)


def _descend(x, t, shape, groups, optimizer, *, bias, steps, seed, tol, callback, geometry):
    """Gradient descent on L for w (O, C/groups, KH, KW) and b (O,), from PyTorch's default
    start (uniform ±1/√fan_in, seeded) -> Fit. On a plateau it goes back to the best state
    (parameters and optimizer) with lr / 10, twice, then stops; it also stops on an exact fit."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(np.prod(shape[1:]))
    params = [rng.uniform(-bound, bound, shape)]                    # (O, C/groups, KH, KW)
    if bias:
        params.append(rng.uniform(-bound, bound, shape[0]))         # (O,)
    lr = optimizer.lr
    exact = EXACT * 0.5 * float(np.mean(t * t))         # y = t to ~13 significant digits
    losses, lowest, best = [], [], None
    cuts, since_cut, stopped = 0, 0, "steps"
    for step in range(steps + 1):
        residual = conv2d(x, *params, groups=groups, **geometry) - t  # (N, O, OH, OW)
        with np.errstate(over="ignore"):                # a diverging run raises just below
            losses.append(0.5 * float(np.mean(residual * residual)))
        if not np.isfinite(losses[-1]):
            raise ValueError(f"the loss diverged (it is {losses[-1]} at step {step}): "
                             f"use a smaller learning rate than {lr:g}")
        if best is None or losses[-1] < lowest[-1]:
            best = copy.deepcopy((params, optimizer))   # a few small arrays
        lowest.append(min(losses[-1], lowest[-1]) if lowest else losses[-1])
        if callback is not None:
            callback(step, losses[-1])
        if step == steps:
            break
        if losses[-1] <= exact:
            stopped = "exact"
            break
        since_cut += 1
        if since_cut > PATIENCE and lowest[-1 - PATIENCE] - lowest[-1] <= tol * lowest[-1]:
            # A plateau. Adam's steps are normalised, so they do not shrink with the gradient
            # and can overshoot once L is small: go back to the best state, with lr / 10.
            if cuts == LR_CUTS:
                stopped = "plateau"
                break
            cuts, since_cut = cuts + 1, 0
            params, optimizer = copy.deepcopy(best)
            optimizer.lr = lr / 10**cuts
            continue
        _, grad_w, grad_b = conv2d_backward(residual / residual.size, x, params[0],
                                            groups=groups, **geometry)
        optimizer.step(params, [grad_w, grad_b][: len(params)])
    weight, *rest = best[0]
    return Fit(weight, rest[0] if bias else None, groups, losses, "gd", stopped=stopped, lr=lr,
               lr_cuts=cuts)


def weight_shape(x, t, kernel_size, *, depthwise=False, stride=1, padding=0, dilation=1):
    """The learned kernel's shape (O, C/groups, KH, KW) and groups, after checking that
    conv2d(x, ·) gives t's shape (N, O, OH, OW)."""
    for name, array in (("the input", x), ("the target", t)):
        if array.ndim != 4:
            raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {array.shape}")
    kh, kw = pair(kernel_size, "kernel_size")
    channels, out_channels = x.shape[1], t.shape[1]
    groups = channels if depthwise else 1
    if out_channels % groups:
        raise ValueError(f"depthwise learns one kernel per input channel, so the target needs "
                         f"{channels} channels (or a multiple), got {out_channels}")
    geometry = resolve(x.shape[2:], (kh, kw), stride=stride, padding=padding, dilation=dilation)
    expected = (x.shape[0], out_channels) + geometry.output_size
    if t.shape != expected:
        raise ValueError(f"conv2d of the input {x.shape} with a {kh}×{kw} kernel gives shape "
                         f"{expected}, but the target has shape {t.shape}: match the "
                         "padding, stride and dilation to how the target was made")
    return (out_channels, channels // groups, kh, kw), groups


CHUNK_BYTES = 32 * 2**20          # scratch for one piece of [X_col, 1] in lstsq


def lstsq(x, t, kernel_size, *, groups=1, bias=True, stride=1, padding=0, dilation=1,
          chunk_bytes=CHUNK_BYTES):
    """The least-squares kernel: x (N, C, H, W), t (N, O, OH, OW) -> (w (O, C/groups, KH, KW),
    b (O,) or None, the smallest rank and the largest condition number of [X_col, 1]).

    conv2d is Y = X_col · W, linear in W, so the best W is linear regression: one solve of
    [X_col_g, 1] · [W_g; b_g] = T_g per group g, whose O/groups right-hand sides share X_col_g.
    X_col is never built whole: its rows arrive in pieces of at most chunk_bytes, and each piece
    is folded into a running QR factorisation, whose R has the same least-squares solution,
    rank and singular values as the whole matrix (TSQR).
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


def loss(x, t, w, b=None, *, groups=1, stride=1, padding=0, dilation=1) -> float:
    """L = ½·mean((conv2d(x, w) + b − t)²)."""
    residual = conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                      groups=groups) - t
    return 0.5 * float(np.mean(residual * residual))


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
