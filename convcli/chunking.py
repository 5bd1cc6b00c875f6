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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

Chunk = tuple[slice, slice]
"""(items, rows): two slices of an output's N and OH axes."""

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes of scratch (pieces of X_col, or padded rows on the one-channel route) that conv2d and
conv2d_backward may use at once."""

X_COL_CHUNK_BYTES = 16 * 2**20
"""The largest piece of X_col per chunk, whatever the budget. Measured on the benchmark shapes
c-e: 4 MiB was up to 1.2× slower than 8-32 MiB on e; 8-32 MiB were within noise of each other,
and fewer, larger products lose less when the other core is busy."""

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


def run(task: Callable[[Chunk, NDArray[Any]], NDArray[Any] | None], batch: int,
        output_rows: int, row_size: int, memory_budget: int, dtype: DTypeLike) -> Any:
    """Run task(chunk, scratch) over chunks of the (batch, output_rows) output, in turn.

    row_size: scratch elements one output row of one item needs. One scratch buffer, reused by
    every chunk, holds at most min(memory_budget, X_COL_CHUNK_BYTES) bytes (or one row, if
    more). Returns the sum of what the tasks return (None if nothing).
    """
    itemsize = np.dtype(dtype).itemsize
    plan = chunks(batch, output_rows, row_size * itemsize,
                  min(X_COL_CHUNK_BYTES, memory_budget))
    most = max((items.stop - items.start) * (rows.stop - rows.start) for items, rows in plan)
    buffer = scratch(row_size * most, dtype)
    parts = [part for part in (task(chunk, buffer) for chunk in plan) if part is not None]
    return sum(parts[1:], parts[0]) if parts else None


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
