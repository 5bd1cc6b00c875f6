"""convcli: compute, check and teach the forward and backward passes of 2-D convolution.

The public API, with ``torch.nn.functional.conv2d``'s layout and meaning::

    y = conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1)
    dx, dw, db = conv2d_backward(grad_output, x, w, *, stride=1, padding=0, dilation=1, groups=1)
    cols = im2col(x, kernel_size, *, stride=1, padding=0, dilation=1)
    x_like = col2im(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1)
"""

from .conv import (
    conv2d,
    conv2d_backward,
    dilate,
    flip_kernel,
    grad_input_col2im,
    grad_input_flipped,
)
from .geometry import Geometry, resolve
from .im2col import col2im, im2col

__version__ = "0.1.0"

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
