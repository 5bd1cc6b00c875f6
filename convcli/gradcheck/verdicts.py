"""Verdicts: the tolerance rule, one Result per tensor of a configuration, and the Report of a
run (its settings, its results, JSON-ready)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError
from ..validate import float_dtype

TENSORS = ("grad_input", "grad_weight", "grad_bias")
ROUTES, ADJOINT = "routes_agree", "adjoint"
OUTPUT = "y"  # the forward under test, against conv2d
BACKWARD, FORWARD = "backward", "forward"  # results about a call: it raised, was skipped, or
# returned the wrong number of arrays

# (eps, atol, rtol) per dtype. float64: torch.autograd.gradcheck's atol and rtol; the numeric
# error on the suite is ~1e-9, so a correct backward passes ~10^4× inside the tolerance.
# float32: each y is rounded to ~6e-8·|y| and a difference over a step eps divides that by eps;
# summed over the outputs that move, the numeric error is ~1e-2 at eps 1e-2 on a 512×512 RGB
# image (measured). A central difference's truncation error is eps²/6 times the third
# derivative, and L is linear in each of x, w and b, so a large step costs nothing: eps = 0.1 (a
# tenth of an image's range) brings the error to ~2e-3 there and ~3e-5 on the suite. atol 1e-2
# then holds it ≥ 5× inside the tolerance even where a gradient is near 0; rtol 3e-3 is the
# 0.3% a float32 check can promise. On the suite every planted bug, "dw off by 1%" included,
# still fails on the same configurations as in float64 (tests/test_gradcheck.py).
DEFAULTS = {"float64": (1e-6, 1e-5, 1e-3), "float32": (1e-1, 1e-2, 3e-3)}
FLOAT32_WARNING = (
    "float32: finite differences in single precision are unreliable (each y is rounded to "
    "~6e-8 of its size, and that error is divided by the step), so this check uses looser "
    "tolerances (eps={eps:g}, atol={atol:g}, rtol={rtol:g}) and can miss errors smaller than "
    "atol + rtol·|gradient|. "
    "Prove a backward pass in float64."
)
WORST_SHOWN = 5


@dataclass
class Worst:
    """One checked coordinate: where, the two values, and error / tolerance (> 1 fails)."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    abs_err: float
    ratio: float


@dataclass
class Result:
    """The verdict on one tensor (or the routes/adjoint check) of one configuration."""

    configuration: str
    tensor: str  # grad_input, grad_weight, grad_bias, routes_agree, adjoint, y, backward, forward
    passed: bool
    checked: int  # coordinates compared
    size: int  # coordinates in the tensor
    max_abs_err: float
    max_rel_err: float
    max_ratio: float  # max over coordinates of |a − n| / (atol + rtol·|n|); passes when ≤ 1
    worst: list[Worst] = field(default_factory=list)
    note: str = ""
    error: str = ""  # the exception the implementation raised, "Type: message"
    skipped: bool = False  # the implementation raised NotImplementedError for this case


