"""The operations beyond plain conv2d (border modes, flip, conv_transpose2d): their forward
pass and convcli's backward for a case, and numeric gradients by re-running the whole forward
pass at each ± step (no local shortcut: these cases are small, or sampled)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..conv import conv2d, conv2d_backward
from ..transposed import conv_transpose2d, conv_transpose2d_backward
from .data import CaseData

Array = np.ndarray


def forward_of(data: CaseData) -> Callable[..., Array]:
    """f(x, w, b) -> y for the case's operation and options."""
    operation = conv_transpose2d if data.kind == "conv_transpose2d" else conv2d
    return partial(_call, operation, data.options())


def backward_of(data: CaseData) -> Callable[..., tuple[Array, Array, Array]]:
    """convcli's backward(grad_output, x, w) -> (dx, dw, db) for the case."""
    operation = (conv_transpose2d_backward if data.kind == "conv_transpose2d"
                 else conv2d_backward)
    return partial(operation, **data.options())


def _call(operation: Callable[..., Array], options: dict[str, Any], x: Array, w: Array,
          b: Array | None = None) -> Array:
    return operation(x, w, b, **options)


class WholeDifferences:
    """Central differences of L = Σ f(x, w, b) ⊙ g, each from two whole forward passes."""

    def __init__(self, data: CaseData, eps: float) -> None:
        self.data, self.eps = data, eps
        self.forward = forward_of(data)
        self.b = data.b if data.b is not None else np.zeros(data.g.shape[1], data.x.dtype)

    def differences(self, tensor: str, index: np.ndarray, advance: Callable[[int], None]
                    ) -> np.ndarray:
        """The numeric gradient of tensor (grad_input, grad_weight or grad_bias) at index."""
        arrays = {"grad_input": self.data.x, "grad_weight": self.data.w, "grad_bias": self.b}
        base = arrays[tensor]
        numeric = np.zeros(len(index))
        for k, at in enumerate(map(tuple, index.tolist())):
            plus, minus = base.copy(), base.copy()
            plus[at] += self.eps
            minus[at] -= self.eps
            step = float(plus[at]) - float(minus[at])
            numeric[k] = (self._loss(tensor, plus) - self._loss(tensor, minus)) / step
            advance(1)
        return numeric

    def _loss(self, tensor: str, value: np.ndarray) -> float:
        x = value if tensor == "grad_input" else self.data.x
        w = value if tensor == "grad_weight" else self.data.w
        b = value if tensor == "grad_bias" else self.b
        y = self.forward(x, w, b)
        return float(np.vdot(y.astype(np.float64), self.data.g))
