"""Every memory budget of convcli, how work is cut to fit one, the scratch memory it runs in, and
the thread pool.

X_col has KH·KW times as many numbers as x, so it is never built whole: the output is cut into
chunks of batch items and output rows whose scratch fits a budget (``chunks``), each chunk
copies its piece into one scratch buffer, multiplies, and moves on (``run``).

A fresh NumPy array of a few MiB costs a page fault per 4 KiB page the first time it is
written; on this project's machines that was as slow as the copy into it (shape d: the first
chunk's copy of X_col took 1.2 ms, the others 0.3 ms). So each thread keeps its scratch buffer,
of at most KEPT_BYTES, and hands out views of it (``scratch``); larger requests get a fresh
array.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike, NDArray

from . import blas, cores
from .geometry import Geometry

Chunk = tuple[slice, slice]
"""(items, rows): two slices of an output's N and OH axes."""

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes of scratch (pieces of X_col, or padded rows on the one-channel route) that conv2d and
conv2d_backward may use at once."""

X_COL_CHUNK_BYTES = 16 * 2**20
"""The largest piece of X_col per chunk when BLAS runs each product on every core (convcli
cannot set its thread count). Measured on the benchmark shapes c-e: 4 MiB was up to 1.2× slower
than 8-32 MiB on e; 8-32 MiB were within noise of each other."""

SHARED_CHUNK_BYTES = 4 * 2**20
"""The largest scratch of one chunk when each core's worker runs its own chunks on one BLAS
thread (run_shared). Measured on the flat route, float32 c and d forward against torch:
0.5, 1, 2, 4, 8 MiB gave 2.5, 2.0, 1.75, 1.58, 1.67× (c) and 2.1, 2.2, 1.85, 1.63, 1.85× (d)."""

ONE_CHANNEL_CHUNK_BYTES = 2 * 2**20
"""Padded input rows and partial sum per chunk of the one-channel route (measured from 256 KiB
to 4 MiB on the benchmark shapes a and f: 2 and 4 MiB were the fastest, 256 KiB 1.4× slower)."""

THREADS_FROM = 2**24
"""Multiply-adds below which a second thread costs more than it saves (measured: shape a)."""

KEPT_BYTES = 16 * 2**20
"""The most scratch memory one thread keeps between calls."""

GRADCHECK_CHUNK_ELEMENTS = 8_000_000
"""y elements per batched conv2d call of gradcheck's differences (64 MB in float64)."""

LSTSQ_CHUNK_BYTES = 32 * 2**20
"""Scratch for one piece of [X_col, 1] in fit's least squares."""