@dataclass
class Report:
    """Every result of one run, the settings it used, and any warnings (float32)."""

    results: list[Result]
    dtype: str
    seed: int
    eps: float
    atol: float
    rtol: float
    warnings: list[str] = field(default_factory=list)
    configurations: dict = field(default_factory=dict)  # name -> shapes and resolved geometry

    @property
    def passed(self) -> bool:
        """No check failed (skipped configurations are allowed)."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    def counts(self) -> dict[str, int]:
        """Configurations passed, failed and skipped."""
        rank = {"passed": 0, "skipped": 1, "failed": 2}
        verdicts: dict[str, str] = {}
        for r in self.results:
            verdict = "skipped" if r.skipped else "passed" if r.passed else "failed"
            if rank[verdict] >= rank[verdicts.get(r.configuration, "passed")]:
                verdicts[r.configuration] = verdict
        return {key: sum(v == key for v in verdicts.values())
                for key in ("passed", "failed", "skipped")}

    def to_dict(self) -> dict:
        """Plain JSON-ready data (NaN and inf become strings)."""
        data = asdict(self)
        for name, facts in data["configurations"].items():
            mine = [r for r in self.results if r.configuration == name]
            facts["passed"] = all(r.passed for r in mine)
            facts["skipped"] = any(r.skipped for r in mine)
            facts["error"] = next((r.error for r in mine if r.error), None)
        return _jsonable({"passed": self.passed, "counts": self.counts(), **data})



def compare(name, tensor, analytic, numeric, index, size, atol, rtol) -> Result:
    """Torch's rule |a − n| ≤ atol + rtol·|n| on each coordinate, and the worst few.

    analytic, numeric (K,); index (K, ndim) of the coordinates, or a shape when they are all
    of that shape's elements in C order.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    abs_err = np.abs(analytic - numeric)
    ratio = abs_err / (atol + rtol * np.abs(numeric))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)  # a NaN anywhere fails
    rel_err = abs_err / np.maximum(1e-12, np.abs(analytic) + np.abs(numeric))
    if len(ratio) > WORST_SHOWN:     # the worst few without sorting millions of pixels
        top = np.argpartition(-ratio, WORST_SHOWN - 1)[:WORST_SHOWN]
        order = top[np.lexsort((top, -ratio[top]))]         # worst first; ties by position
    else:
        order = np.argsort(-ratio, kind="stable")
    if isinstance(index, tuple):  # a shape: the coordinates are all its elements
        where = [np.unravel_index(k, index) if index else () for k in order]
    else:
        where = [index[k] for k in order]
    worst = [Worst(tuple(int(i) for i in at), float(analytic[k]), float(numeric[k]),
                   float(abs_err[k]), float(ratio[k])) for at, k in zip(where, order)]
    return Result(name, tensor, bool(np.all(ratio <= 1.0)), len(analytic), size,
                  _max(abs_err), _max(rel_err), _max(ratio), worst)


def combine(parts, name, tensor, size) -> Result:
    """One Result from the results of pieces of a tensor (their worst indices already global)."""
    worst = sorted((w for part in parts for w in part.worst), key=lambda w: -w.ratio)
    return Result(name, tensor, all(p.passed for p in parts), sum(p.checked for p in parts),
                  size, max((p.max_abs_err for p in parts), default=0.0),
                  max((p.max_rel_err for p in parts), default=0.0),
                  max((p.max_ratio for p in parts), default=0.0), worst[:WORST_SHOWN])


def _max(values):
    return float(np.max(values)) if len(values) else 0.0


def failure(name, tensor, size, note, error="") -> Result:
    """A result that could not be compared: the implementation raised (error), or returned
    something that is not the tensor (note)."""
    return Result(name, tensor, False, 0, size, math.inf, math.inf, math.inf, note=note,
                  error=error)


def skipped(name, function, error) -> Result:
    """A configuration the implementation (function: backward or forward) declined with
    NotImplementedError."""
    return Result(name, function, True, 0, 0, 0.0, 0.0, 0.0, note="skipped: " + error,
                  error=error, skipped=True)


def settings(dtype, eps, atol, rtol):
    """Resolve the dtype's defaults; float32 comes with its warning."""
    dtype = float_dtype(dtype).name
    default_eps, default_atol, default_rtol = DEFAULTS[dtype]
    eps = default_eps if eps is None else float(eps)
    atol = default_atol if atol is None else float(atol)
    rtol = default_rtol if rtol is None else float(rtol)
    for label, value in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if not value >= 0 or not math.isfinite(value) or (label == "eps" and value == 0):
            raise InputError(f"{label} must be a finite number {'>' if label == 'eps' else '>='}"
                             f" 0, got {value}")
    if atol == 0 and rtol == 0:
        raise InputError("atol and rtol cannot both be 0")
    warnings = [FLOAT32_WARNING.format(eps=eps, atol=atol, rtol=rtol)] if dtype == "float32" else []
    return dtype, eps, atol, rtol, warnings


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(float(value))
    return value
