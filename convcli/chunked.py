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
from .outputs import check_output, destination
from .problem import Problem, ProblemSpec, expand_bias
from .schedulers import Scheduler
from .validate import check_conv, count_nonfinite, float_dtype

Array = NDArray[Any]
Progress = Callable[[int, int], None]
WRITE = "convcli-write"
STRIP_BYTES = 64 * 2**20
"""A strip of columns written together holds about this much per row of chunks."""


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
    def of(block: Array, sums: bool = False) -> Stats:
        """A chunk's Stats; Σv and Σv² (in float64) only when `sums`. All finite, the common
        case, costs one min and one max; masks only when they say otherwise."""
        low, high = (block.min(), block.max()) if block.size else (math.inf, -math.inf)
        total = squares = 0.0
        if np.isfinite(low) and np.isfinite(high) or not block.size:
            nan = inf = 0
            values = block
        else:
            mask = np.isfinite(block)
            values = block[mask]
            nan = int(np.isnan(block).sum())
            inf = int(block.size - values.size - nan)
            low, high = (values.min(), values.max()) if values.size else (math.inf, -math.inf)
        if sums and values.size:
            total = float(values.sum(dtype=np.float64))
            squares = float(np.einsum("i,i->", values.ravel(), values.ravel(),
                                      dtype=np.float64))
        return Stats(float(low), float(high), nan, inf, total, squares)

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
    """y's shape, dtype and chunks and the measures of y, how long it took, where it ran and
    the store written. x is not measured: that would read it a second time, or keep its
    chunks until the end."""

    problem: Problem
    y_shape: tuple[int, ...]
    y_dtype: str
    y_chunks: int
    y_stats: Stats
    seconds: float
    scheduler: str
    written: list[Path]

    def nonfinite(self) -> dict[str, tuple[int, int]]:
        counts = self.y_stats.nonfinite()
        return {"y": counts} if any(counts) else {}


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
        counts["grad_weight"] = count_nonfinite(self.grad_weight)
        counts["grad_bias"] = count_nonfinite(self.grad_bias)
        return {name: c for name, c in counts.items() if any(c)}

    def norms(self) -> dict[str, float]:
        return {"grad_input": math.sqrt(self.stats["grad_input"].squares),
                "grad_weight": float(np.linalg.norm(self.grad_weight)),
                "grad_bias": float(np.linalg.norm(self.grad_bias))}


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
        results, _ = _write_in_strips(y, target, None, scheduler, progress)
        target.commit()
    finally:
        target.discard()
    seconds = time.perf_counter() - start
    return ChunkedForwardResult(problem, tuple(y.shape), str(y.dtype), len(results),
                                Stats.sum(results), seconds, scheduler.name, [out])


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
    dx = lazy.conv2d_backward(dy, x, w, **options)[0]
    store = stores.target(out, "zarr")
    g = problem.geometry
    mse = grad_output is None and loss == "mse"
    parts = _weight_parts(problem, x, dy, mse)
    start = time.perf_counter()
    try:
        store.group({"stride": list(g.stride), "dilation": list(g.dilation),
                     "padding": list(g.pad), "groups": problem.groups,
                     "padding_mode": spec.padding_mode, "flip": spec.flip, "loss": loss_text,
                     "source": str(spec.image), "kernel": problem.kernel_source})
        y_regular, dx_regular = _regular(y, x), dx.rechunk(x.chunks)
        store.create("y", y_regular.shape, y.dtype, _block_shape(y_regular))
        store.create("grad_input", dx.shape, dx.dtype, _block_shape(dx_regular))
        count = _Count(progress, int(np.prod(y_regular.numblocks)
                                     + np.prod(dx_regular.numblocks)))
        y_stats, sums = _write_in_strips(y_regular, store, "y", scheduler, count, sums=True,
                                         along=parts)                      # L = Σy, dL/dw
        dx_stats, _ = _write_in_strips(dx_regular, store, "grad_input", scheduler, count,
                                       sums=True)                         # ‖dL/dx‖
        grad_weight = np.sum([part[0] for part in sums], axis=0)
        grad_bias = np.sum([part[1] for part in sums], axis=0)
        if spec.flip:                          # the gradient of w, not of the kernel applied
            grad_weight = np.ascontiguousarray(grad_weight[..., ::-1, ::-1])
        for name, array in (("grad_weight", grad_weight), ("grad_bias", grad_bias),
                            ("weight", w)) + ((("bias", problem.b),) if problem.b is not None
                                              else ()):
            store.create(name, array.shape, array.dtype, array.shape)
            store.write(name, tuple(slice(None) for _ in array.shape), array)
        store.commit()
    finally:
        store.discard()
    seconds = time.perf_counter() - start
    loss_value: float | None = None
    measured = Stats.sum(y_stats)
    if grad_output is None and any(measured.nonfinite()):
        loss_value = math.nan                     # as Σy is when y holds a NaN or an inf
    elif grad_output is None:
        loss_value = (measured.total if loss == "sum"
                      else 0.5 * float(sum(part[2] for part in sums)))
    return ChunkedBackwardResult(problem, y_shape, grad_weight, grad_bias,
                                 {"y": measured, "grad_input": Stats.sum(dx_stats)},
                                 loss_value, loss_text, seconds, scheduler.name,
                                 len(y_stats) + len(dx_stats), [out])