def chunks(batch: int, output_rows: int, row_bytes: int, budget: int) -> list[Chunk]:
    """Split an output of `batch` items of `output_rows` rows into pieces of similar size whose
    scratch memory, `row_bytes` per output row, stays within `budget` bytes.

    -> [(items, rows)], two slices each: whole items together while one item fits the budget,
    else runs of rows of one item, at least one row even when one row is over the budget.

    >>> chunks(4, 10, row_bytes=100, budget=2000)
    [(slice(0, 2, None), slice(0, 10, None)), (slice(2, 4, None), slice(0, 10, None))]
    >>> [(rows.start, rows.stop) for _, rows in chunks(1, 10, row_bytes=100, budget=450)]
    [(0, 3), (3, 6), (6, 10)]
    """
    rows_fit = max(1, budget // max(1, row_bytes))
    if rows_fit >= output_rows:
        per_chunk = rows_fit // output_rows
        return [(items, slice(0, output_rows)) for items in even_slices(batch, per_chunk)]
    return [
        (slice(n, n + 1), rows)
        for n in range(batch)
        for rows in even_slices(output_rows, rows_fit)
    ]


def chunks_with_halo(batch: int, output_rows: int, row_bytes: int, halo_bytes: int,
                     budget: int) -> list[Chunk]:
    """chunks, with halo_bytes more per item in a chunk (the input rows under the last output
    row's window beyond its own): whole items while one fits, else runs of rows of one item."""
    if output_rows * row_bytes + halo_bytes <= budget:
        return chunks(batch, output_rows, row_bytes + -(-halo_bytes // output_rows), budget)
    return chunks(batch, output_rows, row_bytes, max(1, budget - halo_bytes))


def even_slices(length: int, most: int) -> list[slice]:
    """[0, length) cut into the fewest runs of at most `most`, their sizes differing by <= 1."""
    count = math.ceil(length / most)
    bounds = [length * k // count for k in range(count + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class Design:
    """How conv.py computes one layer: every choice of design in one place.

    flat: the flat-shift X_col (flat.py), else the strided one (columns.py).
    workers: threads for the chunks, each with single-threaded BLAS (run_shared); 1 means one
        chunk at a time, each product on every core.
    weight: dL/dW by "shifted" products (one per tap, no X_col; flat only) or by "columns"
        (X_colᵀ·dL/dY).
    grad_input: dL/dX by "flipped" (dL/dy ⋆ flipped kernel, a forward pass) or "col2im".
    """

    flat: bool
    workers: int
    weight: Literal["shifted", "columns"]
    grad_input: Literal["flipped", "col2im"]


SHIFTED_FROM = 2048
"""Output pixels of one item, counted Wp wide, from which dL/dW takes the shifted products."""


def route(geometry: Geometry, in_channels: int, out_channels: int) -> Design:
    """The rule, from issue 18's measurements against torch on 2 cores (benchmarks/README.md).

    Stride 1: the flat X_col on one worker per core (float32 c, d forward 1.96, 2.42× torch ->
    1.62, 1.64× in one bench.py run). dL/dW by shifted products, one (C × R·Wp)·(R·Wp × O) per
    tap and chunk of one item, when an item has at least SHIFTED_FROM output pixels (c: 3248,
    shifted 1.34× torch, X_col 1.64-1.78×); on smaller items they are too small and
    X_colᵀ·dL/dY over several items wins (d: 1088, shifted 1.83×, X_col 1.61-1.68×). dL/dX flipped when C >= O, else
    col2im, whose product (C·KH·KW × O)·(O × M) is taller than the flipped one's
    (C × O·KH·KW)·(…) (d, C = 32, O = 64: flipped 2.35×, col2im 1.75×; c, C = O: 1.75×,
    2.23×). Stride 2 (shape e): workers were no faster than one product on both cores (forward
    1.63× on one, 1.7-2.3× on two with 1-8 MiB chunks): the strided X_col and col2im.
    """
    if geometry.stride == (1, 1):
        workers = threads() if blas.available() else 1
        pixels = geometry.output_size[0] * geometry.padded_size[1]
        return Design(True, workers, "shifted" if pixels >= SHIFTED_FROM else "columns",
                      "flipped" if in_channels >= out_channels else "col2im")
    return Design(False, 1, "columns", "col2im")


def run(task: Callable[[Chunk, NDArray[Any]], NDArray[Any] | None], batch: int,
        output_rows: int, row_size: int, memory_budget: int, dtype: DTypeLike, *,
        workers: int = 1, one_item: bool = False, rows_overlap: bool = False) -> Any:
    """Run task(chunk, scratch) over chunks of the (batch, output_rows) output and return the sum
    of what the tasks return (None if nothing).

    row_size: scratch elements one output row of one item needs. On `workers` threads
    (run_shared), each with scratch of at most SHARED_CHUNK_BYTES (and memory_budget / workers);
    on one, in turn with up to X_COL_CHUNK_BYTES, each product on every core. one_item: no
    chunk holds more than one item. rows_overlap: chunks of one item add onto shared rows, so
    they run at once only when every chunk is whole items.
    """
    itemsize = np.dtype(dtype).itemsize
    budget = min(SHARED_CHUNK_BYTES if workers > 1 else X_COL_CHUNK_BYTES,
                 max(1, memory_budget // workers))
    if one_item:
        budget = min(budget, output_rows * row_size * itemsize)
    plan = chunks(batch, output_rows, row_size * itemsize, budget)
    if rows_overlap and any(rows.stop - rows.start < output_rows for _, rows in plan):
        workers = 1
    most = max((items.stop - items.start) * (rows.stop - rows.start) for items, rows in plan)
    return run_shared(task, plan, row_size * most, dtype, workers)


Task = Callable[[Chunk, NDArray[Any]], NDArray[Any] | None]


def run_shared(task: Task, plan: list[Chunk], chunk_size: int, dtype: DTypeLike,
               workers: int) -> Any:
    """Run task(chunk, scratch) over the chunks of plan on `workers` threads, each with
    single-threaded BLAS (blas.one_thread), and return the sum of what the tasks return, added
    in the plan's order whichever thread made them, so that a call repeats to the bit (None if
    nothing).

    The calling thread is one of the workers; each takes the next chunk when it is done with
    one (a busy core does not hold back the other), in its own scratch of chunk_size elements,
    on its own CPU while no other shared run is going (cores.py). The first error (or Ctrl-C)
    in any worker takes the chunks left, so the others stop after the chunk in hand. Tasks must
    write disjoint outputs or return what is to be summed. Run from inside a worker, or with
    one worker, it is in turn on this thread.
    """
    todo, lock = iter(enumerate(plan)), threading.Lock()
    if workers < 2 or len(plan) < 2 or getattr(_kept, "worker", False) or not blas.available():
        return _total(_work_through(task, todo, lock, chunk_size, dtype))
    with blas.one_thread(), cores.alone(workers) as cpus:
        errors = dict(np.geterr())          # NumPy's error state is per thread: the caller's
        helpers = [pool(workers - 1).submit(_as_worker, task, todo, lock, chunk_size, dtype, cpu,
                                            errors)
                   for cpu in cpus[1:]]
        try:
            with cores.pinned(cpus[0]):
                parts = _work_through(task, todo, lock, chunk_size, dtype)
        finally:
            for helper in helpers:
                helper.cancel()                 # not started yet: the chunks are all taken
            done = [helper.result() for helper in helpers if not helper.cancelled()]
    return _total([part for share in done for part in share] + parts)


def _as_worker(task: Task, todo: Iterator[tuple[int, Chunk]], lock: threading.Lock,
               chunk_size: int, dtype: DTypeLike, cpu: int | None,
               errors: dict[str, Any]) -> list[tuple[int, NDArray[Any]]]:
    _kept.worker = True
    with cores.pinned(cpu), np.errstate(**errors):
        return _work_through(task, todo, lock, chunk_size, dtype)


def _work_through(task: Task, todo: Iterator[tuple[int, Chunk]], lock: threading.Lock,
                  chunk_size: int, dtype: DTypeLike) -> list[tuple[int, NDArray[Any]]]:
    """Take (index, chunk) pairs from the shared iterator todo until none are left; -> the
    task's results with their chunk's index. An error takes every chunk left first."""
    buffer = scratch(chunk_size, dtype)
    parts: list[tuple[int, NDArray[Any]]] = []
    while True:
        with lock:
            taken = next(todo, None)
        if taken is None:
            return parts
        index, chunk = taken
        try:
            part = task(chunk, buffer)
        except BaseException:
            with lock:
                for _ in todo:                  # no worker starts another chunk
                    pass
            raise
        if part is not None:
            parts.append((index, part))


def _total(parts: list[tuple[int, NDArray[Any]]]) -> Any:
    """The sum of the parts in the order of their chunks (floating-point addition is not
    associative: the order the threads finished in would change the last bits)."""
    ordered = [part for _, part in sorted(parts, key=lambda pair: pair[0])]
    return sum(ordered[1:], ordered[0]) if ordered else None


_kept = threading.local()


def scratch(size: int, dtype: DTypeLike) -> NDArray[Any]:
    """A flat array of `size` elements of dtype, valid until this thread's next call.

    >>> a = scratch(4, np.float64); a[:] = 1.0
    >>> scratch(2, np.float32).shape
    (2,)
    """
    nbytes = size * np.dtype(dtype).itemsize
    if nbytes > KEPT_BYTES:
        return np.empty(size, dtype=dtype)
    if getattr(_kept, "buffer", None) is None or _kept.buffer.size < nbytes:
        _kept.buffer = np.empty(nbytes, dtype=np.uint8)
    kept: NDArray[np.uint8] = _kept.buffer
    return kept[:nbytes].view(dtype)


def forget_scratch() -> None:
    """Drop this thread's kept buffer (for memory measurements that must see it allocated)."""
    _kept.buffer = None


def threads() -> int:
    """Threads for chunks: OPENBLAS_NUM_THREADS or OMP_NUM_THREADS when set, else the CPUs this
    process may run on."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def pool(workers: int) -> ThreadPoolExecutor:
    """The thread pool of this size, made once per process."""
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convcli")
        return _pools[workers]


def _forget_pools_after_fork() -> None:
    """A forked child has the parent's pools but none of their threads: start afresh."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)
