"""Learn a kernel: the Fit it gives, the one entry point fit(), and the checks of its inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..conv import conv2d
from ..errors import InputError
from ..geometry import pair, resolve
from ..validate import check_4d
from .lstsq import lstsq
from .optimisers import SGD, Adam, safe_sgd_lr
from .schedule import descend, learning_rates

ADAM_LR = 0.1
STEPS = 3000
TOL = 1e-9


@dataclass
class Fit:
    """A learned kernel and how it was found.

    weight (O, C/groups, KH, KW) and bias (O,) or None: those of the lowest loss seen (Adam's
    loss is not monotone); losses: L at each step, from the initial guess (steps + 1 values;
    one for lstsq); stopped: why gd stopped, "steps" (all done), "exact" (L at float64's floor)
    or "plateau"; lr: the initial learning rate and lr_cuts: how many plateaus divided it by 10;
    rank and condition (σ_max / σ_min) of [X_col, 1] (lstsq); optimizer: "adam" or "sgd" (gd).
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
    optimizer: str | None = None

    @property
    def steps(self) -> int:
        return len(self.losses) - 1

    @property
    def rates(self) -> list[float]:
        """The learning rates gd used, in turn (empty for lstsq)."""
        return [] if self.lr is None else learning_rates(self.lr, self.lr_cuts)


def fit(x, t, kernel_size, *, method="gd", optimizer="adam", lr=None, steps=STEPS, seed=0,
        bias=True, tol=TOL, depthwise=False, stride=1, padding=0, dilation=1,
        callback=None, lstsq_progress=None) -> Fit:
    """Learn w (and b) so that conv2d(x, w) + b ≈ t.

    x (N, C, H, W), t (N, O, OH, OW) -> Fit with weight (O, C/groups, KH, KW), bias (O,).
    kernel_size: K or (KH, KW). method: "gd" or "lstsq"; the rest is for gd: optimizer "adam"
    or "sgd"; lr: Adam's step [0.1], or for sgd 1 / a bound on L's curvature (every step then
    lowers L); seed: of the initial w and b (PyTorch's uniform ±1/√fan_in). A plateau (the
    lowest L fell by less than tol·L over 100 steps) restarts from the best state with lr / 10,
    twice, and then stops; so does an exact fit. callback(step, loss) is called at every step;
    lstsq_progress(done, total) as the least squares' rows are folded in.

    >>> x = np.random.default_rng(0).random((1, 1, 8, 8))
    >>> t = conv2d(x, np.array([[[[1.0, -1.0]]]])) + 0.5
    >>> found = fit(x, t, (1, 2), method="lstsq")
    >>> np.round(found.weight, 9).tolist(), np.round(found.bias, 9).tolist()
    ([[[[1.0, -1.0]]]], [0.5])
    """
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    geometry = {"stride": stride, "padding": padding, "dilation": dilation}
    shape, groups = weight_shape(x, t, kernel_size, depthwise=depthwise, **geometry)
    check_settings(method, optimizer, lr, steps, tol)
    if method == "lstsq":
        weight, b, rank, condition = lstsq(x, t, kernel_size, groups=groups, bias=bias,
                                           progress=lstsq_progress, **geometry)
        return Fit(weight, b, groups, [loss(x, t, weight, b, groups=groups, **geometry)],
                   method, rank=rank, condition=condition)
    if lr is None:
        lr = ADAM_LR if optimizer == "adam" else safe_sgd_lr(x, t, kernel_size, groups=groups,
                                                              bias=bias, **geometry)
    found = descend(x, t, shape, groups, Adam(lr) if optimizer == "adam" else SGD(lr),
                    bias=bias, steps=steps, seed=seed, tol=tol, callback=callback,
                    geometry=geometry)
    return Fit(found.weight, found.bias, groups, found.losses, "gd", stopped=found.stopped,
               lr=found.lr, lr_cuts=found.lr_cuts, optimizer=optimizer)


def lstsq_cost(x_shape, t_shape, kernel_size, *, depthwise=False, bias=True, stride=1,
               padding=0, dilation=1) -> tuple[int, int, float]:
    """The least squares' column matrix [X_col, 1] per group: (rows, columns, and the
    multiply-adds its QR takes over all groups, rows·columns²·groups)."""
    kh, kw = pair(kernel_size, "kernel_size")
    geometry = resolve(x_shape[2:], (kh, kw), stride=stride, padding=padding,
                       dilation=dilation)
    groups = x_shape[1] if depthwise else 1
    rows = x_shape[0] * geometry.output_size[0] * geometry.output_size[1]
    columns = x_shape[1] // groups * kh * kw + bias
    return rows, columns, float(rows) * columns * (columns + t_shape[1] // groups) * groups


def check_settings(method: str, optimizer: str, lr: float | None, steps: int,
                   tol: float) -> None:
    """The options of fit, each refused with the option's name and what it takes."""
    if method not in ("gd", "lstsq"):
        raise InputError(f"--method must be gd or lstsq, got {method!r}")
    if optimizer not in ("adam", "sgd"):
        raise InputError(f"--optimizer must be adam or sgd, got {optimizer!r}")
    for name, value, valid in (("--steps", steps, steps >= 0), ("--tol", tol, tol >= 0),
                               ("--lr", lr, lr is None or lr > 0)):
        if not valid:
            what = "positive" if name == "--lr" else "at least 0"
            raise InputError(f"{name} must be {what}, got {value}")



def weight_shape(x, t, kernel_size, *, depthwise=False, stride=1, padding=0, dilation=1):
    """The learned kernel's shape (O, C/groups, KH, KW) and groups, after checking that
    conv2d(x, ·) gives t's shape (N, O, OH, OW)."""
    check_4d(x, "the input")
    check_4d(t, "the target")
    kh, kw = pair(kernel_size, "kernel_size")
    if kh > x.shape[2] or kw > x.shape[3]:
        raise InputError(f"a {kh}×{kw} kernel is larger than the {x.shape[2]}×{x.shape[3]} "
                         "input: the image cannot pin its taps; use a smaller --kernel-size")
    channels, out_channels = x.shape[1], t.shape[1]
    groups = channels if depthwise else 1
    if out_channels % groups:
        raise InputError(f"depthwise learns one kernel per input channel, so the target needs "
                         f"{channels} channels (or a multiple), got {out_channels}")
    geometry = resolve(x.shape[2:], (kh, kw), stride=stride, padding=padding, dilation=dilation)
    expected = (x.shape[0], out_channels) + geometry.output_size
    if t.shape != expected:
        raise InputError(f"conv2d of the input {x.shape} with a {kh}×{kw} kernel gives shape "
                         f"{expected}, but the target has shape {t.shape}: match the "
                         "padding, stride and dilation to how the target was made")
    return (out_channels, channels // groups, kh, kw), groups



def loss(x, t, w, b=None, *, groups=1, stride=1, padding=0, dilation=1) -> float:
    """L = ½·mean((conv2d(x, w) + b − t)²)."""
    residual = conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                      groups=groups) - t
    return 0.5 * float(np.mean(residual * residual))

