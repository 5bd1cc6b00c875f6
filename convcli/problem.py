"""A user's convolution problem: the image and kernel they name and the geometry they ask for,
loaded and checked once, before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import borders, kernels, transposed
from .errors import InputError
from .geometry import Geometry, pair
from .images import LoadedImage, load_image
from .validate import check_conv, float_dtype

Array = NDArray[Any]


@dataclass(frozen=True)
class ProblemSpec:
    """What the user asked for, as given: the image's path, the kernel (a preset, an inline
    matrix or a file), stride, padding and dilation in any form conv2d takes, groups (None:
    from the kernel), bias values (one, or one per output channel; None: no bias), --gray, the
    dtype name and Pillow's pixel limit."""

    image: Path
    kernel: str
    stride: Any = 1
    padding: Any = "same"
    dilation: Any = 1
    groups: int | None = None
    bias: tuple[float, ...] | None = None
    gray: bool = False
    dtype: str = "float64"
    max_pixels: int | None = None
    padding_mode: str = "zeros"
    flip: bool = False
    transpose: bool = False
    output_padding: Any = 0

    def padding_text(self) -> str:
        """The padding as the user would type it: same, 1 or 1,0,1,0."""
        if isinstance(self.padding, (tuple, list)):
            return ",".join(str(v) for v in self.padding)
        return str(self.padding)


@dataclass(frozen=True)
class Problem:
    """x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) or None in one dtype, the groups and the
    resolved geometry, and where each came from."""

    spec: ProblemSpec
    image: LoadedImage
    w: Array
    b: Array | None
    groups: int
    geometry: Geometry
    kernel_source: str
    notes: list[str] = field(default_factory=list)

    @property
    def x(self) -> Array:
        return self.image.array

    def conv_options(self) -> dict[str, Any]:
        """conv2d's keywords for this problem: the resolved geometry and the groups, and the
        border mode and flip when they are not the defaults."""
        options = {**self.geometry.options(), "groups": self.groups}
        if self.spec.transpose:
            options["output_padding"] = self.spec.output_padding
        if self.spec.padding_mode != "zeros":
            options["padding_mode"] = self.spec.padding_mode
        if self.spec.flip:
            options["flip"] = True
        return options


def load_problem(spec: ProblemSpec) -> Problem:
    """Read the image and the kernel, make the kernel a conv2d weight for the image's channels
    (a 2-D kernel on a colour image: each channel separately), and check everything."""
    if spec.max_pixels is not None and spec.max_pixels < 1:
        raise InputError(f"--max-pixels must be at least 1, got {spec.max_pixels}")
    dtype = float_dtype(spec.dtype)
    image = load_image(spec.image, gray=spec.gray, dtype=dtype, max_pixels=spec.max_pixels)
    matrix, source = kernels.load_kernel(spec.kernel)
    if spec.transpose:
        return _transposed_problem(spec, image, matrix.astype(dtype), source)
    w, groups = kernels.as_weight(matrix, image.array.shape[1], spec.groups)
    w = w.astype(dtype)
    b = None if spec.bias is None else expand_bias(spec.bias, w.shape[0]).astype(dtype)
    geometry = check_conv(image.array, w, b, stride=spec.stride, padding=spec.padding,
                          dilation=spec.dilation, groups=groups)
    borders.check_mode(spec.padding_mode, geometry.input_size, geometry.pad)
    return Problem(spec, image, w, b, groups, geometry, source)


def _transposed_problem(spec: ProblemSpec, image: LoadedImage, matrix: Array,
                        source: str) -> Problem:
    """The problem of conv_transpose2d: the kernel as (C_in, C_out/groups, KH, KW), padding the
    rows and columns it crops, the geometry of the result (transposed.py checks it all)."""
    if isinstance(spec.padding, str):
        raise InputError(f"--transpose takes --padding N, H,W or T,B,L,R (the rows and columns "
                         f"it crops), not {spec.padding}")
    if spec.padding_mode != "zeros" or spec.flip:
        raise InputError("--transpose does not take --border or --flip")
    x = image.array
    w, groups = kernels.as_transposed_weight(matrix, x.shape[1], spec.groups)
    b = None if spec.bias is None else expand_bias(spec.bias, w.shape[1] * groups).astype(
        x.dtype)
    y_shape, pad = transposed.output_shape(x, w, b, spec.stride, spec.padding,
                                           spec.output_padding, groups, spec.dilation)
    geometry = Geometry(x.shape[2:], w.shape[2:], pair(spec.stride, "stride"),
                        pair(spec.dilation, "dilation"), pad, (y_shape[2], y_shape[3]))
    return Problem(spec, image, w, b, groups, geometry, source)


def expand_bias(values: tuple[float, ...], out_channels: int) -> Array:
    """One value for every output channel, or one per channel -> b (O,)."""
    if len(values) == 1:
        values = values * out_channels
    if len(values) != out_channels:
        raise InputError(f"--bias has {len(values)} values for {out_channels} output "
                         "channel(s): give one value, or one per channel")
    return np.array(values, dtype=np.float64)
