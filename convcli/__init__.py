"""convcli: compute, check and teach the forward and backward passes of 2-D convolution.

The public API, with ``torch.nn.functional.conv2d``'s layout and meaning::

    y = conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", flip=False, memory_budget=256 MiB)
    dx, dw, db = conv2d_backward(grad_output, x, w, *, stride=1, padding=0, dilation=1,
                                 groups=1, padding_mode="zeros", flip=False,
                                 memory_budget=256 MiB)
    dx = conv2d_input(input_size, w, grad_output, ...)      # torch.nn.grad's two halves
    dw = conv2d_weight(x, weight_size, grad_output, ...)
    y = conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1)                        # torch's, w (C_in, C_out/g, KH, KW)
    dx, dw, db = conv_transpose2d_backward(grad_output, x, w, *, stride=1, padding=0, ...)
    cols = im2col(x, kernel_size, *, stride=1, padding=0, dilation=1)
    x_like = col2im(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1)

padding_mode: "zeros", or a border mode of borders.py ("reflect", "symmetric", "replicate",
"circular"); flip=True rotates the kernel 180° first (a true convolution).
A user's mistake raises ``InputError`` (a ValueError).
"""

from . import borders
from .columns import col2im, im2col
from .conv import (
    conv2d,
    conv2d_backward,
    conv2d_input,
    conv2d_weight,
    dilate,
    flip_kernel,
    grad_input_col2im,
    grad_input_flipped,
)
from .errors import InputError
from .geometry import Geometry, resolve
from .transposed import conv_transpose2d, conv_transpose2d_backward

__version__ = "0.1.0"

__all__ = [
    "Geometry",
    "InputError",
    "borders",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv2d_input",
    "conv2d_weight",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "dilate",
    "flip_kernel",
    "grad_input_col2im",
    "grad_input_flipped",
    "im2col",
    "resolve",
]
