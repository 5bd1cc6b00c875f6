"""Gradient descent with its learning-rate schedule: on a plateau, back to the best state with
lr / 10 (LR_CUTS times), then stop; stop too when y = t to float64's precision."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..conv import conv2d, conv2d_backward
from ..errors import InputError

PATIENCE = 100      # a plateau: the lowest loss fell by less than tol·L over this many steps
EXACT = 1e-26       # stop when L <= EXACT · ½·mean(t²): float64 cannot do much better
LR_CUTS = 2         # on a plateau, restart from the best kernel with lr / 10, at most twice
LR_CUT = 10         # what a plateau divides the learning rate by


def learning_rates(lr: float, cuts: int) -> list[float]:
    """The learning rates a descent used: lr, then lr / 10 after each of its `cuts` plateaus.

    >>> learning_rates(0.1, 2)
    [0.1, 0.01, 0.001]
    """
    return [lr / LR_CUT**k for k in range(cuts + 1)]


class Descent(NamedTuple):
    """What descend found: the best weight and bias, L at each step, why it stopped ("steps",
    "exact" or "plateau"), the initial learning rate and how many plateaus cut it."""

    weight: NDArray[Any]
    bias: NDArray[Any] | None
    losses: list[float]
    stopped: str
    lr: float
    lr_cuts: int


def descend(x, t, shape, groups, optimizer, *, bias, steps, seed, tol, callback, geometry):
    """Gradient descent on L for w (O, C/groups, KH, KW) and b (O,), from PyTorch's default
    start (uniform ±1/√fan_in, seeded) -> Descent. On a plateau it goes back to the best state
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
            raise InputError(f"the loss diverged (it is {losses[-1]} at step {step}): "
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
            optimizer.lr = learning_rates(lr, cuts)[-1]
            continue
        _, grad_w, grad_b = conv2d_backward(residual / residual.size, x, params[0],
                                            groups=groups, **geometry)
        optimizer.step(params, [grad_w, grad_b][: len(params)])
    weight, *rest = best[0]
    return Descent(weight, rest[0] if bias else None, losses, stopped, lr, cuts)

