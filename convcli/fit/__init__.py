"""Learn a kernel from an image and its filtered version: the reason gradients exist.

Given an input x (N, C, H, W) and a target t (N, O, OH, OW), find w (O, C/groups, KH, KW) and
b (O,) with conv2d(x, w) + b ≈ t, by minimising

    L = ½·mean((conv2d(x, w) + b − t)²),     so dL/dy = (y − t) / t.size.

Two ways:

- ``method="gd"``: gradient descent, Adam or plain full-batch gradient descent ("sgd", as
  PyTorch names it), with dL/dw and dL/db from ``conv2d_backward`` (schedule.py, optimisers.py).
- ``method="lstsq"``: the exact answer in one solve. y = X_col · W is linear in W, so fitting a
  linear filter *is* linear regression on the im2col matrix: each row of X_col (one window of
  the input, plus a 1 for the bias) is a sample, each column a feature, and t holds the labels
  (lstsq.py).

Channels: a C-channel input and an O-channel target give an ordinary (O, C, KH, KW) kernel
(grey -> grey: (1, 1, K, K); RGB -> grey: (1, 3, K, K), whose K = 1 case is the luma weights of
an RGB-to-grey conversion); ``depthwise=True`` learns one kernel per channel, (O, 1, KH, KW)
with groups = C.

How fast gradient descent gets there depends on the conditioning of X_col: on a smooth patch,
neighbouring pixels are nearly equal, so high-frequency patterns in the kernel barely change y
and take many steps to learn. lstsq does not care (``Fit.condition`` reports it).
"""

from .lstsq import lstsq
from .optimisers import SGD, Adam, safe_sgd_lr
from .schedule import learning_rates
from .solve import Fit, fit, loss, weight_shape

__all__ = ["SGD", "Adam", "Fit", "fit", "learning_rates", "loss", "lstsq", "safe_sgd_lr",
           "weight_shape"]