def _weight_parts(problem: Problem, x: Any, dy: Any, mse: bool
                  ) -> Callable[[int, int], list[Any]]:
    """For the output columns [o0, o1): that strip's share of dL/dw (the lazy dL/dw of the
    columns of x its windows read, with the strip's share of the padding), of dL/db and,
    for the mse loss, of Σ(y − T)²."""
    from . import dask as lazy

    g, mode = problem.geometry, problem.spec.padding_mode
    x_padded = x if mode == "zeros" else lazy.pad(x, g.pad, mode)
    pad = g.pad if mode == "zeros" else (0, 0, 0, 0)
    w = problem.w[..., ::-1, ::-1] if problem.spec.flip else problem.w    # the kernel applied
    stride, span = g.stride[1], g.dilated_kernel_size[1]

    def parts(o0: int, o1: int) -> list[Any]:
        lo, hi = o0 * stride - pad[2], (o1 - 1) * stride - pad[2] + span
        a, b = max(0, lo), min(x_padded.shape[3], hi)
        dy_strip = dy[..., o0:o1]
        dw: Any = np.zeros(w.shape, dtype=w.dtype)
        if a < b:                              # else windows wholly in the padding: no share
            columns = x_padded[..., a:b].rechunk({2: max(x.chunks[2]), 3: max(x.chunks[3])})
            dw = lazy.conv2d_weight(columns, w.shape, dy_strip, stride=g.stride,
                                    padding=(pad[0], pad[1], a - lo, hi - b),
                                    dilation=g.dilation, groups=problem.groups)
        found = [dw, dy_strip.sum(axis=(0, 2, 3))]
        return found + ([_squared_error(dy_strip)] if mse else [])

    return parts


class _Count:
    """One progress count over several strips and arrays."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, done: int, _: int) -> None:
        if self.progress is not None:
            self.progress(self.done + done, self.total)


def _check_out(out: Path | None, spec: ProblemSpec, command: str,
               kinds: tuple[str, ...] = ("zarr", "npy"), others: Sequence[Path | None] = ()
               ) -> tuple[Path, str]:
    """The output (default IMAGE.COMMAND.zarr beside the image) and its kind, checked: not an
    input, a folder only if it is a Zarr store."""
    store, _ = stores.split(spec.image)
    if out is None:
        out = store.with_name(f"{store.stem}.{command}.zarr")
    if destination(out)[0] != "file":
        raise InputError(f"a chunked {command} writes its output chunk by chunk into a file "
                         f"or a Zarr store, not to a stream like {out}: give --out NAME.zarr")
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


def strips(array: Any) -> list[tuple[int, int]]:
    """Column ranges of array (N, C, H, W), each a whole number of its column chunks holding
    about STRIP_BYTES per row of chunks (at least two chunks wide)."""
    chunk_bytes = (array.dtype.itemsize * max(array.chunks[0]) * array.shape[1]
                   * max(array.chunks[2]) * max(array.chunks[3]))
    width = max(2, STRIP_BYTES // max(1, chunk_bytes))
    edges = np.cumsum((0,) + array.chunks[3]).tolist()
    return [(edges[k], edges[min(k + width, len(edges) - 1)])
            for k in range(0, len(edges) - 1, width)]


def _write_in_strips(array: Any, target: stores.Target, name: str | None,
                     scheduler: Scheduler, progress: Progress | None, sums: bool = False,
                     along: Callable[[int, int], list[Any]] | None = None
                     ) -> tuple[list[Stats], list[list[Any]]]:
    """Write array chunk by chunk, one strip of columns after another: a strip's tasks share
    the input chunks they read, and only a strip's chunks (and its halo) are in memory at
    once, whatever the image's width. along(start, stop): more Dask values to compute with
    each strip (sharing its chunks). Returns each chunk's Stats and each strip's values."""
    count = progress if isinstance(progress, _Count) else _Count(
        progress, int(np.prod(array.numblocks)))
    results: list[Stats] = []
    values: list[list[Any]] = []
    for start, stop in strips(array):
        writes = _writes(array[..., start:stop], target, name, sums, offset=start)
        more = along(start, stop) if along is not None else []
        found = scheduler.compute(writes + more, count, counted=len(writes))
        results.extend(found[: len(writes)])
        values.append(found[len(writes):])
        count.done += len(writes)
    return results, values


def _writes(array: Any, target: stores.Target, name: str | None, sums: bool = False,
            offset: int = 0) -> list[Any]:
    """One task per chunk: write it into its region of the store (its columns shifted by
    `offset`), return its Stats (with its sums if `sums`)."""
    import dask

    tag = uuid.uuid4().hex[:8]
    blocks = array.to_delayed().ravel()
    regions = [region[:-1] + (slice(region[-1].start + offset, region[-1].stop + offset),)
               for region in _regions(array.chunks)]
    return [dask.delayed(_write_block, pure=False)(block, target, name, region, sums,
                                                    dask_key_name=f"{WRITE}-{tag}-{k}")
            for k, (block, region) in enumerate(zip(blocks, regions, strict=True))]


def _write_block(block: Array, target: stores.Target, name: str | None,
                 region: tuple[slice, ...], sums: bool) -> Stats:
    target.write(name, region, block)
    return Stats.of(block, sums)


def _squared_error(dy: Any) -> Any:
    """Σ (y − T)² over finite values, lazily."""
    import dask.array as da

    return da.nansum(da.where(da.isfinite(dy), dy, 0) ** 2).astype(np.float64)
