"""The data of one checked configuration: x, w, b and g = dL/dy, and the geometry in the form
handed to an implementation under test (the calling convention)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..geometry import Geometry
from ..validate import as_float, check_conv, check_finite, check_grad_output
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

    def options(self) -> dict[str, Any]:
        """The keywords an implementation gets: stride and dilation as (h, w) pairs, padding as
        the explicit (top, bottom, left, right) 4-tuple, groups an int."""
        return {"stride": self.geometry.stride, "padding": self.geometry.pad,
                "dilation": self.geometry.dilation, "groups": self.groups}

    def summary(self) -> dict[str, Any]:
        """Shapes and resolved geometry, for the report and its JSON."""
        return {"x_shape": self.x.shape, "w_shape": self.w.shape, "bias": self.b is not None,
                "stride": self.geometry.stride, "pad": self.geometry.pad,
                "dilation": self.geometry.dilation, "groups": self.groups,
                "y_shape": self.g.shape, "description": self.description}


def from_case(case: Case, seed: int, index: int, dtype: np.dtype[Any]) -> CaseData:
    """A suite case's data, drawn from the generator seeded (seed, index): x, w, b and g
    standard normal (g random and non-uniform: an all-ones dL/dy hides a flipped kernel)."""
    rng = np.random.default_rng([seed, index])
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    b = rng.standard_normal(case.w_shape[0]) if case.bias else None
    data = from_arrays(case.name, x, w, b, None, options=case.options, rng=rng, dtype=dtype)
    data.description = case.description
    return data


def from_arrays(name: str, x: Any, w: Any, b: Any, grad_output: Any, *, options: dict[str, Any],
                rng: np.random.Generator, dtype: np.dtype[Any]) -> CaseData:
    """A user's case: the arrays checked (shapes, options, finite values) and cast to dtype;
    g is grad_output when given, else drawn from rng."""
    x, w, b, grad_output = as_float(x, w, b, grad_output)
    assert x is not None and w is not None
    options = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **options}
    geometry = check_conv(x, w, b, **options)
    groups = int(options["groups"])
    if grad_output is not None:
        check_grad_output(grad_output, x.shape, w.shape, geometry)
    for label, array in (("x", x), ("w", w), ("b", b), ("grad_output", grad_output)):
        check_finite(label, array, "gradients cannot be checked on them; clean the data or "
                     "pick another input")
    x, w = (np.ascontiguousarray(a, dtype=dtype) for a in (x, w))
    b = None if b is None else np.ascontiguousarray(b, dtype=dtype)
    shape = (x.shape[0], w.shape[0]) + geometry.output_size
    g = (rng.standard_normal(shape) if grad_output is None else grad_output).astype(
        dtype, copy=False)
    return CaseData(name, x, w, b, np.ascontiguousarray(g), geometry, groups)
