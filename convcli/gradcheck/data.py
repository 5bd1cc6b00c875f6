"""The data of one checked configuration: x, w, b and g = dL/dy, and the geometry in the form
handed to an implementation under test (the calling convention)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import borders, transposed
from ..errors import InputError
from ..geometry import Geometry, pair
from ..validate import as_float, check_conv, check_finite
from .suite import Case

Array = NDArray[Any]


@dataclass
class CaseData:
    """One configuration's arrays and geometry.

    x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) or None, g = dL/dy (N, O, OH, OW), all in
    the check's dtype; geometry: the resolved stride, pad and dilation.
    """

    name: str
    x: Array
    w: Array
    b: Array | None
    g: Array
    geometry: Geometry
    groups: int
    description: str = ""
    kind: str = "conv2d"
    extra: dict[str, Any] = field(default_factory=dict)  # padding_mode, flip, output_padding

    def options(self) -> dict[str, Any]:
        """The keywords an implementation gets: stride and dilation as (h, w) pairs, padding as
        the explicit (top, bottom, left, right) 4-tuple, groups an int; and padding_mode, flip
        or output_padding only in the cases that use them."""
        return {"stride": self.geometry.stride, "padding": self.geometry.pad,
                "dilation": self.geometry.dilation, "groups": self.groups, **self.extra}

    @property
    def plain(self) -> bool:
        """conv2d with zero padding and no flip: the fast differences and the routes check."""
        return self.kind == "conv2d" and not self.extra

    def summary(self) -> dict[str, Any]:
        """Shapes and resolved geometry, for the report and its JSON."""
        return {"x_shape": self.x.shape, "w_shape": self.w.shape, "bias": self.b is not None,
                "stride": self.geometry.stride, "pad": self.geometry.pad,
                "dilation": self.geometry.dilation, "groups": self.groups,
                "y_shape": self.g.shape, "description": self.description, "kind": self.kind,
                **self.extra}


def from_case(case: Case, seed: int, index: int, dtype: np.dtype[Any]) -> CaseData:
    """A suite case's data, drawn from the generator seeded (seed, index): x, w, b and g
    standard normal (g random and non-uniform: an all-ones dL/dy hides a flipped kernel)."""
    rng = np.random.default_rng([seed, index])
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    outputs = (case.w_shape[1] * case.options.get("groups", 1)
               if case.kind == "conv_transpose2d" else case.w_shape[0])
    b = rng.standard_normal(outputs) if case.bias else None
    data = from_arrays(case.name, x, w, b, None, options=case.options, rng=rng, dtype=dtype,
                       kind=case.kind)
    data.description = case.description
    return data


def from_arrays(name: str, x: Any, w: Any, b: Any, grad_output: Any, *, options: dict[str, Any],
                rng: np.random.Generator, dtype: np.dtype[Any], kind: str = "conv2d"
                ) -> CaseData:
    """A user's case: the arrays checked (shapes, options, finite values) and cast to dtype;
    g is grad_output when given, else drawn from rng. kind "conv_transpose2d" takes w as
    (C_in, C_out/groups, KH, KW) and options with output_padding."""
    x, w, b, grad_output = as_float(x, w, b, grad_output)
    assert x is not None and w is not None
    options = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **options}
    extra: dict[str, Any] = {key: options.pop(key) for key in ("padding_mode", "flip", "output_padding")
             if key in options and options[key] not in ("zeros", False, 0, (0, 0))}
    options = {k: v for k, v in options.items() if k not in ("padding_mode", "flip",
                                                              "output_padding")}
    groups = int(options["groups"])
    if kind == "conv_transpose2d":
        y_shape, pad = transposed.output_shape(x, w, b, options["stride"], options["padding"],
                                               extra.get("output_padding", 0), groups,
                                               options["dilation"])
        extra["output_padding"] = pair(extra.get("output_padding", 0), "output_padding",
                                       minimum=0)
        geometry = Geometry(x.shape[2:], w.shape[2:], pair(options["stride"], "stride"),
                            pair(options["dilation"], "dilation"), pad, (y_shape[2], y_shape[3]))
    else:
        geometry = check_conv(x, w, b, **options)
        borders.check_mode(extra.get("padding_mode", "zeros"), geometry.input_size,
                           geometry.pad)
        y_shape = (x.shape[0], w.shape[0]) + geometry.output_size
    if grad_output is not None and grad_output.shape != y_shape:
        raise InputError(f"grad_output must have y's shape {y_shape}, got {grad_output.shape}")
    for label, array in (("x", x), ("w", w), ("b", b), ("grad_output", grad_output)):
        check_finite(label, array, "gradients cannot be checked on them; clean the data or "
                     "pick another input")
    x, w = (np.ascontiguousarray(a, dtype=dtype) for a in (x, w))
    b = None if b is None else np.ascontiguousarray(b, dtype=dtype)
    g = (rng.standard_normal(y_shape) if grad_output is None else grad_output).astype(
        dtype, copy=False)
    return CaseData(name, x, w, b, np.ascontiguousarray(g), geometry, groups, kind=kind,
                    extra=extra)
