"""NumPy's BLAS on one thread while convcli's own workers run the products.

On two cores, two worker threads that each run single-threaded GEMMs on their own chunks beat
one thread whose every GEMM OpenBLAS splits over both cores (issue 18: the split pays a thread
hand-off per product, and the products of a chunk are small). OpenBLAS's thread count is one
number for the whole process, so ``one_thread()`` sets it to 1 while at least one convcli call
needs it and puts the old count back when the last one ends.

NumPy's wheels bundle OpenBLAS (``scipy_openblas64_``) with its own symbol names, beside NumPy
(numpy.libs); elsewhere the process's only loaded OpenBLAS is taken. Where neither is found
(another BLAS, two OpenBLAS and no wheel) ``available()`` is False and convcli runs one chunk
at a time, each product on BLAS's threads.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")


def _candidates() -> list[str]:
    """Paths of NumPy's own OpenBLAS: the one its wheel bundles (numpy.libs, numpy/.dylibs), or
    the only OpenBLAS loaded in the process. SciPy's wheels load a second OpenBLAS of their own
    (scipy.libs), whose thread count does nothing to NumPy's products."""
    numpy_dir = os.path.dirname(os.path.abspath(np.__file__))
    bundled: list[str] = []
    for pattern in ("../numpy.libs/*openblas*", ".dylibs/*openblas*"):
        bundled += sorted(glob.glob(os.path.join(numpy_dir, pattern)))
    if bundled:
        return [path for path in bundled if os.path.isfile(path)]
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            loaded = {line.split(None, 5)[-1].strip() for line in maps if "openblas" in line}
    except OSError:
        return []
    return list(loaded) if len(loaded) == 1 else []


@cache
def _controls() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """(set_num_threads, get_num_threads) of NumPy's OpenBLAS, or None."""
    for path in _candidates():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for setter in _SETTERS:
            getter = setter.replace("set_", "get_")
            if hasattr(library, setter) and hasattr(library, getter):
                set_threads, get_threads = getattr(library, setter), getattr(library, getter)
                set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
                get_threads.argtypes, get_threads.restype = [], ctypes.c_int
                return set_threads, get_threads
    return None


def available() -> bool:
    """Whether convcli can set NumPy's BLAS thread count."""
    return _controls() is not None


_lock = threading.Lock()
_users = 0
_saved = 0


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS on one thread inside the block (for this whole process, as OpenBLAS has one count);
    the count before the first of nested or concurrent blocks comes back after the last."""
    global _users, _saved
    controls = _controls()
    if controls is None:
        yield
        return
    set_threads, get_threads = controls
    with _lock:
        if _users == 0:
            _saved = get_threads()
            set_threads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                set_threads(_saved)


def _after_fork_in_child() -> None:
    """A child forked while a block ran has none of its threads: its count comes back now."""
    global _lock, _users
    _lock = threading.Lock()
    if _users:
        _users = 0
        controls = _controls()
        if controls is not None:
            controls[0](_saved)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
