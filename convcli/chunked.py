"""convcli forward and backward on images bigger than memory: the image read lazily
(stores.py), y and the gradients built by convcli.dask, written chunk by chunk into a
temporary store renamed into place when whole, on Dask's threads, its processes or a
distributed cluster (schedulers.py). Each chunk's task also measures it (range, NaN and inf,
sums), so the summary needs no second pass over the data.

    run_forward_chunked(spec, out=y.zarr)     -> ChunkedForwardResult
    run_backward_chunked(spec, out=g.zarr)    -> ChunkedBackwardResult (a Zarr group: y,
                                                 grad_input, grad_weight, grad_bias, weight)
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import borders, kernels, stores
from .errors import InputError
from .problem import Problem, ProblemSpec, expand_bias
from .schedulers import Scheduler
from .validate import check_conv, float_dtype

Array = NDArray[Any]
Progress = Callable[[int, int], None]
WRITE = "convcli-write"


@dataclass(frozen=True)
class Stats:
    """What a chunk's values add up to: the finite range, NaN and inf counts, Σv and Σv²
    (finite values), the number of values."""

    low: float = math.inf
    high: float = -math.inf
    nan: int = 0
    inf: int = 0
    total: float = 0.0
    squares: float = 0.0

    @staticmethod
    def of(block: Array) -> Stats:
        finite = block[np.isfinite(block)]
        nan = int(np.isnan(block).sum())
        if not finite.size:
            return Stats(nan=nan, inf=int(block.size - nan))
        as64 = finite.astype(np.float64)
        return Stats(float(finite.min()), float(finite.max()), nan,
                     int(block.size - finite.size - nan), float(as64.sum()),
                     float(np.dot(as64, as64)))

    def __add__(self, other: Stats) -> Stats:
        return Stats(min(self.low, other.low), max(self.high, other.high), self.nan + other.nan,
                     self.inf + other.inf, self.total + other.total,
                     self.squares + other.squares)

    @staticmethod
    def sum(parts: Sequence[Stats]) -> Stats:
        result = Stats()
        for part in parts:
            result = result + part
        return result

    def range(self) -> tuple[float, float] | None:
        return None if self.low > self.high else (self.low, self.high)

    def nonfinite(self) -> tuple[int, int]:
        return self.nan, self.inf


@dataclass(frozen=True)
class ChunkedForwardResult:
    """y's shape, dtype and chunks and the measures of x and y, how long it took, where it
    ran and the store written."""

    problem: Problem
    y_shape: tuple[int, ...]
    y_dtype: str
    y_chunks: int
    x_stats: Stats
    y_stats: Stats
    seconds: float
    scheduler: str
    written: list[Path]

    def nonfinite(self) -> dict[str, tuple[int, int]]:
        counts = {"x": self.x_stats.nonfinite(), "y": self.y_stats.nonfinite()}
        return {name: c for name, c in counts.items() if any(c)}


@dataclass(frozen=True)
class ChunkedBackwardResult:
    """The forward result's facts, dL/dw and dL/db in memory (they are small), the measures
    of dL/dx, the loss and how it was made."""

    problem: Problem
    y_shape: tuple[int, ...]
    grad_weight: Array
    grad_bias: Array
    stats: dict[str, Stats]
    loss: float | None
    loss_text: str
    seconds: float
    scheduler: str
    chunks_written: int
    written: list[Path] = field(default_factory=list)

    def nonfinite(self) -> dict[str, tuple[int, int]]:
        counts = {name: s.nonfinite() for name, s in self.stats.items()}
        counts["grad_weight"] = _count(self.grad_weight)
        counts["grad_bias"] = _count(self.grad_bias)
        return {name: c for name, c in counts.items() if any(c)}

    def norms(self) -> dict[str, float]:
        return {"grad_input": math.sqrt(self.stats["grad_input"].squares),
                "grad_weight": float(np.linalg.norm(self.grad_weight)),
                "grad_bias": float(np.linalg.norm(self.grad_bias))}


def _count(array: Array) -> tuple[int, int]:
    nan = int(np.isnan(array).sum())
    return nan, int((~np.isfinite(array)).sum()) - nan


def open_problem(spec: ProblemSpec, chunks: tuple[int, int] | None) -> Problem:
    """load_problem for a chunked run: x lazy (N, C, H, W), the kernel and the geometry
    checked as always, but not against memory (no chunk holds the whole image)."""
    if spec.transpose:
        raise InputError("--transpose runs in memory only: drop --chunks, --scheduler and the "
                         "Zarr input or output")
    dtype = float_dtype(spec.dtype)
    image = stores.open_lazy(spec.image, dtype=dtype, gray=spec.gray, chunks=chunks,
                             max_pixels=spec.max_pixels)
    matrix, source = kernels.load_kernel(spec.kernel)
    w, groups = kernels.as_weight(matrix, image.array.shape[1], spec.groups)
    w = w.astype(dtype)
    b = None if spec.bias is None else expand_bias(spec.bias, w.shape[0]).astype(dtype)
    geometry = check_conv(image.array, w, b, stride=spec.stride, padding=spec.padding,
                          dilation=spec.dilation, groups=groups, in_memory=False)
    borders.check_mode(spec.padding_mode, geometry.input_size, geometry.pad)
    return Problem(spec, image, w, b, groups, geometry, source)


def check_chunks(chunks: Any) -> tuple[int, int] | None:
    """--chunks N or H,W -> (rows, cols); None stays None."""
    if chunks is None:
        return None
    pair = (chunks, chunks) if isinstance(chunks, int) else tuple(chunks)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise InputError(f"--chunks must be a positive N or H,W, got {chunks!r}")
    return int(pair[0]), int(pair[1])


def run_forward_chunked(spec: ProblemSpec, *, out: Path | None, chunks: Any,
                        scheduler: Scheduler, progress: Progress | None = None
                        ) -> ChunkedForwardResult:
    """y = x ⋆ w + b over chunks, written to `out` (.zarr or .npy; default
    IMAGE.forward.zarr) chunk by chunk."""
    from . import dask as lazy

    out, kind = _check_out(out, spec, "forward")
    problem = open_problem(spec, check_chunks(chunks))
    y = lazy.conv2d(problem.x, problem.w, problem.b, **problem.conv_options())
    y = _regular(y, problem.x)
    target = stores.target(out, kind)
    start = time.perf_counter()
    try:
        target.create(None, y.shape, y.dtype, _block_shape(y))
        writes = _writes(y, target, None)
        results = scheduler.compute(writes + _measures(problem.x), progress,
                                    counted=len(writes))
        target.commit()
    finally:
        target.discard()
    seconds = time.perf_counter() - start
    return ChunkedForwardResult(problem, tuple(y.shape), str(y.dtype), len(writes),
                                Stats.sum(results[len(writes):]),
                                Stats.sum(results[: len(writes)]), seconds, scheduler.name,
                                [out])


def run_backward_chunked(spec: ProblemSpec, *, loss: str = "sum", target: Path | None = None,
                         grad_output: Path | None = None, out: Path | None = None,
                         chunks: Any = None, scheduler: Scheduler,
                         progress: Progress | None = None) -> ChunkedBackwardResult:
    """y and the three gradients over chunks, for L = Σy, ½‖y − T‖² or a given dL/dy (a Zarr
    store, .npy or TIFF of y's shape), written to `out` (a Zarr group; default
    IMAGE.backward.zarr): y and grad_input chunk by chunk, grad_weight, grad_bias and the
    weight whole, the geometry as attributes."""
    import dask.array as da

    from . import dask as lazy

    out, _ = _check_out(out, spec, "backward", kinds=("zarr",), others=(target, grad_output))
    problem = open_problem(spec, check_chunks(chunks))
    x: Any = problem.x                                          # lazy (N, C, H, W)
    w = problem.w
    options = problem.conv_options()
    y = lazy.conv2d(x, w, problem.b, **options)
    y_shape = tuple(y.shape)
    if grad_output is not None:
        dy = _same_shape(_lazy(grad_output, spec, x.dtype), y_shape, "--grad-output")
        loss_text = f"dL/dy from {grad_output}"
    elif loss == "mse":
        assert target is not None
        dy = y - _same_shape(_lazy(target, spec, x.dtype), y_shape, "--target")
        loss_text = "L = ½‖y − T‖², dL/dy = y − T"
    else:
        dy = da.ones(y_shape, dtype=x.dtype, chunks=y.chunks)
        loss_text = "L = Σy, dL/dy = 1"
    dx, dw, db = lazy.conv2d_backward(dy, x, w, **options)
    store = stores.target(out, "zarr")
    g = problem.geometry
    start = time.perf_counter()
    try:
        store.group({"stride": list(g.stride), "dilation": list(g.dilation),
                     "padding": list(g.pad), "groups": problem.groups,
                     "padding_mode": spec.padding_mode, "flip": spec.flip, "loss": loss_text,
                     "source": str(spec.image), "kernel": problem.kernel_source})
        y_regular, dx_regular = _regular(y, x), dx.rechunk(x.chunks)
        store.create("y", y_regular.shape, y.dtype, _block_shape(y_regular))
        store.create("grad_input", dx.shape, dx.dtype, _block_shape(dx_regular))
        writes_y, writes_dx = _writes(y_regular, store, "y"), _writes(dx_regular, store,
                                                                      "grad_input")
        mse = [_squared_error(dy)] if grad_output is None and loss == "mse" else []
        results = scheduler.compute(writes_y + writes_dx + [dw, db] + mse, progress,
                                    counted=len(writes_y) + len(writes_dx))
        ny, ndx = len(writes_y), len(writes_dx)
        grad_weight, grad_bias = results[ny + ndx], results[ny + ndx + 1]
        for name, array in (("grad_weight", grad_weight), ("grad_bias", grad_bias),
                            ("weight", w)) + ((("bias", problem.b),) if problem.b is not None
                                              else ()):
            store.create(name, array.shape, array.dtype, array.shape)
            store.write(name, tuple(slice(None) for _ in array.shape), array)
        store.commit()
    finally:
        store.discard()
    seconds = time.perf_counter() - start
    y_stats = Stats.sum(results[:ny])
    loss_value: float | None = None
    if grad_output is None:
        loss_value = y_stats.total if loss == "sum" else 0.5 * float(results[-1])
    return ChunkedBackwardResult(problem, y_shape, grad_weight, grad_bias,
                                 {"y": y_stats, "grad_input": Stats.sum(results[ny: ny + ndx])},
                                 loss_value, loss_text, seconds, scheduler.name, ny + ndx, [out])


def _check_out(out: Path | None, spec: ProblemSpec, command: str,
               kinds: tuple[str, ...] = ("zarr", "npy"), others: Sequence[Path | None] = ()
               ) -> tuple[Path, str]:
    """The output (default IMAGE.COMMAND.zarr beside the image) and its kind, checked: not an
    input, a folder only if it is a Zarr store."""
    from .outputs import check_output, destination

    store, _ = stores.split(spec.image)
    if out is None:
        out = store.with_name(f"{store.stem}.{command}.zarr")
    kind = {".zarr": "zarr", ".npy": "npy"}.get(out.suffix.lower())
    if kind not in kinds:
        names = " or ".join(f"NAME.{k}" for k in kinds)
        raise InputError(f"a chunked {command} writes {names}, got --out {out}: name it so")
    inputs = [store, Path(spec.kernel), *(stores.split(p)[0] for p in others if p is not None)]
    final = destination(out)[1]
    for given in inputs:
        if given.exists() and final.exists() and final.resolve() == given.resolve():
            raise InputError(f"output {out} is also an input; inputs are never overwritten: "
                             "choose another output name")
    if kind == "zarr":
        stores.check_store_output(out)
        check_output(final.with_name(final.name + ".probe"), [])    # its folder is writable
        return out, kind
    check_output(out, inputs, fmt=kind)
    return out, kind


def _lazy(path: Path, spec: ProblemSpec, dtype: Any) -> Any:
    return stores.open_lazy(path, dtype=dtype, gray=spec.gray, chunks=None,
                            max_pixels=spec.max_pixels).array


def _same_shape(array: Any, y_shape: tuple[int, ...], option: str) -> Any:
    if tuple(array.shape) != y_shape:
        raise InputError(f"{option} has shape {tuple(array.shape)} but y has shape {y_shape}: "
                         "give an array of y's shape")
    return array


def _regular(y: Any, x: Any) -> Any:
    """y in chunks of x's own rows and columns (one per image, all channels), so each chunk
    fills its own chunks of the Zarr store (no two tasks write the same one)."""
    rows, cols = max(x.chunks[2]), max(x.chunks[3])
    return y.rechunk((1, -1, min(rows, y.shape[2]), min(cols, y.shape[3])))


def _block_shape(array: Any) -> tuple[int, ...]:
    return tuple(max(c) for c in array.chunks)


def _regions(chunks: tuple[tuple[int, ...], ...]) -> list[tuple[slice, ...]]:
    axes = [[slice(a, b) for a, b in itertools.pairwise(np.cumsum((0,) + c).tolist())]
            for c in chunks]
    return [tuple(region) for region in itertools.product(*axes)]


def _writes(array: Any, target: stores.Target, name: str | None) -> list[Any]:
    """One task per chunk: write it into its region of the store, return its Stats."""
    import dask

    tag = uuid.uuid4().hex[:8]
    blocks = array.to_delayed().ravel()
    return [dask.delayed(_write_block, pure=False)(block, target, name, region,
                                                    dask_key_name=f"{WRITE}-{tag}-{k}")
            for k, (block, region) in enumerate(zip(blocks, _regions(array.chunks),
                                                    strict=True))]


def _write_block(block: Array, target: stores.Target, name: str | None,
                 region: tuple[slice, ...]) -> Stats:
    target.write(name, region, block)
    return Stats.of(block)


def _measures(x: Any) -> list[Any]:
    """One task per chunk of x: its Stats (sharing the chunk with the convolution's tasks)."""
    import dask

    return [dask.delayed(Stats.of, pure=True)(block) for block in x.to_delayed().ravel()]


def _squared_error(dy: Any) -> Any:
    """Σ (y − T)² over finite values, lazily."""
    import dask.array as da

    return da.nansum(da.where(da.isfinite(dy), dy, 0) ** 2).astype(np.float64)
