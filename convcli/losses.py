"""The losses `convcli backward` offers, each giving L and dL/dy (the upstream gradient)."""

from __future__ import annotations

import numpy as np


def sum_loss(y: np.ndarray) -> tuple[float, np.ndarray]:
    """L = Σy, so dL/dy = 1 everywhere. y (N, O, OH, OW) -> (L, dL/dy of y's shape)."""
    return float(np.sum(y)), np.ones_like(y)


def mse_loss(y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """L = ½‖y − T‖², so dL/dy = y − T. y, target (N, O, OH, OW) -> (L, dL/dy).

    >>> mse_loss(np.array([3.0, 1.0]), np.array([1.0, 1.0]))
    (2.0, array([2., 0.]))
    """
    residual = y - target
    return 0.5 * float(np.sum(residual * residual)), residual
