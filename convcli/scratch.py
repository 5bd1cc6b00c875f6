"""Scratch memory for the chunked passes: one buffer per thread, kept between calls.

A fresh NumPy array of a few MiB costs a page fault per 4 KiB page the first time it is
written; on this project's machines that was as slow as the copy into it (shape d: the first
chunk's copy of X_col took 1.2 ms, the others 0.3 ms). So each thread keeps its buffer, of at
most KEPT_BYTES, and hands out views of it; larger requests get a fresh array.
"""

from __future__ import annotations

import threading

import numpy as np

KEPT_BYTES = 16 * 2**20
"""The most scratch memory one thread keeps between calls."""

_kept = threading.local()


def scratch(size: int, dtype) -> np.ndarray:
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
    return _kept.buffer[:nbytes].view(dtype)
