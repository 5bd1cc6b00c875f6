"""convcli: compute, check and teach the forward and backward passes of 2-D convolution.

The public API, with ``torch.nn.functional.conv2d``'s layout and meaning::

    y = conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
               memory_budget=256 MiB)
    dx, dw, db = conv2d_backward(grad_output, x, w, *, stride=1, padding=0, dilation=1, groups=1,
                                 memory_budget=256 MiB)
    cols = im2col(x, kernel_size, *, stride=1, padding=0, dilation=1)
    x_like = col2im(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1)

The names are imported on first use (PEP 562), so that ``convcli --help`` starts without NumPy.
"""

import importlib
import sys
import types

__version__ = "0.1.0"

_HOMES = {
    "conv2d": "conv",
    "conv2d_backward": "conv",
    "dilate": "conv",
    "flip_kernel": "conv",
    "grad_input_col2im": "conv",
    "grad_input_flipped": "conv",
    "Geometry": "geometry",
    "resolve": "geometry",
    "col2im": "im2col",
    "im2col": "im2col",
}

__all__ = [
    "Geometry",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "dilate",
    "flip_kernel",
    "grad_input_col2im",
    "grad_input_flipped",
    "im2col",
    "resolve",
]


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Importing the submodule convcli.im2col sets the package's attribute im2col to it; the
    function im2col keeps that name, as it did when this file imported everything at once."""

    def __setattr__(self, name, value):
        if not (isinstance(value, types.ModuleType) and name in _HOMES):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
