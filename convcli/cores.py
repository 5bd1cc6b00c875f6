"""Each worker of a shared run (chunking.run_shared) on its own CPU while that run is alone.

Linux wakes a sleeping thread on the waking thread's CPU when it judges that CPU's cache warm.
The pool worker that run_shared wakes then shares the caller's CPU until the load balancer
moves it, milliseconds later: a large part of a 10 ms layer. Measured on 2 CPUs (d float32,
12 calls each): forward 10.5-21.5 ms and backward 26-51 ms left to the scheduler, 10.2-14.6
and 25-29 ms pinned. So while a shared run is the only one in the process, the caller and each
helper are pinned to distinct CPUs of the caller's set and put back afterwards. Runs that
overlap (threads of a Dask scheduler, a batch) are not pinned: they would share those CPUs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_running = 0


@contextmanager
def alone(workers: int) -> Iterator[list[int | None]]:
    """One CPU per worker (the caller's first) while this is the only shared run and the caller
    may use as many CPUs as workers; else [None] * workers: the scheduler places them."""
    global _running
    with _lock:
        _running += 1
        first = _running == 1
    try:
        cpus: list[int | None] = [None] * workers
        if first and hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity"):
            allowed = sorted(os.sched_getaffinity(0))
            if len(allowed) >= workers:
                cpus = list(allowed[:workers])
        yield cpus
    finally:
        with _lock:
            _running -= 1


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """This thread on `cpu` inside the block, its CPU set before put back after; None: as is."""
    if cpu is None:
        yield
        return
    try:
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    except OSError:                     # not allowed here (some containers): leave it be
        yield
        return
    try:
        yield
    finally:
        try:
            os.sched_setaffinity(0, saved)
        except OSError:
            pass


def _after_fork_in_child() -> None:
    """A child forked during a shared run has none of its threads: no run is going there."""
    global _lock, _running
    _lock, _running = threading.Lock(), 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
