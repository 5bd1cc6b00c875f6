"""The checks that several modules share: dtypes, 4-D shapes, conv2d's arguments against each
other, dL/dy's shape and the memory budget. Each raises InputError with one line that names the
problem and the fix."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .geometry import Geometry, is_int, resolve

FLOAT_DTYPES = ("float64", "float32")
LAYOUTS = {"x": "(N, C, H, W)", "w": "(O, C/groups, KH, KW)"}


def float_dtype(name: object) -> np.dtype[Any]:
    """"float32" or "float64" (or those dtypes) -> the NumPy dtype; anything else is refused."""
    if str(name) not in FLOAT_DTYPES:
        raise InputError(f"dtype must be float32 or float64, got {name!r}")
    return np.dtype(str(name))


def as_float(*arrays: Any) -> list[NDArray[Any] | None]:
    """Arrays (None passes through) in one float dtype: float32 when every float input is at
    most 32-bit (float16 computes in float32) and no input is an integer or bool, float64
    otherwise. Mixed float32 and float64 inputs compute in float64, as NumPy promotes them
    (torch.nn.functional.conv2d refuses them)."""
    converted = [None if a is None else np.asarray(a) for a in arrays]
    dtypes: list[type[np.floating[Any]]] = []
    for a in converted:
        if a is None:
            continue
        if a.dtype.kind == "f":
            dtypes.append(np.float32 if a.dtype.itemsize <= 4 else np.float64)
        elif a.dtype.kind in "biu":
            dtypes.append(np.float64)
        else:
            raise InputError(f"arrays must hold real numbers, got dtype {a.dtype}")
    dtype = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    return [None if a is None else a.astype(dtype, copy=False) for a in converted]


def check_4d(array: NDArray[Any], name: str, layout: str | None = None) -> None:
    """array must be 4-D; the message names its layout, e.g. x (N, C, H, W)."""
    if array.ndim != 4:
        layout = layout or LAYOUTS.get(name, "(N, C, H, W)")
        raise InputError(f"{name} must be 4-D {layout}, got shape {array.shape}")


def check_conv(x: Any, w: Any, b: Any, *, stride: Any, padding: Any, dilation: Any,
               groups: Any, in_memory: bool = True) -> Geometry:
    """Check x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) and the options against each
    other; return the resolved geometry. in_memory: also refuse a padded input or an output
    larger than the memory available (a chunked run never holds them whole)."""
    check_4d(x, "x")
    check_4d(w, "w")
    if not is_int(groups) or groups < 1:
        raise InputError(f"groups must be a positive int, got {groups!r}")
    channels, out_channels = x.shape[1], w.shape[0]
    if channels % groups:
        raise InputError(f"groups={groups} does not divide {channels} input channels")
    if out_channels % groups:
        raise InputError(f"groups={groups} does not divide {out_channels} output channels")
    if w.shape[1] * groups != channels:
        raise InputError(
            f"w has {w.shape[1]} input channels per group but x has {channels} channels "
            f"(groups={groups}); w must be (O, C/groups, KH, KW)"
        )
    if b is not None and b.shape != (out_channels,):
        raise InputError(f"b must have shape (O,) = ({out_channels},), got {b.shape}")
    if min(x.shape) == 0 or min(w.shape) == 0:
        raise InputError(f"x {x.shape} and w {w.shape} must not have an empty axis")
    geometry = resolve(x.shape[2:], w.shape[2:], stride=stride, padding=padding,
                       dilation=dilation)
    if not in_memory:
        return geometry
    n, itemsize = x.shape[0], x.dtype.itemsize
    check_size("the zero-padded input", (n, channels) + geometry.padded_size, itemsize,
               "use less padding or dilation")
    check_size("the output y", (n, out_channels) + geometry.output_size, itemsize,
               "use a larger stride, less padding or a smaller input")
    return geometry


def max_bytes() -> int:
    """The most memory one array may take: CONVCLI_MAX_BYTES if set, else the memory this
    machine has available now (MemAvailable), else its physical memory."""
    given = os.environ.get("CONVCLI_MAX_BYTES", "").strip()
    if given:
        try:
            return int(float(given))
        except (ValueError, OverflowError):
            raise InputError(f"CONVCLI_MAX_BYTES must be a number of bytes, got {given!r}"
                             ) from None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63


def check_size(what: str, shape: tuple[int, ...], itemsize: int, fix: str) -> None:
    """Refuse, before allocating it, an array larger than max_bytes()."""
    size = math.prod(shape) * itemsize
    limit = max_bytes()
    if size > limit:
        raise InputError(f"{what} would be {'×'.join(map(str, shape))} = {_gib(size)}, more "
                         f"than the {_gib(limit)} of memory available: {fix} (or allow it "
                         "with `convcli --max-bytes N` or CONVCLI_MAX_BYTES)")


def _gib(size: int) -> str:
    return f"{size / 2**30:,.1f} GiB" if size >= 2**28 else f"{size / 2**20:,.1f} MiB"


def check_x_shape(shape: Any, name: str = "x_shape", layout: str = "(N, C, H, W)"
                  ) -> tuple[int, int, int, int]:
    """A 4-D shape of positive ints, as the dL/dx and dL/dw functions take it."""
    values = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    if len(values) != 4 or not all(is_int(v) and v > 0 for v in values):
        raise InputError(f"{name} must be {layout} of positive ints, got {shape!r}")
    n, c, h, w = (int(v) for v in values)
    return n, c, h, w


def check_grad_output(grad_output: NDArray[Any], x_shape: tuple[int, ...],
                      w_shape: tuple[int, ...], geometry: Geometry) -> None:
    """dL/dy must have y's shape (N, O, OH, OW)."""
    expected = (x_shape[0], w_shape[0]) + geometry.output_size
    if grad_output.shape != expected:
        raise InputError(
            f"grad_output must have y's shape (N, O, OH, OW) = {expected}, "
            f"got {grad_output.shape}"
        )


def check_budget(memory_budget: object) -> int:
    """memory_budget: a positive int number of bytes."""
    if not is_int(memory_budget):
        raise InputError(f"memory_budget must be an int number of bytes, got {memory_budget!r}")
    budget = int(memory_budget)
    if budget < 1:
        raise InputError(f"memory_budget must be >= 1 byte, got {memory_budget!r}")
    return budget


def check_suffix(path: Path, suffixes: tuple[str, ...], option: str) -> None:
    """An output named for its format: path must end in one of suffixes (any case)."""
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{option} must end in {', '.join(suffixes)}, got {path}")


def count_nonfinite(array: NDArray[Any]) -> tuple[int, int]:
    """(NaN count, ±inf count) of an array."""
    nans = int(np.count_nonzero(np.isnan(array)))
    return nans, array.size - int(np.count_nonzero(np.isfinite(array))) - nans


def check_finite(label: str, array: NDArray[Any] | None, why: str) -> None:
    """Refuse NaN or inf in data a command cannot work with; why: the consequence and fix."""
    if array is None:
        return
    nans, infs = count_nonfinite(array)
    if nans or infs:
        bad = nans + infs
        raise InputError(f"{label} has {bad:,} non-finite value{'s' if bad != 1 else ''} "
                         f"({nans:,} NaN, {infs:,} inf) of {array.size:,}: {why}")
